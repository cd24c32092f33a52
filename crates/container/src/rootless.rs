//! Rootless containers: what changes when the runtime is run by an unprivileged user
//! (runc's `rootless_linux.go`, `libcontainer/cgroups/fs` rootless handling and
//! `specconv.ToRootless`).
//!
//! - `--rootless auto` means "euid != 0, or running inside a user namespace".
//! - cgroups (runc's fs manager, `crate::cg::Cg::create_or_skip`): a hierarchy whose
//!   cgroup the admin delegated to the user (chowned) is used like root's, limits
//!   included. One the user cannot create or join (EPERM/EACCES/EROFS) is skipped
//!   when `linux.cgroupsPath` is not set — unless a limit needs its controller,
//!   then an error naming the field (runc: "cannot set pids limit: container could
//!   not join or create cgroup"); with `linux.cgroupsPath` set it is an error, as
//!   in runc (`isIgnorableError(...) && c.Path == ""`). Device rules are not
//!   limits: a rootless container gets its devices as bind mounts anyway.
//! - id maps: an unprivileged parent may map only its own uid/gid, and for the gid
//!   map it must first write `deny` to `/proc/<pid>/setgroups` (user_namespaces(7)
//!   "Interaction with system calls that change process UIDs or GIDs"); anything
//!   wider goes through the setuid helpers `newuidmap`/`newgidmap` (shadow's uidmap
//!   package), which check `/etc/subuid` and `/etc/subgid`.

use crate::error::{Ctx, Error, Result};
use oxcart_spec::{IdMapping, LinuxResources, Spec};
use std::process::Command;

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn egid() -> u32 {
    // SAFETY: getegid cannot fail.
    unsafe { libc::getegid() }
}

/// Are we running inside a user namespace other than the initial one? As runc's
/// `userns.RunningInUserNS`: the initial namespace's uid_map is the identity over
/// the whole 32-bit range.
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(s) => {
            let f: Vec<&str> = s.split_whitespace().collect();
            f != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

/// `--rootless auto|true|false` (runc's global flag). Auto: euid != 0, or euid 0
/// inside a user namespace.
pub fn resolve_flag(v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("auto") => Ok(euid() != 0 || in_user_namespace()),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(o) => Err(Error::Other(format!(
            "--rootless: invalid value {o:?} (auto, true or false)"
        ))),
    }
}

/// The default `--root`: runc uses `$XDG_RUNTIME_DIR/runc` for a non-root caller
/// that has an XDG runtime dir, else `/run/runc`; we do the same with `oxcart`.
/// A non-root user without XDG_RUNTIME_DIR gets `/run/oxcart`, which it cannot
/// write: an error, never root's state touched.
pub fn default_root() -> std::path::PathBuf {
    if euid() != 0 {
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            return std::path::PathBuf::from(x).join("oxcart");
        }
    }
    std::path::PathBuf::from("/run/oxcart")
}

/// The first resource *limit* a config sets (devices rules excluded), as its
/// runtime-spec field path, e.g. `linux.resources.pids`.
pub fn first_limit(r: Option<&LinuxResources>) -> Option<String> {
    let r = r?;
    let v = serde_json::to_value(r).ok()?;
    let obj = v.as_object()?;
    obj.iter()
        .filter(|(k, _)| k.as_str() != "devices")
        .find(|(_, v)| is_set(v))
        .map(|(k, _)| format!("linux.resources.{k}"))
}

/// A resource field the config really sets: not null, not an empty object or list.
fn is_set(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Object(o) => !o.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

/// Every resource limit a config sets (devices rules excluded), as its field path
/// with the controllers it needs; `""` stands for the cgroup2 hierarchy itself
/// (`linux.resources.unified`). `cpu.cpus`/`cpu.mems` are cpuset's, as in runc's
/// v1 subsystems (`CpusetGroup.Set` reads `r.CpusetCpus`/`r.CpusetMems`).
pub fn limits(r: Option<&LinuxResources>) -> Vec<(String, Vec<String>)> {
    let Some(v) = r.and_then(|r| serde_json::to_value(r).ok()) else {
        return Vec::new();
    };
    let Some(obj) = v.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in obj
        .iter()
        .filter(|(k, v)| k.as_str() != "devices" && is_set(v))
    {
        let field = format!("linux.resources.{k}");
        let ctrls: &[&str] = match k.as_str() {
            "cpu" => {
                let o = v.as_object();
                for sub in ["cpus", "mems"] {
                    if o.and_then(|o| o.get(sub)).is_some_and(is_set) {
                        out.push((format!("{field}.{sub}"), vec!["cpuset".to_string()]));
                    }
                }
                let other = o.is_some_and(|o| {
                    o.iter()
                        .any(|(s, v)| s.as_str() != "cpus" && s.as_str() != "mems" && is_set(v))
                });
                if !other {
                    continue;
                }
                &["cpu"]
            }
            "blockIO" => &["blkio"],
            "hugepageLimits" => &["hugetlb"],
            "network" => &["net_cls", "net_prio"],
            "unified" => &[""],
            other => {
                out.push((field, vec![other.to_string()]));
                continue;
            }
        };
        out.push((field, ctrls.iter().map(|c| c.to_string()).collect()));
    }
    out
}

/// Is this cgroup error a permission problem (no delegation) that a rootless
/// container may ignore? runc's `isIgnorableError`: EPERM, EACCES or EROFS.
pub fn ignorable_cgroup_error(e: &oxcart_cgroups::CgroupError) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(
                io.raw_os_error(),
                Some(libc::EPERM) | Some(libc::EACCES) | Some(libc::EROFS)
            );
        }
        cur = err.source();
    }
    false
}

fn mapped(maps: &[IdMapping], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.container_id && (id - m.container_id) < m.size)
}

/// runc's checks for a non-root caller (libcontainer/configs/validate/rootless.go),
/// before anything is created: the container needs a user namespace (a new one, or
/// one joined by path), and `uid=`/`gid=` mount options must name mapped ids.
pub fn check_unprivileged(spec: &Spec, has_userns: bool) -> Result<()> {
    // runc: only for RootlessEUID; root inside a user namespace keeps its config.
    if euid() == 0 {
        return Ok(());
    }
    if !has_userns {
        return Err(Error::config(
            "linux.namespaces",
            "rootless container requires user namespaces (run `spec --rootless`)",
        ));
    }
    let (uids, gids) = match spec.linux.as_ref() {
        Some(l) => (l.uid_mappings.as_slice(), l.gid_mappings.as_slice()),
        None => (&[][..], &[][..]),
    };
    if uids.is_empty() && gids.is_empty() {
        // Joined by path: the namespace's own maps apply; nothing to check here.
        return Ok(());
    }
    for (i, m) in spec.mounts.iter().enumerate() {
        for o in &m.options {
            let (kind, maps, v) = if let Some(v) = o.strip_prefix("uid=") {
                ("uid", uids, v)
            } else if let Some(v) = o.strip_prefix("gid=") {
                ("gid", gids, v)
            } else {
                continue;
            };
            if !v.parse().is_ok_and(|id| mapped(maps, id)) {
                return Err(Error::config(
                    format!("mounts[{i}].options"),
                    format!("cannot specify {o} mount option for an unmapped {kind} in a rootless container"),
                ));
            }
        }
    }
    Ok(())
}

/// How the parent will write the child's id maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapMethod {
    /// We are privileged over the parent namespace: write the maps ourselves.
    Direct,
    /// Unprivileged, mapping only our own uid and gid: write them ourselves after
    /// denying setgroups (so `additionalGids` cannot be set).
    OwnIds,
    /// Unprivileged with wider maps: newuidmap/newgidmap.
    Helpers,
}

fn only_own(maps: &[IdMapping], id: u32) -> bool {
    matches!(maps, [m] if m.host_id == id && m.size == 1)
}

/// Choose how to write the maps. Root in the initial user namespace writes them
/// directly (CAP_SETUID/CAP_SETGID over the parent namespace).
pub fn map_method(uid_maps: &[IdMapping], gid_maps: &[IdMapping]) -> MapMethod {
    if euid() == 0 && !in_user_namespace() {
        return MapMethod::Direct;
    }
    if only_own(uid_maps, euid()) && only_own(gid_maps, egid()) {
        MapMethod::OwnIds
    } else {
        MapMethod::Helpers
    }
}

fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

fn helper(prog: &str, field: &str, pid: libc::pid_t, maps: &[IdMapping]) -> Result<()> {
    let mut c = Command::new(prog);
    c.arg(pid.to_string());
    for m in maps {
        c.arg(m.container_id.to_string())
            .arg(m.host_id.to_string())
            .arg(m.size.to_string());
    }
    let out = c.stdin(std::process::Stdio::null()).output().map_err(|e| {
        Error::config(
            field,
            format!(
                "mapping more than the caller's own id needs {prog} (Debian package uidmap): {e}"
            ),
        )
    })?;
    if !out.status.success() {
        return Err(Error::config(
            field,
            format!(
                "{prog} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

/// Write the child's uid_map and gid_map by `method` (see [`map_method`]).
pub fn write_maps(
    pid: libc::pid_t,
    method: MapMethod,
    uid_maps: &[IdMapping],
    gid_maps: &[IdMapping],
) -> Result<()> {
    match method {
        MapMethod::Direct => {
            std::fs::write(format!("/proc/{pid}/uid_map"), map_text(uid_maps))
                .ctx(|| "linux.uidMappings: write uid_map".into())?;
            std::fs::write(format!("/proc/{pid}/gid_map"), map_text(gid_maps))
                .ctx(|| "linux.gidMappings: write gid_map".into())?;
        }
        MapMethod::OwnIds => {
            // user_namespaces(7): an unprivileged process must deny setgroups in
            // the namespace before it may write gid_map (since Linux 3.19,
            // CVE-2014-8989).
            std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
                .ctx(|| format!("write deny to /proc/{pid}/setgroups"))?;
            std::fs::write(format!("/proc/{pid}/uid_map"), map_text(uid_maps))
                .ctx(|| "linux.uidMappings: write uid_map".into())?;
            std::fs::write(format!("/proc/{pid}/gid_map"), map_text(gid_maps))
                .ctx(|| "linux.gidMappings: write gid_map".into())?;
        }
        MapMethod::Helpers => {
            helper("newuidmap", "linux.uidMappings", pid, uid_maps)?;
            helper("newgidmap", "linux.gidMappings", pid, gid_maps)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_exclude_devices() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        assert_eq!(first_limit(Some(&r)), None);
        let r: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":10}}"#).unwrap();
        assert_eq!(
            first_limit(Some(&r)).as_deref(),
            Some("linux.resources.pids")
        );
        assert_eq!(first_limit(None), None);
    }

    #[test]
    fn limits_name_their_controllers() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"devices":[{"allow":false,"access":"rwm"}],"pids":{"limit":10},
                "cpu":{"shares":100,"cpus":"0"},"blockIO":{"weight":10},"unified":{"io.max":"x"}}"#,
        )
        .unwrap();
        let mut l = limits(Some(&r));
        l.sort();
        let want = |f: &str, c: &str| (f.to_string(), vec![c.to_string()]);
        assert_eq!(
            l,
            vec![
                want("linux.resources.blockIO", "blkio"),
                want("linux.resources.cpu", "cpu"),
                want("linux.resources.cpu.cpus", "cpuset"),
                want("linux.resources.pids", "pids"),
                want("linux.resources.unified", ""),
            ]
        );
        let r: LinuxResources = serde_json::from_str(r#"{"cpu":{"mems":"0"}}"#).unwrap();
        assert_eq!(
            limits(Some(&r)),
            vec![want("linux.resources.cpu.mems", "cpuset")]
        );
        assert!(limits(None).is_empty());
    }

    #[test]
    fn own_id_detection() {
        let one = |h| {
            vec![IdMapping {
                container_id: 0,
                host_id: h,
                size: 1,
            }]
        };
        assert!(only_own(&one(1000), 1000));
        assert!(!only_own(&one(1001), 1000));
        let wide = vec![IdMapping {
            container_id: 0,
            host_id: 1000,
            size: 65536,
        }];
        assert!(!only_own(&wide, 1000));
    }

    #[test]
    fn mapped_ranges() {
        let m = vec![IdMapping {
            container_id: 1,
            host_id: 100000,
            size: 10,
        }];
        assert!(!mapped(&m, 0));
        assert!(mapped(&m, 1));
        assert!(mapped(&m, 10));
        assert!(!mapped(&m, 11));
    }

    #[test]
    fn flag_values() {
        assert!(resolve_flag(Some("true")).unwrap());
        assert!(!resolve_flag(Some("false")).unwrap());
        assert!(resolve_flag(Some("maybe")).is_err());
    }
}
