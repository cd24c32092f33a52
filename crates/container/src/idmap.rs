//! Idmapped bind mounts (runtime-spec config.md "Mounts": `uidMappings`,
//! `gidMappings`, and runc 1.2's `idmap`/`ridmap` options; mount_setattr(2)
//! "MOUNT_ATTR_IDMAP").
//!
//! Where each step happens, and why:
//! - **Parent, before clone**: `open_tree(OPEN_TREE_CLONE)` of the source, then
//!   `mount_setattr(MOUNT_ATTR_IDMAP)` with a user namespace carrying the mount's
//!   mappings. The kernel only idmaps a mount whose caller has CAP_SYS_ADMIN in the
//!   user namespace of the filesystem's superblock (fs/namespace.c
//!   `can_idmap_mount`) — the host's for a host directory, which init, root only in
//!   the container's user namespace, does not have. The per-mount flags (`ro`,
//!   `nosuid`…) are set on the still-detached tree in the same place.
//! - **Init**: `move_mount` of that detached tree onto the destination, resolved
//!   inside the rootfs like every other mount; then propagation and `r*` attributes
//!   as for plain binds.
//!
//! The mapping namespace is made as runc's `userns` helper does: a short-lived child
//! with CLONE_NEWUSER whose `uid_map`/`gid_map` we write, whose
//! `/proc/<pid>/ns/user` we open, and which we then kill.

use crate::error::{Ctx, Error, Result};
use crate::rootfs::{self, MountOptions};
use crate::sys::{self, cstring, MountAttr};
use oxcart_spec::{IdMapping, Mount, Spec};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// move_mount(2) from fd to fd (both "empty path": the fds themselves).
fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: valid fds and C strings.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Does this kernel have idmapped mounts (mount_setattr(2), Linux 5.12, which came
/// with MOUNT_ATTR_IDMAP)? Probed with a no-op call: anything but ENOSYS means it exists.
pub fn supported() -> bool {
    let attr = MountAttr {
        attr_set: 0,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: an invalid fd and valid pointers; nothing is changed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    // An all-zero attr is a no-op the kernel accepts before looking at the fd.
    r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

/// Is this mount to be idmapped? (`idmap`/`ridmap`, or mappings on the mount: runc
/// 1.2 treats mappings alone as a non-recursive idmap.)
pub fn wanted(m: &Mount) -> bool {
    m.options.iter().any(|o| o == "idmap" || o == "ridmap")
        || !m.uid_mappings.is_empty()
        || !m.gid_mappings.is_empty()
}

/// One idmapped tree made by the parent, waiting to be attached by init.
pub struct Tree {
    fd: OwnedFd,
    is_dir: bool,
}

/// The detached idmapped trees, by index in `mounts[]`.
#[derive(Default)]
pub struct Prepared {
    trees: Vec<Option<Tree>>,
}

impl Prepared {
    fn get(&self, i: usize) -> Option<&Tree> {
        self.trees.get(i).and_then(|t| t.as_ref())
    }
}

/// A short-lived process in a new user namespace; killed and reaped on drop.
struct Helper(libc::pid_t);

impl Drop for Helper {
    fn drop(&mut self) {
        // SAFETY: signalling and reaping our own child.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
        let _ = sys::waitpid(self.0, 0);
    }
}

fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// A user namespace whose uid/gid maps are `uids`/`gids` (an fd of it).
fn userns_with(uids: &[IdMapping], gids: &[IdMapping]) -> Result<OwnedFd> {
    // SAFETY: the runtime is single-threaded here (before the container's clone);
    // the child only ever calls pause(2) until we kill it.
    let pid = unsafe { sys::clone3(libc::CLONE_NEWUSER as u64, None) }
        .ctx(|| "clone a process for the idmap user namespace".into())?;
    if pid == 0 {
        loop {
            // SAFETY: plain syscall; we are killed by the parent.
            unsafe { libc::pause() };
        }
    }
    let helper = Helper(pid);
    std::fs::write(format!("/proc/{pid}/uid_map"), map_text(uids))
        .ctx(|| "write uid_map of the idmap user namespace".into())?;
    std::fs::write(format!("/proc/{pid}/gid_map"), map_text(gids))
        .ctx(|| "write gid_map of the idmap user namespace".into())?;
    let fd = sys::open(
        &cstring(format!("/proc/{pid}/ns/user"))?,
        libc::O_RDONLY | libc::O_CLOEXEC,
        0,
    )
    .ctx(|| "open the idmap user namespace".into())?;
    drop(helper);
    Ok(fd)
}

/// Parent side, before clone: check every idmapped mount and make its detached,
/// idmapped tree. `userns` says whether the container has a user namespace.
pub fn prepare(spec: &Spec, bundle: &Path, userns: bool) -> Result<Prepared> {
    let mut p = Prepared::default();
    if !spec.mounts.iter().any(wanted) {
        return Ok(p);
    }
    // Namespaces with the same mappings are shared between mounts.
    let mut cache: Vec<(Vec<IdMapping>, Vec<IdMapping>, OwnedFd)> = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        if !wanted(m) {
            p.trees.push(None);
            continue;
        }
        let t = prepare_one(spec, bundle, userns, i, m, &mut cache).map_err(|e| match e {
            Error::Config { .. } => e,
            other => Error::Config {
                field: format!("mounts[{i}]"),
                msg: format!("({}): {other}", m.destination),
            },
        })?;
        p.trees.push(Some(t));
    }
    Ok(p)
}

fn prepare_one(
    spec: &Spec,
    bundle: &Path,
    userns: bool,
    i: usize,
    m: &Mount,
    cache: &mut Vec<(Vec<IdMapping>, Vec<IdMapping>, OwnedFd)>,
) -> Result<Tree> {
    let field = format!("mounts[{i}]");
    let o = rootfs::parse_options(&m.options);
    let typ = m.typ.as_deref().unwrap_or("");
    // runc 1.2 (libcontainer/configs/validate): only bind mounts can be idmapped.
    if !(o.bind || typ == "bind") {
        return Err(Error::config(
            field,
            format!(
                "({}): idmapped mounts are only supported for bind mounts, not type {typ:?}",
                m.destination
            ),
        ));
    }
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        // runc 1.2 refuses them for rootless containers too: idmapping a host
        // filesystem needs the host's CAP_SYS_ADMIN.
        return Err(Error::config(
            field,
            format!(
                "({}): idmapped mounts are not supported for rootless containers",
                m.destination
            ),
        ));
    }
    if !userns {
        return Err(Error::config(
            field,
            format!(
                "({}): idmapped mounts need the container to have a user namespace",
                m.destination
            ),
        ));
    }
    if m.uid_mappings.is_empty() != m.gid_mappings.is_empty() {
        return Err(Error::config(
            field,
            format!(
                "({}): an idmapped mount needs both uidMappings and gidMappings",
                m.destination
            ),
        ));
    }
    oxcart_spec::validate::check_mappings(&format!("{field}.uidMappings"), &m.uid_mappings)?;
    oxcart_spec::validate::check_mappings(&format!("{field}.gidMappings"), &m.gid_mappings)?;
    let linux = spec.linux.as_ref();
    let ns_fd = if m.uid_mappings.is_empty() {
        // runc 1.2: without mappings of its own, the mount gets the container's.
        let (u, g) = match linux {
            Some(l) if !l.uid_mappings.is_empty() && !l.gid_mappings.is_empty() => {
                (l.uid_mappings.clone(), l.gid_mappings.clone())
            }
            _ => {
                // A user namespace joined by path carries its own mappings.
                let path = linux
                    .and_then(|l| l.namespaces.iter().find(|n| n.typ == "user"))
                    .and_then(|n| n.path.as_deref())
                    .filter(|p| !p.is_empty());
                let Some(path) = path else {
                    return Err(Error::config(
                        field,
                        format!(
                            "({}): idmap without uidMappings/gidMappings needs the container's mappings",
                            m.destination
                        ),
                    ));
                };
                return tree_for(bundle, m, &o, &field, &open_ns(path)?);
            }
        };
        userns_cached(cache, &u, &g)?
    } else {
        userns_cached(cache, &m.uid_mappings, &m.gid_mappings)?
    };
    tree_for(bundle, m, &o, &field, &ns_fd)
}

fn open_ns(path: &str) -> Result<OwnedFd> {
    sys::open(&cstring(path)?, libc::O_RDONLY | libc::O_CLOEXEC, 0)
        .ctx(|| format!("open user namespace {path}"))
}

fn userns_cached(
    cache: &mut Vec<(Vec<IdMapping>, Vec<IdMapping>, OwnedFd)>,
    u: &[IdMapping],
    g: &[IdMapping],
) -> Result<OwnedFd> {
    if let Some((_, _, fd)) = cache.iter().find(|(cu, cg, _)| cu == u && cg == g) {
        return fd.try_clone().ctx(|| "duplicate user namespace fd".into());
    }
    let fd = userns_with(u, g)?;
    let dup = fd
        .try_clone()
        .ctx(|| "duplicate user namespace fd".into())?;
    cache.push((u.to_vec(), g.to_vec(), fd));
    Ok(dup)
}

/// MS_* flags of a bind (what a bind remount would change) as MOUNT_ATTR_* bits:
/// (set, clear).
fn ms_to_attr(o: &MountOptions) -> (u64, u64) {
    let mut set = 0;
    let mut clr = 0;
    for (ms, attr) in [
        (libc::MS_RDONLY, sys::MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, sys::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, sys::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
        (libc::MS_NODIRATIME, sys::MOUNT_ATTR_NODIRATIME),
    ] {
        if o.flags & ms != 0 {
            set |= attr;
        } else if o.clear & ms != 0 {
            clr |= attr;
        }
    }
    // The atime mode is one field (mount_setattr(2): set it with MOUNT_ATTR__ATIME
    // in attr_clr).
    for (ms, attr) in [
        (libc::MS_NOATIME, sys::MOUNT_ATTR_NOATIME),
        (libc::MS_STRICTATIME, sys::MOUNT_ATTR_STRICTATIME),
        (libc::MS_RELATIME, sys::MOUNT_ATTR_RELATIME),
    ] {
        if o.flags & ms != 0 {
            set = (set & !sys::MOUNT_ATTR__ATIME) | attr;
            clr |= sys::MOUNT_ATTR__ATIME;
        }
    }
    (set, clr)
}

fn tree_for(
    bundle: &Path,
    m: &Mount,
    o: &MountOptions,
    field: &str,
    userns: &OwnedFd,
) -> Result<Tree> {
    let src = m.source.as_deref().ok_or_else(|| {
        Error::config(
            format!("{field}.source"),
            format!("({}): a bind mount needs a source", m.destination),
        )
    })?;
    // runtime-spec config.md: a relative source is relative to the bundle.
    let src_path = if src.starts_with('/') {
        PathBuf::from(src)
    } else {
        bundle.join(src)
    };
    let meta = std::fs::metadata(&src_path)
        .map_err(|e| Error::sys(format!("bind mount source {}", src_path.display()), e))?;
    let recursive = m.options.iter().any(|x| x == "ridmap");
    let mut flags = sys::OPEN_TREE_CLONE | sys::OPEN_TREE_CLOEXEC;
    // `rbind` copies the submounts too; only `ridmap` idmaps them (runc 1.2).
    if recursive || o.recursive_bind {
        flags |= sys::AT_RECURSIVE;
    }
    let fd = sys::open_tree(None, &sys::cpath(&src_path)?, flags)
        .ctx(|| format!("open_tree {}", src_path.display()))?;
    let attr = MountAttr {
        attr_set: sys::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = cstring("")?;
    let at = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { sys::AT_RECURSIVE } else { 0 };
    sys::mount_setattr(fd.as_fd(), &empty, at, &attr).map_err(|e| {
        match e.raw_os_error() {
            // can_idmap_mount(): the filesystem lacks FS_ALLOW_IDMAP.
            Some(libc::EINVAL) => Error::config(
                field,
                format!(
                    "({}): the filesystem of {} does not support idmapped mounts (mount_setattr: {e})",
                    m.destination,
                    src_path.display()
                ),
            ),
            _ => Error::sys(
                format!("idmap {} (mount_setattr MOUNT_ATTR_IDMAP)", src_path.display()),
                e,
            ),
        }
    })?;
    let (set, clr) = ms_to_attr(o);
    if set != 0 || clr != 0 {
        // The bind's own flags, on its top mount only, as a bind remount would.
        let attr = MountAttr {
            attr_set: set,
            attr_clr: clr,
            propagation: 0,
            userns_fd: 0,
        };
        sys::mount_setattr(
            fd.as_fd(),
            &empty,
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr,
        )
        .ctx(|| format!("set the options of {}", m.destination))?;
    }
    Ok(Tree {
        fd,
        is_dir: meta.is_dir(),
    })
}

/// Init side: attach mount `i`'s idmapped tree at its destination inside the rootfs,
/// then apply propagation and recursive attributes as for any bind.
pub fn attach(
    prepared: &Prepared,
    root: BorrowedFd<'_>,
    i: usize,
    m: &Mount,
    o: &MountOptions,
) -> Result<()> {
    let t = prepared.get(i).ok_or_else(|| {
        Error::Other(format!(
            "idmapped mount {} was not prepared before clone",
            m.destination
        ))
    })?;
    let dest = rootfs::resolve_in_root(root, &m.destination, !t.is_dir)?;
    move_mount(t.fd.as_fd(), dest.as_fd())
        .ctx(|| format!("move idmapped mount onto {}", m.destination))?;
    let mounted = rootfs::resolve_in_root(root, &m.destination, false)?;
    rootfs::apply_after(&mounted, o, &m.destination)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn flags_to_attrs() {
        let o = rootfs::parse_options(&["ro".into(), "nosuid".into(), "noatime".into()]);
        let (s, c) = ms_to_attr(&o);
        assert_eq!(
            s,
            sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOATIME
        );
        assert_eq!(c, sys::MOUNT_ATTR__ATIME);
        let o = rootfs::parse_options(&["rw".into()]);
        assert_eq!(ms_to_attr(&o), (0, sys::MOUNT_ATTR_RDONLY));
    }
    #[test]
    fn probe() {
        // This project's hosts run Linux >= 5.12.
        assert!(supported());
    }
}
