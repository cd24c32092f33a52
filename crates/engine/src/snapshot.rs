//! A container's writable layer: `<ctr-dir>/upper` and `work` over the image's layer
//! directories, mounted with overlayfs at `<ctr-dir>/rootfs` (docs/engine.md).
//!
//! Mounting. overlayfs takes its layers in the mount data, which `mount(2)` limits to
//! one page (4096 bytes on x86-64, including the NUL): with oxcart's 64-hex-digit layer
//! paths that is about 50 layers, fewer under a long `--root`. When the options fit we
//! use `mount(2)` (every kernel with overlayfs). When they do not, or a path holds one
//! of the characters the option parser splits on (`,` `:` `\`), we use the new mount
//! API: `fsopen("overlay")`, then one `fsconfig("lowerdir+", path)` per layer (Linux 6.8,
//! Documentation/filesystems/overlayfs.rst "lowerdir+"), `fsmount` and `move_mount`.
//! Each path is then its own string (limited only by PATH_MAX) and needs no escaping.
//! On a kernel older than 6.8 that case fails with an error naming the limit.
//! (Relative paths after `fchdir` would also shorten the string, but only down to
//! ~70 bytes a layer, and the working directory is per-process state other threads
//! share; the new API has neither problem.)
//!
//! Options. `redirect_dir=off` and `metacopy=off` keep every change of a container
//! wholly in its upper directory (a renamed lower directory is copied up, a chmod copies
//! the data): `diff` and `commit` read the upper directory alone, as docker's overlay2
//! driver does, and a redirect or metacopy xattr there would be meaningless in a layer
//! tar. `index=off` as docker and podman: the upper directory is never re-mounted over
//! different lowers, and the index would pin inode numbers of the layers. `nodev` as
//! podman's default `mountopt` (containers-storage.conf): device nodes in an image or
//! made in the rootfs do not open; the runtime gives the container its /dev.
//!
//! `volatile` (Linux 5.10, Documentation/filesystems/overlayfs.rst "Volatile mount")
//! for `--rm` containers only, as podman does (its `--rm` sets the spec's `Volatile`,
//! which containers/storage turns into this option): the overlay then never syncs its
//! upper filesystem — in particular not at unmount, where a normal overlay runs
//! `syncfs` on the whole filesystem under `--root`, writing back every other
//! process's dirty data too (8–170 ms measured on a busy host, the largest cost of a
//! `run --rm`). The price is durability across a host crash, which a container that
//! is deleted when it exits does not need. The kernel leaves a marker
//! (`work/work/incompat/volatile`) that makes any later mount of the same upper fail;
//! [`Snapshot::mount`] removes it first, since only our own volatile mounts make it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A snapshot error, naming the path or mount it is about.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The overlay mount failed.
    #[error("mount overlay at {path}: {reason}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The kernel's error (and its fs-context message, when it gave one).
        reason: String,
    },
    /// The rootfs is still in use (open files, a process's cwd, a mount under it).
    #[error("unmount {0}: the container's root filesystem is busy (a process still uses it)")]
    Busy(PathBuf),
    /// Already mounted (mounting twice would hide the first mount).
    #[error("{0} is already mounted")]
    AlreadyMounted(PathBuf),
    /// A mount was asked for with no layers.
    #[error("mount overlay at {0}: no lower layers given")]
    NoLayers(PathBuf),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

type Result<T> = std::result::Result<T, SnapshotError>;

/// A container's snapshot directories.
#[derive(Debug, Clone)]
pub struct Snapshot {
    dir: PathBuf,
}

// Overlay options and the new mount API's constants (include/uapi/linux/mount.h).
const OVERLAY_FIXED: [(&str, &str); 3] = [
    ("redirect_dir", "off"),
    ("metacopy", "off"),
    ("index", "off"),
];
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

impl Snapshot {
    /// Make `upper/`, `work/` and `rootfs/` in `ctr_dir` (which must exist). Fails if
    /// any of them exists; on failure nothing it made is left.
    pub fn create(ctr_dir: &Path) -> Result<Snapshot> {
        let s = Snapshot {
            dir: ctr_dir.to_path_buf(),
        };
        let mut made = Vec::new();
        // upper/ becomes the container's `/` where it shadows the image; the merged
        // root takes the top layer's attributes otherwise. work/ is overlay-private.
        for (p, mode) in [(s.upper(), 0o755), (s.work(), 0o700), (s.rootfs(), 0o755)] {
            let r = std::fs::DirBuilder::new()
                .mode(mode)
                .create(&p)
                .map_err(io_err("create", &p))
                .and_then(|()| {
                    made.push(p.clone());
                    // The umask may have taken bits off.
                    let perm = std::os::unix::fs::PermissionsExt::from_mode(mode);
                    std::fs::set_permissions(&p, perm).map_err(io_err("chmod", &p))
                });
            if let Err(e) = r {
                for m in &made {
                    let _ = std::fs::remove_dir(m);
                }
                return Err(e);
            }
        }
        Ok(s)
    }

    /// The snapshot of an existing container directory (checks `upper/` exists).
    pub fn open(ctr_dir: &Path) -> Result<Snapshot> {
        let s = Snapshot {
            dir: ctr_dir.to_path_buf(),
        };
        let up = s.upper();
        let md = std::fs::symlink_metadata(&up).map_err(io_err("open", &up))?;
        if !md.is_dir() {
            return Err(io_err("open", &up)(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a directory",
            )));
        }
        Ok(s)
    }

    /// The container directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The writable layer.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    /// overlayfs' work directory.
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// The mount point of the merged root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Whether something is mounted on `rootfs/`: its device differs from the container
    /// directory's. Read through `stat`, so it answers for the calling thread's mount
    /// namespace.
    pub fn is_mounted(&self) -> Result<bool> {
        let r = self.rootfs();
        let a = std::fs::symlink_metadata(&r).map_err(io_err("stat", &r))?;
        let b = std::fs::symlink_metadata(&self.dir).map_err(io_err("stat", &self.dir))?;
        Ok(a.dev() != b.dev())
    }

    /// Mount the overlay at `rootfs/` over `lowers_base_first` (as
    /// `ImageStore::layer_dirs` gives them).
    pub fn mount(&self, lowers_base_first: &[PathBuf]) -> Result<()> {
        self.mount_with(lowers_base_first, false)
    }

    /// [`Snapshot::mount`] with overlayfs' `volatile` (module docs): for a container
    /// removed when it exits. A kernel without the option gets a normal mount.
    pub fn mount_volatile(&self, lowers_base_first: &[PathBuf]) -> Result<()> {
        match self.mount_with(lowers_base_first, true) {
            // Before 5.10 the option is unknown (EINVAL): a durable mount does the job.
            Err(SnapshotError::Mount { .. }) => self.mount_with(lowers_base_first, false),
            r => r,
        }
    }

    fn mount_with(&self, lowers_base_first: &[PathBuf], volatile: bool) -> Result<()> {
        let target = self.rootfs();
        if lowers_base_first.is_empty() {
            return Err(SnapshotError::NoLayers(target));
        }
        if self.is_mounted()? {
            return Err(SnapshotError::AlreadyMounted(target));
        }
        self.clear_volatile_marker()?;
        let top_first: Vec<&Path> = lowers_base_first
            .iter()
            .rev()
            .map(|p| p.as_path())
            .collect();
        match self.legacy_options(&top_first, volatile) {
            Some(opts) => self.mount_legacy(&opts),
            None => self.mount_fsconfig(&top_first, volatile),
        }
    }

    /// Removes the marker a volatile mount leaves in the work directory (the kernel
    /// refuses to mount over it: "overlay with incompat feature 'volatile' cannot be
    /// mounted"); absent is the common case and costs one failed `stat`.
    fn clear_volatile_marker(&self) -> Result<()> {
        let marker = self.work().join("work/incompat/volatile");
        match std::fs::symlink_metadata(&marker) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            _ => oxcart_image::unpack::remove_tree(&marker).map_err(io_err("remove", &marker)),
        }
    }

    /// The `mount(2)` data string, or `None` when it does not fit in a page or a path
    /// needs escaping (the option parser splits on `,` and `:`, and `\` escapes).
    fn legacy_options(&self, top_first: &[&Path], volatile: bool) -> Option<CString> {
        let mut dirs = top_first.to_vec();
        let (up, wk) = (self.upper(), self.work());
        dirs.push(&up);
        dirs.push(&wk);
        let plain = |p: &&Path| !p.as_os_str().as_bytes().iter().any(|b| b",:\\".contains(b));
        if !dirs.iter().all(plain) {
            return None;
        }
        let mut o = b"lowerdir=".to_vec();
        for (i, l) in top_first.iter().enumerate() {
            if i > 0 {
                o.push(b':');
            }
            o.extend_from_slice(l.as_os_str().as_bytes());
        }
        for (k, p) in [("upperdir", &up), ("workdir", &wk)] {
            o.extend_from_slice(format!(",{k}=").as_bytes());
            o.extend_from_slice(p.as_os_str().as_bytes());
        }
        for (k, v) in OVERLAY_FIXED {
            o.extend_from_slice(format!(",{k}={v}").as_bytes());
        }
        if volatile {
            o.extend_from_slice(b",volatile");
        }
        // mount(2) copies at most one page of data, NUL included (fs/namespace.c
        // copy_mount_options); longer data is silently cut.
        // SAFETY: sysconf has no memory effects.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        if o.len() + 1 > page {
            return None;
        }
        CString::new(o).ok()
    }

    fn mount_legacy(&self, opts: &CString) -> Result<()> {
        let target = self.rootfs();
        let t = cstr(&target).map_err(io_err("mount", &target))?;
        let fstype = c"overlay";
        // SAFETY: valid C strings that outlive the call.
        let r = unsafe {
            libc::mount(
                fstype.as_ptr(),
                t.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(SnapshotError::Mount {
                path: target,
                reason: io::Error::last_os_error().to_string(),
            });
        }
        Ok(())
    }

    fn mount_fsconfig(&self, top_first: &[&Path], volatile: bool) -> Result<()> {
        let fs = self.overlay_context(top_first)?;
        if volatile {
            fsconfig_flag(&fs, "volatile")
                .map_err(|e| self.merr(format!("volatile: {e}{}", fs_log(&fs))))?;
        }
        self.attach(&fs)
    }

    fn merr(&self, reason: String) -> SnapshotError {
        SnapshotError::Mount {
            path: self.rootfs(),
            reason,
        }
    }

    /// An overlay fs context (fsopen) configured with the layers, one `lowerdir+` each.
    fn overlay_context(&self, top_first: &[&Path]) -> Result<OwnedFd> {
        let merr = |reason: String| self.merr(reason);
        // SAFETY: a C string literal; the kernel returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
        if fd < 0 {
            return Err(merr(format!(
                "the layer list is longer than mount(2) takes in one page, and fsopen failed: {}",
                io::Error::last_os_error()
            )));
        }
        // SAFETY: the kernel gave us this fd.
        let fs = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        for l in top_first {
            fsconfig_str(&fs, "lowerdir+", l.as_os_str().as_bytes()).map_err(|e| {
                if e.raw_os_error() == Some(libc::EINVAL) && fs_log(&fs).is_empty() {
                    merr(format!(
                        "{} layers: the options exceed mount(2)'s one-page limit and this \
                         kernel has no overlay \"lowerdir+\" (Linux 6.8)",
                        top_first.len()
                    ))
                } else {
                    merr(format!("lowerdir+ {}: {e}{}", l.display(), fs_log(&fs)))
                }
            })?;
        }
        let (up, wk) = (self.upper(), self.work());
        for (k, v) in [("upperdir", &up), ("workdir", &wk)] {
            fsconfig_str(&fs, k, v.as_os_str().as_bytes())
                .map_err(|e| merr(format!("{k} {}: {e}{}", v.display(), fs_log(&fs))))?;
        }
        for (k, v) in OVERLAY_FIXED {
            fsconfig_str(&fs, k, v.as_bytes())
                .map_err(|e| merr(format!("{k}={v}: {e}{}", fs_log(&fs))))?;
        }
        Ok(fs)
    }

    /// Create the superblock of a configured context, and mount it at `rootfs/`.
    fn attach(&self, fs: &OwnedFd) -> Result<()> {
        let target = self.rootfs();
        let merr = |reason: String| self.merr(reason);
        // SAFETY: fs is an fs-context fd; no pointers.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(merr(format!("create: {e}{}", fs_log(fs))));
        }
        // SAFETY: fs is a created fs context.
        let m = unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                fs.as_raw_fd(),
                FSMOUNT_CLOEXEC,
                libc::MOUNT_ATTR_NODEV,
            )
        };
        if m < 0 {
            return Err(merr(format!("fsmount: {}", io::Error::last_os_error())));
        }
        // SAFETY: the kernel gave us this fd.
        let mnt = unsafe { OwnedFd::from_raw_fd(m as RawFd) };
        let t = cstr(&target).map_err(io_err("mount", &target))?;
        // SAFETY: valid C strings; mnt is a detached mount fd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mnt.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if r < 0 {
            return Err(merr(format!("move_mount: {}", io::Error::last_os_error())));
        }
        Ok(())
    }

    /// Unmount `rootfs/`; nothing mounted is not an error. A busy mount is an error
    /// naming it: a lazy detach would leave the overlay alive behind our back (and its
    /// upper directory in use while `rm` deletes it or `commit` reads it).
    pub fn unmount(&self) -> Result<()> {
        let target = self.rootfs();
        let t = cstr(&target).map_err(io_err("unmount", &target))?;
        // Several mounts may be stacked there (a crashed command mounted again); take
        // them all off.
        while self.is_mounted()? {
            // SAFETY: valid C string.
            let r = unsafe { libc::umount2(t.as_ptr(), libc::UMOUNT_NOFOLLOW) };
            if r != 0 {
                let e = io::Error::last_os_error();
                return Err(match e.raw_os_error() {
                    Some(libc::EBUSY) => SnapshotError::Busy(target),
                    // Raced with another unmount: check again.
                    Some(libc::EINVAL) if !self.is_mounted()? => return Ok(()),
                    _ => io_err("unmount", &target)(e),
                });
            }
        }
        Ok(())
    }

    /// Unmount, then delete `upper/`, `work/` and `rootfs/` (never following a symlink
    /// the container planted: `remove_dir_all` does not, CVE-2022-21658 fixed).
    pub fn remove(&self) -> Result<()> {
        self.unmount()?;
        for p in [self.upper(), self.work(), self.rootfs()] {
            oxcart_image::unpack::remove_tree(&p).map_err(io_err("remove", &p))?;
        }
        Ok(())
    }

    /// Mount for the duration of the returned guard if not mounted already (`cp`,
    /// `export` and `commit` of a stopped container). A running container's mount is
    /// used as it is and left alone.
    pub fn mount_temporarily(&self, lowers_base_first: &[PathBuf]) -> Result<TempMount<'_>> {
        if self.is_mounted()? {
            return Ok(TempMount {
                snap: self,
                ours: false,
            });
        }
        self.mount(lowers_base_first)?;
        Ok(TempMount {
            snap: self,
            ours: true,
        })
    }
}

/// A mount made by [`Snapshot::mount_temporarily`]; unmounted on drop (or by
/// [`TempMount::finish`], which reports a failure).
#[derive(Debug)]
pub struct TempMount<'a> {
    snap: &'a Snapshot,
    ours: bool,
}

impl TempMount<'_> {
    /// The merged root.
    pub fn root(&self) -> PathBuf {
        self.snap.rootfs()
    }
    /// Unmount now if we mounted, reporting an error.
    pub fn finish(mut self) -> Result<()> {
        if self.ours {
            self.ours = false;
            self.snap.unmount()?;
        }
        Ok(())
    }
}

impl Drop for TempMount<'_> {
    fn drop(&mut self) {
        if self.ours {
            let _ = self.snap.unmount();
        }
    }
}

fn fsconfig_flag(fs: &OwnedFd, key: &str) -> io::Result<()> {
    let k = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid C string; fs is an fs-context fd; a flag takes no value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            k.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn fsconfig_str(fs: &OwnedFd, key: &str, value: &[u8]) -> io::Result<()> {
    let k = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let v = CString::new(value)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in value"))?;
    // SAFETY: valid C strings; fs is an fs-context fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The messages the kernel queued on an fs context (fsopen(2): "e …" lines), as
/// `" (kernel: …)"`, or empty.
fn fs_log(fs: &OwnedFd) -> String {
    let mut msgs = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        // SAFETY: reading into our buffer from our fd.
        let n = unsafe { libc::read(fs.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        let s = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
        msgs.push(s.get(2..).unwrap_or("").trim().to_string());
    }
    if msgs.is_empty() {
        String::new()
    } else {
        format!(" (kernel: {})", msgs.join("; "))
    }
}
