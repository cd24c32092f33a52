//! The one place the core talks to oxcart_cgroups: keeps the lifecycle code
//! independent of that crate's exact API and error type.

use crate::error::{Error, Result};
use oxcart_cgroups::{HostMode, JoinFiles, Manager, ManagerState, V2Dir};
use oxcart_spec::LinuxResources;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The cgroups crate's error as ours (the one conversion, for every caller).
pub(crate) fn cg_err(err: oxcart_cgroups::CgroupError) -> Error {
    Error::Cgroup(err.to_string())
}

/// A hierarchy as the container should see it under /sys/fs/cgroup.
#[derive(Debug, Clone)]
pub struct MountDir {
    /// Directory name under the cgroup mount (`cpu`, `systemd`, `unified`).
    pub name: String,
    /// Mount data for a fresh mount in a cgroup namespace (`cpu`, `none,name=systemd`).
    pub data: String,
    pub v2: bool,
    /// The container's own cgroup directory on the host.
    pub host: PathBuf,
}

#[derive(Clone)]
pub struct Cg {
    m: Arc<Manager>,
    /// `linux.cgroupsPath` was given (runc's `c.Path != ""`): a rootless
    /// container then needs every hierarchy (see [`Cg::create_or_skip`]).
    explicit_path: bool,
}

impl Cg {
    fn wrap(m: Manager, explicit_path: bool) -> Cg {
        Cg {
            m: Arc::new(m),
            explicit_path,
        }
    }
    pub fn new(path: Option<&str>, id: &str, systemd: bool) -> Result<Cg> {
        let explicit = path.is_some_and(|p| !p.is_empty());
        Manager::new(path, id, systemd)
            .map(|m| Cg::wrap(m, explicit))
            .map_err(cg_err)
    }
    pub fn from_state(v: &serde_json::Value) -> Result<Cg> {
        let st: ManagerState = serde_json::from_value(v.clone())
            .map_err(|err| Error::Other(format!("corrupt cgroup state: {err}")))?;
        Manager::from_state(st)
            .map(|m| Cg::wrap(m, false))
            .map_err(cg_err)
    }
    pub fn to_state(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self.m.to_state())
            .map_err(|err| Error::Other(format!("serialize cgroup state: {err}")))
    }
    pub fn create(&self) -> Result<()> {
        self.m.create().map_err(cg_err)
    }
    /// The cgroup2 directory only (before the clone; see `Msg::Joined`).
    pub fn create_unified(&self) -> Result<()> {
        self.m.create_unified().map_err(cg_err)
    }
    /// The v1 hierarchies only (after the clone).
    pub fn create_v1(&self) -> Result<()> {
        self.m.create_v1().map_err(cg_err)
    }
    pub fn join_files_unified(&self) -> Result<JoinFiles> {
        self.m.join_files_unified().map_err(cg_err)
    }
    pub fn join_files_v1(&self) -> Result<JoinFiles> {
        self.m.join_files_v1().map_err(cg_err)
    }
    /// Create the cgroups. As root: all of them or an error. Rootless, as runc's
    /// fs manager (`manager.Apply` with `isIgnorableError`, runc 1.1+, where a
    /// hybrid host's cgroup2 hierarchy is one more "subsystem", the `""`
    /// NameGroup), hierarchy by hierarchy:
    ///
    /// - each hierarchy is created and must be joinable by the caller: a cgroup
    ///   the admin delegated (chowned) to the user works like root's;
    /// - a permission error (EPERM/EACCES/EROFS) is ignored and the hierarchy
    ///   dropped only when `linux.cgroupsPath` is not set (runc: `c.Path == ""`);
    ///   with an explicit path every hierarchy must be delegated, else an error
    ///   naming the limit aimed at it or `linux.cgroupsPath`;
    /// - a limit for a controller whose hierarchy was dropped is an error naming
    ///   the field (runc's `Set`: "cannot set <x> limit: container could not join
    ///   or create cgroup").
    ///
    /// On error everything this call made is removed again.
    pub fn create_or_skip(&self, rootless: bool, res: Option<&LinuxResources>) -> Result<Cg> {
        if !rootless {
            self.m.create().map_err(cg_err)?;
            return Ok(self.clone());
        }
        let st = self.m.to_state();
        let limits = crate::rootless::limits(res);
        // A state over just these hierarchies, nothing made yet.
        let over = |v1: Vec<oxcart_cgroups::V1Dir>, unified: Option<V2Dir>| ManagerState {
            v1,
            unified,
            created: Vec::new(),
            ..st.clone()
        };
        // Each hierarchy on its own, through a manager over just that one.
        let mut parts: Vec<(Vec<String>, ManagerState)> = st
            .v1
            .iter()
            .map(|d| (d.controllers.clone(), over(vec![d.clone()], None)))
            .collect();
        let unified_ctrls = st.unified.as_ref().map(unified_controllers);
        if let (Some(u), Some(ctrls)) = (&st.unified, &unified_ctrls) {
            parts.push((ctrls.clone(), over(Vec::new(), Some(u.clone()))));
        }
        let mut kept = over(Vec::new(), None);
        let mut dropped: Vec<(Vec<String>, PathBuf, String)> = Vec::new();
        for (ctrls, part) in parts {
            let dir = part
                .v1
                .first()
                .map(|d| d.path.clone())
                .or_else(|| part.unified.as_ref().map(|u| u.path.clone()))
                .unwrap_or_default();
            let sub = match Manager::from_state(part) {
                Ok(m) => m,
                Err(err) => {
                    remove_made(&kept.created);
                    return Err(cg_err(err));
                }
            };
            let res = match sub.create() {
                Ok(()) => match may_join(&sub) {
                    Ok(()) => Ok(()),
                    Err(fail) => {
                        // Only what this call made: a cgroup that already
                        // existed is not ours to remove.
                        remove_made(&sub.to_state().created);
                        Err(fail)
                    }
                },
                Err(err) => Err((
                    err.to_string(),
                    crate::rootless::ignorable_cgroup_error(&err),
                )),
            };
            match res {
                Ok(()) => {
                    let s = sub.to_state();
                    kept.v1.extend(s.v1);
                    if s.unified.is_some() {
                        kept.unified = s.unified;
                    }
                    kept.created.extend(s.created);
                }
                Err((msg, true)) if !self.explicit_path => dropped.push((ctrls, dir, msg)),
                Err((msg, ignorable)) => {
                    remove_made(&kept.created);
                    if !ignorable {
                        return Err(Error::Cgroup(msg));
                    }
                    let field = limits
                        .iter()
                        .find(|(_, need)| need.iter().any(|c| ctrls.contains(c)))
                        .map(|(f, _)| f.clone())
                        .unwrap_or_else(|| "linux.cgroupsPath".into());
                    return Err(Error::config(
                        field,
                        format!(
                            "rootless container: the cgroup {} ({} hierarchy) is not delegated to the caller; \
                             with linux.cgroupsPath set every hierarchy must be (as in runc): {msg}",
                            dir.display(),
                            hierarchy_name(&ctrls)
                        ),
                    ));
                }
            }
        }
        if kept.v1.is_empty() && kept.unified.is_none() {
            if let Some(field) = crate::rootless::first_limit(res) {
                let why = dropped.first().map(|d| d.2.as_str()).unwrap_or("");
                return Err(Error::config(
                    field,
                    format!("cannot set limit in a rootless container: container could not create its cgroup ({why})"),
                ));
            }
        }
        let have = |c: &String| {
            kept.v1.iter().any(|d| d.controllers.contains(c))
                || (kept.unified.is_some() && unified_ctrls.as_ref().is_some_and(|u| u.contains(c)))
        };
        for (field, need) in &limits {
            let Some((ctrls, dir, msg)) = dropped
                .iter()
                .find(|(ctrls, _, _)| need.iter().any(|c| ctrls.contains(c) && !have(c)))
            else {
                continue;
            };
            remove_made(&kept.created);
            return Err(Error::config(
                field.clone(),
                format!(
                    "cannot set {} limit in a rootless container: container could not join or create cgroup {} ({msg})",
                    hierarchy_name(ctrls),
                    dir.display()
                ),
            ));
        }
        Manager::from_state(kept)
            .map(|m| Cg::wrap(m, self.explicit_path))
            .map_err(cg_err)
    }
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.m.apply(r).map_err(cg_err)
    }
    /// The files through which a child joins these cgroups itself (see
    /// [`clone_joining`]).
    pub fn join_files(&self) -> Result<JoinFiles> {
        self.m.join_files().map_err(cg_err)
    }
    pub fn frozen(&self) -> bool {
        matches!(
            self.m.freezer_state(),
            Ok(oxcart_cgroups::FreezerState::Frozen) | Ok(oxcart_cgroups::FreezerState::Freezing)
        )
    }
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        self.m.kill_all(sig).map_err(cg_err)
    }
    pub fn destroy(&self) -> Result<()> {
        self.m.destroy().map_err(cg_err)
    }
    /// No cgroup directories at all (a rootless container whose cgroups were
    /// skipped, see [`Cg::create_or_skip`]).
    pub fn is_empty(&self) -> bool {
        self.m.v1_dirs().is_empty() && self.m.unified_path().is_none()
    }
    pub fn pure_v2(&self) -> bool {
        self.m.mode() == HostMode::V2
    }
    pub fn manager(&self) -> &Manager {
        &self.m
    }

    /// The hierarchies as they should appear inside the container.
    pub fn mount_dirs(&self) -> Vec<MountDir> {
        let mut out = Vec::new();
        for d in self.m.v1_dirs() {
            let name = d
                .mountpoint
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| d.controllers.join(","));
            let data = d
                .controllers
                .iter()
                .map(|c| {
                    if c.starts_with("name=") {
                        format!("none,{c}")
                    } else {
                        c.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            out.push(MountDir {
                name,
                data,
                v2: false,
                host: d.path.clone(),
            });
        }
        if let Some(u) = self.m.unified_path() {
            out.push(MountDir {
                name: if self.pure_v2() {
                    String::new()
                } else {
                    "unified".into()
                },
                data: String::new(),
                v2: true,
                host: u.to_path_buf(),
            });
        }
        out
    }
}

/// What a cgroup2 directory stands for when a rootless container drops it: the
/// `linux.resources.unified` field (`""`) and every controller the hierarchy
/// offers (on a hybrid host only those not bound to v1, e.g. `hugetlb`).
fn unified_controllers(u: &V2Dir) -> Vec<String> {
    let avail =
        std::fs::read_to_string(u.mountpoint.join("cgroup.controllers")).unwrap_or_default();
    std::iter::once(String::new())
        .chain(avail.split_whitespace().map(str::to_string))
        .collect()
}

fn hierarchy_name(ctrls: &[String]) -> String {
    let named: Vec<&str> = ctrls
        .iter()
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .collect();
    if ctrls.first().is_some_and(|c| c.is_empty()) {
        "cgroup2".into()
    } else {
        named.join(",")
    }
}

/// rmdir what a failed rootless create made, deepest first (empty cgroups only:
/// nothing has joined them yet).
fn remove_made(made: &[PathBuf]) {
    let mut v = made.to_vec();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for d in v {
        let _ = std::fs::remove_dir(&d);
    }
}

/// faccessat(2) with the effective ids (AT_EACCESS), as the kernel checks the
/// writer of a cgroup file.
/// The error says whether it is a permission problem ([`crate::rootless::ignorable_cgroup_error`]'s rule).
fn writable(p: &Path) -> std::result::Result<(), (String, bool)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| (format!("{}: contains a NUL byte", p.display()), false))?;
    // SAFETY: c is NUL-terminated; faccessat only reads it.
    if unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) } != 0 {
        let err = std::io::Error::last_os_error();
        let perm = matches!(
            err.raw_os_error(),
            Some(libc::EPERM | libc::EACCES | libc::EROFS)
        );
        return Err((format!("{}: {err}", p.display()), perm));
    }
    Ok(())
}

/// The caller's own cgroup2 directory under `mountpoint` (the `0::` line of
/// /proc/self/cgroup, cgroups(7)); `None` when it is not below the mount (outside
/// our cgroup namespace) or unreadable.
fn own_unified(mountpoint: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mut dir = mountpoint.to_path_buf();
    for c in own.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            return None;
        }
        dir.push(c);
    }
    Some(dir)
}

/// Can a rootless caller put its children into the cgroups of `m`? Checked before
/// anything is cloned so that a hierarchy the user may not join is handled by the
/// rules of [`Cg::create_or_skip`] like one it may not create (runc: the pid write
/// in `Apply` fails the same way):
///
/// - v1: the child writes `0` to `tasks` through an fd we open, so we need write
///   access to it; the kernel's other check (the writer's euid is the task's uid,
///   `__cgroup1_procs_write`) holds for our own child.
/// - cgroup2: write access to the destination's `cgroup.procs` and to that of the
///   common ancestor of our cgroup and the destination (Documentation/admin-guide/
///   cgroup-v2.rst "Delegation Containment"; kernel `cgroup_procs_write_permission`,
///   which `CLONE_INTO_CGROUP` applies too, `cgroup_css_set_fork`). So a delegatee
///   can only start containers in its subtree from inside it, as a systemd
///   `Delegate=yes` user session is.
fn may_join(m: &Manager) -> std::result::Result<(), (String, bool)> {
    for d in m.v1_dirs() {
        writable(&d.path.join("tasks"))?;
    }
    if let Some(u) = m.unified_path() {
        writable(&u.join("cgroup.procs"))?;
        let mp = m
            .to_state()
            .unified
            .map(|u| u.mountpoint)
            .unwrap_or_default();
        if let Some(src) = own_unified(&mp) {
            let common: PathBuf = src
                .components()
                .zip(u.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect();
            if common.starts_with(&mp) {
                writable(&common.join("cgroup.procs")).map_err(|(err, perm)| {
                    let msg = format!(
                        "{err} (moving a process from {} into {} needs write access to the cgroup.procs of their common ancestor)",
                        src.display(),
                        u.display()
                    );
                    (msg, perm)
                })?;
            }
        }
    }
    Ok(())
}

/// clone3(2) with `flags`, the child starting in the cgroup2 directory of `join`
/// (`CLONE_INTO_CGROUP`, which avoids the RCU grace period a later move waits
/// for: oxcart_cgroups::join). Returns the pid (0 in the child) and whether the
/// parent must still move the child into cgroup2 itself: a kernel before 5.7
/// rejects the flag (EINVAL, or E2BIG for the larger clone_args), and an
/// unprivileged caller may lack the write access to the common ancestor that
/// the kernel checks for it (EACCES/EPERM) where a later move might still work
/// (a rootless create checked that access already, `may_join`, so there the
/// fallback only reports the same refusal).
/// The child then writes `0` to the v1 `tasks` files ([`JoinFiles::join_self_v1`]).
///
/// # Safety
/// As [`crate::sys::clone3`]: the caller must be single-threaded.
pub unsafe fn clone_joining(flags: u64, join: &JoinFiles) -> Result<(libc::pid_t, bool)> {
    use std::os::fd::AsRawFd;
    if let Some(fd) = join.clone_into() {
        // SAFETY: the caller's contract.
        match unsafe { crate::sys::clone3(flags, Some(fd.as_raw_fd())) } {
            Ok(pid) => return Ok((pid, false)),
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EINVAL | libc::E2BIG | libc::ENOSYS | libc::EACCES | libc::EPERM)
                ) => {}
            Err(source) => {
                return Err(Error::Sys {
                    what: "clone3 into the container's cgroup".into(),
                    source,
                })
            }
        }
    }
    // SAFETY: the caller's contract.
    let pid = unsafe { crate::sys::clone3(flags, None) }.map_err(|source| Error::Sys {
        what: "clone3".into(),
        source,
    })?;
    Ok((pid, join.clone_into().is_some()))
}
