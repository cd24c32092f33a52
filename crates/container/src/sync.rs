//! The parent↔init channel: a SOCK_SEQPACKET socketpair, one typed message per
//! packet (youki's habit of typed messages, without its threads).

use crate::error::{Error, Result};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// parent → init: id maps written; go on.
    Go,
    /// parent → init: init's cgroups are ready and it is in them once it has
    /// joined the v1 ones it was sent (`TasksFd`). init joins its v1 cgroups itself
    /// and is cloned into its cgroup2 one (oxcart_cgroups::join); only where the
    /// kernel refused CLONE_INTO_CGROUP does the parent move it, which waits for an
    /// RCU grace period (~10 ms here). A rootful create without a user namespace
    /// makes the v1 cgroups and sets the limits only after the clone, and sends
    /// their `tasks` files. init sets up its mounts meanwhile and waits for this
    /// before anything that needs or must run in the container's cgroups (cgroup
    /// mounts, cgroup namespace, hooks, seccomp listener, ready).
    Joined,
    /// init → parent: everything is set up; init now waits on exec.fifo.
    Ready,
    /// init → parent: setup failed with this message.
    Error(String),
    /// init → parent: init could not switch to the read-only view of the
    /// runtime binary (crate::selfexe::become_in_init), and stops.
    SealFailed(String),
    /// init → parent: mounts done, before pivot_root; run createRuntime/createContainer
    /// hooks now and answer `Continue`.
    Hooks,
    /// parent → init: hooks done.
    Continue,
    /// init → parent: the seccomp notify listener fd follows (SCM_RIGHTS).
    SeccompFd,
    /// parent → init, before `Joined`: the v1 `tasks` file at this path, open
    /// for writing (SCM_RIGHTS), made after the clone (see `Joined`).
    TasksFd(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Go => b"G".to_vec(),
            Msg::Joined => b"J".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::Error(m) => {
                let mut v = b"E".to_vec();
                v.extend_from_slice(m.as_bytes());
                v
            }
            Msg::SealFailed(m) => {
                let mut v = b"X".to_vec();
                v.extend_from_slice(m.as_bytes());
                v
            }
            Msg::Hooks => b"H".to_vec(),
            Msg::Continue => b"C".to_vec(),
            Msg::SeccompFd => b"S".to_vec(),
            Msg::TasksFd(p) => {
                let mut v = b"T".to_vec();
                v.extend_from_slice(p.as_bytes());
                v
            }
        }
    }
    fn decode(b: &[u8]) -> Option<Msg> {
        Some(match b.first()? {
            b'G' => Msg::Go,
            b'J' => Msg::Joined,
            b'R' => Msg::Ready,
            b'E' => Msg::Error(String::from_utf8_lossy(&b[1..]).into_owned()),
            b'X' => Msg::SealFailed(String::from_utf8_lossy(&b[1..]).into_owned()),
            b'H' => Msg::Hooks,
            b'C' => Msg::Continue,
            b'S' => Msg::SeccompFd,
            b'T' => Msg::TasksFd(String::from_utf8_lossy(&b[1..]).into_owned()),
            _ => return None,
        })
    }
}

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid out array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(Error::last("socketpair"));
    }
    // SAFETY: both fds are fresh and owned by us.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((Channel { fd: a }, Channel { fd: b }))
}

/// sendmsg(2) of `data`, with `fd` attached as SCM_RIGHTS when given; retries EINTR.
/// The one implementation of fd passing (init channel, console and pidfd sockets).
pub(crate) fn send_with_rights(sock: RawFd, data: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: zeroed msghdr is a valid initial value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space;
        // SAFETY: msg_control points at a buffer of CMSG_SPACE(sizeof fd) bytes.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
        }
    }
    loop {
        // SAFETY: msg is fully initialised above.
        let r = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// recvmsg(2) into `buf`, taking an SCM_RIGHTS fd if one came (close-on-exec);
/// retries EINTR. Returns the data length (0 at EOF) and the fd.
pub(crate) fn recv_with_rights(
    sock: RawFd,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
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
    let n = loop {
        // SAFETY: msg points at live buffers.
        let r = unsafe { libc::recvmsg(sock, &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    };
    let mut fd = None;
    // SAFETY: iterating the control messages the kernel filled in.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd);
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n, fd))
}

impl Channel {
    pub fn send(&self, m: &Msg) -> Result<()> {
        self.send_with_fd(m, None)
    }

    pub fn send_with_fd(&self, m: &Msg, fd: Option<RawFd>) -> Result<()> {
        send_with_rights(self.fd.as_raw_fd(), &m.encode(), fd)
            .map_err(|e| Error::sys("send to init channel", e))
    }

    /// Receive one message; `None` at EOF (the peer exited or closed).
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 65536];
        let mut r = recv_with_rights(self.fd.as_raw_fd(), &mut buf, 0);
        if matches!(&r, Err(e) if e.raw_os_error() == Some(libc::ECONNRESET)) {
            // A peer that exits with our messages unread leaves ECONNRESET pending on
            // our end; recvmsg reports it once, before the messages the peer sent
            // (its error report among them). Read again to get those.
            r = recv_with_rights(self.fd.as_raw_fd(), &mut buf, 0);
        }
        let (n, fd) = r.map_err(|e| Error::sys("receive from init channel", e))?;
        if n == 0 {
            return Ok(None);
        }
        let m = Msg::decode(&buf[..n])
            .ok_or_else(|| Error::Other("malformed message on init channel".into()))?;
        Ok(Some((m, fd)))
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}
