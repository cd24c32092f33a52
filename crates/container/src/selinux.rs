//! SELinux labels, as runc 1.1 applies them through go-selinux
//! (`libcontainer/label`, `go-selinux/selinux_linux.go`):
//!
//! - `process.selinuxLabel`: written to `/proc/thread-self/attr/exec` just before
//!   `execve` (runc `label.SetProcessLabel` → `selinux.SetExecLabel`); the kernel
//!   gives the new program that context (proc(5), `/proc/[pid]/attr/exec`). The same
//!   label goes to `attr/keycreate` while the session keyring is created
//!   (`selinux.SetKeyLabel`), so the container's keyring carries its label.
//! - `linux.mountLabel`: `context="<label>"` in the data of the container's own
//!   filesystem mounts (runc `label.FormatMountLabel`; the `context=` option of
//!   mount(8) "SELINUX MOUNT OPTIONS"), and as the `security.selinux` xattr of an
//!   mqueue mount's root (runc `label.SetFileLabel`), which takes no mount option.
//!
//! Where the host has no SELinux, runc refuses a process label and drops the mount
//! label; callers keep both rules.

use crate::error::{Error, Result};
use crate::sys::{self, cstring};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

const SELINUXFS: &str = "/sys/fs/selinux";

/// go-selinux `GetEnabled`: selinuxfs is mounted and a policy is loaded (before a
/// policy load every task's context reads as the bare initial SID name "kernel").
pub fn enabled() -> bool {
    if !std::path::Path::new(SELINUXFS).join("enforce").exists() {
        return false;
    }
    match std::fs::read("/proc/self/attr/current") {
        Ok(c) => trim_context(&c) != b"kernel",
        Err(_) => false,
    }
}

/// The kernel ends contexts read from /proc or selinuxfs with a NUL byte.
fn trim_context(c: &[u8]) -> &[u8] {
    let end = c
        .iter()
        .rposition(|&b| b != 0 && b != b'\n')
        .map_or(0, |i| i + 1);
    &c[..end]
}

/// Check a context against the loaded policy before anything is created, so a bad
/// label is a clear config error that leaves nothing behind. selinuxfs's `context`
/// file is libselinux's `security_check_context`: a write of an invalid context
/// fails with EINVAL. A runtime domain the policy does not let check contexts
/// (EACCES) is not an error here: the write in the container reports the label then.
pub fn check_context(field: &str, label: &str) -> Result<()> {
    let fd = match sys::open(&cstring(format!("{SELINUXFS}/context"))?, libc::O_RDWR, 0) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => return Ok(()),
        Err(e) => {
            return Err(Error::config(
                field,
                format!("check SELinux label {label:?}: open {SELINUXFS}/context: {e}"),
            ))
        }
    };
    match sys::write_once(fd.as_fd(), label.as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => Ok(()),
        Err(e) => Err(invalid(field, label, e)),
    }
}

/// The error for a label the kernel refused, naming the field and the label.
fn invalid(field: &str, label: &str, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::EINVAL) {
        Error::config(
            field,
            format!("invalid SELinux label {label:?}: the loaded policy does not allow this context ({e})"),
        )
    } else {
        Error::config(field, format!("apply SELinux label {label:?}: {e}"))
    }
}

/// Write one of this thread's attributes (proc(5): /proc/[pid]/attr/; only a task
/// itself may write its own), through [`sys::open_proc_attr`]'s procfs check
/// (go-selinux `writeCon`).
fn write_attr(attr: &str, field: &str, label: &str) -> Result<()> {
    let path = format!("/proc/thread-self/attr/{attr}");
    let fd = sys::open_proc_attr(&path).map_err(|e| {
        Error::config(
            field,
            format!("apply SELinux label {label:?}: open {path}: {e}"),
        )
    })?;
    sys::write_once(fd.as_fd(), label.as_bytes()).map_err(|e| invalid(field, label, e))
}

/// runc `selinux.SetExecLabel`: the label the next execve(2) gives this process.
pub fn set_exec_label(field: &str, label: &str) -> Result<()> {
    write_attr("exec", field, label)
}

/// runc `selinux.SetKeyLabel`: the label of keys (the session keyring) this thread
/// creates until the label is cleared ("") or it calls execve, which resets it.
pub fn set_key_label(field: &str, label: &str) -> Result<()> {
    write_attr("keycreate", field, label)
}

/// runc `label.FormatMountLabel`: mount data with `context="<label>"` appended
/// (quoted: MCS labels contain commas, which would otherwise split the option; see
/// mount(8) "SELINUX MOUNT OPTIONS"). Unlike runc, data that already names a
/// context (`context=`, or `fscontext=`/`defcontext=`, which the kernel refuses
/// beside it) is left as it is: the mount's own option wins, rather than failing
/// with "incompatible mount options".
pub fn format_mount_label(data: &str, label: &str) -> String {
    let has_context = split_options(data).any(|o| {
        let key = o.split('=').next().unwrap_or("").trim();
        matches!(key, "context" | "fscontext" | "defcontext")
    });
    if has_context {
        data.to_string()
    } else if data.is_empty() {
        format!("context=\"{label}\"")
    } else {
        format!("{data},context=\"{label}\"")
    }
}

/// Comma-separated mount options, where a comma inside double quotes is part of
/// the value (the kernel's own rule for SELinux options).
fn split_options(data: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in data.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&data[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&data[start..]);
    out.into_iter().filter(|o| !o.is_empty())
}

/// runc `label.SetFileLabel` for mqueue mounts, which take no context= option:
/// set the `security.selinux` xattr of the mount's root. `fd` is an O_PATH fd of
/// it; its /proc/self/fd link reaches the inode without resolving a path in the
/// container again.
pub fn set_file_label(fd: BorrowedFd<'_>, dest: &str, label: &str) -> Result<()> {
    let path = cstring(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    let name = cstring("security.selinux")?;
    // SAFETY: valid C strings; pointer and length of a live string.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            label.as_ptr().cast(),
            label.len(),
            0,
        )
    };
    if r != 0 {
        return Err(Error::config(
            "linux.mountLabel",
            format!(
                "set SELinux label {label:?} on {dest} (setxattr security.selinux): {}",
                std::io::Error::last_os_error()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_label_is_appended_quoted() {
        let l = "system_u:object_r:container_file_t:s0:c1,c2";
        assert_eq!(
            format_mount_label("", l),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(
            format_mount_label("mode=755,size=65536k", l),
            "mode=755,size=65536k,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
    }

    #[test]
    fn a_mount_that_names_its_context_keeps_it() {
        let l = "system_u:object_r:container_file_t:s0";
        for d in [
            "mode=755,context=\"a:b:c:s0:c1,c2\"",
            "context=x:y:z:s0",
            "fscontext=x:y:z:s0,mode=1777",
            "defcontext=\"x:y:z:s0:c3,c4\"",
        ] {
            assert_eq!(format_mount_label(d, l), d);
        }
        // A quoted comma is not an option boundary: "c2,context=…" is a value.
        assert_eq!(
            split_options("a=\"x,y\",b").collect::<Vec<_>>(),
            ["a=\"x,y\"", "b"]
        );
    }

    #[test]
    fn contexts_lose_their_nul() {
        assert_eq!(trim_context(b"kernel\0"), b"kernel");
        assert_eq!(trim_context(b"a:b:c:s0\n"), b"a:b:c:s0");
        assert_eq!(trim_context(b""), b"");
    }
}
