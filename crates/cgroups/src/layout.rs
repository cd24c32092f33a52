//! Which cgroup hierarchies this host has, found at run time from the mount
//! table (statmount(2), or `/proc/self/mountinfo`, proc(5) "mountinfo") and
//! `/proc/cgroups`.

use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::mounts::CgroupMount;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The three kinds of host this crate drives with one interface.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    /// Only v1 hierarchies.
    V1,
    /// cgroup2 mounted at `/sys/fs/cgroup` and nothing else.
    V2,
    /// v1 controllers plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`),
    /// which may itself hold controllers that are not bound to v1.
    Hybrid,
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct V1Mount {
    /// Controllers bound to it (`cpu`, `memory`...), or a named hierarchy
    /// such as `name=systemd`.
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The cgroup of this hierarchy that is mounted (mountinfo field 4).
    pub root: String,
}

/// The mounted cgroup2 hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct V2Mount {
    pub mountpoint: PathBuf,
    pub root: String,
}

/// The host's cgroup mounts plus the calling process' own cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub v1: Vec<V1Mount>,
    pub unified: Option<V2Mount>,
    /// The calling process' cgroup per hierarchy, keyed by the sorted,
    /// comma-joined controller list (`""` for cgroup2), from /proc/self/cgroup.
    pub own: BTreeMap<String, String>,
    /// Whether the manager may write `+controller` into the
    /// `cgroup.subtree_control` of ancestors it did not create (what runc
    /// does on v2). On by default; tests that point the manager at a
    /// hierarchy shared with the host turn it off so that only their own
    /// cgroups are ever written.
    pub delegate_controllers: bool,
}

/// The v1 subsystem names /proc/cgroups lists; on a kernel without v1 support it
/// may be absent, which only means no v1 names to match.
fn known_v1_subsystems() -> Vec<String> {
    fsutil::read_string_at(Path::new("/proc/cgroups"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Where hosts mount their cgroup hierarchies.
const SYS_FS_CGROUP: &str = "/sys/fs/cgroup";

impl Layout {
    /// Read the real host layout.
    pub fn detect() -> Result<Layout> {
        let known = known_v1_subsystems();
        let own = parse_proc_cgroup(&fsutil::read_string_at(Path::new("/proc/self/cgroup"))?);
        // The cgroup mounts alone through statmount(2) where the kernel has it
        // (mounts.rs says why): first those under /sys/fs/cgroup, kept where they
        // hold every hierarchy this process is in; else every mount's; else every
        // mount formatted in mountinfo.
        let below = crate::mounts::cgroup_mounts_below(Path::new(SYS_FS_CGROUP))
            .map(|m| Layout::from_mounts(&m, &known))
            .filter(|l| l.holds_all(&own));
        let mut layout = match below {
            Some(l) => l,
            None => match crate::mounts::cgroup_mounts() {
                Some(m) => Layout::from_mounts(&m, &known),
                None => Layout::parse(
                    &fsutil::read_string_at(Path::new("/proc/self/mountinfo"))?,
                    &known,
                )?,
            },
        };
        layout.own = own;
        if layout.v1.is_empty() && layout.unified.is_none() {
            return Err(CgroupError::Detect(
                "no cgroup or cgroup2 filesystem is mounted (see /proc/self/mountinfo)".into(),
            ));
        }
        Ok(layout)
    }

    /// Whether a layout read from the mounts under /sys/fs/cgroup alone is the one
    /// every mount gives: it has each hierarchy of /proc/self/cgroup (`own`; the
    /// kernel lists every mounted v1 hierarchy there, and `0::` where it has
    /// cgroup2), and its cgroup2 mount is one `from_mounts` ranks above any other.
    /// A v1 hierarchy found there is the one `from_mounts` keeps of all its mounts
    /// (it prefers those under /sys/fs/cgroup, the first in mount order).
    fn holds_all(&self, own: &BTreeMap<String, String>) -> bool {
        let unified_ranked = self.unified.as_ref().is_none_or(|m| {
            m.mountpoint == Path::new(SYS_FS_CGROUP)
                || m.mountpoint == Path::new("/sys/fs/cgroup/unified")
        });
        unified_ranked
            && own.keys().all(|k| {
                if k.is_empty() {
                    self.unified.is_some()
                } else {
                    self.v1.iter().any(|m| m.controllers.join(",") == *k)
                }
            })
    }

    /// Parse mountinfo text; `known` are the v1 subsystem names of /proc/cgroups.
    pub fn parse(mountinfo: &str, known: &[String]) -> Result<Layout> {
        let mut mounts = Vec::new();
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            if fields.len() < 5 || fields.len() < sep + 4 {
                continue;
            }
            let fstype = fields[sep + 1];
            if fstype != "cgroup" && fstype != "cgroup2" {
                continue;
            }
            mounts.push(CgroupMount {
                fstype: fstype.to_string(),
                root: unescape(fields[3]),
                mountpoint: unescape(fields[4]),
                opts: fields[sep + 3].to_string(),
            });
        }
        Ok(Layout::from_mounts(&mounts, known))
    }

    /// The layout of these cgroup mounts (in mountinfo's order).
    fn from_mounts(mounts: &[CgroupMount], known: &[String]) -> Layout {
        let mut v1: Vec<V1Mount> = Vec::new();
        let mut v2: Vec<V2Mount> = Vec::new();
        for m in mounts {
            let root = m.root.clone();
            let mountpoint = PathBuf::from(&m.mountpoint);
            let superopts = m.opts.as_str();
            match m.fstype.as_str() {
                "cgroup" => {
                    let mut controllers: Vec<String> = superopts
                        .split(',')
                        .filter(|o| o.starts_with("name=") || known.iter().any(|k| k == o))
                        .map(str::to_string)
                        .collect();
                    controllers.sort();
                    if controllers.is_empty() {
                        continue;
                    }
                    // The same hierarchy may be mounted several times; keep
                    // the one under /sys/fs/cgroup, else the first seen.
                    if let Some(existing) = v1.iter_mut().find(|m| m.controllers == controllers) {
                        if !existing.mountpoint.starts_with("/sys/fs/cgroup")
                            && mountpoint.starts_with("/sys/fs/cgroup")
                        {
                            existing.mountpoint = mountpoint;
                            existing.root = root;
                        }
                        continue;
                    }
                    v1.push(V1Mount {
                        controllers,
                        mountpoint,
                        root,
                    });
                }
                "cgroup2" => v2.push(V2Mount { mountpoint, root }),
                _ => {}
            }
        }
        let rank = |m: &V2Mount| {
            if m.mountpoint == Path::new("/sys/fs/cgroup") {
                0
            } else if m.mountpoint == Path::new("/sys/fs/cgroup/unified") {
                1
            } else {
                2
            }
        };
        v2.sort_by_key(rank);
        Layout {
            v1,
            unified: v2.into_iter().next(),
            own: BTreeMap::new(),
            delegate_controllers: true,
        }
    }

    /// A layout with only a cgroup2 hierarchy at `mountpoint`, driven as a
    /// pure v2 host. With `delegate_controllers` false the manager never
    /// writes to a cgroup it did not create (used by tests that run the v2
    /// code path against `/sys/fs/cgroup/unified` on a hybrid host).
    pub fn v2_at(mountpoint: impl Into<PathBuf>, delegate_controllers: bool) -> Result<Layout> {
        let own_text = fsutil::read_string_at(Path::new("/proc/self/cgroup"))?;
        let own = parse_proc_cgroup(&own_text);
        Ok(Layout {
            v1: Vec::new(),
            unified: Some(V2Mount {
                mountpoint: mountpoint.into(),
                root: "/".into(),
            }),
            own,
            delegate_controllers,
        })
    }

    pub fn mode(&self) -> Result<HostMode> {
        match (&self.unified, self.v1.is_empty()) {
            (Some(_), true) => Ok(HostMode::V2),
            (Some(_), false) => Ok(HostMode::Hybrid),
            (None, false) => Ok(HostMode::V1),
            (None, true) => Err(CgroupError::Detect("no cgroup hierarchy found".into())),
        }
    }
}

/// Is /sys/fs/cgroup itself a cgroup2 mount (a pure v2 host)? Used by tests
/// and by callers that want to know whether CLONE_INTO_CGROUP is usable.
pub fn is_pure_v2_host() -> bool {
    Layout::detect()
        .ok()
        .and_then(|l| l.mode().ok())
        .is_some_and(|m| m == HostMode::V2)
}

/// `hierarchy-ID:controller-list:cgroup-path` lines (cgroups(7)).
pub(crate) fn parse_proc_cgroup(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let mut c: Vec<&str> = ctrls.split(',').filter(|s| !s.is_empty()).collect();
        c.sort();
        out.insert(c.join(","), path.to_string());
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 31 0:32 /sub /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
";

    fn known() -> Vec<String> {
        ["cpu", "cpuacct", "memory", "pids"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn parses_hybrid() {
        let l = Layout::parse(HYBRID, &known()).unwrap();
        assert_eq!(l.mode().unwrap(), HostMode::Hybrid);
        let names: Vec<_> = l.v1.iter().map(|m| m.controllers.join(",")).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "name=systemd"]);
        // The duplicate memory mount elsewhere does not replace /sys/fs/cgroup/memory.
        assert_eq!(l.v1[2].mountpoint, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(
            l.unified.unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn parses_pure_v2_and_v1() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            Layout::parse(v2, &known()).unwrap().mode().unwrap(),
            HostMode::V2
        );
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n";
        let l = Layout::parse(v1, &known()).unwrap();
        assert_eq!(l.mode().unwrap(), HostMode::V1);
        assert_eq!(l.v1[0].controllers, ["cpu", "cpuacct"]);
        assert!(Layout::parse("", &known()).unwrap().mode().is_err());
    }

    /// The kernel's release as (major, minor), from uname(2).
    fn kernel() -> (u32, u32) {
        // SAFETY: uname fills the struct it is given.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::uname(&mut u) }, 0);
        // SAFETY: release is NUL-terminated by the kernel.
        let rel = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy();
        let mut it = rel.split(['.', '-']).map(|p| p.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    /// The statmount(2) reading gives the layout the mountinfo parse gives, on
    /// this host's real mounts; from Linux 6.11 (statmount's mount options) it
    /// must be the one `detect` uses.
    #[test]
    fn statmount_agrees_with_mountinfo() {
        let known = super::known_v1_subsystems();
        let mounts = crate::mounts::cgroup_mounts();
        let mountinfo = fsutil::read_string_at(Path::new("/proc/self/mountinfo")).unwrap();
        let by_mountinfo = Layout::parse(&mountinfo, &known).unwrap();
        match mounts {
            Some(m) => {
                assert_eq!(Layout::from_mounts(&m, &known), by_mountinfo);
                assert!(!m.is_empty());
            }
            None => assert!(kernel() < (6, 11), "statmount unusable on {:?}", kernel()),
        }
        let mut detected = Layout::detect().unwrap();
        detected.own = BTreeMap::new();
        assert_eq!(detected, by_mountinfo);
        // The mounts under /sys/fs/cgroup alone hold this host's whole layout (a
        // standard host: hybrid here, pure v2 in the v2 lane's guest), and give
        // the same one.
        if kernel() >= (6, 11) {
            let below = crate::mounts::cgroup_mounts_below(Path::new(SYS_FS_CGROUP)).unwrap();
            let l = Layout::from_mounts(&below, &known);
            let own =
                parse_proc_cgroup(&fsutil::read_string_at(Path::new("/proc/self/cgroup")).unwrap());
            assert!(l.holds_all(&own), "{l:?} for {own:?}");
            assert_eq!(l, by_mountinfo);
        }
    }

    /// A layout that lacks a hierarchy the process is in, or whose cgroup2 mount
    /// another may outrank, is not taken from the mounts under /sys/fs/cgroup.
    #[test]
    fn a_partial_layout_is_not_taken() {
        let mount = |fstype: &str, mountpoint: &str, opts: &str| CgroupMount {
            fstype: fstype.into(),
            root: "/".into(),
            mountpoint: mountpoint.into(),
            opts: opts.into(),
        };
        let known = vec!["memory".to_string(), "pids".to_string()];
        let own = parse_proc_cgroup("2:memory:/\n1:pids:/\n0::/\n");
        let all = [
            mount("cgroup", "/sys/fs/cgroup/memory", "rw,memory"),
            mount("cgroup", "/sys/fs/cgroup/pids", "rw,pids"),
            mount("cgroup2", "/sys/fs/cgroup/unified", "rw"),
        ];
        assert!(Layout::from_mounts(&all, &known).holds_all(&own));
        assert!(!Layout::from_mounts(&all[..2], &known).holds_all(&own));
        assert!(!Layout::from_mounts(&all[1..], &known).holds_all(&own));
        let elsewhere = [
            all[0].clone(),
            all[1].clone(),
            mount("cgroup2", "/sys/fs/cgroup/other", "rw"),
        ];
        assert!(!Layout::from_mounts(&elsewhere, &known).holds_all(&own));
    }

    #[test]
    fn unescapes_mountpoints() {
        assert_eq!(unescape("/mnt/mem\\040x"), "/mnt/mem x");
        assert_eq!(unescape("/a\\\\b"), "/a\\\\b");
    }

    #[test]
    fn proc_cgroup() {
        let m = parse_proc_cgroup("4:memory:/process_api/x\n1:cpuacct,cpu:/\n0::/a:b\n");
        assert_eq!(m["memory"], "/process_api/x");
        assert_eq!(m["cpu,cpuacct"], "/");
        assert_eq!(m[""], "/a:b");
    }
}
