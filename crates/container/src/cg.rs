//! The one place the core talks to oxcart_cgroups: keeps the lifecycle code
//! independent of that crate's exact API and error type.

use crate::error::{Error, Result};
use oxcart_cgroups::{HostMode, JoinFiles, Manager, ManagerState};
use oxcart_spec::LinuxResources;
use std::path::PathBuf;
use std::sync::Arc;

fn e(err: oxcart_cgroups::CgroupError) -> Error {
    Error::Cgroup(err.to_string())
}

pub(crate) fn cg_err(err: oxcart_cgroups::CgroupError) -> Error {
    e(err)
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
pub struct Cg(Arc<Manager>);

impl Cg {
    pub fn new(path: Option<&str>, id: &str, systemd: bool) -> Result<Cg> {
        Manager::new(path, id, systemd)
            .map(|m| Cg(Arc::new(m)))
            .map_err(e)
    }
    pub fn from_state(v: &serde_json::Value) -> Result<Cg> {
        let st: ManagerState = serde_json::from_value(v.clone())
            .map_err(|err| Error::Other(format!("corrupt cgroup state: {err}")))?;
        Manager::from_state(st).map(|m| Cg(Arc::new(m))).map_err(e)
    }
    pub fn to_state(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self.0.to_state())
            .map_err(|err| Error::Other(format!("serialize cgroup state: {err}")))
    }
    pub fn create(&self) -> Result<()> {
        self.0.create().map_err(e)
    }
    /// Create the cgroups; for a rootless container whose cgroups cannot be created
    /// for lack of permission (no delegation), return a manager with no
    /// directories instead — unless the config sets resource limits, which is an
    /// error naming the field (runc's fs manager: rootless cgroup errors are
    /// ignored, "cannot set <x> limit: container could not join or create cgroup").
    pub fn create_or_skip(&self, rootless: bool, res: Option<&LinuxResources>) -> Result<Cg> {
        let err = match self.0.create() {
            Ok(()) => return Ok(self.clone()),
            Err(err) => err,
        };
        if !rootless || !crate::rootless::ignorable_cgroup_error(&err) {
            return Err(e(err));
        }
        if let Some(field) = crate::rootless::first_limit(res) {
            return Err(Error::config(
                field,
                format!("cannot set limit in a rootless container: container could not create its cgroup ({err})"),
            ));
        }
        let st = self.0.to_state();
        Manager::from_state(ManagerState {
            v1: Vec::new(),
            unified: None,
            created: Vec::new(),
            ..st
        })
        .map(|m| Cg(Arc::new(m)))
        .map_err(e)
    }
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        self.0.apply(r).map_err(e)
    }
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        self.0.add_pid(pid).map_err(e)
    }
    /// The files through which a child joins these cgroups itself (see
    /// [`clone_joining`]).
    pub fn join_files(&self) -> Result<JoinFiles> {
        self.0.join_files().map_err(e)
    }
    pub fn frozen(&self) -> bool {
        matches!(
            self.0.freezer_state(),
            Ok(oxcart_cgroups::FreezerState::Frozen) | Ok(oxcart_cgroups::FreezerState::Freezing)
        )
    }
    pub fn kill_all(&self, sig: i32) -> Result<()> {
        self.0.kill_all(sig).map_err(e)
    }
    pub fn destroy(&self) -> Result<()> {
        self.0.destroy().map_err(e)
    }
    /// No cgroup directories at all (a rootless container whose cgroups were
    /// skipped, see [`Cg::create_or_skip`]).
    pub fn is_empty(&self) -> bool {
        self.0.v1_dirs().is_empty() && self.0.unified_path().is_none()
    }
    pub fn pure_v2(&self) -> bool {
        self.0.mode() == HostMode::V2
    }
    pub fn manager(&self) -> &Manager {
        &self.0
    }

    /// The hierarchies as they should appear inside the container.
    pub fn mount_dirs(&self) -> Vec<MountDir> {
        let mut out = Vec::new();
        for d in self.0.v1_dirs() {
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
        if let Some(u) = self.0.unified_path() {
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

/// clone3(2) with `flags`, the child starting in the cgroup2 directory of `join`
/// (`CLONE_INTO_CGROUP`, which avoids the RCU grace period a later move waits
/// for: oxcart_cgroups::join). Returns the pid (0 in the child) and whether the
/// parent must still move the child into cgroup2 itself: a kernel before 5.7
/// rejects the flag (EINVAL, or E2BIG for the larger clone_args), and an
/// unprivileged caller may lack the write access to the common ancestor that
/// the kernel checks for it (EACCES/EPERM) where a later move might still work.
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
