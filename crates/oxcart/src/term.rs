//! The caller's terminal for `run -it` and `attach`: raw mode while attached,
//! its size, and a descriptor that becomes readable on SIGWINCH for the attach
//! loop (oxcart_engine::attach::ResizeSource) to poll.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Raw mode on a terminal until dropped, as docker's CLI sets it for `-it` (moby/term
/// MakeRaw is cfmakeraw(3)): keys such as ctrl-c and ctrl-p go to the container as
/// bytes, and the container's tty does the echoing.
pub struct RawMode {
    fd: OwnedFd,
    saved: libc::termios,
}

impl RawMode {
    /// Switches `fd` (a terminal) to raw mode.
    pub fn enable(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        // Our own descriptor: restoring on drop must not depend on the caller's.
        let fd = fd.try_clone_to_owned()?;
        // SAFETY: termios is plain data, filled by tcgetattr.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor and termios pointer.
        if unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut saved) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        // SAFETY: raw is a valid termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: valid descriptor and termios pointer.
        if unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &raw) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes read in enable(); nothing to do on failure
        // (the terminal may be gone).
        unsafe { libc::tcsetattr(self.fd.as_raw_fd(), libc::TCSANOW, &self.saved) };
    }
}

/// A terminal's size as (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    // SAFETY: winsize is plain data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((ws.ws_row, ws.ws_col))
}

/// The write end of the SIGWINCH self-pipe, for the signal handler.
static WINCH_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe (EAGAIN) already says
        // "resized", so the result does not matter.
        unsafe { libc::write(fd, b"w".as_ptr().cast(), 1) };
    }
}

/// SIGWINCH as a readable descriptor (a self-pipe: unlike a signalfd it works
/// without blocking the signal in every thread). One at a time per process.
pub struct Winch {
    read: OwnedFd,
    write: OwnedFd,
    old: libc::sigaction,
}

impl Winch {
    pub fn new() -> io::Result<Winch> {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 just returned them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        if WINCH_FD
            .compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a SIGWINCH watcher already exists",
            ));
        }
        // SAFETY: sigaction is plain data; the handler only calls write(2).
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_winch as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        // SAFETY: sa is initialised; old receives the previous disposition.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaction(libc::SIGWINCH, &sa, &mut old) } < 0 {
            WINCH_FD.store(-1, Ordering::SeqCst);
            return Err(io::Error::last_os_error());
        }
        Ok(Winch { read, write, old })
    }

    /// Readable after a SIGWINCH; poll it.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the pipe; true if a SIGWINCH came since the last call.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut any = false;
        // SAFETY: buf is valid for its length; the pipe is non-blocking.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
            any = true;
        }
        any
    }
}

impl Drop for Winch {
    fn drop(&mut self) {
        // SAFETY: restoring the disposition saved in new().
        unsafe { libc::sigaction(libc::SIGWINCH, &self.old, std::ptr::null_mut()) };
        let raw: RawFd = self.write.as_raw_fd();
        let _ = WINCH_FD.compare_exchange(raw, -1, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// docker's prune confirmation (cli/command's `PromptForConfirmation`): the warning
/// and `Are you sure you want to continue? [y/N] ` on stdout, one line read from
/// stdin — a terminal or not; end of input is a no — and only `y`/`Y` is a yes.
pub fn confirm(warning: &str) -> io::Result<bool> {
    use io::{BufRead, Write};
    let mut out = io::stdout().lock();
    write!(out, "{warning}\nAre you sure you want to continue? [y/N] ")?;
    out.flush()?;
    let mut s = String::new();
    io::stdin().lock().read_line(&mut s)?;
    let answer = s.strip_suffix('\n').unwrap_or(&s);
    let answer = answer.strip_suffix('\r').unwrap_or(answer);
    Ok(answer.eq_ignore_ascii_case("y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real pseudo-terminal pair: (master, slave).
    fn pty() -> (OwnedFd, OwnedFd) {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty writes two descriptors.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: openpty returned them.
        unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
    }

    fn lflag(fd: BorrowedFd<'_>) -> libc::tcflag_t {
        // SAFETY: termios filled by tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer.
        assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
        t.c_lflag
    }

    #[test]
    fn raw_mode_restored_on_drop() {
        let (_m, s) = pty();
        assert_ne!(lflag(s.as_fd()) & libc::ICANON, 0);
        {
            let _raw = RawMode::enable(s.as_fd()).unwrap();
            assert_eq!(
                lflag(s.as_fd()) & (libc::ICANON | libc::ECHO | libc::ISIG),
                0
            );
        }
        assert_ne!(lflag(s.as_fd()) & libc::ICANON, 0);
    }

    #[test]
    fn size_and_sigwinch() {
        let (m, s) = pty();
        let ws = libc::winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a valid winsize.
        assert_eq!(
            unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
            0
        );
        assert_eq!(window_size(s.as_fd()).unwrap(), (33, 101));
        let w = Winch::new().unwrap();
        assert!(!w.drain());
        // SAFETY: signalling ourselves; the handler is installed.
        unsafe { libc::raise(libc::SIGWINCH) };
        assert!(w.drain());
        assert!(Winch::new().is_err(), "one watcher at a time");
    }
}
