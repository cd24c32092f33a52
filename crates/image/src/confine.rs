//! Filesystem primitives confined to a directory: `openat2(2)` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`, and
//! the small syscall helpers the extractor builds on.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Remove a file or directory tree; a missing path is not an error. `std`'s
/// `remove_dir_all` does not follow symlinks (CVE-2022-21658 fix).
pub fn remove_tree(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `struct open_how` (openat2(2)); libc's is `#[non_exhaustive]`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2` confined beneath `dirfd`, refusing every symlink on the way.
pub(crate) fn openat2_beneath(
    dirfd: RawFd,
    path: &[u8],
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    let p = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH
            | libc::RESOLVE_NO_SYMLINKS
            | libc::RESOLVE_NO_MAGICLINKS
            | libc::RESOLVE_NO_XDEV,
    };
    loop {
        // SAFETY: valid C string and open_how of the size we pass.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                p.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new fd we now own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        // RESOLVE_* lookups may fail with EAGAIN under concurrent renames (openat2(2)).
        if e.raw_os_error() != Some(libc::EAGAIN) && e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Open the regular file `rel` for reading, beneath `dir`, refusing `..` escapes and
/// every symlink on the way (openat2(2) RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS).
pub fn open_beneath(dir: &Path, rel: &Path) -> io::Result<File> {
    let d = cstr(dir.as_os_str().as_bytes())?;
    // SAFETY: valid C string.
    let dfd = cvt(unsafe {
        libc::open(
            d.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh fd we own.
    let dfd = unsafe { OwnedFd::from_raw_fd(dfd) };
    let fd = openat2_beneath(dfd.as_raw_fd(), rel.as_os_str().as_bytes(), libc::O_RDONLY)?;
    Ok(File::from(fd))
}

pub(crate) fn proc_path(fd: RawFd, name: &[u8]) -> io::Result<CString> {
    let mut v = format!("/proc/self/fd/{fd}/").into_bytes();
    v.extend_from_slice(name);
    cstr(&v)
}
