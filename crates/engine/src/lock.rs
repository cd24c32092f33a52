//! `flock`s: on a container's `lock` file, so commands on one container from separate
//! processes are serialised (two `start`s, or a `start` and an `rm`, never interleave:
//! the "never corrupt its record"); and the one file lock the network host
//! lock and each volume's lock use too. The kernel drops a lock when its holder dies,
//! so `kill -9` of a command never leaves one held.

use crate::error::{io_err, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// An exclusive `flock` on a file (made if missing), held until dropped.
pub struct FileLock {
    _fd: OwnedFd,
}

fn open_lock(path: &Path) -> std::io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

impl FileLock {
    /// Wait for the lock.
    pub fn acquire(path: &Path) -> std::io::Result<FileLock> {
        let fd = open_lock(path)?;
        loop {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock { _fd: fd });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The lock if nobody holds it, else None.
    pub fn try_acquire(path: &Path) -> std::io::Result<Option<FileLock>> {
        let fd = open_lock(path)?;
        // SAFETY: flock on an fd we own.
        let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        Ok((r == 0).then_some(FileLock { _fd: fd }))
    }
}

/// The lock of one container (`<ctr-dir>/lock`).
pub struct CtrLock {
    _lock: FileLock,
}

impl CtrLock {
    pub fn acquire(ctr_dir: &Path) -> Result<CtrLock> {
        let p = ctr_dir.join("lock");
        let l = FileLock::acquire(&p).map_err(io_err(&p))?;
        Ok(CtrLock { _lock: l })
    }

    /// The lock if nobody holds it, else None (the GC of half-created containers
    /// must never take a directory a live `create` is filling).
    pub fn try_acquire(ctr_dir: &Path) -> Result<Option<CtrLock>> {
        let p = ctr_dir.join("lock");
        let l = FileLock::try_acquire(&p).map_err(io_err(&p))?;
        Ok(l.map(|l| CtrLock { _lock: l }))
    }
}
