//! Device access rules (config-linux.md "Device allowlist").
//!
//! The rules are evaluated the way the v1 `devices` controller evaluates a
//! sequence of writes to `devices.allow`/`devices.deny`
//! (Documentation/admin-guide/cgroup-v1/devices.rst): an `a` rule resets the
//! default policy and drops all exceptions; any other rule either adds an
//! exception (when its action differs from the default) or removes access
//! from an exactly matching exception. The resulting state (default +
//! exceptions) is what we write to a v1 cgroup and what the v2 eBPF program
//! encodes, so both hierarchies enforce the same thing.

use crate::error::{CgroupError, Result};
use oxcart_spec::LinuxDeviceCgroup;
use std::collections::BTreeMap;
use std::fmt;

pub(crate) const FIELD: &str = "linux.resources.devices";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DevType {
    // Order matters: exceptions are written sorted by (major, minor, type)
    // with 'b' before 'c', as runc writes them, so devices.list matches.
    All,
    Block,
    Char,
}

impl DevType {
    fn as_char(self) -> char {
        match self {
            DevType::All => 'a',
            DevType::Char => 'c',
            DevType::Block => 'b',
        }
    }
}

/// Access bits: r = 1, w = 2, m = 4 (our own encoding; see `bpf` for the
/// kernel's BPF_DEVCG_ACC_* values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Access(pub u8);

impl Access {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const MKNOD: u8 = 4;
    pub const ALL: Access = Access(7);

    fn parse(s: &str) -> Option<Access> {
        let mut a = 0;
        for c in s.chars() {
            a |= match c {
                'r' => Self::READ,
                'w' => Self::WRITE,
                'm' => Self::MKNOD,
                _ => return None,
            };
        }
        (a != 0).then_some(Access(a))
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 & Self::READ != 0 {
            f.write_str("r")?;
        }
        if self.0 & Self::WRITE != 0 {
            f.write_str("w")?;
        }
        if self.0 & Self::MKNOD != 0 {
            f.write_str("m")?;
        }
        Ok(())
    }
}

/// The match part of a rule; `None` is the `*` wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevMatch {
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub typ: DevType,
}

/// One validated rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub m: DevMatch,
    pub access: Access,
}

fn num(v: &Option<i64>) -> Option<u32> {
    // Negative numbers are the wildcard, as in runc's configs.Wildcard (-1).
    v.and_then(|n| u32::try_from(n).ok())
}

impl DeviceRule {
    pub fn from_spec(i: usize, d: &LinuxDeviceCgroup) -> Result<DeviceRule> {
        let field = format!("{FIELD}[{i}]");
        let typ = match d.typ.as_deref() {
            None | Some("a") | Some("") => DevType::All,
            Some("c") => DevType::Char,
            Some("b") => DevType::Block,
            Some(t) => {
                return Err(CgroupError::invalid(
                    format!("{field}.type"),
                    format!("{t:?} is not one of a, b, c"),
                ))
            }
        };
        let access = match d.access.as_deref() {
            None | Some("") => Access::ALL,
            Some(a) => Access::parse(a).ok_or_else(|| {
                CgroupError::invalid(
                    format!("{field}.access"),
                    format!("{a:?} is not a combination of r, w, m"),
                )
            })?,
        };
        for (name, v) in [("major", d.major), ("minor", d.minor)] {
            if let Some(n) = v {
                if n > u32::MAX as i64 || n < -1 {
                    return Err(CgroupError::invalid(
                        format!("{field}.{name}"),
                        format!("{n} is out of range"),
                    ));
                }
            }
        }
        Ok(DeviceRule {
            allow: d.allow,
            m: DevMatch {
                major: num(&d.major),
                minor: num(&d.minor),
                typ,
            },
            access,
        })
    }

    /// The line for devices.allow / devices.deny.
    pub fn v1_line(&self) -> String {
        if self.m.typ == DevType::All {
            // Any "a" line means "everything" to the v1 controller.
            return "a *:* rwm".into();
        }
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.m.typ.as_char(),
            n(self.m.major),
            n(self.m.minor),
            self.access
        )
    }
}

/// Default policy plus exceptions: the state the v1 controller would be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    pub default_allow: bool,
    pub exceptions: BTreeMap<DevMatch, Access>,
}

impl DeviceState {
    pub fn allow_all() -> DeviceState {
        DeviceState {
            default_allow: true,
            exceptions: BTreeMap::new(),
        }
    }

    pub fn deny_all() -> DeviceState {
        DeviceState {
            default_allow: false,
            exceptions: BTreeMap::new(),
        }
    }

    /// Evaluate `rules` in order. The list is an allow-list
    /// (config-linux.md "Device allowlist"), so evaluation starts from
    /// deny-all, as runc's emulator does.
    pub fn from_rules(rules: &[DeviceRule]) -> Result<DeviceState> {
        let mut s = DeviceState::deny_all();
        for (i, r) in rules.iter().enumerate() {
            s.apply(i, r)?;
        }
        Ok(s)
    }

    fn apply(&mut self, i: usize, r: &DeviceRule) -> Result<()> {
        if r.m.typ == DevType::All {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return Ok(());
        }
        if r.allow != self.default_allow {
            let e = self.exceptions.entry(r.m).or_default();
            e.0 |= r.access.0;
            return Ok(());
        }
        // Same action as the default: remove access from an exception. The
        // v1 kernel only removes exact matches and silently keeps a wildcard
        // exception that covers this device; that would leave access the
        // user asked to remove, so refuse instead of pretending.
        for (wm, wa) in &self.exceptions {
            let covers = wm.typ == r.m.typ
                && (wm.major.is_none() || wm.major == r.m.major)
                && (wm.minor.is_none() || wm.minor == r.m.minor);
            if covers && *wm != r.m && wa.0 & r.access.0 != 0 {
                return Err(CgroupError::invalid(
                    format!("{FIELD}[{i}]"),
                    format!(
                        "rule {:?} cannot be honoured: it would punch a hole in the earlier wildcard rule \"{}\"",
                        r.v1_line(),
                        DeviceRule { allow: !r.allow, m: *wm, access: *wa }.v1_line()
                    ),
                ));
            }
        }
        if let Some(e) = self.exceptions.get_mut(&r.m) {
            e.0 &= !r.access.0;
            if e.0 == 0 {
                self.exceptions.remove(&r.m);
            }
        }
        Ok(())
    }

    /// Parse a v1 `devices.list`. It only lists allowed entries; `a *:* rwm`
    /// means default-allow, whose deny exceptions cannot be read back.
    pub fn from_v1_list(text: &str) -> Option<DeviceState> {
        let mut s = DeviceState::deny_all();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut it = line.split_whitespace();
            let (t, mm, acc) = (it.next()?, it.next()?, it.next()?);
            if t == "a" {
                return Some(DeviceState::allow_all());
            }
            let typ = match t {
                "c" => DevType::Char,
                "b" => DevType::Block,
                _ => return None,
            };
            let (ma, mi) = mm.split_once(':')?;
            let p = |v: &str| {
                if v == "*" {
                    Some(None)
                } else {
                    v.parse().ok().map(Some)
                }
            };
            let m = DevMatch {
                major: p(ma)?,
                minor: p(mi)?,
                typ,
            };
            let a = Access::parse(acc)?;
            s.exceptions.entry(m).or_default().0 |= a.0;
        }
        Some(s)
    }

    /// The writes that take a v1 cgroup from `current` to `self` with the
    /// least disruption: the default is reset (`a` to allow or deny) only
    /// when it changes or when `current` is default-allow (whose deny list
    /// is unreadable); otherwise only the differing exceptions are written,
    /// so running processes never lose access they keep.
    /// Returns (allow?, line) pairs: true → devices.allow.
    pub fn v1_transition(&self, current: Option<&DeviceState>) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        let old = match current {
            Some(c) if !c.default_allow && !self.default_allow => &c.exceptions,
            _ => {
                out.push((self.default_allow, "a *:* rwm".to_string()));
                &empty
            }
        };
        let exc_action = !self.default_allow;
        for (m, a) in old {
            let new = self.exceptions.get(m).map_or(0, |x| x.0);
            let dropped = a.0 & !new;
            if dropped != 0 {
                out.push((
                    self.default_allow,
                    DeviceRule {
                        allow: self.default_allow,
                        m: *m,
                        access: Access(dropped),
                    }
                    .v1_line(),
                ));
            }
        }
        for (m, a) in &self.exceptions {
            let had = old.get(m).map_or(0, |x| x.0);
            let gained = a.0 & !had;
            if gained != 0 {
                out.push((
                    exc_action,
                    DeviceRule {
                        allow: exc_action,
                        m: *m,
                        access: Access(gained),
                    }
                    .v1_line(),
                ));
            }
        }
        out
    }
}

/// Parse and evaluate the spec's device rules.
pub fn state_from_spec(devs: &[LinuxDeviceCgroup]) -> Result<DeviceState> {
    let rules = devs
        .iter()
        .enumerate()
        .map(|(i, d)| DeviceRule::from_spec(i, d))
        .collect::<Result<Vec<_>>>()?;
    DeviceState::from_rules(&rules)
}

/// runc's `AllowedDevices` (libcontainer/specconv, runc 1.1): mknod of
/// anything, the default devices of config-linux.md "Default Devices",
/// /dev/pts/*, /dev/ptmx and /dev/net/tun. Each with the device path it
/// belongs to, if any.
fn allowed_devices() -> Vec<(Option<&'static str>, LinuxDeviceCgroup)> {
    let r = |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| LinuxDeviceCgroup {
        allow: true,
        typ: Some(typ.into()),
        major,
        minor,
        access: Some(access.into()),
    };
    vec![
        // mknod of any device is allowed; open is still checked.
        (None, r("c", None, None, "m")),
        (None, r("b", None, None, "m")),
        (Some("/dev/null"), r("c", Some(1), Some(3), "rwm")),
        (Some("/dev/random"), r("c", Some(1), Some(8), "rwm")),
        (Some("/dev/full"), r("c", Some(1), Some(7), "rwm")),
        (Some("/dev/tty"), r("c", Some(5), Some(0), "rwm")),
        (Some("/dev/zero"), r("c", Some(1), Some(5), "rwm")),
        (Some("/dev/urandom"), r("c", Some(1), Some(9), "rwm")),
        (None, r("c", Some(136), None, "rwm")),  // /dev/pts/*
        (None, r("c", Some(5), Some(2), "rwm")), // /dev/ptmx
        (None, r("c", Some(10), Some(200), "rwm")), // /dev/net/tun
    ]
}

/// runc's default allowed device rules (see [`container_device_rules`]).
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    allowed_devices().into_iter().map(|(_, r)| r).collect()
}

/// The device rules to pass to [`crate::Manager::apply`] when creating a
/// container, exactly as runc 1.1's specconv builds them: the spec's
/// `linux.resources.devices`, then runc's default allowed devices, minus
/// any default whose path also appears in `linux.devices` (the spec's
/// device takes priority). Without the defaults, the usual first spec rule
/// `{"allow": false, "access": "rwm"}` would deny even /dev/null.
pub fn container_device_rules(
    spec_rules: &[LinuxDeviceCgroup],
    linux_devices: &[oxcart_spec::LinuxDevice],
) -> Vec<LinuxDeviceCgroup> {
    let mut out = spec_rules.to_vec();
    for (path, rule) in allowed_devices() {
        if path.is_some_and(|p| linux_devices.iter().any(|d| d.path == p)) {
            continue;
        }
        out.push(rule);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        t: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        LinuxDeviceCgroup {
            allow,
            typ: Some(t.into()),
            major,
            minor,
            access: Some(access.into()),
        }
    }

    #[test]
    fn deny_all_then_allow() {
        let s = state_from_spec(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "rw"),
            rule(true, "c", Some(1), Some(3), "m"),
            rule(true, "c", Some(136), None, "rwm"),
        ])
        .unwrap();
        assert!(!s.default_allow);
        let lines: Vec<_> = s.v1_transition(None);
        assert_eq!(
            lines,
            vec![
                (false, "a *:* rwm".to_string()),
                (true, "c 1:3 rwm".to_string()),
                (true, "c 136:* rwm".to_string())
            ]
        );
    }

    #[test]
    fn later_deny_removes_access() {
        let s = state_from_spec(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(false, "c", Some(1), Some(3), "w"),
        ])
        .unwrap();
        assert_eq!(s.exceptions.values().next().unwrap().to_string(), "rm");
    }

    #[test]
    fn punching_wildcard_is_an_error() {
        let e = state_from_spec(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", None, None, "rwm"),
            rule(false, "c", Some(1), Some(3), "rwm"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.devices[2]"),
            "{e}"
        );
    }

    #[test]
    fn bad_rules_name_the_field() {
        let e = state_from_spec(&[rule(true, "x", None, None, "r")]).unwrap_err();
        assert!(
            e.to_string().contains("linux.resources.devices[0].type"),
            "{e}"
        );
        let e = state_from_spec(&[rule(true, "c", None, None, "rq")]).unwrap_err();
        assert!(e.to_string().contains("devices[0].access"), "{e}");
    }

    #[test]
    fn container_rules_follow_runc() {
        let spec = [rule(false, "a", None, None, "rwm")];
        let all = container_device_rules(&spec, &[]);
        assert_eq!(all.len(), 12);
        assert_eq!(all[0], spec[0]);
        let s = DeviceState::from_rules(
            &all.iter()
                .enumerate()
                .map(|(i, d)| DeviceRule::from_spec(i, d).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(!s.default_allow);
        let null = DevMatch {
            major: Some(1),
            minor: Some(3),
            typ: DevType::Char,
        };
        assert_eq!(s.exceptions[&null], Access::ALL);
        // A linux.devices entry at a default path replaces that default.
        let dev = oxcart_spec::LinuxDevice {
            path: "/dev/null".into(),
            typ: "c".into(),
            major: 1,
            minor: 3,
            ..Default::default()
        };
        let all = container_device_rules(&spec, &[dev]);
        assert_eq!(all.len(), 11);
        assert!(!all.iter().any(|r| r.major == Some(1) && r.minor == Some(3)));
    }

    #[test]
    fn minimal_transition() {
        let cur = DeviceState::from_v1_list("c 1:3 rwm\nc 1:5 rwm\n").unwrap();
        let want = state_from_spec(&[
            rule(false, "a", None, None, "rwm"),
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(true, "c", Some(1), Some(9), "r"),
        ])
        .unwrap();
        assert_eq!(
            want.v1_transition(Some(&cur)),
            vec![
                (false, "c 1:5 rwm".to_string()),
                (true, "c 1:9 r".to_string())
            ]
        );
        // From default-allow the deny list is unknown: reset first.
        let allow_all = DeviceState::from_v1_list("a *:* rwm\n").unwrap();
        assert_eq!(
            want.v1_transition(Some(&allow_all))[0],
            (false, "a *:* rwm".to_string())
        );
    }
}
