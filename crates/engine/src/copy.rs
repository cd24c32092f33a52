//! `cp` both ways and `export`, on a container's merged root filesystem (mounted by the
//! caller: `Snapshot::mount_temporarily` for a container that is not running).
//!
//! Confinement. The container's files are the container's to choose, symlinks
//! included: every path inside it is resolved with `openat2(RESOLVE_IN_ROOT)` on a
//! descriptor of its root, so `/link/x` with `/link -> /etc` reaches the container's
//! `/etc/x` and never the host's (docker's `FollowSymlinkInScope`, race-free). The last
//! component is never followed unless asked (`-L`) or written `/.`, and files are
//! then opened and created with `*at` calls relative to their directory's
//! descriptor with `O_NOFOLLOW`, so a symlink swapped in mid-copy is not followed
//! either. Archives written to the host are extracted the same way beneath the
//! destination, so an archive from the container cannot plant a symlink and write
//! through it.
//!
//! Ownership and modes (docker's daemon, `daemon/archive.go` `extractToDir`): files
//! copied in keep the owner and mode the archive gives them (the host file's, or the
//! stdin tar's); `-a` (docker's `CopyUIDGID`) gives them the container user's instead,
//! which the caller resolves and passes as [`Owner::Set`]. Files copied out to a host
//! path belong to the user running `cp` (the docker CLI untars with `NoLchown`), modes
//! kept. Modification times are kept both ways.
//!
//! Not covered: paths on the container's own mounts (volumes, `/etc/hosts`), which a
//! running container has in its mount namespace only; xattrs other than none (docker
//! copies `security.capability` only).

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// A `cp`/`export` error.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The container path does not exist (docker's wording).
    #[error("No such container:path: {container}:{path}")]
    NoSuchPath {
        /// The container as the user named it.
        container: String,
        /// The path as the user wrote it.
        path: String,
    },
    /// A host path does not exist.
    #[error("no such file or directory: {0}")]
    NoSuchHostPath(PathBuf),
    /// The request breaks one of docker's cp rules (`cannot copy a directory to a
    /// file`, `… must be a directory`, …).
    #[error("{0}")]
    Invalid(String),
    /// An archive entry is unsafe or unsupported.
    #[error("archive entry {entry:?}: {reason}")]
    Entry {
        /// The entry's name.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// I/O, naming what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What and where.
        what: String,
        /// Cause.
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, CopyError>;

fn ioe(what: impl Into<String>) -> impl FnOnce(io::Error) -> CopyError {
    let what = what.into();
    move |source| CopyError::Io { what, source }
}

/// Who owns what `cp` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// As the archive says (copy into a container, docker's default).
    Keep,
    /// This uid:gid (`cp -a`: the container's user).
    Set(u32, u32),
    /// The caller (copy out to the host).
    Caller,
}

// ------------------------------------------------------------------ syscalls

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `openat2(dirfd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `dirfd` is
/// `/` for every absolute path and `..` and symlink in `path`.
pub(crate) fn open_in_root(dirfd: RawFd, path: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    let p = cstr(if path.is_empty() { b"." } else { path })?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: valid C string and an open_how of the size passed.
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
            // SAFETY: a new fd the kernel gave us.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        // openat2(2): RESOLVE_IN_ROOT lookups may fail with EAGAIN under renames.
        if e.raw_os_error() != Some(libc::EAGAIN) && e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Open a directory's descriptor for reading attributes and entries.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: valid C string.
    let fd = cvt(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstatat(dirfd: RawFd, name: &[u8], flags: libc::c_int) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers.
    cvt(unsafe { libc::fstatat(dirfd, c.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

fn openat(
    dirfd: RawFd,
    name: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: valid C string.
    let fd = cvt(unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn readlinkat(dirfd: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: buffer of the given length.
    let n = unsafe { libc::readlinkat(dirfd, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Entry names of a directory descriptor, in byte order.
fn dir_names(fd: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    // Listing through the descriptor's /proc link reads that directory itself; the
    // path is not resolved again below it.
    let mut v: Vec<_> = std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    v.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(v)
}

// ------------------------------------------------------------------ container paths

/// A user-given container path: where it points, and docker's suffix rules.
#[derive(Debug)]
struct CtrPath {
    /// As given, for messages.
    given: String,
    /// Normalised, relative to the root (`""` is the root).
    rel: PathBuf,
    /// Ends with `/` or `/.`: must be a directory.
    dir_syntax: bool,
    /// Ends with `/.`: the directory's content, not the directory.
    contents: bool,
}

fn parse_path(given: &str) -> CtrPath {
    let contents = given == "." || given.ends_with("/.");
    let dir_syntax = contents || given.ends_with('/');
    let mut rel = PathBuf::new();
    // Lexical normalisation, as docker's filepath.Clean of a path joined to `/`: `..`
    // cannot climb above the root.
    for c in Path::new(given).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => {
                rel.pop();
            }
            _ => {}
        }
    }
    CtrPath {
        given: given.to_string(),
        rel,
        dir_syntax,
        contents,
    }
}

fn split(rel: &Path) -> (&Path, &[u8]) {
    match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => (p, n.as_bytes()),
        _ => (Path::new(""), b"."),
    }
}

/// The container's root, for `cp` and `export`. It holds the root open: drop it
/// before unmounting, or the unmount is busy.
pub struct Root {
    fd: OwnedFd,
    container: String,
}

impl Root {
    /// Open `rootfs` (the merged mount point) of the container the user called
    /// `container` (used in messages).
    pub fn open(rootfs: &Path, container: &str) -> Result<Root> {
        let fd = open_dir(rootfs).map_err(ioe(format!("open {}", rootfs.display())))?;
        Ok(Root {
            fd,
            container: container.to_string(),
        })
    }

    fn missing(&self, p: &CtrPath) -> CopyError {
        CopyError::NoSuchPath {
            container: self.container.clone(),
            path: p.given.clone(),
        }
    }

    /// Resolve `p` in the root: its parent directory's descriptor, the last name, and
    /// what that is (followed when `follow`; `.` when `p` is the root).
    fn locate(&self, p: &CtrPath, follow: bool) -> Result<(OwnedFd, Vec<u8>, Option<libc::stat>)> {
        let (mut parent, mut name) = split(&p.rel);
        let resolved;
        if follow || p.dir_syntax {
            // Follow the last component too (`-L`, or `dir/.`): resolve it whole and
            // continue from the directory it is in. A missing path is looked at as
            // written (its parent may exist: the target of a copy in).
            match open_in_root(
                self.fd.as_raw_fd(),
                p.rel.as_os_str().as_bytes(),
                libc::O_PATH,
            ) {
                Ok(fd) => {
                    resolved = real_rel(&self.fd, &fd)
                        .map_err(ioe(format!("{}:{}", self.container, p.given)))?;
                    (parent, name) = split(&resolved);
                }
                // `dir/` names a directory that must exist; nothing else is looked at
                // (the symlink itself would be a file).
                Err(e) if is_missing(&e) && p.dir_syntax => return Err(self.missing(p)),
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(ioe(format!("{}:{}", self.container, p.given))(e)),
            }
        }
        let dir = match open_in_root(
            self.fd.as_raw_fd(),
            parent.as_os_str().as_bytes(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        ) {
            Ok(fd) => fd,
            Err(e) if is_missing(&e) => return Err(self.missing(p)),
            Err(e) => return Err(ioe(format!("{}:{}", self.container, p.given))(e)),
        };
        let st = match fstatat(dir.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Some(st),
            Err(e) if is_missing(&e) => None,
            Err(e) => return Err(ioe(format!("{}:{}", self.container, p.given))(e)),
        };
        Ok((dir, name.to_vec(), st))
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

/// Where `fd` is, relative to `root`: read from `/proc/self/fd`, both inside the same
/// mount, so the prefix is the root's own path.
fn real_rel(root: &OwnedFd, fd: &OwnedFd) -> io::Result<PathBuf> {
    let r = std::fs::read_link(format!("/proc/self/fd/{}", root.as_raw_fd()))?;
    let f = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    f.strip_prefix(&r)
        .map(Path::to_path_buf)
        .map_err(|_| io::Error::other("resolved path left the container's root"))
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

// ------------------------------------------------------------------ archiving

/// Writes entries read through directory descriptors into a tar stream.
pub(crate) struct Archiver<'w> {
    tar: tar::Builder<&'w mut dyn Write>,
    /// (dev, ino) of multiply-linked files already written → their name.
    links: HashMap<(u64, u64), String>,
    /// Reading an overlay upper directory for a layer tar: whiteouts become `.wh.`
    /// files and opaque directories get `.wh..wh..opq` (image-spec `layer.md`).
    layer: bool,
    /// Names (tar paths) left out when they are an empty file or directory: the
    /// stubs the runtime made as mount points (see `MOUNT_STUBS`).
    skip_stubs: &'static [&'static str],
}

/// The mount points the runtime creates in the writable layer when the image lacks
/// them: not the container's changes, so not in a committed layer (docker keeps them
/// in an "init" layer that commit leaves out).
pub(crate) const MOUNT_STUBS: &[&str] = &[
    "dev",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "proc",
    "sys",
];

/// `fgetxattr`, `None` when absent.
fn fxattr(fd: &OwnedFd, name: &std::ffi::CStr) -> io::Result<Option<Vec<u8>>> {
    let mut v = vec![0u8; 4096];
    // SAFETY: buffer of the given length; our fd.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    v.truncate(n as usize);
    Ok(Some(v))
}

impl<'w> Archiver<'w> {
    pub(crate) fn new(out: &'w mut dyn Write, layer: bool) -> Archiver<'w> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Complete);
        Archiver {
            tar,
            links: HashMap::new(),
            layer,
            skip_stubs: &[],
        }
    }

    /// Leave out the runtime's mount-point stubs (`MOUNT_STUBS`).
    pub(crate) fn without_mount_stubs(mut self) -> Self {
        self.skip_stubs = MOUNT_STUBS;
        self
    }

    /// Whether `name` in `d` is an empty regular file or an empty directory.
    fn is_stub(d: &OwnedFd, name: &[u8]) -> bool {
        match fstatat(d.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => st.st_size == 0,
            Ok(st) if is_dir(&st) => openat(
                d.as_raw_fd(),
                name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .and_then(|fd| dir_names(&fd))
            .is_ok_and(|v| v.is_empty()),
            _ => false,
        }
    }

    pub(crate) fn finish(self) -> Result<()> {
        self.tar
            .into_inner()
            .and_then(|w| w.flush())
            .map_err(ioe("write archive"))
    }

    /// Add `name` in the directory `dir` as `tar_name`, and everything below it.
    pub(crate) fn add(&mut self, dir: &OwnedFd, name: &[u8], tar_name: &str) -> Result<()> {
        let what = || format!("read {tar_name}");
        let st = fstatat(dir.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW).map_err(ioe(what()))?;
        let mut h = tar::Header::new_gnu();
        // Type bits included, as Go's archive/tar (docker's and podman's archives)
        // writes them: 040755 for a directory.
        h.set_mode(st.st_mode & 0o177777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        let fmt = st.st_mode & libc::S_IFMT;
        let w = |e: io::Error| ioe(format!("write {tar_name}"))(e);
        // overlayfs makes whiteouts as hardlinks of one shared inode (Linux 5.8,
        // "ovl: share inode for whiteouts"): each is its own `.wh.` entry, never a link.
        let whiteout = self.layer && fmt == libc::S_IFCHR && st.st_rdev == 0;
        if fmt != libc::S_IFDIR && st.st_nlink > 1 && !whiteout {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                return self.tar.append_link(&mut h, tar_name, first).map_err(w);
            }
            self.links.insert(key, tar_name.to_string());
        }
        match fmt {
            libc::S_IFDIR => self.add_dir(dir, name, tar_name, h),
            libc::S_IFREG => self.add_file(dir, name, tar_name, h),
            libc::S_IFLNK => {
                h.set_entry_type(tar::EntryType::Symlink);
                let t = readlinkat(dir.as_raw_fd(), name).map_err(ioe(what()))?;
                self.tar
                    .append_link(&mut h, tar_name, OsStr::from_bytes(&t))
                    .map_err(w)
            }
            libc::S_IFCHR if whiteout => {
                // An overlay whiteout: the layer format's `.wh.NAME` (moby's overlay
                // whiteout converter writes it as an empty 0600 regular file).
                let wh = match tar_name.rsplit_once('/') {
                    Some((d, n)) => format!("{d}/.wh.{n}"),
                    None => format!(".wh.{tar_name}"),
                };
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                self.tar.append_data(&mut h, wh, io::empty()).map_err(w)
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                h.set_entry_type(match fmt {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                if fmt != libc::S_IFIFO {
                    h.set_device_major(libc::major(st.st_rdev)).map_err(w)?;
                    h.set_device_minor(libc::minor(st.st_rdev)).map_err(w)?;
                }
                self.tar
                    .append_data(&mut h, tar_name, io::empty())
                    .map_err(w)
            }
            // Sockets (and anything else) have no tar form; docker skips them too.
            _ => Ok(()),
        }
    }

    fn add_dir(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        tar_name: &str,
        mut h: tar::Header,
    ) -> Result<()> {
        let w = |e: io::Error| ioe(format!("write {tar_name}"))(e);
        h.set_entry_type(tar::EntryType::Directory);
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let d = openat(dir.as_raw_fd(), name, flags, 0).map_err(ioe(format!("read {tar_name}")))?;
        if tar_name != "." && !tar_name.is_empty() {
            self.tar
                .append_data(&mut h, format!("{tar_name}/"), io::empty())
                .map_err(w)?;
        }
        if self.layer {
            let x = |n| fxattr(&d, n).map_err(ioe(format!("read {tar_name}")));
            if x(c"trusted.overlay.redirect")?.is_some() {
                // A renamed lower directory recorded as a pointer: its content is not in
                // the upper directory, so no layer can be made from it.
                return Err(CopyError::Invalid(format!(
                    "{tar_name}: an overlay redirect (mounted with redirect_dir=on);                      cannot make a layer of it"
                )));
            }
            if x(c"trusted.overlay.opaque")?.as_deref() == Some(b"y") {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                self.tar
                    .append_data(&mut h, format!("{tar_name}/.wh..wh..opq"), io::empty())
                    .map_err(w)?;
            }
        }
        self.children(&d, tar_name)
    }

    fn add_file(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        tar_name: &str,
        mut h: tar::Header,
    ) -> Result<()> {
        let what = || format!("read {tar_name}");
        let w = |e: io::Error| ioe(format!("write {tar_name}"))(e);
        h.set_entry_type(tar::EntryType::Regular);
        let f = openat(dir.as_raw_fd(), name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)
            .map_err(ioe(what()))?;
        if self.layer
            && fxattr(&f, c"trusted.overlay.metacopy")
                .map_err(ioe(what()))?
                .is_some()
        {
            // Only the metadata was copied up; the data is in a lower layer.
            return Err(CopyError::Invalid(format!(
                "{tar_name}: an overlay metacopy file (mounted with metacopy=on);                  cannot make a layer of it"
            )));
        }
        // File capabilities are part of the file (docker's tar writer keeps this one
        // xattr; the unpacker restores SCHILY.xattr.*).
        if let Some(cap) = fxattr(&f, c"security.capability").map_err(ioe(what()))? {
            self.tar
                .append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
                .map_err(w)?;
        }
        let f = std::fs::File::from(f);
        // The size read now is what the header promises; a file growing meanwhile is
        // cut there, one shrinking is an error (tar needs the promised bytes).
        let len = f.metadata().map_err(ioe(what()))?.len();
        h.set_size(len);
        self.tar
            .append_data(&mut h, tar_name, f.take(len))
            .map_err(w)
    }

    pub(crate) fn children(&mut self, d: &OwnedFd, prefix: &str) -> Result<()> {
        for n in dir_names(d).map_err(ioe(format!("list {prefix}")))? {
            let child = match prefix {
                "" => n.to_string_lossy().into_owned(),
                p => format!("{p}/{}", n.to_string_lossy()),
            };
            if n.to_str().is_none() {
                return Err(CopyError::Entry {
                    entry: child,
                    reason: "the name is not UTF-8".into(),
                });
            }
            if self.skip_stubs.contains(&child.as_str()) && Self::is_stub(d, n.as_bytes()) {
                continue;
            }
            self.add(d, n.as_bytes(), &child)?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ extracting

/// An entry's attributes.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

/// Extracts a tar stream beneath a directory, resolving every name in it as in a root.
struct Extractor<'a> {
    /// The root every name is resolved in.
    base: &'a OwnedFd,
    /// The destination directory, relative to `base`.
    dest: PathBuf,
    owner: Owner,
    /// Directories made or updated: their attributes are set last (a read-only
    /// directory must still take its entries), deepest first.
    dirs: Vec<(PathBuf, u32, u32, u32, u64)>,
}

impl Extractor<'_> {
    fn run(&mut self, input: &mut dyn Read) -> Result<()> {
        let mut ar = tar::Archive::new(input);
        for e in ar.entries().map_err(ioe("read archive"))? {
            let e = e.map_err(ioe("read archive"))?;
            self.entry(e)?;
        }
        self.dirs
            .sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
        for (rel, mode, uid, gid, mtime) in std::mem::take(&mut self.dirs) {
            let fd = open_in_root(
                self.base.as_raw_fd(),
                rel.as_os_str().as_bytes(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            )
            .map_err(ioe(format!("open {}", rel.display())))?;
            self.attrs(&fd, mode, uid, gid, mtime)
                .map_err(ioe(format!("set attributes of {}", rel.display())))?;
        }
        Ok(())
    }

    fn ids(&self, uid: u32, gid: u32) -> Option<(u32, u32)> {
        match self.owner {
            Owner::Keep => Some((uid, gid)),
            Owner::Set(u, g) => Some((u, g)),
            Owner::Caller => None,
        }
    }

    /// chown (first: it clears setuid bits) then chmod and times, on an open node.
    fn attrs(&self, fd: &OwnedFd, mode: u32, uid: u32, gid: u32, mtime: u64) -> io::Result<()> {
        if let Some((u, g)) = self.ids(uid, gid) {
            // SAFETY: plain syscall on our fd.
            cvt(unsafe { libc::fchown(fd.as_raw_fd(), u, g) })?;
        }
        // SAFETY: plain syscall on our fd.
        cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode & 0o7777) })?;
        let t = [ts(mtime), ts(mtime)];
        // SAFETY: two timespecs.
        cvt(unsafe { libc::futimens(fd.as_raw_fd(), t.as_ptr()) })?;
        Ok(())
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let bad = |reason: &str| CopyError::Entry {
            entry: shown.clone(),
            reason: reason.to_string(),
        };
        let rel = relative(&raw).ok_or_else(|| bad("'..' would leave the destination"))?;
        let h = e.header().clone();
        let m = Meta {
            mode: h.mode().map_err(|_| bad("bad mode"))?,
            uid: h
                .uid()
                .ok()
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(0),
            gid: h
                .gid()
                .ok()
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(0),
            mtime: h.mtime().unwrap_or(0),
        };
        let kind = h.entry_type();
        let full = self.dest.join(&rel);
        if rel.as_os_str().is_empty() {
            // `.` itself: the destination directory's attributes.
            if kind.is_dir() {
                self.dirs.push((full, m.mode, m.uid, m.gid, m.mtime));
            }
            return Ok(());
        }
        let (parent, name) = split(&full);
        let pfd = open_in_root(
            self.base.as_raw_fd(),
            parent.as_os_str().as_bytes(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )
        .map_err(|e| bad(&format!("its directory: {e}")))?;
        let p = pfd.as_raw_fd();
        let existing = match fstatat(p, name, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Some(st),
            Err(e) if is_missing(&e) => None,
            Err(e) => return Err(bad(&e.to_string())),
        };
        let io_bad = |e: io::Error| bad(&e.to_string());
        if kind.is_dir() {
            match existing {
                Some(st) if is_dir(&st) => {}
                // docker's NoOverwriteDirNonDir, which cp sets.
                Some(_) => return Err(bad("cannot overwrite a non-directory with a directory")),
                None => {
                    let c = cstr(name).map_err(io_bad)?;
                    // SAFETY: valid C string.
                    cvt(unsafe { libc::mkdirat(p, c.as_ptr(), 0o700) }).map_err(io_bad)?;
                }
            }
            self.dirs.push((full, m.mode, m.uid, m.gid, m.mtime));
            return Ok(());
        }
        if let Some(st) = existing {
            if is_dir(&st) {
                return Err(bad("cannot overwrite a directory with a non-directory"));
            }
            let c = cstr(name).map_err(io_bad)?;
            // SAFETY: valid C string.
            cvt(unsafe { libc::unlinkat(p, c.as_ptr(), 0) }).map_err(io_bad)?;
        }
        self.make(&mut e, &h, p, name, &m).map_err(|r| bad(&r))
    }

    /// Create a non-directory entry as `name` in `dir` (nothing is there now).
    fn make<R: Read>(
        &self,
        e: &mut tar::Entry<'_, R>,
        h: &tar::Header,
        dir: RawFd,
        name: &[u8],
        m: &Meta,
    ) -> std::result::Result<(), String> {
        let s = |e: io::Error| e.to_string();
        match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                self.make_file(dir, name, e, m).map_err(s)
            }
            tar::EntryType::Symlink => {
                let t = e.link_name_bytes().ok_or("symlink without a target")?;
                self.make_symlink(dir, name, &t, m).map_err(s)
            }
            tar::EntryType::Link => {
                let t = e.link_name_bytes().ok_or("hardlink without a target")?;
                self.make_hardlink(dir, name, &t)
                    .map_err(|e| format!("hardlink to {}: {e}", String::from_utf8_lossy(&t)))
            }
            kind @ (tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo) => {
                let maj = h.device_major().ok().flatten().unwrap_or(0);
                let min = h.device_minor().ok().flatten().unwrap_or(0);
                let fmt = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                if fmt == libc::S_IFCHR && maj == 0 && min == 0 {
                    // Through an overlay mount this is a whiteout: it would delete the
                    // image's file of that name instead of copying anything.
                    return Err("a 0:0 character device is an overlay whiteout".into());
                }
                self.make_node(dir, name, fmt, libc::makedev(maj, min), m)
                    .map_err(s)
            }
            // PAX/GNU headers are consumed by the tar crate; others have no file form.
            other => Err(format!("unsupported entry type {other:?}")),
        }
    }

    fn make_file(&self, dir: RawFd, name: &[u8], data: &mut dyn Read, m: &Meta) -> io::Result<()> {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let mut f = std::fs::File::from(openat(dir, name, flags, 0o600)?);
        io::copy(data, &mut f)?;
        self.attrs(&OwnedFd::from(f), m.mode, m.uid, m.gid, m.mtime)
    }

    fn make_symlink(&self, dir: RawFd, name: &[u8], target: &[u8], m: &Meta) -> io::Result<()> {
        let (tc, nc) = (cstr(target)?, cstr(name)?);
        // SAFETY: valid C strings.
        cvt(unsafe { libc::symlinkat(tc.as_ptr(), dir, nc.as_ptr()) })?;
        if let Some((u, g)) = self.ids(m.uid, m.gid) {
            // SAFETY: valid C string; AT_SYMLINK_NOFOLLOW changes the link itself.
            cvt(unsafe { libc::fchownat(dir, nc.as_ptr(), u, g, libc::AT_SYMLINK_NOFOLLOW) })?;
        }
        let t = [ts(m.mtime), ts(m.mtime)];
        // SAFETY: valid C string and two timespecs.
        cvt(unsafe { libc::utimensat(dir, nc.as_ptr(), t.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(())
    }

    /// A hardlink to `target`, a name relative to the destination like every entry's.
    fn make_hardlink(&self, dir: RawFd, name: &[u8], target: &[u8]) -> io::Result<()> {
        let trel = self.dest.join(
            relative(target)
                .ok_or_else(|| io::Error::other("the target leaves the destination"))?,
        );
        let (tp, tn) = split(&trel);
        let tfd = open_in_root(
            self.base.as_raw_fd(),
            tp.as_os_str().as_bytes(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?;
        let (a, b) = (cstr(tn)?, cstr(name)?);
        // SAFETY: valid C strings; no AT_SYMLINK_FOLLOW: a symlink target is linked
        // itself, never followed.
        cvt(unsafe { libc::linkat(tfd.as_raw_fd(), a.as_ptr(), dir, b.as_ptr(), 0) })?;
        Ok(())
    }

    fn make_node(
        &self,
        dir: RawFd,
        name: &[u8],
        fmt: libc::mode_t,
        dev: libc::dev_t,
        m: &Meta,
    ) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: valid C string.
        cvt(unsafe { libc::mknodat(dir, c.as_ptr(), fmt | 0o600, dev) })?;
        // O_PATH|O_NOFOLLOW: the node just made, never a symlink swapped in.
        let fd = openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        self.node_attrs(&fd, m.mode, m.uid, m.gid)
    }

    /// Owner and mode of a device/FIFO through an `O_PATH` descriptor (opening it for
    /// real could block or reach a device).
    fn node_attrs(&self, fd: &OwnedFd, mode: u32, uid: u32, gid: u32) -> io::Result<()> {
        if let Some((u, g)) = self.ids(uid, gid) {
            // SAFETY: AT_EMPTY_PATH on our O_PATH fd.
            cvt(unsafe {
                libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), u, g, libc::AT_EMPTY_PATH)
            })?;
        }
        // fchmod does not take O_PATH descriptors; its /proc link is the node itself.
        let p = cstr(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())?;
        // SAFETY: valid C string.
        cvt(unsafe { libc::chmod(p.as_ptr(), mode & 0o7777) })?;
        Ok(())
    }
}

/// An archive name as a relative path (`/` and `.` dropped), or `None` if it has `..`.
fn relative(raw: &[u8]) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(rel)
}

fn ts(secs: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: secs.min(i64::MAX as u64) as libc::time_t,
        tv_nsec: 0,
    }
}

// ------------------------------------------------------------------ the verbs

impl Root {
    /// `cp CTR:SRC -`: `src` as a tar stream (the top entry named after it; `dir/.`
    /// gives the directory's content). `follow`: `-L`.
    pub fn copy_out_tar(&self, src: &str, follow: bool, out: &mut dyn Write) -> Result<()> {
        let p = parse_path(src);
        let (dir, name, st) = self.locate(&p, follow)?;
        let st = st.ok_or_else(|| self.missing(&p))?;
        if follow && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            // -L on a link whose target the container lacks: docker's "no such file",
            // never the link itself (it would resolve in the host's tree where it lands).
            return Err(self.missing(&p));
        }
        if p.dir_syntax && !is_dir(&st) {
            return Err(CopyError::Invalid(format!(
                "{}:{}: not a directory",
                self.container, p.given
            )));
        }
        let mut a = Archiver::new(out, false);
        if p.contents {
            let d = openat(
                dir.as_raw_fd(),
                &name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(ioe(format!("{}:{}", self.container, p.given)))?;
            a.children(&d, ".")?;
        } else {
            let base = if name == b"." {
                ".".to_string()
            } else {
                String::from_utf8_lossy(&name).into_owned()
            };
            a.add(&dir, &name, &base)?;
        }
        a.finish()
    }

    /// `export`: the whole root filesystem as a tar stream (entries `bin/`, `bin/sh`…).
    pub fn export(&self, out: &mut dyn Write) -> Result<()> {
        let mut a = Archiver::new(out, false);
        a.children(&self.fd, "")?;
        a.finish()
    }

    /// `cp CTR:SRC HOSTDST` with docker's rules: an existing directory takes `src`
    /// (or its content with `src/.`) inside it; a missing `dst` whose parent exists
    /// becomes a copy of `src`; an existing file is replaced by a file; a directory
    /// never replaces a file; `dst/` must be an existing directory.
    pub fn copy_out_to_host(&self, src: &str, follow: bool, dst: &Path) -> Result<()> {
        let p = parse_path(src);
        let (dir, name, st) = self.locate(&p, follow)?;
        let st = st.ok_or_else(|| self.missing(&p))?;
        if follow && st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            // -L on a link whose target the container lacks: docker's "no such file",
            // never the link itself (it would resolve in the host's tree where it lands).
            return Err(self.missing(&p));
        }
        if p.dir_syntax && !is_dir(&st) {
            return Err(CopyError::Invalid(format!(
                "{}:{}: not a directory",
                self.container, p.given
            )));
        }
        let plan = host_target(dst, is_dir(&st))?;
        let mut base_dir = plan.dir.clone();
        if let (true, Some(n)) = (p.contents, &plan.name) {
            // `src/.` to a new path: make the directory, the content goes in.
            base_dir.push(n);
            std::fs::create_dir(&base_dir).map_err(ioe(format!("mkdir {}", base_dir.display())))?;
        }
        let base = open_dir(&base_dir).map_err(ioe(format!("open {}", base_dir.display())))?;
        let top = plan
            .name
            .clone()
            .unwrap_or_else(|| String::from_utf8_lossy(&name).into_owned());
        pipe_through(
            |w| {
                let mut a = Archiver::new(w, false);
                if p.contents {
                    let d = openat(
                        dir.as_raw_fd(),
                        &name,
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                        0,
                    )
                    .map_err(ioe(format!("{}:{}", self.container, p.given)))?;
                    a.children(&d, "")?;
                } else {
                    a.add(&dir, &name, &top)?;
                }
                a.finish()
            },
            |r| {
                Extractor {
                    base: &base,
                    dest: PathBuf::new(),
                    owner: Owner::Caller,
                    dirs: Vec::new(),
                }
                .run(r)
            },
        )
    }

    /// `cp HOSTSRC CTR:DST`, the same rules the other way. `follow`: `-L` (a symlink
    /// `src` is copied as the file it points to).
    pub fn copy_in_from_host(
        &self,
        src: &Path,
        follow: bool,
        dst: &str,
        owner: Owner,
    ) -> Result<()> {
        let HostSource {
            real,
            is_dir: src_is_dir,
            contents,
        } = host_source(src, follow)?;
        let (hparent, hname) = split(&real);
        let hdir = open_dir(if hparent.as_os_str().is_empty() {
            Path::new("/")
        } else {
            hparent
        })
        .map_err(ioe(format!("open {}", hparent.display())))?;
        let dp = parse_path(dst);
        let (dest_dir, rename) = self.ctr_target(&dp, src_is_dir, contents)?;
        let top = rename.unwrap_or_else(|| String::from_utf8_lossy(hname).into_owned());
        pipe_through(
            |w| {
                let mut a = Archiver::new(w, false);
                if contents {
                    let d = openat(
                        hdir.as_raw_fd(),
                        hname,
                        libc::O_RDONLY | libc::O_DIRECTORY,
                        0,
                    )
                    .map_err(ioe(format!("open {}", src.display())))?;
                    a.children(&d, "")?;
                } else {
                    a.add(&hdir, hname, &top)?;
                }
                a.finish()
            },
            |r| {
                Extractor {
                    base: &self.fd,
                    dest: dest_dir.clone(),
                    owner,
                    dirs: Vec::new(),
                }
                .run(r)
            },
        )
    }

    /// `cp - CTR:DST`: extract a tar stream into the directory `dst`, which must exist.
    pub fn copy_in_tar(&self, input: &mut dyn Read, dst: &str, owner: Owner) -> Result<()> {
        let dp = parse_path(dst);
        let (dir, name, st) = self.locate(&dp, true)?;
        match st {
            Some(st) if is_dir(&st) => {}
            Some(_) => {
                return Err(CopyError::Invalid(format!(
                    "destination \"{}:{}\" must be a directory",
                    self.container, dp.given
                )))
            }
            None => return Err(self.missing(&dp)),
        }
        let d = openat(
            dir.as_raw_fd(),
            &name,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
        .map_err(ioe(format!("{}:{}", self.container, dp.given)))?;
        let rel =
            real_rel(&self.fd, &d).map_err(ioe(format!("{}:{}", self.container, dp.given)))?;
        Extractor {
            base: &self.fd,
            dest: rel,
            owner,
            dirs: Vec::new(),
        }
        .run(input)
    }

    /// Where a copy into the container goes: the directory to extract in (relative to
    /// the root, resolved), and the name the source takes there (`None`: its own).
    fn ctr_target(
        &self,
        dp: &CtrPath,
        src_is_dir: bool,
        contents: bool,
    ) -> Result<(PathBuf, Option<String>)> {
        let (dir, name, st) = self.locate(dp, true)?;
        let what = || format!("{}:{}", self.container, dp.given);
        let here = real_rel(&self.fd, &dir).map_err(ioe(what()))?;
        let name_s = String::from_utf8_lossy(&name).into_owned();
        match st {
            Some(st) if is_dir(&st) && name == b"." => Ok((here, None)),
            Some(st) if is_dir(&st) => Ok((here.join(&name_s), None)),
            Some(_) if src_is_dir => Err(CopyError::Invalid(format!(
                "cannot copy a directory to a file: {}",
                what()
            ))),
            Some(_) => Ok((here, Some(name_s))),
            // `dst/` names a directory, which must exist (docker: "no such directory").
            None if dp.dir_syntax => Err(self.missing(dp)),
            None if contents => {
                // `src/.` to a new path: make the directory, the content goes in.
                let c = cstr(&name).map_err(ioe(what()))?;
                // SAFETY: valid C string.
                cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) })
                    .map_err(ioe(what()))?;
                Ok((here.join(&name_s), None))
            }
            None => Ok((here, Some(name_s))),
        }
    }
}

/// A host path to copy in, as docker's client reads it.
struct HostSource {
    /// Absolute; resolved when followed (`-L`, `dir/`, `dir/.`).
    real: PathBuf,
    is_dir: bool,
    /// `dir/.`: the content, not the directory.
    contents: bool,
}

fn host_source(src: &Path, follow: bool) -> Result<HostSource> {
    let s = src.as_os_str().as_bytes();
    let contents = s == b"." || s.ends_with(b"/.");
    let dir_syntax = contents || s.ends_with(b"/");
    let follow = follow || dir_syntax;
    let md = if follow {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            CopyError::NoSuchHostPath(src.to_path_buf())
        } else {
            ioe(format!("stat {}", src.display()))(e)
        }
    })?;
    if dir_syntax && !md.is_dir() {
        return Err(CopyError::Invalid(format!(
            "{}: not a directory",
            src.display()
        )));
    }
    let real = if follow {
        std::fs::canonicalize(src).map_err(ioe(format!("resolve {}", src.display())))?
    } else {
        absolute(src)?
    };
    Ok(HostSource {
        real,
        is_dir: md.is_dir(),
        contents,
    })
}

/// Where a copy out to the host goes.
struct HostPlan {
    /// The directory to extract in.
    dir: PathBuf,
    /// The name the source takes there (`None`: its own).
    name: Option<String>,
}

fn host_target(dst: &Path, src_is_dir: bool) -> Result<HostPlan> {
    let d = dst.as_os_str().as_bytes();
    let dir_syntax = d.ends_with(b"/") || d.ends_with(b"/.");
    match std::fs::metadata(dst) {
        Ok(m) if m.is_dir() => Ok(HostPlan {
            dir: dst.to_path_buf(),
            name: None,
        }),
        Ok(_) if src_is_dir => Err(CopyError::Invalid(format!(
            "cannot copy a directory to a file: {}",
            dst.display()
        ))),
        Ok(_) if dir_syntax => Err(CopyError::Invalid(format!(
            "{}: not a directory",
            dst.display()
        ))),
        Ok(_) => plan_in_parent(dst),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if dir_syntax {
                return Err(CopyError::Invalid(format!(
                    "destination directory {} does not exist",
                    dst.display()
                )));
            }
            plan_in_parent(dst)
        }
        Err(e) => Err(ioe(format!("stat {}", dst.display()))(e)),
    }
}

fn plan_in_parent(dst: &Path) -> Result<HostPlan> {
    let abs = absolute(dst)?;
    let (parent, name) = split(&abs);
    if !parent.is_dir() {
        return Err(CopyError::NoSuchHostPath(parent.to_path_buf()));
    }
    Ok(HostPlan {
        dir: parent.to_path_buf(),
        name: Some(String::from_utf8_lossy(name).into_owned()),
    })
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(ioe(format!("resolve {}", p.display())))
}

/// Run `produce` writing a tar stream and `consume` reading it, concurrently, through
/// a pipe: the copy never holds a whole tree in memory.
pub(crate) fn pipe_through(
    produce: impl FnOnce(&mut dyn Write) -> Result<()> + Send,
    consume: impl FnOnce(&mut dyn Read) -> Result<()>,
) -> Result<()> {
    let (mut r, w) = io::pipe().map_err(ioe("pipe"))?;
    std::thread::scope(|s| {
        let t = s.spawn(move || {
            let mut w = w;
            produce(&mut w)
        });
        let c = consume(&mut r);
        // Unblock the writer if the reader stopped early.
        drop(r);
        let p = t
            .join()
            .unwrap_or_else(|_| Err(CopyError::Invalid("archive writer panicked".into())));
        c.and(p)
    })
}
