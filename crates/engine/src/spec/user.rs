//! The container's user from the image's `/etc/passwd` and `/etc/group`, resolved as
//! runc's `user.GetExecUser` does for docker (`-u name|uid[:group|gid]`).
//!
//! The files are opened with `openat2(RESOLVE_IN_ROOT)`: the rootfs is the image's,
//! and a hostile image may make `/etc/passwd` a symlink to `/etc/shadow` or anything
//! else of the host's; resolved in the rootfs, it can only name the image's own files.

use super::SpecError;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Groups listing the user as a member (when no group was given) and `--group-add`.
    pub additional_gids: Vec<u32>,
    /// From passwd; `/` when the user has no entry (runc's default).
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolve `spec` (docker's `User`: `""`, `name`, `uid`, `name:group`, `uid:gid`, …)
/// and `--group-add` against the rootfs's `/etc/passwd` and `/etc/group`.
pub fn resolve_user(
    rootfs: &Path,
    spec: &str,
    group_add: Option<&[String]>,
) -> Result<ExecUser, SpecError> {
    let passwd = read_db(rootfs, "etc/passwd")?.map(|t| parse_passwd(&t));
    let groups = read_db(rootfs, "etc/group")?.map(|t| parse_group(&t));
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let numeric = user_part.parse::<u32>().ok();
    let entry = passwd
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|e| match numeric {
            Some(uid) => e.uid == uid,
            None => e.name == user_part,
        });
    let (uid, mut gid, home, name) = match (entry, numeric) {
        (Some(e), _) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        (None, Some(uid)) => (uid, 0, "/".to_string(), None),
        (None, None) => return Err(SpecError::UserNotFound(user_part.to_string())),
    };
    let groups = groups.unwrap_or_default();
    let mut additional = Vec::new();
    match group_part {
        Some(g) if !g.is_empty() => gid = lookup_group(&groups, g)?,
        _ => {
            // No group given: every group that lists the user as a member (runc).
            if let Some(name) = &name {
                additional.extend(
                    groups
                        .iter()
                        .filter(|g| g.members.iter().any(|m| m == name))
                        .map(|g| g.gid),
                );
            }
        }
    }
    for g in group_add.unwrap_or_default() {
        additional.push(lookup_group(&groups, g)?);
    }
    let mut seen = std::collections::HashSet::new();
    additional.retain(|g| seen.insert(*g));
    Ok(ExecUser {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

fn lookup_group(groups: &[GroupEntry], g: &str) -> Result<u32, SpecError> {
    if let Some(e) = groups.iter().find(|e| e.name == g) {
        return Ok(e.gid);
    }
    g.parse::<u32>()
        .map_err(|_| SpecError::GroupNotFound(g.to_string()))
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f
                    .get(5)
                    .map_or("/", |h| if h.is_empty() { "/" } else { h })
                    .to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Read `rel` inside `rootfs`, resolved as if the rootfs were `/`. A missing file is
/// `None` (an image may have no `/etc/group`; numeric users still work, as in docker).
fn read_db(rootfs: &Path, rel: &str) -> Result<Option<String>, SpecError> {
    let err = |source| SpecError::ReadRootfs {
        path: format!("/{rel}"),
        source,
    };
    let root = open_dir(rootfs).map_err(|source| SpecError::ReadRootfs {
        path: rootfs.display().to_string(),
        source,
    })?;
    let file = match openat2_in_root(&root, rel) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let file = std::fs::File::from(file);
    if !file.metadata().map_err(err)?.is_file() {
        return Err(err(std::io::Error::other("not a regular file")));
    }
    let mut text = String::new();
    file.take(16 << 20).read_to_string(&mut text).map_err(err)?;
    Ok(Some(text))
}

fn open_dir(p: &Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid C string; the fd returned is new and ours.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The file at `rel`, resolved inside the rootfs (copy.rs' `openat2` with
/// RESOLVE_IN_ROOT): symlinks and `..` cannot leave it.
fn openat2_in_root(root: &OwnedFd, rel: &str) -> std::io::Result<OwnedFd> {
    // O_NONBLOCK: a FIFO planted at /etc/passwd must not hang the engine.
    crate::copy::open_in_root(
        root.as_raw_fd(),
        rel.as_bytes(),
        libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK,
    )
}
