//! Capabilities as docker computes them (`oci/caps` `TweakCapabilities`).

use super::SpecError;
use crate::types::HostConfig;

/// docker's default set (`oci/caps/defaults.go`), in docker's order.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability by number (capability.h).
const KNOWN: &[&str] = oxcart_spec::CAPABILITY_NAMES;

/// Every capability this kernel knows (`/proc/sys/kernel/cap_last_cap`) that this
/// process may give (its bounding set): what `--privileged` and `--cap-add ALL` give.
/// docker lists every capability the kernel knows; on a host whose engine runs
/// without one (these VMs lack CAP_SYS_RESOURCE) the runtime's capset(2) would then
/// fail with EPERM, so we do as podman does and keep to the bounding set.
pub fn all_capabilities() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(KNOWN.len() - 1);
    let bounding = own_bounding_set().unwrap_or(u64::MAX);
    KNOWN
        .iter()
        .enumerate()
        .take(last.saturating_add(1))
        .filter(|(i, _)| *i < 64 && bounding & (1u64 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// `CapBnd` of this process (proc(5)).
fn own_bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// `chown` / `CAP_chown` → `CAP_CHOWN`; `ALL` stays; an unknown name is docker's
/// `unknown capability: "CAP_X"`.
fn normalize(names: &[String]) -> Result<Vec<String>, SpecError> {
    names
        .iter()
        .map(|n| {
            let up = n.to_ascii_uppercase();
            if up == "ALL" {
                return Ok(up);
            }
            let full = if up.starts_with("CAP_") {
                up
            } else {
                format!("CAP_{up}")
            };
            if KNOWN.contains(&full.as_str()) {
                Ok(full)
            } else {
                Err(SpecError::UnknownCapability(full))
            }
        })
        .collect()
}

/// The container's capability set: all for `--privileged`; `--cap-add ALL` all but the
/// dropped; `--cap-drop ALL` only the added; else the default minus dropped plus added.
pub(crate) fn effective_set(hc: &HostConfig) -> Result<Vec<String>, SpecError> {
    let add = normalize(hc.cap_add.as_deref().unwrap_or_default())?;
    let drop = normalize(hc.cap_drop.as_deref().unwrap_or_default())?;
    if hc.privileged {
        return Ok(all_capabilities());
    }
    let all = |v: &[String]| v.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if all(&add) {
        all_capabilities()
            .into_iter()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if all(&drop) {
        add
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| seen.insert(c.clone()));
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(add: &[&str], drop: &[&str]) -> HostConfig {
        HostConfig {
            cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
            cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn add_drop_all_and_unknown() {
        let c = effective_set(&hc(&["sys_admin", "CAP_NET_ADMIN"], &["chown"])).expect("caps");
        assert!(c.contains(&"CAP_SYS_ADMIN".into()) && c.contains(&"CAP_NET_ADMIN".into()));
        assert!(!c.contains(&"CAP_CHOWN".into()));
        assert_eq!(c.len(), DEFAULT_CAPABILITIES.len() + 1);
        let c = effective_set(&hc(&["kill"], &["ALL"])).expect("caps");
        assert_eq!(c, ["CAP_KILL"]);
        let c = effective_set(&hc(&["ALL"], &["CAP_SYS_ADMIN"])).expect("caps");
        assert_eq!(c.len(), all_capabilities().len() - 1);
        let e = effective_set(&hc(&["bogus"], &[])).expect_err("unknown");
        assert_eq!(e.to_string(), "unknown capability: \"CAP_BOGUS\"");
    }
}
