//! `linux.cgroupsPath` resolution (config-linux.md "Cgroups path"), the way
//! runc's fs manager does it, and the systemd `slice:prefix:name` form.

use crate::error::{CgroupError, Result};
use std::path::{Path, PathBuf};

/// Lexically clean a cgroup path: drop empty and `.` components and resolve
/// `..` without ever climbing above the start (runc's `utils.CleanPath`
/// semantics), so `../../etc` cannot name a cgroup outside the hierarchy
/// root or outside the caller's own cgroup.
pub(crate) fn clean(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_string()),
        }
    }
    out
}

/// How the cgroup path is anchored in each hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupPath {
    /// Below each hierarchy's root.
    Absolute(Vec<String>),
    /// Below the calling process' own cgroup in each hierarchy.
    Relative(Vec<String>),
}

/// The cgroupfs interpretation: absolute paths are under each hierarchy's
/// root, relative ones (and the default, the container id) under the
/// caller's cgroup.
pub(crate) fn parse_fs_path(cgroups_path: Option<&str>, id: &str) -> Result<CgroupPath> {
    let raw = match cgroups_path {
        Some(p) if !p.is_empty() => p,
        _ => id,
    };
    let comps = clean(raw);
    if comps.is_empty() {
        return Err(CgroupError::Path {
            path: raw.to_string(),
            msg: "resolves to the hierarchy root; refusing to manage a cgroup the runtime did not create".into(),
        });
    }
    for c in &comps {
        if c.contains('\n') || c.contains('\0') {
            return Err(CgroupError::Path {
                path: raw.to_string(),
                msg: "contains a newline or NUL byte".into(),
            });
        }
    }
    Ok(if raw.starts_with('/') {
        CgroupPath::Absolute(comps)
    } else {
        CgroupPath::Relative(comps)
    })
}

/// Directory of the cgroup in one hierarchy mounted at `mountpoint` whose
/// mounted root is `mount_root`; `own` is the caller's cgroup there.
pub(crate) fn dir_in(mountpoint: &Path, mount_root: &str, own: &str, p: &CgroupPath) -> PathBuf {
    let mut dir = mountpoint.to_path_buf();
    let comps = match p {
        CgroupPath::Absolute(c) => c,
        CgroupPath::Relative(c) => {
            // /proc/self/cgroup paths are relative to the hierarchy root; the
            // mount may expose only a subtree (mountinfo field 4).
            let own_c = clean(own);
            let root_c = clean(mount_root);
            let rel: &[String] = if own_c.starts_with(&root_c) {
                &own_c[root_c.len()..]
            } else {
                &own_c
            };
            for c in rel {
                dir.push(c);
            }
            c
        }
    };
    for c in comps {
        dir.push(c);
    }
    dir
}

/// The systemd form `slice:prefix:name` (runc `--systemd-cgroup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemdPath {
    pub slice: String,
    pub prefix: String,
    pub name: String,
}

impl SystemdPath {
    /// Parse `slice:prefix:name`; an absent path defaults like runc to
    /// `system.slice:oxcart:<id>`.
    pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<SystemdPath> {
        let Some(p) = cgroups_path.filter(|p| !p.is_empty()) else {
            return Ok(SystemdPath {
                slice: "system.slice".into(),
                prefix: "oxcart".into(),
                name: id.into(),
            });
        };
        let parts: Vec<&str> = p.split(':').collect();
        if parts.len() != 3 {
            return Err(CgroupError::Path {
                path: p.into(),
                msg: "with --systemd-cgroup the path must have the form \"slice:prefix:name\""
                    .into(),
            });
        }
        let slice = if parts[0].is_empty() {
            "-.slice"
        } else {
            parts[0]
        };
        if !slice.ends_with(".slice") || slice.contains('/') {
            return Err(CgroupError::Path {
                path: p.into(),
                msg: format!("{slice:?} is not a systemd slice name (\"<name>.slice\")"),
            });
        }
        if parts[2].is_empty() || parts[2].contains('/') || parts[1].contains('/') {
            return Err(CgroupError::Path {
                path: p.into(),
                msg: "prefix and name must not contain '/' and name must not be empty".into(),
            });
        }
        Ok(SystemdPath {
            slice: slice.into(),
            prefix: parts[1].into(),
            name: parts[2].into(),
        })
    }

    /// The unit: `prefix-name.scope`, or `name` itself when it is a slice.
    pub fn unit_name(&self) -> String {
        if self.name.ends_with(".slice") {
            self.name.clone()
        } else if self.prefix.is_empty() {
            format!("{}.scope", self.name)
        } else {
            format!("{}-{}.scope", self.prefix, self.name)
        }
    }

    /// The cgroup path systemd gives the unit: the slice name expanded
    /// (`a-b.slice` → `/a.slice/a-b.slice`, systemd.slice(5)) plus the unit.
    pub fn cgroup_path(&self) -> Result<String> {
        let mut path = String::new();
        if self.slice != "-.slice" {
            let stem = &self.slice[..self.slice.len() - ".slice".len()];
            if stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
                return Err(CgroupError::Path {
                    path: self.slice.clone(),
                    msg: "invalid slice name".into(),
                });
            }
            let mut prefix = String::new();
            for part in stem.split('-') {
                if !prefix.is_empty() {
                    prefix.push('-');
                }
                prefix.push_str(part);
                path.push('/');
                path.push_str(&prefix);
                path.push_str(".slice");
            }
        }
        path.push('/');
        path.push_str(&self.unit_name());
        Ok(path)
    }
}

/// Is systemd the init system? (sd_booted(3): `/run/systemd/system` exists.)
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_never_climbs() {
        assert_eq!(clean("/a/../../b/./c//"), ["b", "c"]);
        assert_eq!(clean("../../etc"), ["etc"]);
        assert!(clean("/..").is_empty());
    }

    #[test]
    fn fs_paths() {
        let a = parse_fs_path(Some("/x/y"), "id").unwrap();
        assert_eq!(a, CgroupPath::Absolute(vec!["x".into(), "y".into()]));
        let r = parse_fs_path(None, "ctr").unwrap();
        assert_eq!(r, CgroupPath::Relative(vec!["ctr".into()]));
        assert!(parse_fs_path(Some("/"), "id").is_err());
        assert!(parse_fs_path(Some("/.."), "id").is_err());
        let mp = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            dir_in(mp, "/", "/process_api/abc", &r),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/ctr")
        );
        assert_eq!(
            dir_in(mp, "/", "/process_api/abc", &a),
            Path::new("/sys/fs/cgroup/memory/x/y")
        );
        // A mount exposing only /process_api: the caller's path is relative to it.
        assert_eq!(
            dir_in(mp, "/process_api", "/process_api/abc", &r),
            Path::new("/sys/fs/cgroup/memory/abc/ctr")
        );
    }

    #[test]
    fn systemd_paths() {
        let p = SystemdPath::parse(Some("machine-test.slice:oxcart:abc"), "id").unwrap();
        assert_eq!(p.unit_name(), "oxcart-abc.scope");
        assert_eq!(
            p.cgroup_path().unwrap(),
            "/machine.slice/machine-test.slice/oxcart-abc.scope"
        );
        let d = SystemdPath::parse(None, "ctr").unwrap();
        assert_eq!(d.cgroup_path().unwrap(), "/system.slice/oxcart-ctr.scope");
        let root = SystemdPath::parse(Some(":p:n"), "id").unwrap();
        assert_eq!(root.cgroup_path().unwrap(), "/p-n.scope");
        assert!(SystemdPath::parse(Some("/abs/path"), "id").is_err());
        assert!(SystemdPath::parse(Some("notaslice:p:n"), "id").is_err());
        assert!(SystemdPath::parse(Some("a--b.slice:p:n"), "id")
            .unwrap()
            .cgroup_path()
            .is_err());
    }
}
