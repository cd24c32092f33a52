//! A container's volumes and binds for `cp` while it is not running. A running
//! container's `cp` works in `/proc/PID/root`, which has them; a stopped one's merged
//! rootfs has only empty mount points, so `cp` would write under the mount point and
//! read nothing of the volume. docker mounts the container's volumes for the copy
//! (daemon/archive.go `mountVolumes`); so do we, in a private mount namespace of a
//! short-lived thread: every mount made there dies with the thread's namespace, so
//! nothing is left mounted on the host whatever happens, and the host never sees it.

use crate::copy::open_in_root;
use crate::error::{io_err, EngineError, Result};
use crate::record::Record;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// One volume or bind to mount at `dst` inside the rootfs.
#[derive(Debug, Clone)]
pub(crate) struct OfflineMount {
    pub src: PathBuf,
    pub dst: String,
    pub ro: bool,
}

/// The container's volumes and host binds (`-v /h:/c`, `--mount type=bind`), parents
/// before children as the runtime mounts them. `--tmpfs` is left out: a stopped
/// container has no tmpfs content to copy (docker's cp does not mount one either).
pub(crate) fn offline_mounts(rec: &Record) -> Vec<OfflineMount> {
    let mut out: Vec<OfflineMount> = rec
        .volumes
        .iter()
        .map(|v| OfflineMount {
            src: PathBuf::from(&v.source),
            dst: v.destination.clone(),
            ro: !v.rw,
        })
        .collect();
    for b in rec.host_config.binds.iter().flatten() {
        let parts: Vec<&str> = b.splitn(3, ':').collect();
        if let [src, dst, ref rest @ ..] = parts[..] {
            if src.starts_with('/') {
                let ro = rest
                    .first()
                    .is_some_and(|m| m.split(',').any(|o| o == "ro"));
                out.push(OfflineMount {
                    src: src.into(),
                    dst: dst.into(),
                    ro,
                });
            }
        }
    }
    for m in rec.host_config.mounts.iter().filter(|m| m.kind == "bind") {
        out.push(OfflineMount {
            src: PathBuf::from(&m.source),
            dst: m.target.clone(),
            ro: m.read_only,
        });
    }
    out.sort_by_key(|m| Path::new(&m.dst).components().count());
    out
}

/// Run `f` with `mounts` bound into `root`, in a private mount namespace.
pub(crate) fn with_offline_mounts<T: Send>(
    root: &Path,
    mounts: &[OfflineMount],
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    if mounts.is_empty() {
        return f();
    }
    std::thread::scope(|s| {
        // unshare(2): CLONE_NEWNS (with the CLONE_FS it implies) is allowed in one
        // thread of a multi-threaded process; the namespace is this thread's alone.
        s.spawn(|| {
            enter_private_ns()?;
            for m in mounts {
                bind_into(root, m)?;
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(EngineError::Invalid("cp: the copy thread panicked".into())))
    })
}

fn sys(r: libc::c_int, what: impl Into<PathBuf>) -> Result<()> {
    if r < 0 {
        Err(io_err(what)(std::io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| EngineError::Invalid(format!("path {} contains a NUL byte", p.display())))
}

fn enter_private_ns() -> Result<()> {
    // SAFETY: plain syscalls with valid arguments.
    sys(
        unsafe { libc::unshare(libc::CLONE_NEWNS) },
        "unshare(CLONE_NEWNS)",
    )?;
    // Without this our binds would propagate back to the host's shared mounts.
    let root = c"/";
    // SAFETY: valid C strings, null fstype/data.
    sys(
        unsafe {
            libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        },
        "/ (making mounts private)",
    )
}

/// `/proc/thread-self/fd/N`: a path naming exactly what `fd` is (the mount target
/// resolved inside the root, never re-resolved through a symlink).
fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/thread-self/fd/{}", fd.as_raw_fd()))
}

/// Bind `m.src` on `m.dst`, resolved inside `root` with openat2(RESOLVE_IN_ROOT) so a
/// symlink in the image or a volume cannot put the mount outside the rootfs (the
/// runtime's rule for mount destinations, CVE-2019-19921 style).
fn bind_into(root: &Path, m: &OfflineMount) -> Result<()> {
    let is_dir = std::fs::metadata(&m.src).map_err(io_err(&m.src))?.is_dir();
    let rootfd = crate::copy::open_dir(root).map_err(io_err(root))?;
    // 40: the kernel's limit of symlinks followed in one lookup (path_resolution(7)).
    let target = make_target(&rootfd, Path::new(&m.dst), is_dir, 40).map_err(io_err(&m.dst))?;
    let src = cstr(&m.src)?;
    let tgt = cstr(&fd_path(&target))?;
    // SAFETY: valid C strings, null fstype/data.
    sys(
        unsafe {
            libc::mount(
                src.as_ptr(),
                tgt.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            )
        },
        &m.dst,
    )?;
    if m.ro {
        // A bind is made read-only by a remount of the new mount (mount(2)), found by
        // resolving the destination again: it now leads to the mount's root.
        let top = open_in_root(rootfd.as_raw_fd(), m.dst.as_bytes(), libc::O_PATH)
            .map_err(io_err(&m.dst))?;
        let tgt = cstr(&fd_path(&top))?;
        // SAFETY: as above.
        sys(
            unsafe {
                libc::mount(
                    std::ptr::null(),
                    tgt.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                    std::ptr::null(),
                )
            },
            &m.dst,
        )?;
    }
    Ok(())
}

/// Open (O_PATH) the mount point `dst` inside the root, making missing directories
/// and a missing final directory or empty file as the runtime does at start. A
/// dangling symlink on the way is followed inside the root and its target made (runc's
/// securejoin MkdirAll), so an image whose `VOLUME` is a symlink gets the same
/// in-root directory its start gets, never a host path.
fn make_target(rootfd: &OwnedFd, dst: &Path, is_dir: bool, hops: u32) -> std::io::Result<OwnedFd> {
    let comps: Vec<Component> = dst.components().collect();
    let mut cur = PathBuf::new();
    for (i, comp) in comps.iter().enumerate() {
        let name = match comp {
            Component::Normal(n) => *n,
            Component::ParentDir => {
                cur.push("..");
                continue;
            }
            _ => continue,
        };
        let parent = open_in_root(
            rootfd.as_raw_fd(),
            cur.as_os_str().as_bytes(),
            libc::O_PATH | libc::O_DIRECTORY,
        )?;
        let up = cur.clone();
        cur.push(name);
        let last = i + 1 == comps.len();
        match open_in_root(rootfd.as_raw_fd(), cur.as_os_str().as_bytes(), libc::O_PATH) {
            Ok(fd) if last => return Ok(fd),
            Ok(_) => continue,
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
            Err(_) => {}
        }
        // The entry itself, not what it points at: the magic link names exactly the
        // parent directory resolved above.
        let entry = fd_path(&parent).join(name);
        if std::fs::symlink_metadata(&entry).is_ok_and(|m| m.file_type().is_symlink()) {
            if hops == 0 {
                return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = std::fs::read_link(&entry)?;
            let mut next = if target.is_absolute() {
                target
            } else {
                up.join(target)
            };
            next.extend(&comps[i + 1..]);
            return make_target(rootfd, &next, is_dir, hops - 1);
        }
        let c = CString::new(name.as_bytes())?;
        if last && !is_dir {
            // SAFETY: valid C string; O_EXCL never follows a symlink.
            let fd = unsafe {
                libc::openat(
                    parent.as_raw_fd(),
                    c.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: a fresh fd, closed at once.
            unsafe { libc::close(fd) };
        } else {
            // SAFETY: valid C string.
            if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o755) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    open_in_root(rootfd.as_raw_fd(), cur.as_os_str().as_bytes(), libc::O_PATH)
}
