//! The manager: one interface over v1, v2 and hybrid hosts.

use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::layout::{HostMode, Layout};
use crate::path::{self, CgroupPath, SystemdPath};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::Duration;

/// The cgroup of one container in one v1 hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct V1Dir {
    /// Controllers of the hierarchy (`["cpu"]`, `["cpu","cpuacct"]`, `["name=systemd"]`).
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The container's cgroup directory in this hierarchy.
    pub path: PathBuf,
}

/// The cgroup of one container in the cgroup2 hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct V2Dir {
    pub mountpoint: PathBuf,
    pub path: PathBuf,
}

/// Everything a later process needs to rebuild a [`Manager`]: the resolved
/// directories, not the cgroupsPath, so a changed host layout or a changed
/// `/proc/self/cgroup` of the later process cannot redirect it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManagerState {
    pub mode: HostMode,
    #[serde(default)]
    pub v1: Vec<V1Dir>,
    #[serde(default)]
    pub unified: Option<V2Dir>,
    #[serde(default = "default_true")]
    pub delegate_controllers: bool,
    /// Directories `create` made (leaves and the ancestors it had to make),
    /// so `destroy` can remove the ancestors too when they are empty.
    #[serde(default)]
    pub created: Vec<PathBuf>,
}

fn default_true() -> bool {
    true
}

/// A container's cgroups in every hierarchy of the host.
#[derive(Debug)]
pub struct Manager {
    pub(crate) mode: HostMode,
    pub(crate) v1: Vec<V1Dir>,
    pub(crate) unified: Option<V2Dir>,
    pub(crate) delegate: bool,
    pub(crate) created: Mutex<Vec<PathBuf>>,
}

const RMDIR_RETRIES: u32 = 8;
// include/uapi/linux/magic.h
const CGROUP_SUPER_MAGIC: i64 = 0x27e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x63677270;

/// Is `mp` a mounted filesystem of the given type? A state file naming some
/// other directory as a "hierarchy" must not make destroy rmdir it.
fn fs_is(mp: &Path, magic: i64, what: &str) -> Result<()> {
    let c = CString::new(mp.as_os_str().as_bytes())
        .map_err(|_| CgroupError::State(format!("{} contains a NUL byte", mp.display())))?;
    // SAFETY: statfs fills the zeroed struct; c is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(CgroupError::Read {
            path: mp.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    if st.f_type as i64 != magic {
        return Err(CgroupError::State(format!(
            "{} is not a {what} filesystem",
            mp.display()
        )));
    }
    Ok(())
}

impl Manager {
    /// Resolve the container's cgroup in every hierarchy of this host; no
    /// filesystem changes. `cgroups_path` is `linux.cgroupsPath`; `id` the
    /// container id (the default relative path); `systemd` is runc's
    /// `--systemd-cgroup`.
    pub fn new(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Manager> {
        if systemd {
            return Self::new_systemd(cgroups_path, id);
        }
        let layout = Layout::detect()?;
        Self::with_layout(&layout, cgroups_path, id)
    }

    /// Like [`Manager::new`] over an explicit layout (a test pointing the
    /// v2 code path at `/sys/fs/cgroup/unified`, or a caller that detected
    /// the layout once).
    pub fn with_layout(layout: &Layout, cgroups_path: Option<&str>, id: &str) -> Result<Manager> {
        let p = path::parse_fs_path(cgroups_path, id)?;
        Self::resolve(layout, &p)
    }

    fn resolve(layout: &Layout, p: &CgroupPath) -> Result<Manager> {
        let mode = layout.mode()?;
        let own = |key: &str| layout.own.get(key).map(String::as_str).unwrap_or("/");
        if matches!(p, CgroupPath::Relative(_)) {
            for m in &layout.v1 {
                if !layout.own.contains_key(&m.controllers.join(",")) {
                    return Err(CgroupError::Detect(format!(
                        "hierarchy {} at {} is not listed in /proc/self/cgroup",
                        m.controllers.join(","),
                        m.mountpoint.display()
                    )));
                }
            }
        }
        let v1 = layout
            .v1
            .iter()
            .map(|m| V1Dir {
                controllers: m.controllers.clone(),
                mountpoint: m.mountpoint.clone(),
                path: path::dir_in(&m.mountpoint, &m.root, own(&m.controllers.join(",")), p),
            })
            .collect();
        let unified = layout.unified.as_ref().map(|m| V2Dir {
            mountpoint: m.mountpoint.clone(),
            path: path::dir_in(&m.mountpoint, &m.root, own(""), p),
        });
        Ok(Manager {
            mode,
            v1,
            unified,
            delegate: layout.delegate_controllers,
            created: Mutex::new(Vec::new()),
        })
    }

    fn new_systemd(cgroups_path: Option<&str>, id: &str) -> Result<Manager> {
        // Parse first so a malformed path is reported as such.
        let sp = SystemdPath::parse(cgroups_path, id)?;
        if !path::systemd_running() {
            return Err(CgroupError::Systemd(format!(
                "--systemd-cgroup was given (unit {}) but systemd is not running on this host \
                 (/run/systemd/system does not exist); use the cgroupfs driver (omit --systemd-cgroup)",
                sp.unit_name()
            )));
        }
        // Registering a transient scope needs systemd's D-Bus API; writing
        // the unit's cgroup behind systemd's back would let systemd prune or
        // re-parent it later, a silently weaker container. Fail closed.
        Err(CgroupError::Systemd(format!(
            "unit {} ({}): the systemd D-Bus driver is not implemented in this build; \
             use the cgroupfs driver (omit --systemd-cgroup)",
            sp.unit_name(),
            sp.cgroup_path()?
        )))
    }

    /// Persistable state (store it in the container's state.json).
    pub fn to_state(&self) -> ManagerState {
        ManagerState {
            mode: self.mode,
            v1: self.v1.clone(),
            unified: self.unified.clone(),
            delegate_controllers: self.delegate,
            created: self.created_list(),
        }
    }

    /// Rebuild a manager from [`Manager::to_state`]. Every directory must lie
    /// strictly below its hierarchy's mount point: a tampered state file
    /// must not make `destroy` or `apply` touch a hierarchy root.
    pub fn from_state(state: ManagerState) -> Result<Manager> {
        let below = |dir: &Path, mp: &Path| -> Result<()> {
            let rel = dir.strip_prefix(mp).map_err(|_| {
                CgroupError::State(format!("{} is not below {}", dir.display(), mp.display()))
            })?;
            let ok = rel.components().count() > 0
                && rel
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !ok {
                return Err(CgroupError::State(format!(
                    "{} is not a cgroup strictly below {}",
                    dir.display(),
                    mp.display()
                )));
            }
            Ok(())
        };
        for d in &state.v1 {
            below(&d.path, &d.mountpoint)?;
            fs_is(&d.mountpoint, CGROUP_SUPER_MAGIC, "cgroup")?;
        }
        if let Some(u) = &state.unified {
            below(&u.path, &u.mountpoint)?;
            fs_is(&u.mountpoint, CGROUP2_SUPER_MAGIC, "cgroup2")?;
        }
        let mounts: Vec<&Path> = state
            .v1
            .iter()
            .map(|d| d.mountpoint.as_path())
            .chain(state.unified.iter().map(|u| u.mountpoint.as_path()))
            .collect();
        for c in &state.created {
            if !mounts.iter().any(|mp| below(c, mp).is_ok()) {
                return Err(CgroupError::State(format!(
                    "created directory {} is not below any hierarchy",
                    c.display()
                )));
            }
        }
        Ok(Manager {
            mode: state.mode,
            v1: state.v1,
            unified: state.unified,
            delegate: state.delegate_controllers,
            created: Mutex::new(state.created),
        })
    }

    pub fn mode(&self) -> HostMode {
        self.mode
    }

    /// The container's directories in the v1 hierarchies.
    pub fn v1_dirs(&self) -> &[V1Dir] {
        &self.v1
    }

    /// The container's directory in the cgroup2 hierarchy, if the host has one.
    pub fn unified_path(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.path.as_path())
    }

    /// The directory of `controller` in its v1 hierarchy, if mounted.
    pub fn v1_path(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }

    fn created_list(&self) -> Vec<PathBuf> {
        match self.created.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn all_dirs(&self) -> Vec<(&Path, &Path)> {
        self.v1
            .iter()
            .map(|d| (d.mountpoint.as_path(), d.path.as_path()))
            .chain(
                self.unified
                    .iter()
                    .map(|u| (u.mountpoint.as_path(), u.path.as_path())),
            )
            .collect()
    }

    /// Make the cgroup in every v1 hierarchy and in the unified one. On
    /// failure everything this call made is removed again.
    pub fn create(&self) -> Result<()> {
        self.create_parts(true, true)
    }

    /// [`Manager::create`] for the cgroup2 directory only: what must exist
    /// before the clone (`CLONE_INTO_CGROUP`); [`Manager::create_v1`] makes the
    /// rest while the child starts.
    pub fn create_unified(&self) -> Result<()> {
        self.create_parts(false, true)
    }

    /// [`Manager::create`] for the v1 hierarchies only.
    pub fn create_v1(&self) -> Result<()> {
        self.create_parts(true, false)
    }

    fn create_parts(&self, v1: bool, unified: bool) -> Result<()> {
        let mut made = Vec::new();
        match self.create_inner(&mut made, v1, unified) {
            Ok(()) => {
                match self.created.lock() {
                    Ok(mut g) => g.extend(made),
                    Err(p) => p.into_inner().extend(made),
                }
                Ok(())
            }
            Err(e) => {
                for d in made.iter().rev() {
                    let _ = rmdir_retry(d);
                }
                Err(e)
            }
        }
    }

    fn create_inner(&self, made: &mut Vec<PathBuf>, v1: bool, unified: bool) -> Result<()> {
        for d in self.v1.iter().filter(|_| v1) {
            let cpuset = d.controllers.iter().any(|c| c == "cpuset");
            mkdir_p(
                &d.mountpoint,
                &d.path,
                made,
                // An ancestor another create has just made may not have its
                // cpus/mems yet, and a child of an empty cpuset stays empty
                // (its tasks write then fails with ENOSPC): fill it first, as
                // runc's cpusetEnsureParent does. The root is never empty.
                |parent| {
                    if cpuset && parent != d.mountpoint {
                        cpuset_inherit(parent)
                    } else {
                        Ok(())
                    }
                },
                |dir| {
                    if cpuset {
                        cpuset_inherit(dir)
                    } else {
                        Ok(())
                    }
                },
            )?;
        }
        if let Some(u) = self.unified.as_ref().filter(|_| unified) {
            let enable = self.mode == HostMode::V2 && self.delegate;
            mkdir_p(
                &u.mountpoint,
                &u.path,
                made,
                |parent| {
                    if enable {
                        enable_all_controllers(parent);
                    }
                    Ok(())
                },
                |_| Ok(()),
            )?;
        }
        Ok(())
    }

    /// Move process `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        if pid <= 0 {
            return Err(CgroupError::invalid(
                "pid",
                format!("{pid} is not a process id"),
            ));
        }
        let v = pid.to_string();
        for (_, dir) in self.all_dirs() {
            fsutil::write(dir, "cgroup.procs", &v)?;
        }
        Ok(())
    }

    /// The files through which a new child joins these cgroups itself
    /// ([`crate::join`]: no RCU grace period in the parent's path).
    pub fn join_files(&self) -> Result<crate::join::JoinFiles> {
        crate::join::JoinFiles::open(
            self.v1.iter().map(|d| d.path.as_path()),
            self.unified_path(),
        )
    }

    /// [`Manager::join_files`] of the cgroup2 directory only.
    pub fn join_files_unified(&self) -> Result<crate::join::JoinFiles> {
        crate::join::JoinFiles::open(std::iter::empty(), self.unified_path())
    }

    /// [`Manager::join_files`] of the v1 hierarchies only.
    pub fn join_files_v1(&self) -> Result<crate::join::JoinFiles> {
        crate::join::JoinFiles::open(self.v1.iter().map(|d| d.path.as_path()), None)
    }

    /// An `O_PATH|O_DIRECTORY` fd of the cgroup2 directory, for clone3's
    /// `CLONE_INTO_CGROUP` (clone(2)). `None` when the host has no cgroup2
    /// hierarchy. Only a pure v2 host can rely on it alone: on a hybrid host
    /// the child must still be added to the v1 hierarchies.
    pub fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        match &self.unified {
            Some(u) => open_path_dir(&u.path).map(Some),
            None => Ok(None),
        }
    }

    /// Does the cgroup exist in any hierarchy?
    pub fn exists(&self) -> bool {
        self.all_dirs().iter().any(|(_, d)| d.is_dir())
    }

    /// The directory whose cgroup.procs lists the container's processes.
    fn procs_dir(&self) -> Option<&Path> {
        if self.mode == HostMode::V2 {
            return self.unified_path();
        }
        self.v1_path("pids")
            .or_else(|| self.v1_path("freezer"))
            .or_else(|| {
                self.v1
                    .iter()
                    .find(|d| d.controllers.iter().any(|c| !c.starts_with("name=")))
                    .map(|d| d.path.as_path())
            })
            .or_else(|| self.unified_path())
    }

    /// Every process in the cgroup and its descendants, sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Send `signal` to every process in the cgroup. With SIGKILL and a
    /// kernel that has `cgroup.kill` (5.14+) that one write does it
    /// atomically; otherwise the cgroup is frozen so nothing can fork away,
    /// each pid is signalled, and the cgroup is thawed.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        if signal == libc::SIGKILL {
            if let Some(u) = self.unified_path() {
                // On a hybrid host every process added by add_pid is also in
                // the unified cgroup, so cgroup.kill there reaches them all.
                if fsutil::exists(u, "cgroup.kill") {
                    return fsutil::write(u, "cgroup.kill", "1");
                }
            }
        }
        // Freezing stops the processes from forking new ones between our
        // reading cgroup.procs and signalling. If the cgroup cannot be
        // frozen (no freezer, or a task stuck in FREEZING), signal anyway,
        // a few passes, so a SIGKILL for `delete --force` is never skipped.
        let frozen = self.freezer().is_ok() && self.freeze().is_ok();
        let passes = if frozen { 1 } else { 5 };
        let res = (|| {
            for _ in 0..passes {
                let pids = self.pids()?;
                if pids.is_empty() {
                    break;
                }
                for pid in pids {
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    let r = unsafe { libc::kill(pid, signal) };
                    if r != 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::ESRCH) {
                            return Err(CgroupError::sys(format!("kill({pid}, {signal})"), e));
                        }
                    }
                }
                if signal != libc::SIGKILL {
                    // Other signals may be handled and survived: one pass.
                    break;
                }
            }
            Ok(())
        })();
        let thawed = if frozen { self.thaw() } else { Ok(()) };
        res.and(thawed)
    }

    /// Remove the cgroup from every hierarchy (child cgroups first),
    /// retrying briefly while the kernel still reports it busy, then the
    /// now-empty ancestors that `create` made. A cgroup already gone is fine.
    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for (_, dir) in self.all_dirs() {
            if let Err(e) = remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        let mut created = self.created_list();
        // The container's own directories were handled above.
        let own: Vec<&Path> = self.all_dirs().into_iter().map(|(_, d)| d).collect();
        created.retain(|d| !own.contains(&d.as_path()));
        created.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for d in created {
            // Ancestors may be shared with other containers: ENOTEMPTY/EBUSY
            // means someone else still uses it, which is not our error.
            let _ = fs::remove_dir(&d);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let text = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        // Removed while we walked: nothing left in it.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.join("cgroup.procs"),
                source,
            })
        }
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for sub in subdirs(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for ent in rd.flatten() {
        if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(ent.path());
        }
    }
    Ok(out)
}

/// rmdir(2) a cgroup, retrying on EBUSY: the last task may still be
/// exiting (its css is released asynchronously after exit).
fn rmdir_retry(dir: &Path) -> Result<()> {
    let mut delay = Duration::from_millis(10);
    for attempt in 0..=RMDIR_RETRIES {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < RMDIR_RETRIES => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path) -> Result<()> {
    // Most cgroups have no children and no tasks left: one rmdir. Otherwise
    // (EBUSY: child cgroups, or a task still exiting) the careful way.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for sub in subdirs(dir)? {
        remove_tree(&sub)?;
    }
    rmdir_retry(dir)
}

/// mkdir every missing component of `dir` below `mountpoint`. `before(parent)`
/// runs for every ancestor (existing or not) before its child is made;
/// `after(new)` runs on each directory this call created.
fn mkdir_p(
    mountpoint: &Path,
    dir: &Path,
    made: &mut Vec<PathBuf>,
    mut before: impl FnMut(&Path) -> Result<()>,
    mut after: impl FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let rel = dir
        .strip_prefix(mountpoint)
        .map_err(|_| CgroupError::Path {
            path: dir.display().to_string(),
            msg: format!("not below {}", mountpoint.display()),
        })?;
    // An ancestor shared with another container can vanish between our EEXIST
    // on it and our mkdir below it: that container's delete removes the empty
    // ancestors its create made (`destroy`). ENOENT then means "walk again".
    'walk: for attempt in 0..MKDIR_WALKS {
        let mut cur = mountpoint.to_path_buf();
        for c in rel.components() {
            if let Err(e) = before(&cur) {
                // The ancestor went while we looked at it: as for ENOENT below.
                if !cur.exists() && attempt + 1 < MKDIR_WALKS {
                    continue 'walk;
                }
                return Err(e);
            }
            cur.push(c);
            match fs::DirBuilder::new().mode(0o755).create(&cur) {
                Ok(()) => {
                    made.push(cur.clone());
                    after(&cur)?;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt + 1 < MKDIR_WALKS => {
                    continue 'walk;
                }
                Err(source) => return Err(CgroupError::Mkdir { path: cur, source }),
            }
        }
        break;
    }
    Ok(())
}

/// How often `mkdir_p` walks a path whose ancestors keep being removed.
const MKDIR_WALKS: u32 = 5;

/// A new v1 cpuset cgroup starts with empty cpuset.cpus/mems and cannot take
/// tasks (ENOSPC) until they are set (Documentation/admin-guide/cgroup-v1/
/// cpusets.rst); give it its parent's, as runc does. Called on directories
/// we just created and on their ancestors, where it writes only empty values.
fn cpuset_inherit(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if fsutil::read_string(dir, f)?.trim().is_empty() {
            let v = fsutil::read_string(parent, f)?;
            fsutil::write(dir, f, v.trim())?;
        }
    }
    Ok(())
}

/// Enable in `dir`'s subtree_control every controller it has that is not
/// enabled yet (what runc does on v2). Each controller is written on its own
/// and a refusal is not fatal here: a resource that then needs the missing
/// controller fails in `apply` with an error naming it.
fn enable_all_controllers(dir: &Path) {
    let Ok(avail) = fsutil::read_string(dir, "cgroup.controllers") else {
        return;
    };
    let enabled = fsutil::read_string(dir, "cgroup.subtree_control").unwrap_or_default();
    for c in avail.split_whitespace() {
        if !enabled.split_whitespace().any(|e| e == c) {
            let _ = fsutil::write(dir, "cgroup.subtree_control", &format!("+{c}"));
        }
    }
}

pub(crate) fn open_path_dir(p: &Path) -> Result<OwnedFd> {
    fsutil::open_fd(p, libc::O_PATH | libc::O_DIRECTORY).map_err(|source| CgroupError::Read {
        path: p.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mkdir_p of `<root>/shared/leaf`, `shared` existing, while another
    /// container's delete removes `shared` right after our walk found it
    /// (`fail_read`: while `before` reads it, e.g. cpuset_inherit, which then
    /// fails). Returns the result, whether the leaf was made, and what the
    /// call says it made.
    fn walk_while_shared_ancestor_goes(
        tag: &str,
        fail_read: bool,
    ) -> (Result<()>, bool, Vec<PathBuf>, PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!("oxcart-{tag}-{}", std::process::id()));
        let shared = root.join("shared");
        fs::create_dir_all(&shared).unwrap();
        let leaf = shared.join("leaf");
        let mut made = Vec::new();
        let mut removed = false;
        let res = mkdir_p(
            &root,
            &leaf,
            &mut made,
            |parent| {
                if parent == shared && !removed {
                    removed = true;
                    fs::remove_dir(&shared).unwrap();
                    if fail_read {
                        return Err(CgroupError::Read {
                            path: parent.join("cpuset.cpus"),
                            source: io::Error::from(io::ErrorKind::NotFound),
                        });
                    }
                }
                Ok(())
            },
            |_| Ok(()),
        );
        let ok = leaf.is_dir();
        let _ = fs::remove_dir_all(&root);
        assert!(removed, "the race was not staged");
        (res, ok, made, shared, leaf)
    }

    #[test]
    fn mkdir_p_walks_again_when_a_shared_ancestor_is_removed_midway() {
        let (res, ok, made, shared, leaf) = walk_while_shared_ancestor_goes("mkdirp", false);
        res.unwrap();
        assert!(ok, "{} not made", leaf.display());
        // Both are ours now: a failed create, or our delete, removes them.
        assert_eq!(made, vec![shared, leaf]);
    }

    #[test]
    fn mkdir_p_walks_again_when_a_shared_ancestor_vanishes_while_read() {
        let (res, ok, _, _, leaf) = walk_while_shared_ancestor_goes("mkdirp2", true);
        res.unwrap();
        assert!(ok, "{} not made", leaf.display());
    }
}
