//! Checks on a parsed config that types alone cannot express. Each error names the
//! JSON path of the offending field, so a user can find it in config.json.

use crate::config::Spec;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {msg}")]
pub struct ValidationError {
    pub field: String,
    pub msg: String,
}

fn err(field: impl Into<String>, msg: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.into(),
        msg: msg.into(),
    }
}

/// A container id as runc accepts it (`libcontainer/container_linux.go` validateID):
/// `^[\w+\-.]+$` and not `.` or `..` — so it can never name a path outside `--root`.
pub fn validate_id(id: &str) -> Result<(), String> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if id.is_empty() || !ok_chars || id == "." || id == ".." || id.len() > 1024 {
        return Err(format!("invalid id format: {id:?}"));
    }
    Ok(())
}

/// Parse "major.minor.patch[-suffix]" into numbers.
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    let patch = it.next().unwrap_or("0").parse().ok()?;
    Some((major, minor, patch))
}

/// The namespace types of `config-linux.md` "Namespaces".
pub const NAMESPACE_TYPES: &[&str] = &[
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

/// Validate a config for `create`/`run`.
pub fn validate_spec(spec: &Spec) -> Result<(), ValidationError> {
    match parse_version(&spec.oci_version) {
        // Any 1.x: runtime-spec promises backwards compatibility within a major version.
        Some((1, _, _)) => {}
        _ => {
            return Err(err(
                "ociVersion",
                format!(
                    "unsupported version {:?}: this runtime implements runtime-spec 1.x (>= {})",
                    spec.oci_version,
                    crate::OCI_VERSION_MIN
                ),
            ))
        }
    }
    let root = spec
        .root
        .as_ref()
        .ok_or_else(|| err("root", "missing: a Linux container needs root.path"))?;
    if root.path.is_empty() {
        return Err(err("root.path", "must not be empty"));
    }
    if let Some(p) = &spec.process {
        if p.args.is_empty() {
            return Err(err("process.args", "must contain at least one entry"));
        }
        if p.command_line.is_some() {
            return Err(err("process.commandLine", "is Windows-only"));
        }
        if !p.cwd.starts_with('/') {
            return Err(err(
                "process.cwd",
                format!("must be an absolute path, got {:?}", p.cwd),
            ));
        }
        for (i, e) in p.env.iter().enumerate() {
            if !e.contains('=') {
                return Err(err(
                    format!("process.env[{i}]"),
                    format!("{e:?} is not of the form KEY=value"),
                ));
            }
        }
    }
    for (i, m) in spec.mounts.iter().enumerate() {
        if m.destination.is_empty() {
            return Err(err(format!("mounts[{i}].destination"), "must not be empty"));
        }
    }
    if let Some(linux) = &spec.linux {
        let mut seen = Vec::new();
        for (i, ns) in linux.namespaces.iter().enumerate() {
            if !NAMESPACE_TYPES.contains(&ns.typ.as_str()) {
                return Err(err(
                    format!("linux.namespaces[{i}].type"),
                    format!("unknown namespace type {:?}", ns.typ),
                ));
            }
            if seen.contains(&ns.typ) {
                return Err(err(
                    format!("linux.namespaces[{i}].type"),
                    format!("namespace {:?} is listed twice", ns.typ),
                ));
            }
            seen.push(ns.typ.clone());
            if let Some(path) = &ns.path {
                if !path.starts_with('/') {
                    return Err(err(
                        format!("linux.namespaces[{i}].path"),
                        format!("must be absolute, got {path:?}"),
                    ));
                }
            }
        }
        let has_userns = seen.iter().any(|t| t == "user");
        if !has_userns && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) {
            return Err(err(
                "linux.uidMappings",
                "mappings are set but there is no user namespace",
            ));
        }
        if linux.time_offsets.is_some() && !seen.iter().any(|t| t == "time") {
            return Err(err(
                "linux.timeOffsets",
                "offsets are set but there is no time namespace",
            ));
        }
        for (name, maps) in [
            ("uidMappings", &linux.uid_mappings),
            ("gidMappings", &linux.gid_mappings),
        ] {
            check_mappings(&format!("linux.{name}"), maps)?;
        }
        for (field, paths) in [
            ("linux.maskedPaths", &linux.masked_paths),
            ("linux.readonlyPaths", &linux.readonly_paths),
        ] {
            for (i, p) in paths.iter().enumerate() {
                if !p.starts_with('/') {
                    return Err(err(
                        format!("{field}[{i}]"),
                        format!("must be an absolute path, got {p:?}"),
                    ));
                }
            }
        }
        for (i, d) in linux.devices.iter().enumerate() {
            if !d.path.starts_with("/dev/") {
                return Err(err(
                    format!("linux.devices[{i}].path"),
                    format!("must be under /dev, got {:?}", d.path),
                ));
            }
            if !matches!(d.typ.as_str(), "c" | "b" | "u" | "p") {
                return Err(err(
                    format!("linux.devices[{i}].type"),
                    format!("must be one of c, b, u, p; got {:?}", d.typ),
                ));
            }
        }
        if let Some(p) = &linux.rootfs_propagation {
            if !matches!(
                p.as_str(),
                "" | "shared"
                    | "slave"
                    | "private"
                    | "unbindable"
                    | "rshared"
                    | "rslave"
                    | "rprivate"
                    | "runbindable"
            ) {
                return Err(err(
                    "linux.rootfsPropagation",
                    format!("unknown propagation {p:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Mappings must be non-empty in size and must not overlap on either side
/// (user_namespaces(7): the kernel rejects overlapping ranges with EINVAL; we say which).
pub fn check_mappings(field: &str, maps: &[crate::IdMapping]) -> Result<(), ValidationError> {
    for (i, m) in maps.iter().enumerate() {
        if m.size == 0 {
            return Err(err(format!("{field}[{i}].size"), "must be > 0"));
        }
        for side in [(m.container_id, "containerID"), (m.host_id, "hostID")] {
            if u64::from(side.0) + u64::from(m.size) > u64::from(u32::MAX) + 1 {
                return Err(err(
                    format!("{field}[{i}].{}", side.1),
                    "range exceeds the 32-bit id space",
                ));
            }
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| {
                let (a, b, sa, sb) = (
                    u64::from(a),
                    u64::from(b),
                    u64::from(m.size),
                    u64::from(o.size),
                );
                a < b + sb && b < a + sa
            };
            if overlap(m.container_id, o.container_id) {
                return Err(err(
                    format!("{field}[{i}]"),
                    format!("containerID range overlaps {field}[{j}]"),
                ));
            }
            if overlap(m.host_id, o.host_id) {
                return Err(err(
                    format!("{field}[{i}]"),
                    format!("hostID range overlaps {field}[{j}]"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdMapping;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn versions() {
        let mut s = Spec {
            oci_version: "1.0.2-dev".into(),
            root: Some(crate::Root {
                path: "rootfs".into(),
                readonly: false,
            }),
            ..Default::default()
        };
        assert!(validate_spec(&s).is_ok());
        s.oci_version = "2.0.0".into();
        assert_eq!(validate_spec(&s).unwrap_err().field, "ociVersion");
        s.oci_version = "bogus".into();
        assert_eq!(validate_spec(&s).unwrap_err().field, "ociVersion");
    }

    #[test]
    fn mappings_overlap() {
        let m = |c, h, s| IdMapping {
            container_id: c,
            host_id: h,
            size: s,
        };
        assert!(check_mappings("x", &[m(0, 1000, 1), m(1, 100000, 65536)]).is_ok());
        let e = check_mappings("x", &[m(0, 1000, 10), m(5, 5000, 1)]).unwrap_err();
        assert_eq!(e.field, "x[1]");
        assert!(e.msg.contains("containerID"));
        let e = check_mappings("x", &[m(0, 1000, 10), m(20, 1005, 1)]).unwrap_err();
        assert!(e.msg.contains("hostID"));
        assert!(check_mappings("x", &[m(0, 0, 0)]).is_err());
    }

    #[test]
    fn field_paths_in_parse_errors() {
        let e = crate::parse_config(
            br#"{"ociVersion":"1.0.0","process":{"user":{"uid":"x"}}}"#,
            "config.json",
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(s.contains("process.user.uid"), "{s}");
    }
}

#[cfg(test)]
mod null_tests {
    #[test]
    fn go_nulls_are_empty() {
        let s = crate::parse_config(
            br#"{"ociVersion":"1.0.0","mounts":null,"linux":{"namespaces":null,"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":null}]}}}"#,
            "config.json",
        )
        .unwrap();
        assert!(s.mounts.is_empty());
        let l = s.linux.unwrap();
        assert!(l.namespaces.is_empty());
        assert!(l.seccomp.unwrap().syscalls[0].args.is_empty());
    }
}
