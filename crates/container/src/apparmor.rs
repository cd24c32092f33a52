//! AppArmor profiles, as runc 1.1 applies them (`libcontainer/apparmor/apparmor_linux.go`):
//! `process.apparmorProfile` (or exec's `--apparmor`, or a `--process` file's
//! `apparmorProfile`) is written as `exec <profile>` to this thread's AppArmor
//! "exec" attribute just before execve (runc `ApplyProfile` → `changeOnExec`, a
//! reimplementation of libapparmor's `aa_change_onexec(2)`); the kernel confines
//! the new program with that profile from the execve on. The write fails with
//! ENOENT when no profile of that name is loaded (apparmor(7); the kernel's
//! `aa_change_profile`), which is an error, never an unconfined container.

use crate::error::{Error, Result};
use crate::selinux::{write_once, PROC_SUPER_MAGIC};
use crate::sys::cstring;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

const FIELD: &str = "process.apparmorProfile";

/// AppArmor is the running LSM: its module parameter reads `Y` (it reads `N` on a
/// kernel that has AppArmor built in but booted another LSM, e.g. `security=selinux`;
/// checked in the v2 lane). runc `apparmor.IsEnabled` also wants
/// `/sys/kernel/security/apparmor`, but runc's `ApplyProfile` does not consult it: the
/// attribute write needs only the LSM, not securityfs, so neither do we.
pub fn enabled() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|b| b.len() > 1 && b[0] == b'Y')
}

/// The error for a profile asked for on a host without AppArmor, raised before
/// anything is created. runc gets there later, from the kernel ("apparmor failed
/// to apply profile: write /proc/self/attr/exec: invalid argument").
pub fn not_enabled(prof: &str) -> Error {
    Error::config(
        FIELD,
        format!("apparmor failed to apply profile {prof:?}: AppArmor is not enabled on this host"),
    )
}

/// runc `changeOnExec`: `exec <profile>` into `/proc/thread-self/attr/apparmor/exec`,
/// or `attr/exec` on kernels before 5.8, which have no per-LSM directory (runc
/// `setProcAttr`). Only a task may write its own attributes, hence thread-self.
/// As runc (`utils.EnsureProcHandle`), the file must be on procfs: a container
/// that mounted something over its /proc must not make the write land in a file of
/// its choosing and seem to succeed.
pub fn apply_profile(prof: &str) -> Result<()> {
    let mut path = "/proc/thread-self/attr/apparmor/exec";
    let mut fd = open_wronly(path);
    if matches!(&fd, Err(e) if e.raw_os_error() == Some(libc::ENOENT)) {
        path = "/proc/thread-self/attr/exec";
        fd = open_wronly(path);
    }
    let fd = fd.map_err(|e| failed(prof, &format!("open {path}"), &e))?;
    // SAFETY: zeroed statfs is a valid out buffer for fstatfs.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and buffer.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(failed(
            prof,
            &format!("fstatfs {path}"),
            &std::io::Error::last_os_error(),
        ));
    }
    if st.f_type as libc::c_long != PROC_SUPER_MAGIC {
        return Err(Error::config(
            FIELD,
            format!("apparmor failed to apply profile {prof:?}: {path} is not on procfs"),
        ));
    }
    write_once(fd.as_fd(), format!("exec {prof}").as_bytes())
        .map_err(|e| failed(prof, &format!("write {path}"), &e))
}

fn open_wronly(path: &str) -> std::io::Result<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: open(2) with a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// runc's wording ("apparmor failed to apply profile: write …: no such file or
/// directory"), with the field and profile named, and what ENOENT means here.
fn failed(prof: &str, what: &str, e: &std::io::Error) -> Error {
    let hint = if e.raw_os_error() == Some(libc::ENOENT) && what.starts_with("write") {
        " (no profile of that name is loaded: see /sys/kernel/security/apparmor/profiles)"
    } else {
        ""
    };
    Error::config(
        FIELD,
        format!("apparmor failed to apply profile {prof:?}: {what}: {e}{hint}"),
    )
}
