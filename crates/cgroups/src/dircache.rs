//! Descriptors of the directories that hold many containers' cgroups, for reading
//! the same few files of many cgroups ([`crate::Manager::usage_in`], `stats` over
//! every running container).
//!
//! Why: each open of `/sys/fs/cgroup/memory/oxcart/<id>/memory.stat` walks seven
//! path components, and on cgroupfs every one costs a dentry lookup, a kernfs
//! revalidation and a permission check (`perf`: the largest kernel share of
//! `stats --no-stream`). With the parent (`/sys/fs/cgroup/memory/oxcart`) opened
//! once, each file is `openat(parent, "<id>/memory.stat")`: two components.
//! The answers of the files every container shares (the unified hierarchy's
//! `cgroup.controllers`) are kept too, so a v2 host reads them once, not per
//! container and controller.
//!
//! A cache is for one pass over the containers (a `stats` frame): the parent may be
//! removed and made again between frames (a cleanup removes an emptied
//! `cgroup_parent`), so the caller clears it each frame — and a name not found
//! through a kept descriptor is looked up again by its path, so a stale descriptor
//! can only cost a second lookup, never a wrong answer.

use crate::error::{CgroupError, Result};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Parent-directory descriptors and shared files, safe to use from several threads.
#[derive(Debug, Default)]
pub struct DirCache {
    /// `O_PATH` descriptors by directory; `None` where the open failed (then reads
    /// go by path, which reports the error as before).
    parents: Mutex<Vec<(PathBuf, Option<Arc<OwnedFd>>)>>,
    /// Whole files read once (`None`: could not be read).
    shared: Mutex<Vec<(PathBuf, Option<Arc<str>>)>>,
}

impl DirCache {
    pub fn new() -> DirCache {
        DirCache::default()
    }

    /// Forget every descriptor and file (the next frame of a stream).
    pub fn clear(&mut self) {
        self.parents
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.shared
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn parent_fd(&self, dir: &Path) -> Option<Arc<OwnedFd>> {
        let mut g = self.parents.lock().unwrap_or_else(PoisonError::into_inner);
        // By bytes: the callers build each parent's path the same way, and
        // `Path`'s component-wise equality was a visible part of `stats`.
        if let Some((_, fd)) = g.iter().find(|(p, _)| p.as_os_str() == dir.as_os_str()) {
            return fd.clone();
        }
        let fd = crate::fsutil::open_fd(dir, libc::O_PATH | libc::O_DIRECTORY)
            .ok()
            .map(Arc::new);
        g.push((dir.to_path_buf(), fd.clone()));
        fd
    }

    /// The text of `dir/file`, a single-record kernel file ([`crate::seqfile`]),
    /// opened relative to `dir`'s parent when that is open; the same result and
    /// error as [`crate::fsutil::read_record`].
    pub(crate) fn read(&self, dir: &Path, file: &str) -> Result<String> {
        if let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) {
            if let Some(s) = self.read_below(parent, name.as_bytes(), file) {
                return Ok(s);
            }
        }
        crate::fsutil::read_record(dir, file)
    }

    /// The text of `parent/child/file`, as [`DirCache::read`] of `parent/child`
    /// reads it, without splitting a path per read (`stats` reads five files of
    /// each of many children of one parent).
    pub(crate) fn read_child(&self, parent: &Path, child: &str, file: &str) -> Result<String> {
        if let Some(s) = self.read_below(parent, child.as_bytes(), file) {
            return Ok(s);
        }
        crate::fsutil::read_record(&parent.join(child), file)
    }

    /// `child/file` read relative to `parent`'s descriptor; `None` where that is
    /// not open or the read fails — a descriptor may be stale, and the path then
    /// decides (and names the error as before).
    fn read_below(&self, parent: &Path, child: &[u8], file: &str) -> Option<String> {
        let fd = self.parent_fd(parent)?;
        let mut rel = Vec::with_capacity(child.len() + 1 + file.len() + 1);
        rel.extend_from_slice(child);
        rel.push(b'/');
        rel.extend_from_slice(file.as_bytes());
        openat_read(&fd, rel).ok()
    }

    /// A file every container shares, read once per cache.
    pub(crate) fn shared(&self, dir: &Path, file: &str) -> Option<Arc<str>> {
        let path = dir.join(file);
        let mut g = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, s)) = g.iter().find(|(p, _)| *p == path) {
            return s.clone();
        }
        let s = crate::fsutil::read_string_at(&path).ok().map(Arc::from);
        g.push((path, s.clone()));
        s
    }
}

/// openat(2) `rel` below `dir` and read it whole, as a `seq_file`.
fn openat_read(dir: &OwnedFd, mut rel: Vec<u8>) -> io::Result<String> {
    rel.push(0);
    let rel = std::ffi::CStr::from_bytes_with_nul(&rel)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    crate::seqfile::read_to_string(open_below(dir.as_fd(), rel)?)
}

/// openat(2) `rel` below `dir`, read-only and close-on-exec: one lookup of a
/// relative path where many files share a parent (here the cgroups' parents, in
/// the engine the containers' directory).
pub fn open_below(dir: BorrowedFd<'_>, rel: &std::ffi::CStr) -> io::Result<File> {
    // SAFETY: rel is NUL-terminated; the fd is owned below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            rel.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

impl CgroupError {
    /// Whether this is a read of a file that does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, CgroupError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_by_path_and_falls_back() {
        let top = std::env::temp_dir().join(format!("dircache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        let parent = top.join("p");
        let cg = parent.join("c1");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("f"), "42\n").unwrap();
        let mut c = DirCache::new();
        assert_eq!(c.read(&cg, "f").unwrap(), "42\n");
        // Read through the parent's descriptor, opened once.
        assert!(matches!(&c.parents.lock().unwrap()[..], [(p, Some(_))] if *p == parent));
        assert!(c.read(&cg, "missing").unwrap_err().is_not_found());
        // The parent made again after it was opened: the stale descriptor finds
        // nothing, the path does.
        std::fs::remove_dir_all(&parent).unwrap();
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("f"), "7\n").unwrap();
        assert_eq!(c.read(&cg, "f").unwrap(), "7\n");
        assert_eq!(c.shared(&cg, "f").as_deref(), Some("7\n"));
        std::fs::write(cg.join("f"), "8\n").unwrap();
        assert_eq!(c.shared(&cg, "f").as_deref(), Some("7\n"));
        c.clear();
        assert_eq!(c.shared(&cg, "f").as_deref(), Some("8\n"));
        assert_eq!(c.shared(&cg, "missing"), None);
        std::fs::remove_dir_all(&top).unwrap();
    }
}
