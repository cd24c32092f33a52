//! The few system calls the monitor makes that std does not wrap: pipes, signalfd,
//! poll, unix sockets of type SOCK_SEQPACKET, SCM_RIGHTS and waitpid.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblock(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    let fl = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) })?;
    Ok(())
}

pub fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor with integer arguments.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(())
}

/// Blocks SIGCHLD, SIGUSR1 and SIGUSR2 and returns a signalfd that reports them: the
/// loop learns of exits (SIGCHLD), of a user's stop or kill (SIGUSR1: re-read the
/// markers) and of `healthcheck run` (SIGUSR2: probe now) in the same poll as its
/// I/O, without a signal handler. Blocked before monitor.json exists, so no command
/// can signal us while the default action (termination) still applies.
pub fn sigchld_fd() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGUSR2);
    }
    // SAFETY: set is valid; the old mask is not wanted.
    cvt(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
    // SAFETY: -1 asks for a new signalfd for a valid set.
    let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    // SAFETY: signalfd just returned it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// SIGUSR1/SIGUSR2 seen by [`drain_signalfd`] and not yet taken: whoever drains
/// the descriptor (the relay, or `create` waiting for the runtime) must not lose a
/// request meant for the other. The monitor is single-threaded.
static PENDING: AtomicU32 = AtomicU32::new(0);
pub const WAKE: u32 = 1;
pub const PROBE: u32 = 2;

/// Empties a signalfd, remembering SIGUSR1 ([`WAKE`]) and SIGUSR2 ([`PROBE`]);
/// waitpid tells which child exited.
pub fn drain_signalfd(fd: BorrowedFd<'_>) {
    const INFO: usize = std::mem::size_of::<libc::signalfd_siginfo>();
    let mut buf = [0u8; INFO * 4];
    while let Ok(n) = read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        for rec in buf[..n].chunks_exact(INFO) {
            // ssi_signo is the first field, a u32 in native order.
            let signo = u32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]) as i32;
            let bit = match signo {
                libc::SIGUSR1 => WAKE,
                libc::SIGUSR2 => PROBE,
                _ => 0,
            };
            PENDING.fetch_or(bit, Ordering::Relaxed);
        }
    }
}

/// The requests signalled since the last call.
pub fn take_pending() -> u32 {
    PENDING.swap(0, Ordering::Relaxed)
}

/// An exclusive `flock` on `path` (the container's `lock`, which every engine
/// command on the container takes), held until the descriptor is dropped.
pub fn flock(path: &std::path::Path) -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let fd = OwnedFd::from(f);
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(fd);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// kill(2); a process already gone is not an error.
pub fn kill(pid: libc::pid_t, sig: libc::c_int) {
    if pid > 0 {
        // SAFETY: plain kill(2).
        unsafe { libc::kill(pid, sig) };
    }
}

pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match cvt_size(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        match cvt_size(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

/// Waits for events on `fds`; `timeout_ms` < 0 waits without limit.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a valid array of fds.len() pollfd.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    match cvt(r) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        other => other.map(|n| n as usize),
    }
}

fn sockaddr(path: &CStr) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.to_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket path {path:?} is longer than 107 bytes"),
        ));
    }
    for (d, &c) in addr.sun_path.iter_mut().zip(bytes) {
        *d = c as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

/// A listening, non-blocking unix socket of `kind` bound at `path`.
pub fn listen(path: &CStr, kind: libc::c_int) -> io::Result<OwnedFd> {
    let (addr, len) = sockaddr(path)?;
    // SAFETY: plain socket(2).
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: socket just returned it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: addr is a valid sockaddr_un of len bytes.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    // SAFETY: listen on our socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 64) })?;
    Ok(fd)
}

/// Accepts one connection, non-blocking and close-on-exec.
pub fn accept(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: accept4 without a peer address.
    let c = cvt(unsafe {
        libc::accept4(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    })?;
    // SAFETY: accept4 just returned it.
    Ok(unsafe { OwnedFd::from_raw_fd(c) })
}

/// One message, never blocking, never raising SIGPIPE.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes.
    let r = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    cvt_size(r)
}

pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for buf.len() bytes.
    let r = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    cvt_size(r)
}

/// Waits until the peer of a connection hangs up (or `limit` passes), discarding
/// whatever it still sends.
pub fn wait_hangup(fd: BorrowedFd<'_>, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        let mut p = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        }];
        if poll(&mut p, left.as_millis().min(i32::MAX as u128) as i32).is_err() {
            return;
        }
        loop {
            match recv(fd, &mut buf) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
    }
}

/// Receives a descriptor sent with SCM_RIGHTS (the runtime's console master).
pub fn recv_fd(conn: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one cmsghdr with a few ints, aligned for cmsghdr.
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; zero is a valid start.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: msg points at valid buffers that outlive the call.
    let r = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    cvt_size(r)?;
    let mut found: Option<OwnedFd> = None;
    // SAFETY: walking the control buffer recvmsg filled, with the CMSG_ macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let n = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let p = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..n {
                    let fd = OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i)));
                    // Keep the first; any extra descriptor is closed by its drop.
                    if found.is_none() {
                        found = Some(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    found.ok_or_else(|| io::Error::other("the console socket message carried no descriptor"))
}

/// Reaps one exited child without blocking: (pid, wait status).
pub fn reap_one() -> Option<(libc::pid_t, libc::c_int)> {
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer.
    // __WALL: a child whose exit signal is not SIGCHLD (a runtime's clone with
    // another or none, which also sends us no SIGCHLD) is reaped all the same.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
    (pid > 0).then_some((pid, status))
}

/// Whether any child is left once every exited one is reaped: `waitpid` answers
/// ECHILD only when there is none (wait(2)).
pub fn has_children() -> bool {
    while reap_one().is_some() {}
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer; WNOHANG does not block.
    let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
    !(r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
}

/// Waits for one specific child, reaping every other child that exits meanwhile: as
/// a subreaper we inherit the runtime's helpers (runsc's gofer and sandbox), and
/// `runsc delete`, run by the exit command, polls `kill(gofer, 0)` until it fails —
/// which it never does for a zombie left unreaped, so its 1 s deadline expires.
pub fn wait_for(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        if r > 0 {
            continue;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// docker's exit code of a wait status: the code, or 128 + the signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// TIOCSWINSZ on the console master: the kernel sends SIGWINCH to the container.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}
