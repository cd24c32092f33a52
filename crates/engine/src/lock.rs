//! `flock` on a container's `lock` file: commands on one container from separate
//! processes are serialised, so two `start`s or a `start` and an `rm` never interleave
//! (the "never corrupt its record"). The kernel drops the lock when the holder
//! dies, so `kill -9` of a command never leaves it held.

use crate::error::{io_err, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

pub struct CtrLock {
    _fd: OwnedFd,
}

fn open_lock(ctr_dir: &Path) -> Result<OwnedFd> {
    let p = ctr_dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io_err(&p))?;
    Ok(OwnedFd::from(f))
}

impl CtrLock {
    pub fn acquire(ctr_dir: &Path) -> Result<CtrLock> {
        let fd = open_lock(ctr_dir)?;
        loop {
            // SAFETY: flock on an fd we own.
            let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(CtrLock { _fd: fd });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io_err(ctr_dir.join("lock"))(e));
            }
        }
    }

    /// The lock if nobody holds it, else None (the GC of half-created containers
    /// must never take a directory a live `create` is filling).
    pub fn try_acquire(ctr_dir: &Path) -> Result<Option<CtrLock>> {
        let fd = open_lock(ctr_dir)?;
        // SAFETY: flock on an fd we own.
        let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        Ok((r == 0).then_some(CtrLock { _fd: fd }))
    }
}
