//! The client side of the attach socket (docs/engine.md "Attach protocol"): connect
//! to a container's monitor and relay a caller's stdin and output until the
//! container exits, the caller detaches or the monitor goes away.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// The largest frame the monitor sends: one type byte and 32 KiB of output.
const MAX_FRAME: usize = 32 * 1024 + 1;
/// Stdin is sent in frames no bigger than the monitor reads.
const STDIN_CHUNK: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("container in {dir} is not running (no monitor on its attach socket)")]
    NotRunning { dir: PathBuf },
    #[error("attach socket of {dir}: {source}")]
    Connect {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("attach: {0}")]
    Io(#[source] io::Error),
    #[error("attach: writing the container's output: {0}")]
    Output(#[source] io::Error),
    #[error("attach: the monitor sent an exit message that is not understood: {0:?}")]
    Protocol(String),
    #[error("invalid detach keys {keys:?}: {reason}")]
    DetachKeys { keys: String, reason: String },
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container exited; its code (128+N for a signal) and whether the kernel
    /// OOM-killed it. `cleanup`: the monitor handed this client the removal
    /// ([`AttachConn::request_cleanup`]); it waits for the client to hang up.
    Exited {
        code: i32,
        oom_killed: bool,
        cleanup: bool,
    },
    /// The caller typed the detach keys; the container keeps running.
    Detached,
    /// The monitor closed the connection without an exit message (it was killed,
    /// or dropped this client for not keeping up).
    Closed,
}

/// Where terminal size changes come from: `fd` becomes readable on a change (a
/// SIGWINCH self-pipe or signalfd); `size` drains it and returns (rows, cols).
pub struct ResizeSource<'a> {
    pub fd: BorrowedFd<'a>,
    pub size: &'a mut dyn FnMut() -> Option<(u16, u16)>,
}

/// The caller's side of a relay.
pub struct RelayIo<'a> {
    /// The caller's stdin; `None` attaches without input (`--no-stdin`, `-d`).
    pub stdin: Option<BorrowedFd<'a>>,
    pub stdout: &'a mut dyn Write,
    /// Stderr frames (without a tty the container's stderr is separate).
    pub stderr: &'a mut dyn Write,
    /// A byte sequence on stdin that detaches instead of being sent; `None`: none.
    pub detach_keys: Option<&'a [u8]>,
    /// Terminal resizes to pass on (a tty container); the size is sent at start too.
    pub resize: Option<ResizeSource<'a>>,
}

/// A connection to a container's monitor.
#[derive(Debug)]
pub struct AttachConn {
    fd: OwnedFd,
}

/// Connects to the attach socket in `ctr_dir` through `/proc/self/fd/N/attach`,
/// which any length of `--root` fits in a socket address.
pub fn connect(ctr_dir: &Path) -> Result<AttachConn, AttachError> {
    let err = |source: io::Error| {
        if matches!(
            source.raw_os_error(),
            Some(libc::ENOENT | libc::ECONNREFUSED)
        ) {
            AttachError::NotRunning {
                dir: ctr_dir.to_path_buf(),
            }
        } else {
            AttachError::Connect {
                dir: ctr_dir.to_path_buf(),
                source,
            }
        }
    };
    let cdir = CString::new(ctr_dir.as_os_str().as_encoded_bytes())
        .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    // SAFETY: cdir is a valid C string.
    let dfd = unsafe {
        libc::open(
            cdir.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dfd < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: open just returned it.
    let dir = unsafe { OwnedFd::from_raw_fd(dfd) };
    // SAFETY: plain socket(2).
    let s = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: socket just returned it.
    let fd = unsafe { OwnedFd::from_raw_fd(s) };
    let path = format!("/proc/self/fd/{}/attach", dir.as_raw_fd());
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &c) in addr.sun_path.iter_mut().zip(path.as_bytes()) {
        *d = c as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    // SAFETY: addr is a valid sockaddr_un of len bytes (the path is < 40 bytes).
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(AttachConn { fd })
}

impl AttachConn {
    /// The connection's socket, for a caller that relays frames itself (the API
    /// service, with its own event loop).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Sets the container's terminal size (ignored by a monitor without a tty).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), AttachError> {
        send_blocking(self.fd.as_fd(), &resize_frame(rows, cols)).map_err(AttachError::Io)
    }

    /// Sends bytes to the container's stdin (at most 32 KiB per message; longer
    /// input is split).
    pub fn send_stdin(&self, data: &[u8]) -> Result<(), AttachError> {
        for chunk in data.chunks(STDIN_CHUNK) {
            let mut frame = Vec::with_capacity(chunk.len() + 1);
            frame.push(0);
            frame.extend_from_slice(chunk);
            send_blocking(self.fd.as_fd(), &frame).map_err(AttachError::Io)?;
        }
        Ok(())
    }

    /// Asks the monitor to hand this client the container's cleanup at its last
    /// exit (type 3; docs/engine.md "Attach protocol"): the exit frame then says
    /// `"cleanup":true`, and the monitor waits for this connection to close before
    /// it runs its exit command, if the container's directory is still there. A
    /// monitor without the handoff ignores the message, as it does unknown types.
    /// Returns a second descriptor of the connection, which keeps it open after
    /// [`AttachConn::relay`] has consumed this one, until the client has removed
    /// the container.
    pub fn request_cleanup(&self) -> Result<OwnedFd, AttachError> {
        send_blocking(self.fd.as_fd(), &[3]).map_err(AttachError::Io)?;
        self.fd.try_clone().map_err(AttachError::Io)
    }

    /// Tells the monitor this client's stdin ended (type 1): with `--stdin-once`
    /// the container's stdin closes; output keeps coming.
    pub fn close_stdin(&self) -> Result<(), AttachError> {
        send_blocking(self.fd.as_fd(), &[1]).map_err(AttachError::Io)
    }

    /// Relays until the container exits, the detach keys are typed, or the monitor
    /// closes the connection. Output is written as it comes; stdin is read only while
    /// the monitor takes it, and never holds up the output.
    pub fn relay(self, mut io: RelayIo<'_>) -> Result<AttachEnd, AttachError> {
        set_nonblock(self.fd.as_fd()).map_err(AttachError::Io)?;
        let mut r = Relay {
            sock: self.fd.as_fd(),
            pending: std::collections::VecDeque::new(),
            detach: Detach::new(io.detach_keys.unwrap_or_default()),
        };
        r.queue_resize(&mut io.resize);
        let mut stdin = io.stdin;
        let mut buf = vec![0u8; MAX_FRAME + 1];
        loop {
            r.flush().map_err(AttachError::Io)?;
            let ready = r
                .wait(stdin, io.resize.as_ref().map(|s| s.fd))
                .map_err(AttachError::Io)?;
            if ready.sock {
                if let Some(end) = r.read_frames(&mut buf, &mut io)? {
                    return Ok(end);
                }
            }
            if ready.stdin {
                match r.read_stdin(stdin, &mut buf[..STDIN_CHUNK]) {
                    StdinRead::Open => {}
                    StdinRead::Ended => stdin = None,
                    StdinRead::Detach => return Ok(AttachEnd::Detached),
                }
            }
            if ready.resize {
                r.queue_resize(&mut io.resize);
            }
        }
    }
}

/// What one poll found ready.
struct Ready {
    sock: bool,
    stdin: bool,
    resize: bool,
}

enum StdinRead {
    Open,
    Ended,
    Detach,
}

struct Relay<'a> {
    sock: BorrowedFd<'a>,
    pending: std::collections::VecDeque<Vec<u8>>,
    detach: Detach,
}

impl Relay<'_> {
    /// Polls the socket (for output, and for room when frames are pending), stdin
    /// (only when nothing is pending: the monitor's pace limits ours) and the
    /// resize source.
    fn wait(
        &self,
        stdin: Option<BorrowedFd<'_>>,
        resize: Option<BorrowedFd<'_>>,
    ) -> io::Result<Ready> {
        let out = if self.pending.is_empty() {
            0
        } else {
            libc::POLLOUT
        };
        let mut fds = vec![pollfd(self.sock.as_raw_fd(), libc::POLLIN | out)];
        let stdin = stdin.filter(|_| self.pending.is_empty());
        for fd in [stdin, resize].into_iter().flatten() {
            fds.push(pollfd(fd.as_raw_fd(), libc::POLLIN));
        }
        loop {
            // SAFETY: fds is a valid array of pollfd.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let stdin_ready = stdin.is_some() && fds[1].revents != 0;
        let resize_ready = resize.is_some() && fds[fds.len() - 1].revents != 0;
        Ok(Ready {
            sock: fds[0].revents != 0,
            stdin: stdin_ready,
            resize: resize_ready,
        })
    }

    fn queue_resize(&mut self, src: &mut Option<ResizeSource<'_>>) {
        if let Some(src) = src {
            if let Some((rows, cols)) = (src.size)() {
                self.pending.push_back(resize_frame(rows, cols));
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while let Some(f) = self.pending.front() {
            // SAFETY: f is valid for f.len() bytes.
            let r = unsafe {
                libc::send(
                    self.sock.as_raw_fd(),
                    f.as_ptr().cast(),
                    f.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(()),
                    // The monitor went away; its reads tell how it ended.
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                        self.pending.clear();
                        Ok(())
                    }
                    _ => Err(e),
                };
            }
            self.pending.pop_front();
        }
        Ok(())
    }

    /// Reads every frame available; `Some` when the relay is over.
    fn read_frames(
        &mut self,
        buf: &mut [u8],
        io: &mut RelayIo<'_>,
    ) -> Result<Option<AttachEnd>, AttachError> {
        let mut reset = false;
        loop {
            // SAFETY: buf is valid for buf.len() bytes.
            let n =
                unsafe { libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock if reset => Ok(Some(AttachEnd::Closed)),
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    // A monitor that closes with our frames unread in its queue (a
                    // stdin EOF sent after it stopped reading, at the exit) makes the
                    // kernel report ECONNRESET once, before the frames it sent us
                    // first (unix_release_sock; the datagram recv checks sk_err
                    // before its queue): read on, the exit frame may be there.
                    io::ErrorKind::ConnectionReset if !reset => {
                        reset = true;
                        continue;
                    }
                    io::ErrorKind::ConnectionReset => Ok(Some(AttachEnd::Closed)),
                    _ => Err(AttachError::Io(e)),
                };
            }
            let Some((&kind, payload)) = buf[..n as usize].split_first() else {
                return Ok(Some(AttachEnd::Closed));
            };
            match kind {
                1 => write_out(io.stdout, payload)?,
                2 => write_out(io.stderr, payload)?,
                3 => return parse_exit(payload).map(Some),
                // Unknown types are skipped: a newer monitor may add some.
                _ => {}
            }
        }
    }

    fn read_stdin(&mut self, stdin: Option<BorrowedFd<'_>>, buf: &mut [u8]) -> StdinRead {
        let Some(fd) = stdin else {
            return StdinRead::Ended;
        };
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                return StdinRead::Open;
            }
        }
        if n <= 0 {
            // End of input (or an unreadable one, e.g. EIO from a hung-up terminal):
            // half-close, the output keeps coming.
            self.pending.push_back(vec![1]);
            return StdinRead::Ended;
        }
        let mut frame = vec![0u8];
        let detached = self.detach.filter(&buf[..n as usize], &mut frame);
        if frame.len() > 1 {
            self.pending.push_back(frame);
        }
        if detached {
            // What was typed before the keys still reaches the container.
            let _ = self.flush();
            return StdinRead::Detach;
        }
        StdinRead::Open
    }
}

fn write_out(w: &mut dyn Write, data: &[u8]) -> Result<(), AttachError> {
    w.write_all(data)
        .and_then(|()| w.flush())
        .map_err(AttachError::Output)
}

fn parse_exit(payload: &[u8]) -> Result<AttachEnd, AttachError> {
    let bad = || AttachError::Protocol(String::from_utf8_lossy(payload).into_owned());
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|_| bad())?;
    let code = v
        .get("exit_code")
        .and_then(|c| c.as_i64())
        .and_then(|c| i32::try_from(c).ok())
        .ok_or_else(bad)?;
    let oom_killed = v
        .get("oom_killed")
        .and_then(|o| o.as_bool())
        .unwrap_or(false);
    let cleanup = v.get("cleanup").and_then(|c| c.as_bool()).unwrap_or(false);
    Ok(AttachEnd::Exited {
        code,
        oom_killed,
        cleanup,
    })
}

/// docker's escape proxy: bytes matching a prefix of the keys are held back until
/// the sequence completes (detach) or breaks (they are sent after all).
pub struct Detach {
    keys: Vec<u8>,
    matched: usize,
}

impl Detach {
    pub fn new(keys: &[u8]) -> Self {
        Detach {
            keys: keys.to_vec(),
            matched: 0,
        }
    }

    /// Appends to `out` what should reach the container; true when the keys completed.
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return false;
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = usize::from(b == self.keys[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
        false
    }
}

/// Parses docker's `--detach-keys` (e.g. `ctrl-p,ctrl-q`, `ctrl-@`, `a,ctrl-[`) into
/// the bytes a terminal sends.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, AttachError> {
    let bad = |reason: String| AttachError::DetachKeys {
        keys: keys.to_string(),
        reason,
    };
    let mut out = Vec::new();
    for part in keys.split(',') {
        let p = part.trim();
        if let Some(c) = p.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b @ (b'[' | b'\\' | b']' | b'^' | b'_')] => b - b'[' + 27,
                _ => {
                    return Err(bad(format!(
                        "{part:?}: ctrl- takes one of a-z @ [ \\ ] ^ _"
                    )))
                }
            };
            out.push(b);
        } else if p.len() == 1 && p.is_ascii() {
            out.push(p.as_bytes()[0]);
        } else {
            return Err(bad(format!(
                "{part:?} is neither a single character nor ctrl-<key>"
            )));
        }
    }
    Ok(out)
}

fn resize_frame(rows: u16, cols: u16) -> Vec<u8> {
    let mut f = vec![2u8];
    f.extend_from_slice(&rows.to_be_bytes());
    f.extend_from_slice(&cols.to_be_bytes());
    f
}

fn pollfd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn set_nonblock(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl with integer arguments on a valid descriptor.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn send_blocking(fd: BorrowedFd<'_>, frame: &[u8]) -> io::Result<()> {
    loop {
        // SAFETY: frame is valid for frame.len() bytes.
        let r = unsafe {
            libc::send(
                fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if r >= 0 {
            return Ok(());
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

    /// A client that starts relaying after the container exited: the monitor queued
    /// the exit frame and closed while our stdin's EOF frame sat unread in its
    /// queue. The kernel then reports ECONNRESET first (unix_release_sock sets it on
    /// the peer; a recv returns the error before the queue), and the frame is still
    /// there to read: the relay ends with the exit code, not `Closed`.
    #[test]
    fn an_exit_frame_sent_before_a_reset_is_read() {
        let send = |fd: &OwnedFd, frame: &[u8]| {
            // SAFETY: a valid buffer of frame.len() bytes.
            let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            assert_eq!(n as usize, frame.len());
        };
        let relay = |ours: OwnedFd| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            AttachConn { fd: ours }
                .relay(RelayIo {
                    stdin: None,
                    stdout: &mut out,
                    stderr: &mut err,
                    detach_keys: None,
                    resize: None,
                })
                .unwrap()
        };
        // Our stdin's end, which the monitor never reads; its exit frame; its close.
        let (ours, monitor) = seqpacket_pair();
        send(&ours, &[1]);
        send(&monitor, b"\x03{\"exit_code\":7,\"oom_killed\":false}");
        drop(monitor);
        assert_eq!(
            relay(ours),
            AttachEnd::Exited {
                code: 7,
                oom_killed: false,
                cleanup: false
            }
        );
        // A reset with nothing behind it is still the monitor gone.
        let (ours, monitor) = seqpacket_pair();
        send(&ours, &[1]);
        drop(monitor);
        assert_eq!(relay(ours), AttachEnd::Closed);
    }

    /// A connected SOCK_SEQPACKET pair: (the client's end, the monitor's).
    fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills two fds we then own.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: fresh fds from socketpair.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_,a").unwrap(),
            [0, 27, 31, b'a']
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn escape_proxy_holds_prefix() {
        let mut d = Detach::new(DEFAULT_DETACH_KEYS);
        let mut out = Vec::new();
        assert!(!d.filter(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        // The held ctrl-p is sent when the sequence breaks.
        assert!(!d.filter(b"c", &mut out));
        assert_eq!(out, b"ab\x10c");
        out.clear();
        assert!(!d.filter(b"\x10\x10", &mut out));
        assert_eq!(out, b"\x10");
        assert!(d.filter(b"\x11rest", &mut out));
        assert_eq!(out, b"\x10");
    }
}
