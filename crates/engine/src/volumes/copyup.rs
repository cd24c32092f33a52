//! copy-up: the image's content at a volume's mount point copied into the empty volume
//! before the container first sees it (docker's `copyExistingContents`, podman's
//! `fixVolumePermissions`/copy-up), keeping owners, modes, times, xattrs, symlinks,
//! device nodes and hard links.
//!
//! Confinement: the source is opened with `openat2(RESOLVE_IN_ROOT)` on the rootfs's
//! descriptor (copy.rs's `open_in_root`), so an image whose `VOLUME /data` is a symlink
//! to `/etc` gets the image's own `/etc` copied, never the host's. Below it every entry
//! is reached with `*at` calls relative to its directory's descriptor and
//! `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, on both sides: nothing is followed, so neither
//! the image nor a container sharing the volume can redirect a read or a write.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn openat(
    dir: RawFd,
    name: &CString,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: valid C string; the fd is new and ours.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

fn fstatat(dir: RawFd, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers.
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// The names in a directory, read through its descriptor.
fn names(fd: &OwnedFd) -> io::Result<Vec<CString>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))? {
        out.push(cstr(e?.file_name().as_bytes())?);
    }
    Ok(out)
}

/// Every xattr of an fd (`security.capability`, ACLs, `user.*`) onto another.
fn copy_xattrs(src: RawFd, dst: RawFd) -> io::Result<()> {
    let mut list = vec![0u8; 4096];
    let n = loop {
        // SAFETY: buffer of the length passed.
        let n = unsafe { libc::flistxattr(src, list.as_mut_ptr().cast(), list.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => list.resize(list.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(()),
            _ => return Err(e),
        }
    };
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = cstr(name)?;
        let mut val = vec![0u8; 256];
        let len = loop {
            // SAFETY: buffer of the length passed.
            let l =
                unsafe { libc::fgetxattr(src, cname.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
            if l >= 0 {
                break l as usize;
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) && val.len() < 1 << 20 {
                val.resize(val.len() * 4, 0);
                continue;
            }
            return Err(e);
        };
        // SAFETY: value of the length passed.
        let r = unsafe { libc::fsetxattr(dst, cname.as_ptr(), val.as_ptr().cast(), len, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            // overlayfs's own `trusted.overlay.*` cannot be set on the volume's
            // filesystem by design; a target that supports no xattrs (tmpfs without
            // user.*) loses them as docker's copy does.
            if !matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Owner, then mode (chown clears set-id bits), xattrs, then times, of an open file.
fn copy_attrs(src: RawFd, dst: RawFd, st: &libc::stat) -> io::Result<()> {
    // SAFETY: plain syscalls on fds we hold.
    cvt(unsafe { libc::fchown(dst, st.st_uid, st.st_gid) })?;
    cvt(unsafe { libc::fchmod(dst, st.st_mode & 0o7777) })?;
    copy_xattrs(src, dst)?;
    let ts = [
        libc::timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec,
        },
    ];
    // SAFETY: two timespecs, as futimens wants.
    cvt(unsafe { libc::futimens(dst, ts.as_ptr()) })?;
    Ok(())
}

/// Copies one tree; hard links within it are kept as links.
struct Copier {
    /// (dev, ino) of a multiply-linked source file → an `O_PATH` fd of its copy.
    links: HashMap<(u64, u64), OwnedFd>,
}

const DIR: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY;

impl Copier {
    fn dir(&mut self, src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
        for name in names(src)? {
            self.entry(src, dst, &name).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{}: {e}",
                        OsStr::from_bytes(name.as_bytes()).to_string_lossy()
                    ),
                )
            })?;
        }
        Ok(())
    }

    fn entry(&mut self, sdir: &OwnedFd, ddir: &OwnedFd, name: &CString) -> io::Result<()> {
        let (s, d) = (sdir.as_raw_fd(), ddir.as_raw_fd());
        let st = fstatat(s, name)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                // SAFETY: valid C string.
                cvt(unsafe { libc::mkdirat(d, name.as_ptr(), 0o700) })?;
                let sf = openat(s, name, DIR, 0)?;
                let df = openat(d, name, DIR, 0)?;
                self.dir(&sf, &df)?;
                copy_attrs(sf.as_raw_fd(), df.as_raw_fd(), &st)
            }
            libc::S_IFREG => self.file(s, d, name, &st),
            libc::S_IFLNK => {
                let mut buf = vec![0u8; libc::PATH_MAX as usize];
                // SAFETY: buffer of the length passed.
                let n = unsafe {
                    libc::readlinkat(s, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
                };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                let target = cstr(&buf[..n as usize])?;
                // SAFETY: valid C strings.
                cvt(unsafe { libc::symlinkat(target.as_ptr(), d, name.as_ptr()) })?;
                // SAFETY: valid C string; NOFOLLOW chowns the link itself.
                cvt(unsafe {
                    libc::fchownat(
                        d,
                        name.as_ptr(),
                        st.st_uid,
                        st.st_gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })?;
                Ok(())
            }
            _ => {
                // Device nodes, fifos, sockets: made again, as docker's copy does.
                // SAFETY: valid C string.
                cvt(unsafe { libc::mknodat(d, name.as_ptr(), st.st_mode, st.st_rdev) })?;
                cvt(unsafe {
                    libc::fchownat(
                        d,
                        name.as_ptr(),
                        st.st_uid,
                        st.st_gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })?;
                cvt(unsafe { libc::fchmodat(d, name.as_ptr(), st.st_mode & 0o7777, 0) })?;
                Ok(())
            }
        }
    }

    fn file(&mut self, s: RawFd, d: RawFd, name: &CString, st: &libc::stat) -> io::Result<()> {
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                let empty = cstr(b"")?;
                // SAFETY: valid C strings; AT_EMPTY_PATH links the O_PATH fd's file.
                cvt(unsafe {
                    libc::linkat(
                        first.as_raw_fd(),
                        empty.as_ptr(),
                        d,
                        name.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    )
                })?;
                return Ok(());
            }
        }
        let src = openat(s, name, libc::O_RDONLY, 0)?;
        let dst = openat(
            d,
            name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )?;
        let mut sf = std::fs::File::from(src);
        let mut df = std::fs::File::from(dst);
        // std's copy uses copy_file_range (reflinks where the filesystem has them).
        io::copy(&mut sf, &mut df)?;
        copy_attrs(sf.as_raw_fd(), df.as_raw_fd(), st)?;
        if st.st_nlink > 1 && self.links.len() < 4096 {
            let p = openat(d, name, libc::O_PATH, 0)?;
            self.links.insert(key, p);
        }
        Ok(())
    }
}

/// Copy the rootfs's `path` (resolved inside the rootfs) into the empty directory
/// `data`, which takes the source directory's owner, mode and xattrs. `Ok(false)`:
/// there was nothing at `path`, or not a directory (docker copies directories only).
pub(crate) fn copy_up(rootfs: &OwnedFd, path: &str, data: &OwnedFd) -> io::Result<bool> {
    let src = match crate::copy::open_in_root(rootfs.as_raw_fd(), path.as_bytes(), DIR) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
            return Ok(false)
        }
        Err(e) => return Err(e),
    };
    let st = fstat(src.as_raw_fd())?;
    let mut c = Copier {
        links: HashMap::new(),
    };
    c.dir(&src, data)?;
    copy_attrs(src.as_raw_fd(), data.as_raw_fd(), &st)?;
    Ok(true)
}
