//! Safe, overlayfs-ready layer extraction (image-spec `layer.md`).
//!
//! Each layer is extracted into its own empty directory, the layout overlayfs wants for a
//! lowerdir: whiteouts become 0:0 character devices and opaque markers become the
//! `trusted.overlay.opaque=y` xattr (the translation containerd does in
//! `pkg/archive/tar_opts_linux.go`; overlayfs.rst "whiteouts and opaque directories").
//!
//! Confinement: every path is resolved relative to the layer directory with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`
//! and the final component is created with `O_EXCL|O_NOFOLLOW`/`*at` calls that never
//! follow it. An entry that names `..`, is absolute, or has a parent reached through a
//! symlink is refused outright, naming the layer and entry (CVE-2018-15664 / tar-slip
//! class of bugs). The tar crate is only a parser here; we never call its `unpack`.

use crate::digest::{Algorithm, Digest, HashingReader};
use crate::oci::Compression;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use crate::confine::{cstr, cvt, openat2_beneath, proc_path};
pub use crate::confine::{open_beneath, remove_tree};

/// Error extracting a layer; always names the layer, and the entry when there is one.
#[derive(Debug, thiserror::Error)]
#[error("layer {layer}{}: {reason}", .entry.as_ref().map(|e| format!(", entry {e:?}")).unwrap_or_default())]
pub struct UnpackError {
    /// The layer (its digest, as the user knows it).
    pub layer: String,
    /// The tar entry, if the error is about one.
    pub entry: Option<String>,
    /// What went wrong.
    pub reason: String,
    /// Whether this is a refusal of a malicious/invalid entry (vs an I/O failure).
    pub refused: bool,
}

/// Result of extracting a layer.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of regular-file content written.
    pub size: u64,
}

/// The xattr overlayfs reads to mark a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Extractor<'a> {
    layer: &'a str,
    root: OwnedFd,
    /// Last parent directory opened: tar entries come grouped by directory.
    cache: Option<(Vec<u8>, OwnedFd)>,
    /// Directories whose mtime must be set after all their children are written.
    dirs: Vec<(Vec<u8>, i64)>,
    size: u64,
    buf: Vec<u8>,
}

enum Kind {
    Dir,
    File,
    Symlink(Vec<u8>),
    Hardlink(Vec<Vec<u8>>),
    Char(u32, u32),
    Block(u32, u32),
    Fifo,
}

impl<'a> Extractor<'a> {
    fn refuse(&self, entry: &str, reason: impl Into<String>) -> UnpackError {
        UnpackError {
            layer: self.layer.to_string(),
            entry: Some(entry.to_string()),
            reason: reason.into(),
            refused: true,
        }
    }
    fn fail(&self, entry: &str, what: &str, e: io::Error) -> UnpackError {
        UnpackError {
            layer: self.layer.to_string(),
            entry: Some(entry.to_string()),
            reason: format!("{what}: {e}"),
            refused: false,
        }
    }

    /// Split an entry name into clean components; refuse absolute names and `..`.
    fn components(&self, entry: &str, raw: &Path) -> Result<Vec<Vec<u8>>, UnpackError> {
        let mut out = Vec::new();
        // umoci (and others) name the layer root "/"; that entry only carries the root's
        // attributes and cannot leave the layer. Any other absolute name is refused.
        if raw
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::CurDir))
        {
            return Ok(out);
        }
        for c in raw.components() {
            match c {
                Component::Normal(n) => out.push(n.as_bytes().to_vec()),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.refuse(
                        entry,
                        "path contains '..', refusing to write outside the layer",
                    ))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(
                        self.refuse(entry, "absolute path, refusing to write outside the layer")
                    )
                }
            }
        }
        Ok(out)
    }

    /// Open (creating missing directories as 0755 root:root, like docker) the parent
    /// directory `comps`, never through a symlink.
    fn parent(
        &mut self,
        entry: &str,
        comps: &[Vec<u8>],
        create: bool,
    ) -> Result<RawFd, UnpackError> {
        if comps.is_empty() {
            return Ok(self.root.as_raw_fd());
        }
        let joined = comps.join(&b'/');
        if let Some((p, fd)) = &self.cache {
            if *p == joined {
                return Ok(fd.as_raw_fd());
            }
        }
        // No O_NOFOLLOW: RESOLVE_NO_SYMLINKS then reports a symlink as the last
        // component with ELOOP too, which we turn into a clear refusal.
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        let fd = match openat2_beneath(self.root.as_raw_fd(), &joined, flags) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                let mut cur: Option<OwnedFd> = None;
                for c in comps {
                    let dirfd = cur
                        .as_ref()
                        .map(|f| f.as_raw_fd())
                        .unwrap_or(self.root.as_raw_fd());
                    let name = cstr(c).map_err(|e| self.fail(entry, "name", e))?;
                    // SAFETY: valid fd and C string.
                    let r = unsafe { libc::mkdirat(dirfd, name.as_ptr(), 0o755) };
                    let created = if r < 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err(self.fail(entry, "creating parent directory", e));
                        }
                        false
                    } else {
                        true
                    };
                    if created {
                        // mkdir(2) applies the umask; implicit parents must be 0755 whatever
                        // the caller's umask is (docker creates them 0755 root:root).
                        // SAFETY: valid fd and C string; we just created this directory.
                        cvt(unsafe { libc::fchmodat(dirfd, name.as_ptr(), 0o755, 0) })
                            .map_err(|e| self.fail(entry, "chmod parent directory", e))?;
                    }
                    let next =
                        openat2_beneath(dirfd, c, flags).map_err(|e| self.parent_err(entry, e))?;
                    cur = Some(next);
                }
                match cur {
                    Some(fd) => fd,
                    None => return Ok(self.root.as_raw_fd()),
                }
            }
            Err(e) => return Err(self.parent_err(entry, e)),
        };
        self.cache = Some((joined, fd));
        Ok(self.cache.as_ref().map(|c| c.1.as_raw_fd()).unwrap_or(-1))
    }

    fn parent_err(&self, entry: &str, e: io::Error) -> UnpackError {
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::EXDEV) => self.refuse(
                entry,
                "its parent path goes through a symlink, refusing to write through it",
            ),
            Some(libc::ENOTDIR) => self.refuse(entry, "a parent path component is not a directory"),
            _ => self.fail(entry, "opening parent directory", e),
        }
    }

    fn lstat(parent: RawFd, name: &CString) -> io::Result<Option<libc::stat>> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd, C string and out-pointer.
        let r = unsafe { libc::fstatat(parent, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if r == 0 {
            Ok(Some(st))
        } else {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }

    /// Remove whatever is at parent/name (a duplicate entry replaces it, `layer.md`
    /// "Changeset over existing files").
    fn remove_existing(&mut self, parent: RawFd, name: &CString, is_dir: bool) -> io::Result<()> {
        if is_dir {
            // Resolve the parent to a path first (the kernel's name for an fd we opened
            // without following symlinks), then drop the cache: the cached directory
            // may be inside the tree we delete.
            let real = std::fs::read_link(format!("/proc/self/fd/{parent}"))?
                .join(OsStr::from_bytes(name.as_bytes()));
            self.cache = None;
            std::fs::remove_dir_all(real)
        } else {
            // SAFETY: valid fd and C string.
            cvt(unsafe { libc::unlinkat(parent, name.as_ptr(), 0) }).map(|_| ())
        }
    }

    fn set_attrs(
        &self,
        entry: &str,
        parent: RawFd,
        name: &CString,
        a: &Attrs,
        symlink: bool,
    ) -> Result<(), UnpackError> {
        // chown before chmod: chown clears set-id bits (chown(2)).
        // SAFETY: valid fd and C string.
        cvt(unsafe {
            libc::fchownat(
                parent,
                name.as_ptr(),
                a.uid,
                a.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map_err(|e| self.fail(entry, "chown", e))?;
        if !symlink {
            // SAFETY: valid fd and C string; the node was just created by us in a private
            // directory, and is not a symlink.
            cvt(unsafe { libc::fchmodat(parent, name.as_ptr(), a.mode & 0o7777, 0) })
                .map_err(|e| self.fail(entry, "chmod", e))?;
        }
        if !a.xattrs.is_empty() {
            let p = proc_path(parent, name.as_bytes()).map_err(|e| self.fail(entry, "xattr", e))?;
            for (k, v) in &a.xattrs {
                let key = cstr(k.as_bytes()).map_err(|e| self.fail(entry, "xattr name", e))?;
                // SAFETY: valid C strings and buffer. lsetxattr: never follow the final symlink.
                let r = unsafe {
                    libc::lsetxattr(p.as_ptr(), key.as_ptr(), v.as_ptr().cast(), v.len(), 0)
                };
                if r < 0 {
                    return Err(self.fail(
                        entry,
                        &format!("setting xattr {k}"),
                        io::Error::last_os_error(),
                    ));
                }
            }
        }
        self.set_mtime(entry, parent, name, a.mtime)
    }

    /// Attributes through the open fd: no path lookups for the common case.
    fn set_file_attrs(&self, entry: &str, f: &File, a: &Attrs) -> Result<(), UnpackError> {
        let fd = f.as_raw_fd();
        // chown before chmod: chown clears set-id bits (chown(2)).
        // SAFETY (this block): plain syscalls on an fd we own, valid buffers.
        cvt(unsafe { libc::fchown(fd, a.uid, a.gid) }).map_err(|e| self.fail(entry, "chown", e))?;
        cvt(unsafe { libc::fchmod(fd, a.mode & 0o7777) })
            .map_err(|e| self.fail(entry, "chmod", e))?;
        for (k, v) in &a.xattrs {
            let key = cstr(k.as_bytes()).map_err(|e| self.fail(entry, "xattr name", e))?;
            cvt(unsafe { libc::fsetxattr(fd, key.as_ptr(), v.as_ptr().cast(), v.len(), 0) })
                .map_err(|e| self.fail(entry, &format!("setting xattr {k}"), e))?;
        }
        let ts = libc::timespec {
            tv_sec: a.mtime as libc::time_t,
            tv_nsec: 0,
        };
        let times = [ts, ts];
        cvt(unsafe { libc::futimens(fd, times.as_ptr()) })
            .map_err(|e| self.fail(entry, "setting mtime", e))?;
        Ok(())
    }

    fn set_mtime(
        &self,
        entry: &str,
        parent: RawFd,
        name: &CString,
        mtime: i64,
    ) -> Result<(), UnpackError> {
        let ts = libc::timespec {
            tv_sec: mtime as libc::time_t,
            tv_nsec: 0,
        };
        let times = [ts, ts];
        // SAFETY: valid fd, C string and times array.
        cvt(unsafe {
            libc::utimensat(
                parent,
                name.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map_err(|e| self.fail(entry, "setting mtime", e))?;
        Ok(())
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = e.path_bytes().into_owned();
        let entry = String::from_utf8_lossy(&raw).into_owned();
        let h = e.header();
        let et = h.entry_type();
        let kind = match et {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(
                e.link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
            ),
            tar::EntryType::Link => {
                let l = e
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let comps = self.components(&entry, Path::new(OsStr::from_bytes(&l)))?;
                if comps.is_empty() {
                    return Err(self.refuse(&entry, "hardlink to the layer root"));
                }
                Kind::Hardlink(comps)
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let maj = h.device_major().ok().flatten().unwrap_or(0);
                let min = h.device_minor().ok().flatten().unwrap_or(0);
                if et == tar::EntryType::Char {
                    Kind::Char(maj, min)
                } else {
                    Kind::Block(maj, min)
                }
            }
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(self.refuse(
                    &entry,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ))
            }
        };
        let mut attrs = Attrs {
            mode: h.mode().map_err(|e| self.fail(&entry, "mode", e))?,
            uid: blank_is_zero(h.uid(), &h.as_old().uid).map_err(|e| self.fail(&entry, "uid", e))?
                as u32,
            gid: blank_is_zero(h.gid(), &h.as_old().gid).map_err(|e| self.fail(&entry, "gid", e))?
                as u32,
            mtime: h.mtime().map_err(|e| self.fail(&entry, "mtime", e))? as i64,
            xattrs: Vec::new(),
        };
        if let Some(pax) = e
            .pax_extensions()
            .map_err(|er| self.fail(&entry, "PAX header", er))?
        {
            for ext in pax {
                let ext = ext.map_err(|er| self.fail(&entry, "PAX header", er))?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    // A layer must not forge overlayfs metadata: it would create
                    // whiteouts/redirects the tar does not show (containerd refuses too).
                    if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                        return Err(self.refuse(&entry, format!("carries overlayfs xattr {name}")));
                    }
                    attrs
                        .xattrs
                        .push((name.to_string(), ext.value_bytes().to_vec()));
                } else if key == "mtime" {
                    if let Some(secs) = ext
                        .value()
                        .ok()
                        .and_then(|v| v.split('.').next())
                        .and_then(|s| s.parse::<i64>().ok())
                    {
                        attrs.mtime = secs;
                    }
                }
            }
        }

        let comps = self.components(&entry, Path::new(OsStr::from_bytes(&raw)))?;
        let Some((name, parent_comps)) = comps.split_last() else {
            // The layer root itself ("./"): only its attributes can change.
            if matches!(kind, Kind::Dir) {
                let dot = cstr(b".").map_err(|e| self.fail(&entry, "name", e))?;
                let root = self.root.as_raw_fd();
                // Open it for real: O_PATH fds do not take fchown/xattrs via *at(".").
                let root_dir = openat2_beneath(root, b".", libc::O_RDONLY | libc::O_DIRECTORY)
                    .map_err(|e| self.fail(&entry, "opening layer root", e))?;
                self.set_attrs(&entry, root_dir.as_raw_fd(), &dot, &attrs, false)?;
                self.dirs.push((Vec::new(), attrs.mtime));
                return Ok(());
            }
            return Err(self.refuse(&entry, "non-directory entry for the layer root"));
        };
        let name = name.clone();

        // Whiteouts (layer.md "Whiteouts").
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            let parent = self.parent(&entry, parent_comps, true)?;
            if name == OPAQUE_MARKER.as_bytes() {
                let p = proc_path(parent, b"").map_err(|e| self.fail(&entry, "opaque", e))?;
                let key =
                    cstr(OPAQUE_XATTR.as_bytes()).map_err(|e| self.fail(&entry, "opaque", e))?;
                // SAFETY: valid C strings and buffer.
                cvt(unsafe {
                    libc::setxattr(p.as_ptr(), key.as_ptr(), b"y".as_ptr().cast(), 1, 0)
                })
                .map_err(|e| self.fail(&entry, "setting trusted.overlay.opaque", e))?;
                return Ok(());
            }
            if target.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                // `.wh..wh.*` other than the opaque marker is aufs metadata (plnk, aufs);
                // docker and containerd skip it.
                return Ok(());
            }
            if target.is_empty() || target == b"." || target == b".." {
                return Err(self.refuse(&entry, "invalid whiteout name"));
            }
            let t = cstr(target).map_err(|e| self.fail(&entry, "name", e))?;
            if Self::lstat(parent, &t)
                .map_err(|e| self.fail(&entry, "stat", e))?
                .is_some()
            {
                // layer.md: a whiteout never applies to files of its own layer.
                return Ok(());
            }
            // SAFETY: valid fd and C string.
            cvt(unsafe { libc::mknodat(parent, t.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) })
                .map_err(|e| self.fail(&entry, "creating whiteout device", e))?;
            // SAFETY: as above.
            cvt(unsafe {
                libc::fchownat(
                    parent,
                    t.as_ptr(),
                    attrs.uid,
                    attrs.gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })
            .map_err(|e| self.fail(&entry, "chown whiteout", e))?;
            return Ok(());
        }

        let cname = cstr(&name).map_err(|e| self.fail(&entry, "name", e))?;
        let mode = attrs.mode & 0o7777;
        // A hardlink's target directory, held open by us: `parent()` reuses one cache slot.
        let mut tlink: Option<(Option<OwnedFd>, CString)> = None;
        if let Kind::Hardlink(target) = &kind {
            let Some((tname, tparent)) = target.split_last() else {
                return Err(self.refuse(&entry, "hardlink to the layer root"));
            };
            let tdir = if tparent.is_empty() {
                None
            } else {
                Some(
                    openat2_beneath(
                        self.root.as_raw_fd(),
                        &tparent.join(&b'/'),
                        libc::O_PATH | libc::O_DIRECTORY,
                    )
                    .map_err(|er| match er.raw_os_error() {
                        Some(libc::ENOENT) => {
                            self.refuse(&entry, "hardlink target does not exist in this layer")
                        }
                        _ => self.parent_err(&entry, er),
                    })?,
                )
            };
            let tn = cstr(tname).map_err(|er| self.fail(&entry, "link target", er))?;
            tlink = Some((tdir, tn));
        }
        let symlink_target = match &kind {
            Kind::Symlink(t) => Some(cstr(t).map_err(|er| self.fail(&entry, "link target", er))?),
            _ => None,
        };
        // Create the node. The layer directory starts empty, so the fast path is a plain
        // create that never follows or reuses anything (O_EXCL, *at without FOLLOW);
        // EEXIST means a duplicate entry of this layer, handled below.
        let root_fd = self.root.as_raw_fd();
        let make = |parent: RawFd| -> io::Result<Option<File>> {
            // SAFETY (all arms): valid fds and C strings owned by this frame.
            match &kind {
                Kind::Dir => {
                    cvt(unsafe { libc::mkdirat(parent, cname.as_ptr(), 0o700) }).map(|_| None)
                }
                Kind::File => {
                    let fd = cvt(unsafe {
                        libc::openat(
                            parent,
                            cname.as_ptr(),
                            libc::O_WRONLY
                                | libc::O_CREAT
                                | libc::O_EXCL
                                | libc::O_NOFOLLOW
                                | libc::O_CLOEXEC,
                            0o600,
                        )
                    })?;
                    // SAFETY: fresh fd we own.
                    Ok(Some(unsafe { File::from_raw_fd(fd) }))
                }
                Kind::Symlink(_) => {
                    let t = symlink_target
                        .as_ref()
                        .map(|t| t.as_ptr())
                        .unwrap_or(std::ptr::null());
                    // A symlink's target may point anywhere: we never follow symlinks while
                    // extracting, and the runtime resolves them inside the container root.
                    cvt(unsafe { libc::symlinkat(t, parent, cname.as_ptr()) }).map(|_| None)
                }
                Kind::Hardlink(_) => {
                    let (tdir, tn) = tlink
                        .as_ref()
                        .ok_or_else(|| io::Error::other("hardlink target"))?;
                    let tfd = tdir.as_ref().map(|f| f.as_raw_fd()).unwrap_or(root_fd);
                    // linkat without AT_SYMLINK_FOLLOW links a symlink itself, never its target.
                    cvt(unsafe { libc::linkat(tfd, tn.as_ptr(), parent, cname.as_ptr(), 0) })
                        .map(|_| None)
                }
                Kind::Char(maj, min) => cvt(unsafe {
                    libc::mknodat(
                        parent,
                        cname.as_ptr(),
                        libc::S_IFCHR | mode,
                        libc::makedev(*maj, *min),
                    )
                })
                .map(|_| None),
                Kind::Block(maj, min) => cvt(unsafe {
                    libc::mknodat(
                        parent,
                        cname.as_ptr(),
                        libc::S_IFBLK | mode,
                        libc::makedev(*maj, *min),
                    )
                })
                .map(|_| None),
                Kind::Fifo => {
                    cvt(unsafe { libc::mknodat(parent, cname.as_ptr(), libc::S_IFIFO | mode, 0) })
                        .map(|_| None)
                }
            }
        };
        let mut parent = self.parent(&entry, parent_comps, true)?;
        let made = match make(parent) {
            Err(er) if er.raw_os_error() == Some(libc::EEXIST) => {
                let st = Self::lstat(parent, &cname).map_err(|e| self.fail(&entry, "stat", e))?;
                let existing_dir = st.is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
                if existing_dir && matches!(kind, Kind::Dir) {
                    // layer.md: dir over dir changes only the attributes.
                    Ok(None)
                } else {
                    self.remove_existing(parent, &cname, existing_dir)
                        .map_err(|e| self.fail(&entry, "replacing existing path", e))?;
                    // remove_existing may have dropped the cached parent; reopen it.
                    parent = self.parent(&entry, parent_comps, true)?;
                    make(parent)
                }
            }
            r => r,
        };
        let made = made.map_err(|er| match (&kind, er.raw_os_error()) {
            (Kind::Hardlink(_), Some(libc::ENOENT)) => {
                self.refuse(&entry, "hardlink target does not exist in this layer")
            }
            (Kind::Hardlink(_), Some(libc::EPERM)) => {
                self.refuse(&entry, "hardlink to a directory")
            }
            _ => self.fail(&entry, "create", er),
        })?;
        match (&kind, made) {
            (Kind::File, Some(mut f)) => {
                let n = copy_with(e, &mut f, &mut self.buf)
                    .map_err(|er| self.fail(&entry, "writing content", er))?;
                self.size += n;
                self.set_file_attrs(&entry, &f, &attrs)?;
            }
            // Hardlinks share the target's inode and attributes.
            (Kind::Hardlink(_), _) => {}
            (Kind::Symlink(_), _) => self.set_attrs(&entry, parent, &cname, &attrs, true)?,
            (Kind::Dir, _) => {
                self.set_attrs(&entry, parent, &cname, &attrs, false)?;
                self.dirs.push((comps.join(&b'/'), attrs.mtime));
            }
            _ => self.set_attrs(&entry, parent, &cname, &attrs, false)?,
        }
        Ok(())
    }

    /// Directory mtimes last, deepest first: writing children changes them.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        self.cache = None;
        let dirs = std::mem::take(&mut self.dirs);
        for (path, mtime) in dirs.iter().rev() {
            let entry = String::from_utf8_lossy(path).into_owned();
            let p: &[u8] = if path.is_empty() { b"." } else { path };
            let fd =
                match openat2_beneath(self.root.as_raw_fd(), p, libc::O_PATH | libc::O_DIRECTORY) {
                    Ok(fd) => fd,
                    // Replaced by a later entry of the same layer.
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) =>
                    {
                        continue
                    }
                    Err(e) => return Err(self.fail(&entry, "reopening directory", e)),
                };
            let ts = libc::timespec {
                tv_sec: *mtime as libc::time_t,
                tv_nsec: 0,
            };
            let times = [ts, ts];
            // AT_EMPTY_PATH is not accepted by utimensat; go through /proc for O_PATH fds.
            let pp = proc_path(fd.as_raw_fd(), b"").map_err(|e| self.fail(&entry, "mtime", e))?;
            // SAFETY: valid C string and times array.
            cvt(unsafe { libc::utimensat(libc::AT_FDCWD, pp.as_ptr(), times.as_ptr(), 0) })
                .map_err(|e| self.fail(&entry, "setting directory mtime", e))?;
        }
        Ok(())
    }
}

/// Some writers leave numeric fields empty (all NUL); GNU tar reads those as 0.
fn blank_is_zero(v: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match v {
        Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
        other => other,
    }
}

fn copy_with(r: &mut dyn Read, f: &mut File, buf: &mut Vec<u8>) -> io::Result<u64> {
    use std::io::Write;
    if buf.len() < (256 << 10) {
        buf.resize(256 << 10, 0);
    }
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Supplies a missing tar trailer. umoci 0.4.7's `insert` (Debian 12) writes layers
/// that stop right after the last file's data, without the padding to 512 bytes and the
/// two zero blocks that end an archive; podman and umoci itself accept them. When the
/// real stream ends early we serve zeros up to the next block boundary plus the
/// end-of-archive blocks, and remember where the real bytes ended: if any entry's data
/// reaches past that point, the layer is truncated and refused. The synthetic zeros sit
/// outside the DiffID hash.
struct Unterminated<R> {
    inner: R,
    pos: u64,
    real_end: Option<u64>,
    synthetic: u64,
}

impl<R: Read> Read for Unterminated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.real_end.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.pos += n as u64;
                return Ok(n);
            }
            self.real_end = Some(self.pos);
            self.synthetic = (512 - self.pos % 512) % 512 + 1024;
        }
        let n = (self.synthetic.min(buf.len() as u64)) as usize;
        buf[..n].fill(0);
        self.synthetic -= n as u64;
        Ok(n)
    }
}

/// Wrap `reader` in the decompressor for `compression`.
pub fn decompressor<'r>(
    reader: Box<dyn Read + 'r>,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'r>> {
    Ok(match compression {
        Compression::None => reader,
        // Multi-member gzip is valid gzip (RFC 1952 §2.2); pigz and some registries emit it.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(256 << 10, reader),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// Extract one layer stream (compressed as `compression`) into the empty directory
/// `dest`, returning its DiffID (digest of the uncompressed tar, read to the end).
pub fn unpack_layer(
    reader: Box<dyn Read + '_>,
    compression: Compression,
    dest: &Path,
    layer: &str,
) -> Result<Unpacked, UnpackError> {
    let fail = |reason: String| UnpackError {
        layer: layer.to_string(),
        entry: None,
        reason,
        refused: false,
    };
    let root = openat2_beneath(
        libc::AT_FDCWD,
        dest.as_os_str().as_bytes(),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .or_else(|_| {
        // Absolute paths are not "beneath" AT_FDCWD; open the destination plainly.
        let p = cstr(dest.as_os_str().as_bytes())?;
        // SAFETY: valid C string.
        let fd = cvt(unsafe {
            libc::open(
                p.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: fresh fd we own.
        Ok::<_, io::Error>(unsafe { OwnedFd::from_raw_fd(fd) })
    })
    .map_err(|e| fail(format!("opening {}: {e}", dest.display())))?;
    let dec = decompressor(reader, compression).map_err(|e| fail(format!("decompressor: {e}")))?;
    let hr = HashingReader::new(dec, Algorithm::Sha256);
    let mut ex = Extractor {
        layer,
        root,
        cache: None,
        dirs: Vec::new(),
        size: 0,
        buf: Vec::new(),
    };
    let mut lenient = Unterminated {
        inner: hr,
        pos: 0,
        real_end: None,
        synthetic: 0,
    };
    // Where the data of the last regular file ends, to tell a missing trailer (accepted)
    // from a truncated file (refused).
    let mut data_end = 0u64;
    let mut last_file = String::new();
    {
        let mut ar = tar::Archive::new(&mut lenient);
        let entries = ar
            .entries()
            .map_err(|e| fail(format!("reading tar: {e}")))?;
        for e in entries {
            let mut e = e.map_err(|e| fail(format!("reading tar: {e}")))?;
            let end = e.raw_file_position() + e.size();
            if end > data_end {
                data_end = end;
                last_file = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            }
            ex.entry(&mut e)?;
        }
    }
    if let Some(real_end) = lenient.real_end {
        if data_end > real_end {
            return Err(UnpackError {
                layer: layer.to_string(),
                entry: Some(last_file),
                reason: format!("the tar stream ends at byte {real_end}, inside this entry's data"),
                refused: false,
            });
        }
    }
    let mut hr = lenient.inner;
    ex.finish_dirs()?;
    // The DiffID covers the whole uncompressed stream, including the end-of-archive
    // blocks and any padding after them.
    io::copy(&mut hr, &mut io::sink()).map_err(|e| fail(format!("reading tar trailer: {e}")))?;
    let (diff_id, _) = hr.finish();
    Ok(Unpacked {
        diff_id,
        size: ex.size,
    })
}
