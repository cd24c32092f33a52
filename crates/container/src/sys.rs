//! Thin wrappers over the system calls the runtime needs that neither std nor libc
//! wraps safely. Each returns `io::Result` so callers can name what failed.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub fn cstring(s: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(s.as_ref())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

pub fn cpath(p: &Path) -> io::Result<CString> {
    cstring(p.as_os_str().as_bytes())
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn check_l(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    check(unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data) as *const libc::c_void,
        )
    })
    .map(drop)
}

pub fn umount2(target: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings; pivot_root(2) has no libc wrapper.
    check_l(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2) — used with RESOLVE_IN_ROOT so that a path inside the rootfs is
/// resolved as if the rootfs were `/`, even through symlinks the image planted
/// (CVE-2021-30465 class of bugs: mount destinations escaping the rootfs).
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: u64::from(mode),
        resolve,
    };
    loop {
        // SAFETY: `how` is a valid open_how of the size we pass.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new fd that we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a concurrent rename raced the resolution (openat2(2)); retry.
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
}

pub fn open(path: &CStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    let fd = check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn openat(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    // SAFETY: valid C string and fd.
    let fd = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode,
        )
    })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid fd and string.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) }).map(drop)
}

pub fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: valid fd.
    check(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

pub fn chdir(p: &CStr) -> io::Result<()> {
    // SAFETY: valid string.
    check(unsafe { libc::chdir(p.as_ptr()) }).map(drop)
}

/// The id of the mount `p` resolves to (statx(2) STATX_MNT_ID, Linux 5.8; the
/// same number as /proc/self/mountinfo's first field): the topmost mount at a
/// mount point.
pub fn mount_id(p: &CStr) -> io::Result<u64> {
    // SAFETY: statx fills the zeroed struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid string and struct pointer.
    check(unsafe {
        libc::statx(
            libc::AT_FDCWD,
            p.as_ptr(),
            libc::AT_STATX_DONT_SYNC,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    })?;
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(stx.stx_mnt_id)
}

pub fn chroot(p: &CStr) -> io::Result<()> {
    // SAFETY: valid string.
    check(unsafe { libc::chroot(p.as_ptr()) }).map(drop)
}

pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: valid fd.
    check(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) without CLONE_VM: a fork that can create namespaces (and, on cgroup v2,
/// start the child directly in its cgroup with CLONE_INTO_CGROUP). Returns 0 in the
/// child and the child's pid in the parent.
///
/// # Safety
/// The caller must be single-threaded (the child is a copy of the calling thread only).
pub unsafe fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> io::Result<libc::pid_t> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: args is a valid clone_args; no CLONE_VM so the child gets its own copy
    // of the address space, as with fork().
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    check_l(r).map(|r| r as libc::pid_t)
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    let r = check_l(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fresh fd (pidfds are CLOEXEC).
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

pub fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall with a valid pidfd.
    check_l(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Mark every fd from `first` up as close-on-exec (close_range(2), CLOSE_RANGE_CLOEXEC):
/// no host fd may survive into the container (CVE-2024-21626).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: plain syscall.
    check_l(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })
        .map(drop)
}

pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on an fd number; errors are reported.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let nf = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, nf) }).map(drop)
}

#[repr(C)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

pub const AT_RECURSIVE: libc::c_uint = 0x8000;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

pub const OPEN_TREE_CLONE: libc::c_uint = 1;
pub const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;

/// open_tree(2): with OPEN_TREE_CLONE, a detached copy of the mount at `path`
/// (relative to `dir`, or the cwd; `dir` itself with AT_EMPTY_PATH and an empty
/// path), and with AT_RECURSIVE of the mounts beneath it.
pub fn open_tree(
    dir: Option<BorrowedFd<'_>>,
    path: &CStr,
    flags: libc::c_uint,
) -> io::Result<OwnedFd> {
    let dfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: valid fd and C string; the kernel returns a new fd or -1.
    let r = check_l(unsafe { libc::syscall(libc::SYS_open_tree, dfd, path.as_ptr(), flags) })?;
    // SAFETY: a fresh fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as libc::c_int) })
}

/// mount_setattr(2): the only way to apply `rro`, `rnosuid`… to a whole subtree
/// (runtime-spec config.md "recursive mount attributes"; libc has no wrapper).
pub fn mount_setattr(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> io::Result<()> {
    // SAFETY: valid fd, string and attr struct of the size we pass.
    check_l(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dir.as_raw_fd(),
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Block the signals a foreground `run`/`exec` forwards to its process (and SIGCHLD)
/// and return a signalfd for them (signalfd(2)), so none is lost between checks.
pub fn forwarded_signals_fd(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set; signalfd on it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
            libc::SIGCHLD,
        ] {
            libc::sigaddset(&mut set, s);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | flags);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Block until `fd` or the process behind `pidfd` is ready (POLLIN), retrying EINTR.
/// Returns the `revents` of each. Waiting on a pidfd beside the fd is how a command
/// waits for init without hanging if init dies first (pidfd_open(2)).
pub fn poll_fd_or_exit(fd: BorrowedFd<'_>, pidfd: BorrowedFd<'_>) -> io::Result<(i16, i16)> {
    let mut fds = [
        libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: a valid array of two pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } >= 0 {
            return Ok((fds[0].revents, fds[1].revents));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Wait for a child; returns its wait status.
pub fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r >= 0 {
            return Ok((r, status));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// The shell's convention for an exit status: the code, or 128 + signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// The fields of a `/proc/<pid>/stat` text from field 3 on (proc_pid_stat(5)):
/// everything after the `)` that ends the command name, which may itself contain
/// spaces and parens.
pub fn stat_fields(stat: &str) -> io::Result<std::str::SplitWhitespace<'_>> {
    stat.rfind(')')
        .map(|i| stat[i + 1..].split_whitespace())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/pid/stat"))
}

/// A process's state letter (field 3 of /proc/<pid>/stat: Z = zombie, X = dead)
/// and start time (field 22, in clock ticks since boot), from one read. The start
/// time is stored at create so that a recycled pid is never taken for our init.
pub fn proc_stat_state(pid: libc::pid_t) -> io::Result<(char, u64)> {
    use std::io::Read;
    // One read(2) (the line is ~300 bytes, at most ~1.2 KiB: a comm of up to 64
    // bytes and 50 numbers), where read_to_string reads it in five growing pieces.
    let mut buf = [0u8; 4096];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))?.read(&mut buf)?;
    let s = std::str::from_utf8(&buf[..n])
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/pid/stat"))?;
    let mut f = stat_fields(s)?;
    // Fields 3.. ; starttime is field 22 → index 19 after the state.
    let state = f.next().and_then(|v| v.chars().next());
    let start = f.nth(18).and_then(|v| v.parse().ok());
    match (state, start) {
        (Some(st), Some(t)) => Ok((st, t)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed /proc/pid/stat",
        )),
    }
}

/// Start time of a process (see [`proc_stat_state`]).
pub fn proc_start_time(pid: libc::pid_t) -> io::Result<u64> {
    proc_stat_state(pid).map(|(_, t)| t)
}

/// Write a whole file atomically: temp file in the same dir, then rename(2), so a
/// reader sees the old file or the whole new one, and a runtime killed midway
/// leaves at most its temp file (removed on error here). There is no fsync: what
/// is written here (state.json, pid files) describes live processes and is worth
/// nothing after a crash of the machine, which kills them; `--root` is under
/// /run, which is cleared at boot (FHS 3.0 section 3.15) and a tmpfs on Debian.
/// runc (`saveState`, `createPidFile`) and crun write these the same way. The
/// fsync cost ~0.3 ms of CPU and disk time per `create` on a disk-backed root.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

pub fn getpid() -> libc::pid_t {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() }
}

/// `_exit(2)`: leave the forked child without running the parent's atexit handlers
/// or destructors.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

pub fn signal_number(name: &str) -> Option<libc::c_int> {
    let n = name.trim();
    if let Ok(v) = n.parse::<libc::c_int>() {
        return (v > 0 && v <= libc::SIGRTMAX()).then_some(v);
    }
    let up = n.to_ascii_uppercase();
    let base = up.strip_prefix("SIG").unwrap_or(&up);
    let table: &[(&str, libc::c_int)] = &[
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ILL", libc::SIGILL),
        ("TRAP", libc::SIGTRAP),
        ("ABRT", libc::SIGABRT),
        ("IOT", libc::SIGIOT),
        ("BUS", libc::SIGBUS),
        ("FPE", libc::SIGFPE),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("STKFLT", libc::SIGSTKFLT),
        ("CHLD", libc::SIGCHLD),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("TSTP", libc::SIGTSTP),
        ("TTIN", libc::SIGTTIN),
        ("TTOU", libc::SIGTTOU),
        ("URG", libc::SIGURG),
        ("XCPU", libc::SIGXCPU),
        ("XFSZ", libc::SIGXFSZ),
        ("VTALRM", libc::SIGVTALRM),
        ("PROF", libc::SIGPROF),
        ("WINCH", libc::SIGWINCH),
        ("IO", libc::SIGIO),
        ("POLL", libc::SIGPOLL),
        ("PWR", libc::SIGPWR),
        ("SYS", libc::SIGSYS),
    ];
    if let Some((_, v)) = table.iter().find(|(k, _)| *k == base) {
        return Some(*v);
    }
    // RTMIN+n / RTMAX-n
    if let Some(r) = base.strip_prefix("RTMIN") {
        let off: libc::c_int = if r.is_empty() {
            0
        } else {
            r.strip_prefix('+')?.parse().ok()?
        };
        let v = libc::SIGRTMIN() + off;
        return (v <= libc::SIGRTMAX()).then_some(v);
    }
    if let Some(r) = base.strip_prefix("RTMAX") {
        let off: libc::c_int = if r.is_empty() {
            0
        } else {
            r.strip_prefix('-')?.parse().ok()?
        };
        let v = libc::SIGRTMAX() - off;
        return (v >= libc::SIGRTMIN()).then_some(v);
    }
    None
}

/// statfs(2): procfs's f_type.
const PROC_SUPER_MAGIC: libc::c_long = 0x9fa0;

/// Open one of this thread's LSM attribute files (`/proc/thread-self/attr/…`,
/// proc(5)) for writing, refusing a file that is not on procfs: a container that
/// mounted something over its /proc must not make the write land in a file of its
/// choosing and seem to succeed (go-selinux `writeCon`, runc `utils.EnsureProcHandle`).
pub fn open_proc_attr(path: &str) -> io::Result<OwnedFd> {
    let fd = open(&cstring(path)?, libc::O_WRONLY, 0)?;
    // SAFETY: zeroed statfs is a valid out buffer for fstatfs.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and buffer.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.f_type as libc::c_long != PROC_SUPER_MAGIC {
        return Err(io::Error::other("not on procfs"));
    }
    Ok(fd)
}

/// One write(2) of the whole value: /proc/<pid>/attr files and selinuxfs take no
/// partial writes, and an empty value (which clears an attribute) must still reach
/// the kernel, which `write_all` would skip.
pub fn write_once(fd: BorrowedFd<'_>, v: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: pointer and length of a live slice.
        let n = unsafe { libc::write(fd.as_raw_fd(), v.as_ptr().cast(), v.len()) };
        if n >= 0 {
            if n as usize == v.len() {
                return Ok(());
            }
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write ({n} of {} bytes)", v.len()),
            ));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn signals() {
        assert_eq!(signal_number("KILL"), Some(9));
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("sigterm"), Some(15));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("0"), None);
        assert_eq!(signal_number("SIGFOO"), None);
        assert_eq!(signal_number("RTMIN+1"), Some(libc::SIGRTMIN() + 1));
    }
    #[test]
    fn start_time_of_self() {
        let a = proc_start_time(getpid()).unwrap();
        let b = proc_start_time(getpid()).unwrap();
        assert_eq!(a, b);
        assert!(proc_start_time(-5).is_err());
    }
    #[test]
    fn state_and_start_time_are_fields_3_and_22() {
        // A child that exits unreaped: a zombie, whose fields we know.
        // SAFETY: the child only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: async-signal-safe.
            unsafe { libc::_exit(0) };
        }
        let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        while !stat().contains(") Z ") {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let s = stat();
        let fields: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split(' ').collect();
        let (st, t) = proc_stat_state(pid).unwrap();
        assert_eq!(st, 'Z');
        assert_eq!(t.to_string(), fields[22 - 3]);
        waitpid(pid, 0).unwrap();
    }
}
