//! The parent↔init channel: a SOCK_SEQPACKET socketpair, one typed message per
//! packet (youki's habit of typed messages, without its threads).

use crate::error::{Error, Result};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// parent → init: id maps written; go on.
    Go,
    /// parent → init: init's cgroups are ready, limits set, and it is in them
    /// once it has joined the v1 ones it was sent (`TasksFds`). init joins its v1
    /// cgroups itself and is cloned into its cgroup2 one (oxcart_cgroups::join);
    /// only where the kernel refused CLONE_INTO_CGROUP does the parent move it,
    /// which waits for an RCU grace period (~10 ms here). A rootful create without
    /// a user namespace makes the v1 cgroups after the clone, sends their `tasks`
    /// files and `CgroupsMade` (init needs only that for its cgroup mounts), and
    /// then sets the limits. init waits for this before
    /// anything of the container runs in its cgroups (hooks, seccomp listener,
    /// ready).
    Joined,
    /// init → parent: everything is set up; init now waits on exec.fifo.
    Ready,
    /// parent → init, after `Joined`: `state.json` is written, so `delete` can
    /// find and kill init from now on. init reports `Ready` (and so may outlive
    /// the parent) only after it; a killed `create` that never sent it takes
    /// init with it (init's parent-death signal, or EOF here). runc writes its
    /// state before `procRun` for the same reason.
    Recorded,
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
    /// parent → init, first after `Go` where the parent makes init's network
    /// namespace (rootful, no user namespace): that namespace, as an fd
    /// (SCM_RIGHTS), for init to enter with setns(2).
    NetNs,
    /// parent → init, after `TasksFds`: the v1 cgroups made after the clone
    /// exist and init has all their `tasks` files, which it writes at `Joined`,
    /// after the limits; enough for its cgroup mounts.
    CgroupsMade,
    /// parent → init, before `Joined`: the v1 `tasks` files at these paths, open
    /// for writing, one SCM_RIGHTS fd each in the same order, made after the
    /// clone (see `Joined`). One message for all, not one per hierarchy.
    TasksFds(Vec<String>),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Go => b"G".to_vec(),
            Msg::Joined => b"J".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::Recorded => b"D".to_vec(),
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
            Msg::NetNs => b"N".to_vec(),
            Msg::CgroupsMade => b"M".to_vec(),
            Msg::Hooks => b"H".to_vec(),
            Msg::Continue => b"C".to_vec(),
            Msg::SeccompFd => b"S".to_vec(),
            Msg::TasksFds(paths) => {
                // NUL cannot be in a path, so it separates them.
                let mut v = b"T".to_vec();
                v.extend_from_slice(paths.join("\0").as_bytes());
                v
            }
        }
    }
    fn decode(b: &[u8]) -> Option<Msg> {
        Some(match b.first()? {
            b'G' => Msg::Go,
            b'J' => Msg::Joined,
            b'R' => Msg::Ready,
            b'D' => Msg::Recorded,
            b'E' => Msg::Error(String::from_utf8_lossy(&b[1..]).into_owned()),
            b'X' => Msg::SealFailed(String::from_utf8_lossy(&b[1..]).into_owned()),
            b'N' => Msg::NetNs,
            b'M' => Msg::CgroupsMade,
            b'H' => Msg::Hooks,
            b'C' => Msg::Continue,
            b'S' => Msg::SeccompFd,
            b'T' => Msg::TasksFds(
                String::from_utf8_lossy(&b[1..])
                    .split('\0')
                    .map(str::to_string)
                    .collect(),
            ),
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

/// The most fds one message on the init channel carries: the v1 `tasks` files
/// of a create, one per hierarchy (the kernel's SCM_MAX_FD is 253).
pub(crate) const MAX_FDS: usize = 32;

/// The control buffer size for `n` SCM_RIGHTS fds.
fn rights_space(n: usize) -> usize {
    // SAFETY: CMSG_SPACE is a pure computation.
    unsafe { libc::CMSG_SPACE((n * std::mem::size_of::<RawFd>()) as u32) as usize }
}

/// sendmsg(2) of `data`, with `fds` attached as one SCM_RIGHTS message when there
/// are any; retries EINTR. The one implementation of fd passing (init channel,
/// console and pidfd sockets).
pub(crate) fn send_with_rights(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let space = rights_space(fds.len());
    let mut cbuf = vec![0u8; space];
    // SAFETY: zeroed msghdr is a valid initial value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space;
        // SAFETY: msg_control points at a buffer of CMSG_SPACE for all of `fds`.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
            let data = libc::CMSG_DATA(c) as *mut RawFd;
            for (i, fd) in fds.iter().enumerate() {
                std::ptr::write_unaligned(data.add(i), *fd);
            }
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

/// recvmsg(2) into `buf`, taking up to `max_fds` SCM_RIGHTS fds (close-on-exec);
/// retries EINTR. Returns the data length (0 at EOF) and the fds; more fds than
/// that are an error (the kernel closed the ones that did not fit).
pub(crate) fn recv_with_rights(
    sock: RawFd,
    buf: &mut [u8],
    flags: libc::c_int,
    max_fds: usize,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let space = rights_space(max_fds);
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
    let mut fds = Vec::new();
    // SAFETY: iterating the control messages the kernel filled in; each
    // SCM_RIGHTS payload is cmsg_len - CMSG_LEN(0) bytes of fds.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::other(format!(
            "more than {max_fds} file descriptors in one message"
        )));
    }
    Ok((n, fds))
}

impl Channel {
    pub fn send(&self, m: &Msg) -> Result<()> {
        self.send_with_fd(m, None)
    }

    pub fn send_with_fd(&self, m: &Msg, fd: Option<RawFd>) -> Result<()> {
        self.send_with_fds(m, fd.as_slice())
    }

    /// Send `m` with `fds` (at most [`MAX_FDS`]) attached.
    pub fn send_with_fds(&self, m: &Msg, fds: &[RawFd]) -> Result<()> {
        send_with_rights(self.fd.as_raw_fd(), &m.encode(), fds)
            .map_err(|e| Error::sys("send to init channel", e))
    }

    /// Receive one message and the fd that came with it, if any; `None` at EOF
    /// (the peer exited or closed).
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        Ok(self.recv_fds()?.map(|(m, fds)| (m, fds.into_iter().next())))
    }

    /// [`Channel::recv`] of a message that may carry several fds.
    pub fn recv_fds(&self) -> Result<Option<(Msg, Vec<OwnedFd>)>> {
        let mut buf = vec![0u8; 65536];
        let mut r = recv_with_rights(self.fd.as_raw_fd(), &mut buf, 0, MAX_FDS);
        if matches!(&r, Err(e) if e.raw_os_error() == Some(libc::ECONNRESET)) {
            // A peer that exits with our messages unread leaves ECONNRESET pending on
            // our end; recvmsg reports it once, before the messages the peer sent
            // (its error report among them). Read again to get those.
            r = recv_with_rights(self.fd.as_raw_fd(), &mut buf, 0, MAX_FDS);
        }
        let (n, fds) = r.map_err(|e| Error::sys("receive from init channel", e))?;
        if n == 0 {
            return Ok(None);
        }
        let m = Msg::decode(&buf[..n])
            .ok_or_else(|| Error::Other("malformed message on init channel".into()))?;
        Ok(Some((m, fds)))
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ino(fd: RawFd) -> u64 {
        // SAFETY: fstat fills the zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
        st.st_ino
    }

    #[test]
    fn one_message_carries_every_tasks_file_in_order() {
        let (a, b) = pair().unwrap();
        let files: Vec<std::fs::File> = ["/proc/self/stat", "/dev/null", "/proc/self/status"]
            .iter()
            .map(|p| std::fs::File::open(p).unwrap())
            .collect();
        let fds: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        let paths = vec![
            "/a/tasks".to_string(),
            "/b b/tasks".into(),
            "/c/tasks".into(),
        ];
        a.send_with_fds(&Msg::TasksFds(paths.clone()), &fds)
            .unwrap();
        let (m, got) = b.recv_fds().unwrap().unwrap();
        assert_eq!(m, Msg::TasksFds(paths));
        assert_eq!(got.len(), 3);
        for (sent, recvd) in fds.iter().zip(&got) {
            assert_eq!(ino(*sent), ino(recvd.as_raw_fd()));
        }
    }

    #[test]
    fn more_fds_than_the_receiver_takes_is_an_error() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        let fds = vec![f.as_raw_fd(); MAX_FDS + 1];
        a.send_with_fds(&Msg::TasksFds(vec![String::new(); MAX_FDS + 1]), &fds)
            .unwrap();
        let err = b.recv_fds().unwrap_err().to_string();
        assert!(err.contains("more than 32 file descriptors"), "{err}");
    }
}
