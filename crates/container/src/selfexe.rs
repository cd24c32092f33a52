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
//! the binary they run from cannot be written through. It already is when it
//! lies on a read-only mount (write access through any path to it is EROFS, and
//! a container cannot remount a mount of another mount namespace) or is a
//! sealed memfd. Otherwise the runtime re-executes itself through a read-only
//! view of its binary, made the way runc 1.2 does (libcontainer/exeseal,
//! "overlayfs" method): a short-lived child, sharing our fd table
//! (CLONE_FILES), enters a new mount namespace, bind-mounts the binary
//! read-only there, opens it `O_PATH` into our table and exits. Its namespace
//! dies with it, which detaches the mount (still alive through the fd, as after
//! a lazy umount): nothing is left in any namespace, nobody can remount it, and
//! no host mount is touched. That costs no copy. Where the caller may not make
//! a mount namespace (rootless), the binary is copied into a memfd instead and
//! sealed (memfd_create(2), fcntl(2) F_ADD_SEALS: no write, grow, shrink, or
//! further sealing), as runc 1.1 and crun do. Installing the binary on a
//! read-only mount skips the re-exec too.

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

/// Return if the running binary cannot be written through; otherwise re-execute
/// this process, with the same argv and environment, from a sealed copy (this
/// call then does not return). An error names what failed: without the
/// protection no container process may be made, so there is no fallback.
pub fn ensure_sealed() -> Result<()> {
    let exe = open_self()?;
    if classify(&exe)? != Exe::Writable {
        return Ok(());
    }
    let copy = match read_only_view(&exe) {
        Some(fd) => fd,
        None => sealed_copy(&exe)?,
    };
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

/// An `O_PATH` fd of our binary on a read-only bind mount that exists in no
/// mount namespace (see the module comment), or `None` where that cannot be
/// made (no privilege for a mount namespace, the binary replaced on disk, an
/// old kernel): the caller falls back to a sealed copy, which always works.
fn read_only_view(exe: &OwnedFd) -> Option<OwnedFd> {
    let path = std::fs::read_link("/proc/self/exe").ok()?;
    let path = CString::new(path.into_os_string().into_vec()).ok()?;
    bind_read_only(exe, &path)
}

/// The file `path` (which must be the file open as `file`) on a read-only bind
/// mount in no namespace, as an `O_PATH` fd.
fn bind_read_only(file: &OwnedFd, path: &std::ffi::CStr) -> Option<OwnedFd> {
    // A slot in our fd table for the child to fill (it shares the table).
    let slot = crate::sys::open(c"/dev/null", libc::O_RDONLY, 0).ok()?;
    let slot_fd = slot.as_raw_fd();
    // The work is done by a grandchild: when its mount namespace dies, the
    // kernel unmounts the copies in it and waits for an RCU grace period
    // (namespace_unlock: synchronize_rcu_expedited), ~8 ms here, which must not
    // be ours to wait for. CLONE_VFORK releases each waiting parent as soon as
    // its child has let go of its memory (exit_mm), which in do_exit comes
    // before the namespaces are dropped; the middle child then exits at once,
    // and the grandchild finishes dying on its own (reaped by init or the
    // nearest subreaper). Its exit status is not needed: the slot is checked.
    let flags = (libc::CLONE_FILES | libc::CLONE_VFORK) as u64;
    // SAFETY: the runtime is single-threaded here (first thing a create/run/exec
    // does); CLONE_VFORK suspends us until the child has left our memory.
    let pid = unsafe { crate::sys::clone3(flags, None) }.ok()?;
    if pid == 0 {
        // SAFETY: single-threaded child; _exit never returns.
        unsafe {
            match crate::sys::clone3(flags, None) {
                Ok(0) => {}
                _ => libc::_exit(0),
            }
        }
        // The grandchild: raw syscalls only, and _exit with the failing step.
        // SAFETY: plain syscalls on valid C strings; _exit never returns.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                libc::_exit(1);
            }
            // Our bind must not propagate to the host's peers of this mount.
            if libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(2);
            }
            if libc::mount(
                // The path, not /proc/self/fd/N: a bind's source must be a
                // mount of the caller's namespace (EINVAL otherwise), and the
                // fd's mount is in the old one. If the file was replaced since
                // we started, same_file below notices.
                path.as_ptr(),
                path.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(3);
            }
            let ro = libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV;
            if libc::mount(
                std::ptr::null(),
                path.as_ptr(),
                std::ptr::null(),
                ro,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(4);
            }
            let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            if fd < 0 || libc::dup3(fd, slot_fd, libc::O_CLOEXEC) < 0 {
                libc::_exit(5);
            }
            libc::_exit(0);
        }
    }
    match crate::sys::waitpid(pid, 0) {
        Ok((_, status)) if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 => {}
        _ => return None,
    }
    // Trust nothing we did not check: the slot must now be our binary, read-only.
    if classify(&slot).ok()? != Exe::ReadOnlyMount || !same_file(file, &slot) {
        return None;
    }
    Some(slot)
}

fn same_file(a: &OwnedFd, b: &OwnedFd) -> bool {
    let st = |fd: &OwnedFd| {
        // SAFETY: fstat fills the zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        (unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0).then_some((st.st_dev, st.st_ino))
    };
    matches!((st(a), st(b)), (Some(x), Some(y)) if x == y)
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
    fn the_read_only_view_is_the_file_and_cannot_be_opened_for_writing() {
        // A file that is not running (a running one is ETXTBSY anyway).
        let p = std::env::temp_dir().join(format!("oxcart-selfexe-{}", std::process::id()));
        std::fs::write(&p, b"binary").unwrap();
        let f = crate::sys::open(
            &CString::new(p.to_str().unwrap()).unwrap(),
            libc::O_RDONLY,
            0,
        )
        .unwrap();
        let cp = CString::new(p.to_str().unwrap()).unwrap();
        // Root here (the test suite runs as root); a non-root caller gets None.
        let view = bind_read_only(&f, &cp).expect("read-only view");
        assert_eq!(classify(&view).unwrap(), Exe::ReadOnlyMount);
        assert!(same_file(&f, &view));
        let err = std::fs::OpenOptions::new()
            .append(true)
            .open(format!("/proc/self/fd/{}", view.as_raw_fd()))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        // The mount is in no namespace: ours still has the file writable, and
        // no mount at its path.
        assert_eq!(classify(&f).unwrap(), Exe::Writable);
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mi.lines().any(|l| l.split(' ').nth(4) == p.to_str()),
            "the bind mount leaked into our namespace"
        );
        // And our own binary gets one too.
        assert!(read_only_view(&open_self().unwrap()).is_some());
        let _ = std::fs::remove_file(&p);
    }

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
