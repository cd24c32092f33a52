//! AppArmor profiles, as runc 1.1 applies them (`libcontainer/apparmor/apparmor_linux.go`):
//! `process.apparmorProfile` (or exec's `--apparmor`, or a `--process` file's
//! `apparmorProfile`) is written as `exec <profile>` to this thread's AppArmor
//! "exec" attribute just before execve (runc `ApplyProfile` → `changeOnExec`, a
//! reimplementation of libapparmor's `aa_change_onexec(2)`); the kernel confines
//! the new program with that profile from the execve on. The write fails with
//! ENOENT when no profile of that name is loaded (apparmor(7); the kernel's
//! `aa_change_profile`), which is an error, never an unconfined container.

use crate::error::{Error, Result};
use crate::sys;
use std::os::fd::AsFd;

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
/// `setProcAttr`). Only a task may write its own attributes, hence thread-self;
/// the file must be on procfs, as runc's `utils.EnsureProcHandle` checks
/// ([`sys::open_proc_attr`]).
pub fn apply_profile(prof: &str) -> Result<()> {
    let mut path = "/proc/thread-self/attr/apparmor/exec";
    let mut fd = sys::open_proc_attr(path);
    if matches!(&fd, Err(e) if e.raw_os_error() == Some(libc::ENOENT)) {
        path = "/proc/thread-self/attr/exec";
        fd = sys::open_proc_attr(path);
    }
    let fd = fd.map_err(|e| failed(prof, &format!("open {path}"), &e))?;
    sys::write_once(fd.as_fd(), format!("exec {prof}").as_bytes())
        .map_err(|e| failed(prof, &format!("write {path}"), &e))
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
