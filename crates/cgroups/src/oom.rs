//! OOM-kill notification.
//!
//! * v1: an eventfd registered for `memory.oom_control` through
//!   `cgroup.event_control` (Documentation/admin-guide/cgroup-v1/memory.rst
//!   §9 "OOM Control"); the kernel also signals it when the cgroup is removed.
//! * v2: the `oom_kill` counter of `memory.events`, watched with inotify
//!   (cgroup-v2.rst: "a value change in this file generates a file modified
//!   event"); removal of the cgroup shows up as IN_IGNORED.

use crate::apply::Target;
use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::manager::Manager;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What [`OomWatcher::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomEvent {
    /// This many OOM events since the last check (at least 1).
    Oom(u64),
    /// The cgroup was removed; no more events will come.
    CgroupGone,
    /// The timeout passed without an event.
    Timeout,
}

enum Kind {
    V1 {
        efd: OwnedFd,
        // Kept open: the registration lives as long as this file.
        _ctl: File,
        dir: PathBuf,
    },
    V2 {
        ino: OwnedFd,
        dir: PathBuf,
        last: u64,
        gone: bool,
    },
}

/// Watches one cgroup for OOM kills. Poll [`OomWatcher::as_fd`] for
/// readability in an event loop and call [`OomWatcher::check`], or block in
/// [`OomWatcher::wait`].
pub struct OomWatcher {
    kind: Kind,
}

fn cvt(r: libc::c_int, op: &str) -> Result<libc::c_int> {
    if r < 0 {
        Err(CgroupError::sys(op, io::Error::last_os_error()))
    } else {
        Ok(r)
    }
}

impl Manager {
    /// Start watching this cgroup for OOM kills.
    pub fn oom_watcher(&self) -> Result<OomWatcher> {
        match self.target("memory", "memory", "oom")? {
            Target::V1(d) => {
                // SAFETY: eventfd has no memory preconditions; fd owned below.
                let fd = cvt(
                    unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) },
                    "eventfd",
                )?;
                // SAFETY: fresh fd.
                let efd = unsafe { OwnedFd::from_raw_fd(fd) };
                let ctl = File::open(d.join("memory.oom_control")).map_err(|source| {
                    CgroupError::Read {
                        path: d.join("memory.oom_control"),
                        source,
                    }
                })?;
                fsutil::write(
                    d,
                    "cgroup.event_control",
                    &format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd()),
                )?;
                Ok(OomWatcher {
                    kind: Kind::V1 {
                        efd,
                        _ctl: ctl,
                        dir: d.to_path_buf(),
                    },
                })
            }
            Target::V2(d) => {
                // SAFETY: no preconditions; fd owned below.
                let fd = cvt(
                    unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) },
                    "inotify_init1",
                )?;
                // SAFETY: fresh fd.
                let ino = unsafe { OwnedFd::from_raw_fd(fd) };
                let path = d.join("memory.events");
                let c =
                    CString::new(path.as_os_str().as_bytes()).map_err(|_| CgroupError::Path {
                        path: path.display().to_string(),
                        msg: "contains a NUL byte".into(),
                    })?;
                // SAFETY: valid fd and NUL-terminated path.
                cvt(
                    unsafe {
                        libc::inotify_add_watch(ino.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY)
                    },
                    &format!("inotify_add_watch {}", path.display()),
                )?;
                let last = oom_kills(d)?;
                Ok(OomWatcher {
                    kind: Kind::V2 {
                        ino,
                        dir: d.to_path_buf(),
                        last,
                        gone: false,
                    },
                })
            }
        }
    }
}

fn oom_kills(d: &std::path::Path) -> Result<u64> {
    Ok(fsutil::read_flat_keyed(d, "memory.events")?
        .into_iter()
        .find(|(k, _)| k == "oom_kill")
        .map_or(0, |(_, v)| v))
}

impl AsFd for OomWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { efd, .. } => efd.as_fd(),
            Kind::V2 { ino, .. } => ino.as_fd(),
        }
    }
}

impl OomWatcher {
    /// Non-blocking: how many OOM events happened since the last call, or
    /// `CgroupGone`. `Timeout` means "nothing new".
    pub fn check(&mut self) -> Result<OomEvent> {
        match &mut self.kind {
            Kind::V1 { efd, dir, .. } => {
                let mut buf = [0u8; 8];
                // SAFETY: reading 8 bytes into an 8-byte buffer.
                let n = unsafe { libc::read(efd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() == Some(libc::EAGAIN) {
                        return Ok(if dir.exists() {
                            OomEvent::Timeout
                        } else {
                            OomEvent::CgroupGone
                        });
                    }
                    return Err(CgroupError::sys("read(eventfd)", e));
                }
                // The eventfd also fires when the cgroup goes away.
                if !dir.exists() {
                    return Ok(OomEvent::CgroupGone);
                }
                Ok(OomEvent::Oom(u64::from_ne_bytes(buf).max(1)))
            }
            Kind::V2 {
                ino,
                dir,
                last,
                gone,
            } => {
                let mut buf = [0u8; 4096];
                loop {
                    // SAFETY: reading into a buffer of the given size.
                    let n =
                        unsafe { libc::read(ino.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                    if n <= 0 {
                        break;
                    }
                    let mut off = 0usize;
                    while off + std::mem::size_of::<libc::inotify_event>() <= n as usize {
                        // SAFETY: the kernel wrote whole inotify_event records.
                        let ev: libc::inotify_event =
                            unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
                        if ev.mask & libc::IN_IGNORED != 0 {
                            *gone = true;
                        }
                        off += std::mem::size_of::<libc::inotify_event>() + ev.len as usize;
                    }
                }
                if *gone || !dir.exists() {
                    return Ok(OomEvent::CgroupGone);
                }
                let now = oom_kills(dir)?;
                if now > *last {
                    let d = now - *last;
                    *last = now;
                    return Ok(OomEvent::Oom(d));
                }
                Ok(OomEvent::Timeout)
            }
        }
    }

    /// Block until an OOM event, the cgroup's removal, or `timeout`.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<OomEvent> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            match self.check()? {
                OomEvent::Timeout => {}
                ev => return Ok(ev),
            }
            let ms = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(OomEvent::Timeout);
                    }
                    left.as_millis().min(i32::MAX as u128) as i32
                }
                None => -1,
            };
            let mut pfd = libc::pollfd {
                fd: self.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(CgroupError::sys("poll", e));
                }
            }
        }
    }
}
