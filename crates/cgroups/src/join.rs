//! Putting a new process into its cgroups without the parent moving it.
//!
//! Moving a process by writing its pid to `cgroup.procs` takes the global
//! `cgroup_threadgroup_rwsem` for writing, and on an idle system that waits for
//! an RCU grace period: ~10 ms per move on our machines, the largest single cost
//! of `create` and `exec` (docs/benchmarks.md). Two moves avoid the lock:
//!
//! - **cgroup2** (the unified hierarchy of a pure v2 *or* a hybrid host):
//!   `clone3(CLONE_INTO_CGROUP)` (clone(2), Linux 5.7) starts the child in the
//!   cgroup; the fork path only read-locks the rwsem.
//! - **v1 hierarchies**: the child, still single-threaded, writes `0` ("the
//!   writing thread", cgroups(7)) to the hierarchy's `tasks` file. The kernel
//!   migrates just that thread and, since it is `current`, skips the
//!   threadgroup rwsem (kernel/cgroup/cgroup.c `cgroup_procs_write_start`:
//!   `*threadgroup_locked = pid || threadgroup`). For a single-threaded
//!   process moving the thread *is* moving the process. On a kernel without
//!   that shortcut the write is as slow as the parent's, never wrong.
//!
//! The files are opened here, in the parent, before the clone: the child may
//! already be in new mount and user namespaces where the host's cgroupfs paths
//! do not resolve. v1 checks the writer's credentials (root, or the owner of
//! the task), which holds for the child as it holds for us.

use crate::error::{CgroupError, Result};
use crate::manager::open_path_dir;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The open files through which a child joins its cgroups.
#[derive(Debug, Default)]
pub struct JoinFiles {
    /// Each v1 hierarchy's `tasks` file of the target cgroup, open for writing.
    v1_tasks: Vec<(PathBuf, OwnedFd)>,
    /// The cgroup2 directory (`O_PATH`), for `CLONE_INTO_CGROUP`.
    unified: Option<(PathBuf, OwnedFd)>,
}

impl JoinFiles {
    /// Open the join files of the v1 cgroup directories `v1` and the cgroup2
    /// directory `unified`.
    pub fn open<'a>(
        v1: impl IntoIterator<Item = &'a Path>,
        unified: Option<&Path>,
    ) -> Result<JoinFiles> {
        let mut out = JoinFiles::default();
        for dir in v1 {
            let path = dir.join("tasks");
            let fd = open_write(&path)?;
            out.v1_tasks.push((path, fd));
        }
        if let Some(u) = unified {
            out.unified = Some((u.to_path_buf(), open_path_dir(u)?));
        }
        Ok(out)
    }

    /// The v1 `tasks` files, to hand to a child that was cloned before they
    /// existed (each with its path, for errors).
    pub fn into_v1(self) -> Vec<(PathBuf, OwnedFd)> {
        self.v1_tasks
    }

    /// Join files made of v1 `tasks` files received from the parent.
    pub fn from_v1(v1_tasks: Vec<(PathBuf, OwnedFd)>) -> JoinFiles {
        JoinFiles {
            v1_tasks,
            unified: None,
        }
    }

    /// The fd to pass as `clone_args.cgroup` with `CLONE_INTO_CGROUP`.
    pub fn clone_into(&self) -> Option<&OwnedFd> {
        self.unified.as_ref().map(|(_, fd)| fd)
    }

    /// In the parent, when the kernel refused `CLONE_INTO_CGROUP` (before
    /// Linux 5.7): move `pid` into the cgroup2 directory the slow way.
    pub fn add_pid_unified(&self, pid: i32) -> Result<()> {
        match &self.unified {
            Some((dir, _)) => crate::fsutil::write(dir, "cgroup.procs", &pid.to_string()),
            None => Ok(()),
        }
    }

    /// In the child, single-threaded: move the calling process into every v1
    /// cgroup. The files are close-on-exec: none reaches the container.
    pub fn join_self_v1(&self) -> Result<()> {
        for (path, fd) in &self.v1_tasks {
            // SAFETY: writing two bytes from a static buffer to an fd we own.
            let n = unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) };
            if n != 1 {
                let source = if n < 0 {
                    io::Error::last_os_error()
                } else {
                    io::Error::new(io::ErrorKind::WriteZero, "short write")
                };
                return Err(CgroupError::Write {
                    path: path.clone(),
                    value: "0".into(),
                    source,
                });
            }
        }
        Ok(())
    }
}

fn open_write(path: &Path) -> Result<OwnedFd> {
    crate::fsutil::open_fd(path, libc::O_WRONLY | libc::O_NOFOLLOW).map_err(|source| {
        CgroupError::Write {
            path: path.to_path_buf(),
            value: "0".into(),
            source,
        }
    })
}
