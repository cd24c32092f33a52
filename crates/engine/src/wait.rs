//! Waiting for processes that are not our children (a container's init, a monitor):
//! `pidfd_open` + `poll`, so no polling loop and no pid-reuse race once the pidfd is
//! open (the caller checks the pid's start time before).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    // SAFETY: a plain syscall; the result is a new fd we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    // SAFETY: fd is a fresh descriptor returned by the kernel.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Wait until `pid` exits or `timeout` passes; true if it is gone. A process that
/// is already gone (or never existed) counts as exited.
pub fn wait_pid_exit(pid: i32, timeout: Option<Duration>) -> bool {
    let Some(fd) = pidfd_open(pid) else {
        return true;
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32,
        };
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            return true;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // poll on a pidfd cannot fail otherwise; treat as gone rather than spin.
            return true;
        }
        if r == 0 && ms >= 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
    }
}

/// Poll `f` every few milliseconds until it is true or `timeout` passes.
pub fn until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut step = Duration::from_millis(1);
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(step);
        step = (step * 2).min(Duration::from_millis(20));
    }
}
