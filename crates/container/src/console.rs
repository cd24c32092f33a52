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
    let what = || {
        format!(
            "--console-socket {}: dial unix {}: connect",
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
            "--console-socket {}: path too long for a unix socket",
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
    let data = name.as_bytes();
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: zeroed msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space;
    // SAFETY: msg_control points at CMSG_SPACE(sizeof fd) bytes.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
    }
    loop {
        // SAFETY: msg is fully initialised.
        let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(Error::sys("send pty master to the console socket", e));
        }
    }
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
