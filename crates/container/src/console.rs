//! Terminals (runtime-spec config.md `process.terminal`, `consoleSize`) with runc's
//! `--console-socket` protocol: the runtime connects to the AF_UNIX stream socket at
//! the given path *before* any container process exists (so a bad path fails
//! cleanly), and the process inside the container allocates a pty from the
//! container's own devpts, makes the slave its controlling terminal and stdio, and
//! sends the master back in one message: the name `/dev/ptmx` as data and the fd as
//! SCM_RIGHTS (runc libcontainer/utils SendFd, received by containerd's go-runc,
//! conmon and runc's own `recvtty`).

use crate::error::{Ctx, Error, Result};
use crate::sys::{self, cstring};
use oxcart_spec::ConsoleSize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Connect to the console socket (runc: `net.Dial("unix", path)`).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    connect_socket(path, "--console-socket")
}

/// Connect to the AF_UNIX stream socket at `path`; `flag` names it in errors.
pub fn connect_socket(path: &Path, flag: &str) -> Result<OwnedFd> {
    let what = || {
        format!(
            "{flag} {}: dial unix {}: connect",
            path.display(),
            path.display()
        )
    };
    // SAFETY: plain socket call.
    let s = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(Error::last(what()));
    }
    // SAFETY: a fresh fd we own.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: zeroed sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(Error::Other(format!(
            "{flag} {}: path too long for a unix socket",
            path.display()
        )));
    }
    for (d, c) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *c as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    loop {
        // SAFETY: addr is a valid sockaddr_un of at least `len` bytes.
        let r = unsafe {
            libc::connect(
                s.as_raw_fd(),
                &addr as *const libc::sockaddr_un as *const libc::sockaddr,
                len as libc::socklen_t,
            )
        };
        if r == 0 {
            return Ok(s);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            // runc's wording: "dial unix <path>: connect: no such file or directory".
            Some(libc::ENOENT) => {
                return Err(Error::Other(format!(
                    "{}: no such file or directory",
                    what()
                )))
            }
            Some(libc::ECONNREFUSED) => {
                return Err(Error::Other(format!("{}: connection refused", what())))
            }
            _ => return Err(Error::sys(what(), e)),
        }
    }
}

/// Send `fd` with `name` as data in one message (runc `utils.SendFd`).
pub fn send_fd(sock: BorrowedFd<'_>, name: &str, fd: RawFd) -> Result<()> {
    crate::sync::send_with_rights(sock.as_raw_fd(), name.as_bytes(), &[fd])
        .map_err(|e| Error::sys(format!("send {name} fd over a unix socket"), e))
}

/// A pty pair allocated inside the container.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// `/dev/pts/N` as the container sees it.
    pub slave_path: String,
}

/// Open a pty from the container's devpts (`/dev/ptmx`, which setup_dev links to
/// `pts/ptmx`), unlock it and open the slave through TIOCGPTPEER, which needs no
/// path lookup (ioctl_tty(2)).
pub fn open_pty() -> Result<Pty> {
    let master = sys::open(&cstring("/dev/ptmx")?, libc::O_RDWR | libc::O_NOCTTY, 0)
        .ctx(|| "open /dev/ptmx (process.terminal needs a devpts mount at /dev/pts)".into())?;
    let unlock: libc::c_int = 0;
    // SAFETY: ioctl with a pointer to an int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(Error::last("unlock pty"));
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: ioctl with a pointer to an unsigned int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(Error::last("get pty number"));
    }
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: ioctl returning a new fd.
    let s = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER as _,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(Error::last("open pty slave"));
    }
    // SAFETY: a fresh fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok(Pty {
        master,
        slave,
        slave_path: format!("/dev/pts/{n}"),
    })
}

/// Set the window size (TIOCSWINSZ), for `process.consoleSize`.
pub fn set_size(fd: BorrowedFd<'_>, size: ConsoleSize) -> Result<()> {
    let ws = libc::winsize {
        ws_row: size.height as u16,
        ws_col: size.width as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ioctl with a pointer to a winsize.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(Error::last("process.consoleSize: set window size"));
    }
    Ok(())
}

/// Inside the container, as root of it: allocate the pty, apply the size, bind the
/// slave over `/dev/console` (init only, as runc's mountConsole), make it stdio and
/// the controlling terminal (the caller must be a session leader: setsid first), and
/// hand the master to the console socket. The socket is closed afterwards.
pub fn setup(
    sock: OwnedFd,
    size: Option<ConsoleSize>,
    mount_console: bool,
    owner: u32,
) -> Result<()> {
    let pty = open_pty()?;
    if let Some(sz) = size.filter(|s| s.height > 0 && s.width > 0) {
        set_size(pty.master.as_fd(), sz)?;
    }
    // The user switch comes later; give the slave to the process's user so it can
    // still reopen /dev/tty (runc fixStdioPermissions).
    // SAFETY: fchown on a valid fd; -1 keeps the group (tty).
    if unsafe { libc::fchown(pty.slave.as_raw_fd(), owner, u32::MAX) } != 0 {
        return Err(Error::last(format!("chown {}", pty.slave_path)));
    }
    if mount_console {
        mount_dev_console(&pty.slave_path)?;
    }
    for fd in 0..3 {
        // SAFETY: dup2 onto the stdio numbers.
        if unsafe { libc::dup2(pty.slave.as_raw_fd(), fd) } < 0 {
            return Err(Error::last(format!("dup pty slave to fd {fd}")));
        }
    }
    // SAFETY: ioctl on our stdin, now the pty slave.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::last("make the pty the controlling terminal"));
    }
    send_fd(sock.as_fd(), "/dev/ptmx", pty.master.as_raw_fd())?;
    drop(sock);
    Ok(())
}

/// Bind the pty slave over /dev/console (creating an empty file there if needed),
/// as runc does, so programs writing to the console reach the terminal.
fn mount_dev_console(slave: &str) -> Result<()> {
    let console = cstring("/dev/console")?;
    match sys::open(
        &console,
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
        0o600,
    ) {
        Ok(_) => {}
        // Anything already there (a device node from linux.devices) is a fine
        // mount point too.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(Error::sys("create /dev/console", e)),
    }
    sys::mount(Some(&cstring(slave)?), &console, None, libc::MS_BIND, None)
        .ctx(|| format!("bind {slave} to /dev/console"))
}

/// A connected pair for a foreground terminal: the runtime keeps one end and hands
/// the other to the container's process as its "console socket", then proxies the
/// caller's stdio to the master it receives (runc's tty.go does the same).
pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid out array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(Error::last("socketpair for the terminal"));
    }
    // SAFETY: both fds are fresh and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Receive the pty master sent by [`setup`] (the message is already queued when the
/// process reports it is ready).
pub fn recv_master(sock: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut name = [0u8; 256];
    let (_, fds) =
        crate::sync::recv_with_rights(sock.as_raw_fd(), &mut name, libc::MSG_DONTWAIT, 1)
            .map_err(|e| Error::sys("receive the pty master", e))?;
    fds.into_iter()
        .next()
        .ok_or_else(|| Error::Other("no pty master received from the container".into()))
}

/// Restores the caller's terminal settings on drop.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enter() -> RawMode {
        // SAFETY: isatty/tcgetattr on fd 0 with a zeroed termios.
        unsafe {
            if libc::isatty(0) != 1 {
                return RawMode(None);
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawMode(None);
            }
            let mut raw = t;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
            RawMode(Some(t))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: restoring settings read from the same fd.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }
}

/// Copy the caller's window size to the pty (at start and on SIGWINCH).
fn copy_winsize(master: BorrowedFd<'_>) {
    // SAFETY: ioctls with a valid winsize; failures (stdin not a tty) are ignored.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

fn write_all(fd: RawFd, mut b: &[u8]) -> bool {
    while !b.is_empty() {
        // SAFETY: writing from a live buffer.
        let n = unsafe { libc::write(fd, b.as_ptr() as *const libc::c_void, b.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return false;
        }
        b = &b[n as usize..];
    }
    true
}

/// Foreground terminal: put the caller's terminal in raw mode, copy stdin to the
/// pty master and the master to stdout, follow the window size, forward signals,
/// and return the process's exit status once it is gone (runc `tty.go`/`signals.go`).
pub fn proxy_and_wait(pid: libc::pid_t, master: OwnedFd) -> Result<i32> {
    let _raw = RawMode::enter();
    copy_winsize(master.as_fd());
    let sfd = sys::forwarded_signals_fd(libc::SFD_NONBLOCK).ctx(|| "signalfd".into())?;
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    loop {
        if let Ok((p, st)) = sys::waitpid(pid, libc::WNOHANG) {
            if p == pid {
                drain(master.as_fd(), &mut buf);
                return Ok(sys::exit_code(st));
            }
        } else {
            return Err(Error::last("waitpid"));
        }
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if master_open {
            fds.push(libc::pollfd {
                fd: master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if stdin_open {
            fds.push(libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: a valid pollfd array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::last("poll terminal"));
        }
        for f in &fds[1..] {
            if f.revents == 0 {
                continue;
            }
            // SAFETY: reading into a live buffer.
            let r = unsafe { libc::read(f.fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            let interrupted =
                r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
            if interrupted {
                continue;
            }
            if f.fd == master.as_raw_fd() {
                // 0/EIO once no process holds the slave any more.
                if r <= 0 || !write_all(1, &buf[..r as usize]) {
                    master_open = false;
                }
            } else if r <= 0 || !write_all(master.as_raw_fd(), &buf[..r as usize]) {
                // The caller's stdin ended (or the pty is gone): stop reading it.
                stdin_open = false;
            }
        }
        if fds[0].revents != 0 {
            loop {
                // SAFETY: reading one siginfo from the non-blocking signalfd.
                let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
                let r = unsafe {
                    libc::read(
                        sfd.as_raw_fd(),
                        &mut info as *mut _ as *mut libc::c_void,
                        std::mem::size_of::<libc::signalfd_siginfo>(),
                    )
                };
                if r <= 0 {
                    break;
                }
                match info.ssi_signo as libc::c_int {
                    libc::SIGCHLD => {}
                    libc::SIGWINCH => copy_winsize(master.as_fd()),
                    // SAFETY: signalling our own child.
                    sig => unsafe {
                        libc::kill(pid, sig);
                    },
                }
            }
        }
    }
}

/// Copy what is left in the master to stdout without blocking (a process left in
/// the container may still hold the slave open).
fn drain(master: BorrowedFd<'_>, buf: &mut [u8]) {
    // SAFETY: fcntl and reads on a valid fd into a live buffer.
    unsafe {
        let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        loop {
            let r = libc::read(
                master.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            );
            if r <= 0 || !write_all(1, &buf[..r as usize]) {
                break;
            }
        }
    }
}
