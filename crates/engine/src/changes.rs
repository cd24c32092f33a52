//! `diff`: what a container changed, read from its upper directory alone (the image's
//! layers are only looked up to tell an added path from a modified one), with docker's
//! rules (moby and containers/storage `pkg/archive` `changes()` over
//! `OverlayChanges`, which `docker diff` and `podman diff` print):
//!
//! - a whiteout (character device 0:0) is `D`;
//! - an opaque directory (`trusted.overlay.opaque=y`, made by `rm -r d; mkdir d`) that
//!   exists in the image is `D` (the old directory went), and what is in it now is
//!   listed under it as `A`;
//! - any other path is `C` if it exists in the image, else `A`; but a directory whose
//!   mode, size and mtime equal the image's is left out (it is in the upper directory
//!   only because something under it was copied up);
//! - the directories above an `A` or `D` not listed yet are listed as `C`, before it;
//! - order: a walk of the upper directory, names in byte order, parents first.
//!
//! The image is looked at as overlayfs sees it: a whiteout or an opaque directory in a
//! higher layer hides what lower layers hold there, and no symlink in a layer is
//! followed (docker's `os.Stat` would follow one to the host's filesystem).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What happened to a path (docker's `ChangeType` numbering: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ChangeKind {
    /// `C`
    Modified,
    /// `A`
    Added,
    /// `D`
    Deleted,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
    /// The number the Engine API uses (`"Kind": 0|1|2`).
    pub fn api_number(self) -> u8 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
}

/// One changed path, absolute inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `/etc/passwd`; bytes that are not UTF-8 are kept in the `PathBuf`.
    pub path: PathBuf,
    /// What happened.
    pub kind: ChangeKind,
}

impl std::fmt::Display for Change {
    /// `docker diff`'s line: `C /etc`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path.display())
    }
}

/// A failure reading the upper directory or a layer, naming the path.
#[derive(Debug, thiserror::Error)]
#[error("diff: {path}: {source}")]
pub struct ChangesError {
    /// The path on the host.
    pub path: PathBuf,
    /// Cause.
    pub source: io::Error,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> ChangesError + '_ {
    move |source| ChangesError {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether a node is an overlay whiteout: a character device 0:0 (overlayfs.rst
/// "whiteouts and opaque directories").
pub(crate) fn is_whiteout(md: &std::fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Whether `p` (a directory) carries `trusted.overlay.opaque=y`.
pub(crate) fn is_opaque(p: &Path) -> io::Result<bool> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    let mut v = [0u8; 4];
    // SAFETY: valid C strings and a buffer of the length given.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) | Some(libc::ERANGE) => Ok(false),
            _ => Err(e),
        };
    }
    Ok(n == 1 && v[0] == b'y')
}

fn lstat(p: &Path) -> Result<Option<std::fs::Metadata>, ChangesError> {
    match std::fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
        Err(e) => Err(err(p)(e)),
    }
}

/// The image's view of `rel` (relative, no `..`) through `top_first` layers, as
/// overlayfs merges them: the metadata of the topmost entry, or `None` when no layer
/// has it or a higher layer hides it (whiteout, opaque directory, a non-directory
/// over a parent).
pub(crate) fn lookup_lower(
    top_first: &[&Path],
    rel: &Path,
) -> Result<Option<std::fs::Metadata>, ChangesError> {
    let comps: Vec<&OsStr> = rel.iter().collect();
    'layers: for layer in top_first {
        let mut p = layer.to_path_buf();
        let mut opaque_above = false;
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            let Some(md) = lstat(&p)? else {
                if opaque_above {
                    return Ok(None);
                }
                continue 'layers;
            };
            if is_whiteout(&md) {
                return Ok(None);
            }
            if i + 1 == comps.len() {
                return Ok(Some(md));
            }
            if !md.is_dir() {
                // A file where a parent directory would be: it hides the layers below.
                return Ok(None);
            }
            if is_opaque(&p).map_err(err(&p))? {
                opaque_above = true;
            }
        }
    }
    Ok(None)
}

/// Same mtime as docker's `sameFsTime`: equal, or equal seconds with one side
/// lacking nanoseconds.
fn same_time(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.mtime() == b.mtime()
        && (a.mtime_nsec() == b.mtime_nsec() || a.mtime_nsec() == 0 || b.mtime_nsec() == 0)
}

/// The changes recorded in `upper` over the image layers `lowers_base_first`.
pub fn changes(upper: &Path, lowers_base_first: &[PathBuf]) -> Result<Vec<Change>, ChangesError> {
    let top_first: Vec<&Path> = lowers_base_first
        .iter()
        .rev()
        .map(|p| p.as_path())
        .collect();
    let mut w = Walk {
        upper,
        top_first,
        out: Vec::new(),
        changed_dirs: std::collections::HashSet::new(),
    };
    w.dir(Path::new(""))?;
    Ok(w.out)
}

struct Walk<'a> {
    upper: &'a Path,
    top_first: Vec<&'a Path>,
    out: Vec<Change>,
    changed_dirs: std::collections::HashSet<PathBuf>,
}

impl Walk<'_> {
    fn dir(&mut self, rel: &Path) -> Result<(), ChangesError> {
        let abs = self.upper.join(rel);
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&abs)
            .map_err(err(&abs))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(err(&abs))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            let r = rel.join(&n);
            let p = self.upper.join(&r);
            let Some(md) = lstat(&p)? else { continue };
            self.entry(&r, &p, &md)?;
            if md.is_dir() {
                self.dir(&r)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, p: &Path, md: &std::fs::Metadata) -> Result<(), ChangesError> {
        let lower = lookup_lower(&self.top_first, rel)?;
        // A whiteout, or an opaque directory replacing one of the image's.
        let deleted =
            is_whiteout(md) || (md.is_dir() && lower.is_some() && is_opaque(p).map_err(err(p))?);
        let kind = if deleted {
            ChangeKind::Deleted
        } else if let Some(l) = &lower {
            if l.is_dir()
                && md.is_dir()
                && l.size() == md.size()
                && l.mode() == md.mode()
                && same_time(l, md)
            {
                return Ok(());
            }
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        let abs = Path::new("/").join(rel);
        if md.is_dir() {
            self.changed_dirs.insert(abs.clone());
        }
        if kind != ChangeKind::Modified {
            let mut tail = Vec::new();
            let mut parent = abs.parent();
            while let Some(d) = parent {
                if d == Path::new("/") {
                    break;
                }
                if self.changed_dirs.insert(d.to_path_buf()) {
                    tail.push(Change {
                        path: d.to_path_buf(),
                        kind: ChangeKind::Modified,
                    });
                }
                parent = d.parent();
            }
            self.out.extend(tail.into_iter().rev());
        }
        self.out.push(Change { path: abs, kind });
        Ok(())
    }
}
