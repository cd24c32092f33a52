//! The container's filesystem: mounts, devices, pivot_root, masked and read-only
//! paths (runtime-spec `config.md` "Mounts", `config-linux.md` "Devices",
//! "Masked Paths", "Readonly Paths", "Rootfs Mount Propagation").
//!
//! Every destination is resolved *inside* the rootfs with openat2(RESOLVE_IN_ROOT)
//! and mounted through its `/proc/self/fd/N` handle, so a symlink planted in the image
//! (say `/proc -> /`) can never make us mount over a host path (CVE-2021-30465).

use crate::error::{Ctx, Error, Result};
use crate::sys::{self, cstring, MountAttr};
use oxcart_spec::{LinuxDevice, Mount, Spec};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Parsed `mounts[].options`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: libc::c_ulong,
    /// Flags explicitly cleared (`rw`, `suid`…), relevant when remounting binds.
    pub clear: libc::c_ulong,
    pub propagation: Vec<libc::c_ulong>,
    pub rec_set: u64,
    pub rec_clr: u64,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive_bind: bool,
    pub tmpcopyup: bool,
    pub idmap: bool,
}

/// Parse mount options as runc's `parseMountOptions` (libcontainer/specconv) does:
/// known flags become MS_* bits, recursive attrs become mount_setattr bits, the rest
/// is filesystem data.
pub fn parse_options(opts: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    for opt in opts {
        let (set, clr): (libc::c_ulong, libc::c_ulong) = match opt.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "atime" => (0, libc::MS_NOATIME),
            "noatime" => (libc::MS_NOATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "lazytime" => (libc::MS_LAZYTIME, 0),
            "nolazytime" => (0, libc::MS_LAZYTIME),
            "silent" => (libc::MS_SILENT, 0),
            "loud" => (0, libc::MS_SILENT),
            "iversion" => (libc::MS_I_VERSION, 0),
            "noiversion" => (0, libc::MS_I_VERSION),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
                continue;
            }
            "private" => {
                o.propagation.push(libc::MS_PRIVATE);
                continue;
            }
            "rprivate" => {
                o.propagation.push(libc::MS_PRIVATE | libc::MS_REC);
                continue;
            }
            "shared" => {
                o.propagation.push(libc::MS_SHARED);
                continue;
            }
            "rshared" => {
                o.propagation.push(libc::MS_SHARED | libc::MS_REC);
                continue;
            }
            "slave" => {
                o.propagation.push(libc::MS_SLAVE);
                continue;
            }
            "rslave" => {
                o.propagation.push(libc::MS_SLAVE | libc::MS_REC);
                continue;
            }
            "unbindable" => {
                o.propagation.push(libc::MS_UNBINDABLE);
                continue;
            }
            "runbindable" => {
                o.propagation.push(libc::MS_UNBINDABLE | libc::MS_REC);
                continue;
            }
            "tmpcopyup" => {
                o.tmpcopyup = true;
                continue;
            }
            "idmap" | "ridmap" => {
                o.idmap = true;
                continue;
            }
            r => {
                // Recursive attributes (runtime-spec 1.1 "rro", "rnosuid", ...).
                let rec: Option<(u64, u64)> = match r {
                    "rro" => Some((sys::MOUNT_ATTR_RDONLY, 0)),
                    "rrw" => Some((0, sys::MOUNT_ATTR_RDONLY)),
                    "rnosuid" => Some((sys::MOUNT_ATTR_NOSUID, 0)),
                    "rsuid" => Some((0, sys::MOUNT_ATTR_NOSUID)),
                    "rnodev" => Some((sys::MOUNT_ATTR_NODEV, 0)),
                    "rdev" => Some((0, sys::MOUNT_ATTR_NODEV)),
                    "rnoexec" => Some((sys::MOUNT_ATTR_NOEXEC, 0)),
                    "rexec" => Some((0, sys::MOUNT_ATTR_NOEXEC)),
                    "rnodiratime" => Some((sys::MOUNT_ATTR_NODIRATIME, 0)),
                    "rdiratime" => Some((0, sys::MOUNT_ATTR_NODIRATIME)),
                    "rrelatime" => Some((sys::MOUNT_ATTR_RELATIME, sys::MOUNT_ATTR__ATIME)),
                    "rnorelatime" => Some((0, sys::MOUNT_ATTR__ATIME)),
                    "rnoatime" => Some((sys::MOUNT_ATTR_NOATIME, sys::MOUNT_ATTR__ATIME)),
                    "ratime" => Some((0, sys::MOUNT_ATTR__ATIME)),
                    "rstrictatime" => Some((sys::MOUNT_ATTR_STRICTATIME, sys::MOUNT_ATTR__ATIME)),
                    "rnostrictatime" => Some((0, sys::MOUNT_ATTR__ATIME)),
                    _ => None,
                };
                match rec {
                    Some((s, c)) => {
                        o.rec_set |= s;
                        o.rec_clr |= c;
                    }
                    None => o.data.push(r.to_string()),
                }
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clr;
        o.clear |= clr;
    }
    o
}

/// Every option name we understand (for `features`).
pub const KNOWN_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "tmpcopyup",
];

fn fd_path(fd: BorrowedFd<'_>) -> CString {
    // A number never contains NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// Resolve `dest` inside the root, creating missing directories (and, when `file`,
/// an empty file as the last component). Returns an O_PATH fd of the destination.
/// A dangling symlink on the way is followed *inside* the root and its target
/// created there, as runc's securejoin+MkdirAll does.
pub fn resolve_in_root(root: BorrowedFd<'_>, dest: &str, file: bool) -> Result<OwnedFd> {
    ensure_in_root(root, dest, file, 0)
}

fn ensure_in_root(root: BorrowedFd<'_>, dest: &str, file: bool, depth: u32) -> Result<OwnedFd> {
    if depth > 40 {
        return Err(Error::sys(
            format!("resolve {dest:?} in rootfs"),
            io::Error::from_raw_os_error(libc::ELOOP),
        ));
    }
    let rel = dest.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let c = cstring(rel).ctx(|| format!("mount destination {dest:?}"))?;
    match sys::openat2(root, &c, libc::O_PATH, 0, sys::RESOLVE_IN_ROOT) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(Error::sys(format!("resolve {dest:?} in rootfs"), e)),
    }
    let p = Path::new(rel);
    let parent = p
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = p
        .file_name()
        .ok_or_else(|| Error::Other(format!("invalid mount destination {dest:?}")))?;
    let pfd = ensure_in_root(root, &parent, false, depth + 1)?;
    let cname = cstring(name.as_encoded_bytes())?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid fd, string and buffer.
    let n = unsafe {
        libc::readlinkat(
            pfd.as_raw_fd(),
            cname.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
        )
    };
    if n > 0 {
        let target = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
        let next = if target.starts_with('/') {
            target
        } else {
            format!("{parent}/{target}")
        };
        return ensure_in_root(root, &next, file, depth + 1);
    }
    let r = if file {
        sys::openat(
            pfd.as_fd(),
            &cname,
            libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW,
            0o644,
        )
        .map(drop)
    } else {
        sys::mkdirat(pfd.as_fd(), &cname, 0o755)
    };
    match r {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => {
            return Err(Error::sys(
                format!("create mount destination {dest:?} in rootfs"),
                e,
            ))
        }
    }
    sys::openat2(root, &c, libc::O_PATH, 0, sys::RESOLVE_IN_ROOT)
        .ctx(|| format!("resolve {dest:?} in rootfs"))
}

/// Flags of the mount that `fd` sits on, as MS_* bits that a bind remount must keep:
/// in a user namespace the kernel refuses to clear "locked" nosuid/nodev/noexec/ro.
fn locked_flags(fd: BorrowedFd<'_>) -> libc::c_ulong {
    // SAFETY: zeroed statvfs is a valid out buffer.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and buffer.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } != 0 {
        return 0;
    }
    let mut f = 0;
    for (st_bit, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_RDONLY, libc::MS_RDONLY),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_bit != 0 {
            f |= ms;
        }
    }
    f
}

/// What the rootfs setup needs besides the config.
pub struct RootfsCtx<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub userns: bool,
    pub new_cgroupns: bool,
    /// No mount namespace in the config: init works in the runtime's (see
    /// [`prepare_root`]).
    pub shares_host_mounts: bool,
    /// This container's cgroup hierarchies, for `type: cgroup` mounts.
    pub cgroup_dirs: Vec<crate::cg::MountDir>,
    /// Idmapped trees the parent made before clone (`mounts[]` with idmap).
    pub idmapped: &'a crate::idmap::Prepared,
    /// `linux.mountLabel` where the host has SELinux (None elsewhere: runc drops it).
    pub mount_label: Option<&'a str>,
    /// Called before a mount that shows the container's cgroups (`type: cgroup`
    /// or `cgroup2`, or a bind from /sys/fs/cgroup): they may still be being made
    /// by the parent (`Msg::Joined`).
    pub before_cgroup_mount: &'a dyn Fn() -> Result<()>,
    /// Called before a `type: sysfs` mount, which shows the network devices of
    /// the mounting process's network namespace: init may not be in the
    /// container's yet (`Msg::NetNs`).
    pub before_sysfs_mount: &'a dyn Fn() -> Result<()>,
}

/// Before any mount: make our copy of the host's mounts non-propagating so nothing
/// we do leaks back to the host, then bind the rootfs onto itself so it is a mount
/// point pivot_root accepts (runc `prepareRoot`).
///
/// Without a mount namespace of its own (`ctx.shares_host_mounts`) the container's
/// mounts are made in the runtime's, under the rootfs. runc then makes the host's
/// `/` rslave and the rootfs's parent mount private, which changes the host's
/// propagation for everyone; we change no mount we did not make. Only the bind
/// itself propagates to the peers of the rootfs's parent mount (as any mount made
/// there would); made private (recursively) at once, nothing mounted beneath it
/// does, and unmounting it ([`detach_shared_root`]) propagates to those same
/// peers, since umount propagation follows the parent mount
/// (Documentation/filesystems/sharedsubtree.rst).
pub fn prepare_root(ctx: &RootfsCtx<'_>) -> Result<()> {
    if !ctx.shares_host_mounts {
        let root = cstring("/")?;
        sys::mount(None, &root, None, libc::MS_SLAVE | libc::MS_REC, None)
            .ctx(|| "make / rslave".into())?;
    }
    let rootfs = sys::cpath(&ctx.rootfs)?;
    sys::mount(
        Some(&rootfs),
        &rootfs,
        Some(&cstring("bind")?),
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .ctx(|| format!("bind rootfs {}", ctx.rootfs.display()))?;
    // The parent mount of the new root must not be shared for pivot_root(2)
    // ("new_root ... must not be ... shared"); the bind we just made inherits
    // slave propagation, so make it private.
    let private = if ctx.shares_host_mounts {
        libc::MS_PRIVATE | libc::MS_REC
    } else {
        libc::MS_PRIVATE
    };
    sys::mount(None, &rootfs, None, private, None).ctx(|| "make rootfs private".into())?;
    Ok(())
}

/// Undo [`prepare_root`] for a container that shared the runtime's mount
/// namespace: detach the rootfs bind with everything the container mounted
/// beneath it, if the topmost mount at `rootfs` is still the one init made
/// (`mount_id`, recorded at create). Anything else there is not ours.
pub fn detach_shared_root(rootfs: &Path, mount_id: u64) -> Result<()> {
    let p = sys::cpath(rootfs)?;
    match sys::mount_id(&p) {
        Ok(id) if id == mount_id => sys::umount2(&p, libc::MNT_DETACH)
            .ctx(|| format!("unmount the container's rootfs {}", rootfs.display())),
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys(format!("statx {}", rootfs.display()), e)),
    }
}

/// Enter the rootfs of a container without a mount namespace: chroot(2), as
/// runc does then. pivot_root(2) would move the root of every process of the
/// runtime's (the host's) mount namespace.
pub fn chroot_root(rootfs: &Path) -> Result<()> {
    let r = sys::cpath(rootfs)?;
    sys::chdir(&r).ctx(|| format!("chdir {}", rootfs.display()))?;
    sys::chroot(&cstring(".")?).ctx(|| "chroot .".into())?;
    sys::chdir(&cstring("/")?).ctx(|| "chdir /".into())?;
    Ok(())
}

/// Mount every `mounts[]` entry, in order, inside the rootfs.
pub fn mount_all(ctx: &RootfsCtx<'_>) -> Result<()> {
    let root = sys::open(
        &sys::cpath(&ctx.rootfs)?,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .ctx(|| format!("open rootfs {}", ctx.rootfs.display()))?;
    for (i, m) in ctx.spec.mounts.iter().enumerate() {
        let typ = m.typ.as_deref().unwrap_or("");
        if typ == "cgroup"
            || typ == "cgroup2"
            || m.source
                .as_deref()
                .is_some_and(|s| s.starts_with("/sys/fs/cgroup"))
        {
            (ctx.before_cgroup_mount)()?;
        }
        if typ == "sysfs" {
            (ctx.before_sysfs_mount)()?;
        }
        mount_one(ctx, root.as_fd(), m).map_err(|e| match e {
            Error::Config { .. } => e,
            other => Error::Init(format!("mounts[{i}] ({}): {other}", m.destination)),
        })?;
    }
    Ok(())
}

fn mount_one(ctx: &RootfsCtx<'_>, root: BorrowedFd<'_>, m: &Mount) -> Result<()> {
    let o = parse_options(&m.options);
    let typ = m.typ.as_deref().unwrap_or("");
    if o.idmap || !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
        // The parent made the idmapped tree (crate::idmap): attach it. Its index in
        // mounts[] is found by identity, since `m` is an element of ctx.spec.mounts.
        let i = ctx
            .spec
            .mounts
            .iter()
            .position(|x| std::ptr::eq(x, m))
            .ok_or_else(|| Error::Other(format!("mount {} not in the config", m.destination)))?;
        return crate::idmap::attach(ctx.idmapped, root, i, m, &o);
    }
    let is_bind = o.bind || typ == "bind";
    if is_bind {
        return mount_bind(ctx, root, m, &o);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, root, m, &o);
    }
    let dest = resolve_in_root(root, &m.destination, false)?;
    let target = fd_path(dest.as_fd());
    let mut data = o.data.join(",");
    // runc `mountToRootfs`: the container's own filesystems (tmpfs, devpts, ...) get
    // the mount label as their context= (label.FormatMountLabel); proc and sysfs
    // keep the kernel's labels, and mqueue, which has no context= option, is
    // labelled through its root's xattr once mounted (label.SetFileLabel).
    let label = ctx.mount_label;
    if let Some(l) = label.filter(|_| !matches!(typ, "proc" | "sysfs" | "mqueue")) {
        data = crate::selinux::format_mount_label(&data, l);
    }
    let cdata = cstring(&data)?;
    let src = cstring(m.source.as_deref().unwrap_or(typ))?;
    let ctyp = cstring(typ)?;
    let old = if o.tmpcopyup {
        Some(
            sys::openat(
                dest.as_fd(),
                &cstring(".")?,
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            )
            .ctx(|| format!("open {} for tmpcopyup", m.destination))?,
        )
    } else {
        None
    };
    let flags = o.flags & !libc::MS_REMOUNT;
    let r = sys::mount(
        Some(&src),
        &target,
        Some(&ctyp),
        flags,
        (!data.is_empty()).then_some(cdata.as_c_str()),
    );
    match r {
        Ok(()) => {}
        // mqueue/sysfs cannot be mounted in a user namespace that does not own the
        // ipc/net namespace; runc falls back to binding the host's for sysfs.
        Err(e) if typ == "sysfs" && e.raw_os_error() == Some(libc::EPERM) && ctx.userns => {
            let host = cstring("/sys")?;
            sys::mount(
                Some(&host),
                &target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .ctx(|| format!("bind /sys onto {}", m.destination))?;
        }
        Err(e) => return Err(Error::sys(format!("mount {typ} on {}", m.destination), e)),
    }
    let mounted = resolve_in_root(root, &m.destination, false)?;
    if let Some(l) = label.filter(|_| typ == "mqueue") {
        crate::selinux::set_file_label(mounted.as_fd(), &m.destination, l)?;
    }
    if let Some(old) = old {
        copy_tree(old.as_fd(), mounted.as_fd())
            .ctx(|| format!("tmpcopyup into {}", m.destination))?;
    }
    apply_after(&mounted, &o, &m.destination)
}

pub(crate) fn apply_after(mounted: &OwnedFd, o: &MountOptions, dest: &str) -> Result<()> {
    let target = fd_path(mounted.as_fd());
    for p in &o.propagation {
        sys::mount(None, &target, None, *p, None).ctx(|| format!("set propagation of {dest}"))?;
    }
    if o.rec_set != 0 || o.rec_clr != 0 {
        let attr = MountAttr {
            attr_set: o.rec_set,
            attr_clr: o.rec_clr,
            propagation: 0,
            userns_fd: 0,
        };
        sys::mount_setattr(
            mounted.as_fd(),
            &cstring("")?,
            sys::AT_RECURSIVE | libc::AT_EMPTY_PATH as u32,
            &attr,
        )
        .ctx(|| format!("mount_setattr recursive options on {dest}"))?;
    }
    Ok(())
}

fn mount_bind(
    ctx: &RootfsCtx<'_>,
    root: BorrowedFd<'_>,
    m: &Mount,
    o: &MountOptions,
) -> Result<()> {
    let src = m.source.as_deref().ok_or_else(|| {
        Error::config(
            format!("mounts {:?}.source", m.destination),
            "a bind mount needs a source",
        )
    })?;
    // runtime-spec config.md: a relative source is relative to the bundle.
    let src_path = if src.starts_with('/') {
        PathBuf::from(src)
    } else {
        ctx.bundle.join(src)
    };
    let meta = std::fs::metadata(&src_path)
        .map_err(|e| Error::sys(format!("bind mount source {}", src_path.display()), e))?;
    let dest = resolve_in_root(root, &m.destination, !meta.is_dir())?;
    let target = fd_path(dest.as_fd());
    let csrc = sys::cpath(&src_path)?;
    let mut flags = libc::MS_BIND;
    if o.recursive_bind {
        flags |= libc::MS_REC;
    }
    sys::mount(Some(&csrc), &target, None, flags, None)
        .ctx(|| format!("bind {} onto {}", src_path.display(), m.destination))?;
    let mounted = resolve_in_root(root, &m.destination, false)?;
    // A bind mount ignores most flags: they need a second, remount, call (mount(2)
    // "Creating a bind mount" + "MS_REMOUNT|MS_BIND").
    let extra = o.flags & !(libc::MS_REMOUNT | libc::MS_BIND | libc::MS_REC);
    if extra != 0 || o.clear != 0 {
        let keep = locked_flags(mounted.as_fd()) & !o.clear;
        let rflags = libc::MS_REMOUNT | libc::MS_BIND | extra | keep;
        let mt = fd_path(mounted.as_fd());
        sys::mount(None, &mt, None, rflags, None)
            .ctx(|| format!("remount {} with its options", m.destination))?;
    }
    apply_after(&mounted, o, &m.destination)
}

/// `type: cgroup`: give the container a view of its own cgroups. With a cgroup
/// namespace the kernel scopes a fresh mount to the container's cgroup; without one
/// we bind the container's own directories, as runc does.
fn mount_cgroup(
    ctx: &RootfsCtx<'_>,
    root: BorrowedFd<'_>,
    m: &Mount,
    o: &MountOptions,
) -> Result<()> {
    let ro = o.flags & libc::MS_RDONLY;
    let base = o.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME);
    let pure_v2 = ctx.cgroup_dirs.len() == 1 && ctx.cgroup_dirs[0].name.is_empty();
    let dest = resolve_in_root(root, &m.destination, false)?;
    if pure_v2 {
        let t = fd_path(dest.as_fd());
        if ctx.new_cgroupns {
            sys::mount(
                Some(&cstring("cgroup2")?),
                &t,
                Some(&cstring("cgroup2")?),
                base | ro,
                None,
            )
            .ctx(|| format!("mount cgroup2 on {}", m.destination))?;
        } else {
            let src = sys::cpath(&ctx.cgroup_dirs[0].host)?;
            sys::mount(Some(&src), &t, None, libc::MS_BIND | libc::MS_REC, None)
                .ctx(|| format!("bind cgroup2 onto {}", m.destination))?;
            if ro != 0 {
                let mfd = resolve_in_root(root, &m.destination, false)?;
                let mt = fd_path(mfd.as_fd());
                sys::mount(
                    None,
                    &mt,
                    None,
                    libc::MS_REMOUNT | libc::MS_BIND | ro | base,
                    None,
                )
                .ctx(|| format!("remount {} read-only", m.destination))?;
            }
        }
        return Ok(());
    }
    // v1 or hybrid: a tmpfs holding one directory per hierarchy.
    let t = fd_path(dest.as_fd());
    sys::mount(
        Some(&cstring("tmpfs")?),
        &t,
        Some(&cstring("tmpfs")?),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        // runc mounts this tmpfs through mountToRootfs, which labels it.
        Some(&cstring(match ctx.mount_label {
            Some(l) => crate::selinux::format_mount_label("mode=755", l),
            None => "mode=755".to_string(),
        })?),
    )
    .ctx(|| format!("mount tmpfs on {}", m.destination))?;
    for d in &ctx.cgroup_dirs {
        let sub = format!("{}/{}", m.destination.trim_end_matches('/'), d.name);
        let sfd = resolve_in_root(root, &sub, false)?;
        let dt = fd_path(sfd.as_fd());
        if ctx.new_cgroupns {
            let typ = if d.v2 { "cgroup2" } else { "cgroup" };
            let data = (!d.data.is_empty()).then(|| cstring(&d.data)).transpose()?;
            sys::mount(
                Some(&cstring(typ)?),
                &dt,
                Some(&cstring(typ)?),
                base | ro,
                data.as_deref(),
            )
            .ctx(|| format!("mount {typ} {} on {sub}", d.data))?;
        } else {
            let src = sys::cpath(&d.host)?;
            sys::mount(Some(&src), &dt, None, libc::MS_BIND | libc::MS_REC, None)
                .ctx(|| format!("bind {} onto {sub}", d.host.display()))?;
            if ro != 0 {
                let mfd = resolve_in_root(root, &sub, false)?;
                let mt = fd_path(mfd.as_fd());
                sys::mount(
                    None,
                    &mt,
                    None,
                    libc::MS_REMOUNT | libc::MS_BIND | ro | base,
                    None,
                )
                .ctx(|| format!("remount {sub} read-only"))?;
            }
        }
        // Co-mounted controllers ("cpu,cpuacct") get a symlink per controller.
        if d.name.contains(',') {
            let parent = resolve_in_root(root, &m.destination, false)?;
            for part in d.name.split(',') {
                let link = cstring(part)?;
                let target = cstring(d.name.as_str())?;
                // SAFETY: valid strings and fd.
                unsafe { libc::symlinkat(target.as_ptr(), parent.as_raw_fd(), link.as_ptr()) };
            }
        }
    }
    if ro != 0 {
        let mfd = resolve_in_root(root, &m.destination, false)?;
        let mt = fd_path(mfd.as_fd());
        sys::mount(
            None,
            &mt,
            None,
            libc::MS_REMOUNT | ro | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        )
        .ctx(|| format!("remount {} read-only", m.destination))?;
    }
    Ok(())
}

/// Copy a directory tree (tmpcopyup): files, dirs, symlinks, owners and modes.
fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let src = PathBuf::from(format!("/proc/self/fd/{}", from.as_raw_fd()));
    let dst = PathBuf::from(format!("/proc/self/fd/{}", to.as_raw_fd()));
    copy_dir(&src, &dst)
}

fn copy_dir(src: &Path, dst: &Path) -> io::Result<()> {
    use std::os::unix::fs::{symlink, PermissionsExt};
    for ent in std::fs::read_dir(src)? {
        let ent = ent?;
        let meta = ent.metadata()?;
        let s = ent.path();
        let d = dst.join(ent.file_name());
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&d)?;
            copy_dir(&s, &d)?;
        } else if ft.is_symlink() {
            symlink(std::fs::read_link(&s)?, &d)?;
        } else if ft.is_file() {
            std::fs::copy(&s, &d)?;
        } else {
            continue;
        }
        if !ft.is_symlink() {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        std::os::unix::fs::lchown(&d, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

/// runc's default devices (libcontainer/specconv AllowedDevices): always present.
const DEFAULT_DEVICES: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Does the config bind-mount /dev from somewhere? Then we leave it alone.
fn dev_is_bind(spec: &Spec) -> bool {
    spec.mounts.iter().any(|m| {
        m.destination.trim_end_matches('/') == "/dev"
            && (m.typ.as_deref() == Some("bind")
                || m.options.iter().any(|o| o == "bind" || o == "rbind"))
    })
}

/// Create the default devices, `linux.devices`, and the /dev symlinks.
pub fn setup_dev(ctx: &RootfsCtx<'_>) -> Result<()> {
    if dev_is_bind(ctx.spec) {
        return Ok(());
    }
    let root = sys::open(
        &sys::cpath(&ctx.rootfs)?,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .ctx(|| format!("open rootfs {}", ctx.rootfs.display()))?;
    let mut devs: Vec<LinuxDevice> = DEFAULT_DEVICES
        .iter()
        .map(|(p, ma, mi)| LinuxDevice {
            path: (*p).to_string(),
            typ: "c".into(),
            major: i64::from(*ma),
            minor: i64::from(*mi),
            file_mode: Some(0o666),
            uid: Some(0),
            gid: Some(0),
        })
        .collect();
    if let Some(l) = &ctx.spec.linux {
        for d in &l.devices {
            devs.retain(|x| x.path != d.path);
            devs.push(d.clone());
        }
    }
    for (i, d) in devs.iter().enumerate() {
        create_device(root.as_fd(), d, ctx.userns)
            .map_err(|e| Error::Init(format!("linux.devices[{i}] {}: {e}", d.path)))?;
    }
    let dev = resolve_in_root(root.as_fd(), "/dev", false)?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        let t = cstring(target)?;
        let n = cstring(name)?;
        // SAFETY: valid strings and dirfd.
        if unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(Error::sys(format!("symlink /dev/{name}"), e));
            }
        }
    }
    // /dev/ptmx → pts/ptmx so the container's devpts instance is used
    // (Documentation/filesystems/devpts.rst).
    let ptmx = cstring("ptmx")?;
    // SAFETY: valid fd and string.
    unsafe { libc::unlinkat(dev.as_raw_fd(), ptmx.as_ptr(), 0) };
    let t = cstring("pts/ptmx")?;
    // SAFETY: valid strings and dirfd.
    if unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), ptmx.as_ptr()) } != 0 {
        return Err(Error::last("symlink /dev/ptmx"));
    }
    Ok(())
}

fn create_device(root: BorrowedFd<'_>, d: &LinuxDevice, userns: bool) -> Result<()> {
    let p = Path::new(&d.path);
    let parent = p
        .parent()
        .map(|x| x.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/dev".into());
    let name = cstring(
        p.file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default(),
    )?;
    let pfd = resolve_in_root(root, &parent, false)?;
    let kind = match d.typ.as_str() {
        "c" | "u" => libc::S_IFCHR,
        "b" => libc::S_IFBLK,
        "p" => libc::S_IFIFO,
        t => {
            return Err(Error::config(
                "linux.devices.type",
                format!("unknown device type {t:?}"),
            ))
        }
    };
    let mode = d.file_mode.unwrap_or(0o666) & 0o7777;
    // SAFETY: valid fd and string.
    unsafe { libc::unlinkat(pfd.as_raw_fd(), name.as_ptr(), 0) };
    if userns {
        // mknod is refused in a user namespace (user_namespaces(7)): bind the host's
        // node instead, as runc does.
        let host = std::fs::metadata(&d.path)
            .map_err(|e| Error::sys(format!("host device {}", d.path), e))?;
        if !(host.file_type().is_char_device()
            || host.file_type().is_block_device()
            || host.file_type().is_fifo())
        {
            return Err(Error::Other(format!("host {} is not a device", d.path)));
        }
        let f = sys::openat(
            pfd.as_fd(),
            &name,
            libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW,
            0o644,
        )
        .ctx(|| format!("create {}", d.path))?;
        drop(f);
        let t = resolve_in_root(root, &d.path, true)?;
        sys::mount(
            Some(&cstring(&d.path)?),
            &fd_path(t.as_fd()),
            None,
            libc::MS_BIND,
            None,
        )
        .ctx(|| format!("bind host {}", d.path))?;
        return Ok(());
    }
    let dev = libc::makedev(d.major as u32, d.minor as u32);
    // SAFETY: valid fd, string; mode and dev are plain integers.
    if unsafe { libc::mknodat(pfd.as_raw_fd(), name.as_ptr(), kind | mode, dev) } != 0 {
        return Err(Error::last(format!("mknod {}", d.path)));
    }
    // mknod is subject to the umask; set the exact mode and owner asked for.
    // SAFETY: valid fd and string.
    unsafe {
        if libc::fchmodat(pfd.as_raw_fd(), name.as_ptr(), mode, 0) != 0 {
            return Err(Error::last(format!("chmod {}", d.path)));
        }
        if libc::fchownat(
            pfd.as_raw_fd(),
            name.as_ptr(),
            d.uid.unwrap_or(0),
            d.gid.unwrap_or(0),
            libc::AT_SYMLINK_NOFOLLOW,
        ) != 0
        {
            return Err(Error::last(format!("chown {}", d.path)));
        }
    }
    Ok(())
}

/// Switch to the new root. `pivot_root(".", ".")` stacks the old root on top of
/// the new one; detaching it leaves only the container's tree (runc `pivotRoot`).
pub fn pivot(rootfs: &Path) -> Result<()> {
    let new = sys::open(&sys::cpath(rootfs)?, libc::O_DIRECTORY | libc::O_RDONLY, 0)
        .ctx(|| format!("open {}", rootfs.display()))?;
    sys::fchdir(new.as_fd()).ctx(|| "chdir to rootfs".into())?;
    let dot = cstring(".")?;
    sys::pivot_root(&dot, &dot).ctx(|| format!("pivot_root {}", rootfs.display()))?;
    // Make the old root a slave before detaching so the unmount does not propagate
    // to the host.
    sys::mount(None, &dot, None, libc::MS_SLAVE | libc::MS_REC, None)
        .ctx(|| "make old root rslave".into())?;
    sys::umount2(&dot, libc::MNT_DETACH).ctx(|| "detach old root".into())?;
    sys::chdir(&cstring("/")?).ctx(|| "chdir /".into())?;
    Ok(())
}

/// `--no-pivot`: move the rootfs over / and chroot (for ramfs roots where pivot_root
/// is impossible). Weaker: the old root stays reachable to a process with
/// CAP_SYS_CHROOT, which is why pivot_root is the default.
pub fn move_root(rootfs: &Path) -> Result<()> {
    let r = sys::cpath(rootfs)?;
    sys::chdir(&r).ctx(|| format!("chdir {}", rootfs.display()))?;
    let dot = cstring(".")?;
    sys::mount(Some(&dot), &cstring("/")?, None, libc::MS_MOVE, None)
        .ctx(|| "move rootfs to /".into())?;
    sys::chroot(&dot).ctx(|| "chroot .".into())?;
    sys::chdir(&cstring("/")?).ctx(|| "chdir /".into())?;
    Ok(())
}

/// After pivot: apply rootfsPropagation to the new /.
pub fn set_root_propagation(p: Option<&str>) -> Result<()> {
    let flag = match p.unwrap_or("") {
        "" => return Ok(()),
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        other => {
            return Err(Error::config(
                "linux.rootfsPropagation",
                format!("unknown propagation {other:?}"),
            ))
        }
    };
    sys::mount(None, &cstring("/")?, None, flag, None).ctx(|| "set rootfs propagation".into())
}

/// Mask a path (after pivot, so `/` is the container's root and symlinks cannot
/// leave it): /dev/null over files, an empty read-only tmpfs over directories.
///
/// The tmpfs carries the mount label, as runc's `maskPath` formats it.
pub fn mask_path(root: BorrowedFd<'_>, p: &str, mount_label: Option<&str>) -> Result<()> {
    let rel = cstring(p.trim_start_matches('/'))?;
    let fd = match sys::openat2(root, &rel, libc::O_PATH, 0, sys::RESOLVE_IN_ROOT) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("linux.maskedPaths {p}"), e)),
    };
    // fstat(2) works on an O_PATH fd (since Linux 3.6).
    // SAFETY: fstat fills the zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above, on our own fd.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(Error::last(format!("stat masked path {p}")));
    }
    let t = fd_path(fd.as_fd());
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        let data = mount_label
            .map(|l| cstring(crate::selinux::format_mount_label("", l)))
            .transpose()?;
        sys::mount(
            Some(&cstring("tmpfs")?),
            &t,
            Some(&cstring("tmpfs")?),
            libc::MS_RDONLY,
            data.as_deref(),
        )
        .ctx(|| format!("mask {p}"))
    } else {
        sys::mount(Some(&cstring("/dev/null")?), &t, None, libc::MS_BIND, None)
            .ctx(|| format!("mask {p}"))
    }
}

/// Make a path read-only (bind it onto itself, remount ro keeping its other flags).
pub fn readonly_path(root: BorrowedFd<'_>, p: &str) -> Result<()> {
    let rel = cstring(p.trim_start_matches('/'))?;
    let fd = match sys::openat2(root, &rel, libc::O_PATH, 0, sys::RESOLVE_IN_ROOT) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("linux.readonlyPaths {p}"), e)),
    };
    let t = fd_path(fd.as_fd());
    sys::mount(Some(&t), &t, None, libc::MS_BIND | libc::MS_REC, None)
        .ctx(|| format!("bind {p} read-only"))?;
    let fd2 = sys::openat2(root, &rel, libc::O_PATH, 0, sys::RESOLVE_IN_ROOT)
        .ctx(|| format!("reopen {p}"))?;
    let keep = locked_flags(fd2.as_fd());
    let t2 = fd_path(fd2.as_fd());
    sys::mount(
        None,
        &t2,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep,
        None,
    )
    .ctx(|| format!("remount {p} read-only"))
}

/// The container's `/` (after pivot_root), for [`mask_path`] and [`readonly_path`]
/// to resolve their paths in.
pub fn open_root() -> Result<OwnedFd> {
    sys::open(&cstring("/")?, libc::O_PATH | libc::O_DIRECTORY, 0).ctx(|| "open /".into())
}

/// `root.readonly`: remount / read-only.
pub fn readonly_root() -> Result<()> {
    let root = open_root()?;
    let keep = locked_flags(root.as_fd());
    sys::mount(
        None,
        &cstring("/")?,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep,
        None,
    )
    .ctx(|| "remount / read-only".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn options() {
        let o = parse_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let o = parse_options(&["rbind".into(), "ro".into(), "rprivate".into(), "rro".into()]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.flags, libc::MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        assert_eq!(o.rec_set, sys::MOUNT_ATTR_RDONLY);
        let o = parse_options(&["ro".into(), "rw".into()]);
        assert_eq!(o.flags, 0);
        assert_eq!(o.clear, libc::MS_RDONLY);
    }
}
