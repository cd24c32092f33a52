//! CVE-2019-5736: the container must never reach a writable runtime binary.
//!
//! oxcart does not re-exec to become init: init and exec children are forks of
//! the runtime, so until they execve the container's program their
//! `/proc/<pid>/exe` is this binary. Being non-dumpable keeps other container
//! processes out of it, except two ways:
//!
//! - a program in the image whose interpreter is `#!/proc/self/exe`: execve()
//!   resolves the interpreter as the exec'ing process, i.e. runs *this* binary
//!   inside the container, now dumpable, and the container opens its
//!   `/proc/<pid>/exe` and writes through it once it exits (the original attack);
//! - a container process with CAP_SYS_PTRACE, for which non-dumpable is no bar.
//!
//! So before making any container process, `create`, `run` and `exec` make sure
//! the binary they run from cannot be written through: it is already on a
//! read-only mount (write access through any path to it is EROFS, and a
//! container cannot remount a mount of another mount namespace), or already a
//! sealed memfd; otherwise it copies itself into a memfd, seals it
//! (memfd_create(2), fcntl(2) F_ADD_SEALS: no write, grow, shrink, or further
//! sealing) and re-executes from it, as runc (libcontainer/exeseal) and crun do.
//! Installing the binary on a read-only mount skips the copy and the re-exec.

use crate::error::{Error, Result};
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
// include/uapi/linux/memfd.h (Linux 6.3): an executable memfd, asked for
// explicitly so a vm.memfd_noexec=1 host does not give us a non-executable one.
const MFD_EXEC: libc::c_uint = 0x10;

/// How the running binary is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exe {
    /// On a read-only mount.
    ReadOnlyMount,
    /// A sealed memfd (a copy made by an earlier call of this process tree).
    Sealed,
    /// Writable: a copy is needed.
    Writable,
}

fn open_self() -> Result<OwnedFd> {
    crate::sys::open(c"/proc/self/exe", libc::O_RDONLY, 0)
        .map_err(|e| Error::sys("open /proc/self/exe", e))
}

/// Classify the binary behind `fd`.
fn classify(fd: &OwnedFd) -> Result<Exe> {
    // SAFETY: fcntl on an fd we own; F_GET_SEALS fails with EINVAL on files that
    // cannot be sealed, which just means "not a memfd".
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Ok(Exe::Sealed);
    }
    // SAFETY: fstatvfs fills the zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(Error::last("fstatvfs /proc/self/exe"));
    }
    if st.f_flag & libc::ST_RDONLY != 0 {
        return Ok(Exe::ReadOnlyMount);
    }
    Ok(Exe::Writable)
}

/// How this process's binary is protected now.
pub fn current() -> Result<Exe> {
    classify(&open_self()?)
}

/// Return if the running binary cannot be written through; otherwise re-execute
/// this process, with the same argv and environment, from a sealed copy (this
/// call then does not return). An error names what failed: without the
/// protection no container process may be made, so there is no fallback.
pub fn ensure_sealed() -> Result<()> {
    let exe = open_self()?;
    if classify(&exe)? != Exe::Writable {
        return Ok(());
    }
    let copy = sealed_copy(&exe)?;
    drop(exe);
    let argv = cstrings(std::env::args_os())?;
    let envp = cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of valid C strings that outlive the call;
    // AT_EMPTY_PATH executes the fd itself (execveat(2)). The memfd is
    // close-on-exec, which execveat allows for an ELF binary.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            copy.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(Error::sys(
        "CVE-2019-5736 protection: execute the sealed copy of oxcart-runtime (install the binary on a read-only mount to run without the copy)",
        io::Error::last_os_error(),
    ))
}

/// A sealed memfd holding a copy of `exe`.
fn sealed_copy(exe: &OwnedFd) -> Result<OwnedFd> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let name = c"oxcart-runtime";
    // SAFETY: valid name; the fd is owned below.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Before Linux 6.3 MFD_EXEC is unknown, and every memfd is executable.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(Error::last("CVE-2019-5736 protection: memfd_create"));
    }
    // SAFETY: fresh fd.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fstat fills the zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(exe.as_raw_fd(), &mut st) } != 0 {
        return Err(Error::last("fstat /proc/self/exe"));
    }
    let mut left = st.st_size as usize;
    while left > 0 {
        // SAFETY: both fds are open; a NULL offset reads from the file position.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                left,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::sys(
                "CVE-2019-5736 protection: copy the runtime binary",
                e,
            ));
        }
        if n == 0 {
            return Err(Error::Other(
                "CVE-2019-5736 protection: the runtime binary shrank while being copied".into(),
            ));
        }
        left -= n as usize;
    }
    // SAFETY: fcntl on our memfd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(Error::last("CVE-2019-5736 protection: seal the copy"));
    }
    Ok(memfd)
}

fn cstrings(it: impl Iterator<Item = OsString>) -> Result<Vec<CString>> {
    it.map(|s| {
        CString::new(s.into_vec()).map_err(|_| {
            Error::Other("an argument or environment variable contains a NUL byte".into())
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_copy_cannot_be_written_and_is_recognised() {
        let exe = open_self().unwrap();
        let copy = sealed_copy(&exe).unwrap();
        assert_eq!(classify(&copy).unwrap(), Exe::Sealed);
        // SAFETY: write to our own fd.
        let n = unsafe { libc::write(copy.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(n, -1);
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
        // SAFETY: ftruncate on our own fd.
        assert_ne!(unsafe { libc::ftruncate(copy.as_raw_fd(), 0) }, 0);
        // Same bytes as the original.
        let a = std::fs::read("/proc/self/exe").unwrap();
        let b = std::fs::read(format!("/proc/self/fd/{}", copy.as_raw_fd())).unwrap();
        assert!(a == b, "copy differs from the binary");
    }
}
