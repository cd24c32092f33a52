//! Small, strict helpers for cgroup control files.
//!
//! Every value goes to the kernel in ONE write(2): cgroupfs parses each write
//! as a whole (a short write would be a different value), so a partial write
//! is an error rather than something to retry.

use crate::error::{CgroupError, Result};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// open(2) `path` with `flags` (O_CLOEXEC added); the caller names the error.
pub(crate) fn open_fd(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: c is NUL-terminated; the fd is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write: {n} of {} bytes", value.len()),
        ));
    }
    Ok(())
}

/// Write `value` to `dir/file`; the error names the path and value.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Write `value` to `dir/file` on behalf of the resource field `field`.
pub(crate) fn write_field(field: &str, dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    write_raw(&path, value).map_err(|source| CgroupError::FieldWrite {
        field: field.to_string(),
        path,
        value: value.to_string(),
        source,
    })
}

pub(crate) fn read_string_at(path: &Path) -> Result<String> {
    // cgroupfs files report size 0, so `File::read_to_string` asks for the size
    // (statx) and the position (lseek), then reads up from a 32-byte probe: 6–9
    // syscalls a file, and `stats` reads 7 files per container. Reading through
    // `take` skips the size hint, and the page-sized buffer takes any of them in one
    // read (memory.stat, the longest, is ~1.5 KB): open, read, read (EOF), close.
    let mut s = String::with_capacity(4096);
    File::open(path)
        .and_then(|f| f.take(u64::MAX).read_to_string(&mut s))
        .map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(s)
}

/// A single-record kernel file (one `show` makes all of it: the stats files, not
/// `cgroup.procs`) without the read that would only say EOF ([`crate::seqfile`]).
pub(crate) fn read_record(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    crate::seqfile::read_path(&path).map_err(|source| CgroupError::Read { path, source })
}

pub(crate) fn read_string(dir: &Path, file: &str) -> Result<String> {
    read_string_at(&dir.join(file))
}

/// Read a file holding a single unsigned integer (or `max`, returned as u64::MAX).
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let path = dir.join(file);
    let s = read_string_at(&path)?;
    parse_u64(s.trim()).ok_or_else(|| CgroupError::Parse {
        path,
        msg: format!("expected an unsigned integer, found {:?}", s.trim()),
    })
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, memory.events...).
pub(crate) fn read_flat_keyed(dir: &Path, file: &str) -> Result<Vec<(String, u64)>> {
    let path = dir.join(file);
    let s = read_string_at(&path)?;
    let mut out = Vec::new();
    for line in s.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let v = parse_u64(v).ok_or_else(|| CgroupError::Parse {
            path: path.clone(),
            msg: format!("bad value in line {line:?}"),
        })?;
        out.push((k.to_string(), v));
    }
    Ok(out)
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}
