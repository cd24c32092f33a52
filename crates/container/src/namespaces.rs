//! Namespaces (namespaces(7), runtime-spec `config-linux.md` "Namespaces").

use crate::error::{Ctx, Error, Result};
use crate::sys;
use oxcart_spec::Linux;
use std::os::fd::{AsFd, OwnedFd};

pub fn clone_flag(typ: &str) -> Option<libc::c_int> {
    Some(match typ {
        "pid" => libc::CLONE_NEWPID,
        "network" => libc::CLONE_NEWNET,
        "mount" => libc::CLONE_NEWNS,
        "ipc" => libc::CLONE_NEWIPC,
        "uts" => libc::CLONE_NEWUTS,
        "user" => libc::CLONE_NEWUSER,
        "cgroup" => libc::CLONE_NEWCGROUP,
        "time" => libc::CLONE_NEWTIME,
        _ => return None,
    })
}

/// The /proc/<pid>/ns/ file name of a namespace type.
pub fn proc_name(typ: &str) -> &str {
    match typ {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

/// How the config asks for namespaces, split by who acts on them.
#[derive(Default)]
pub struct Plan {
    /// New namespaces made by the clone itself.
    pub clone_flags: libc::c_int,
    /// New cgroup namespace: unshared by init *after* it is in its cgroups, so the
    /// namespace root is the container's cgroup (cgroup_namespaces(7)).
    pub new_cgroupns: bool,
    /// New time namespace: unshared by the parent (for its children), offsets
    /// written, then the clone enters it (time_namespaces(7): offsets can only be
    /// set before any process is in the namespace).
    pub new_timens: bool,
    /// Namespaces to join: (type, CLONE_NEW* flag, fd). pid and time are joined
    /// by the parent (they apply to children only); the rest by init.
    pub join: Vec<(String, libc::c_int, OwnedFd)>,
    pub userns: bool,
}

impl Plan {
    pub fn from_config(linux: Option<&Linux>) -> Result<Plan> {
        let mut p = Plan::default();
        let Some(linux) = linux else { return Ok(p) };
        for (i, ns) in linux.namespaces.iter().enumerate() {
            let flag = clone_flag(&ns.typ).ok_or_else(|| {
                Error::config(
                    format!("linux.namespaces[{i}].type"),
                    format!("unknown namespace {:?}", ns.typ),
                )
            })?;
            match ns.path.as_deref() {
                Some(path) if !path.is_empty() => {
                    let fd = sys::open(&sys::cstring(path)?, libc::O_RDONLY, 0)
                        .ctx(|| format!("linux.namespaces[{i}].path: open {path}"))?;
                    // The runtime's own mount namespace (e.g. /proc/1/ns/mnt from
                    // the host): the same as no mount namespace in the config,
                    // which init sets up without a setns (rootfs::prepare_root).
                    if flag == libc::CLONE_NEWNS && same_ns(&fd, c"/proc/self/ns/mnt")? {
                        continue;
                    }
                    if flag == libc::CLONE_NEWUSER {
                        p.userns = true;
                    }
                    p.join.push((ns.typ.clone(), flag, fd));
                }
                _ => match flag {
                    libc::CLONE_NEWCGROUP => p.new_cgroupns = true,
                    libc::CLONE_NEWTIME => p.new_timens = true,
                    f => {
                        if f == libc::CLONE_NEWUSER {
                            p.userns = true;
                        }
                        p.clone_flags |= f
                    }
                },
            }
        }
        Ok(p)
    }

    pub fn has(&self, flag: libc::c_int) -> bool {
        self.clone_flags & flag != 0 || self.join.iter().any(|(_, f, _)| *f == flag)
    }

    pub fn new_userns(&self) -> bool {
        self.clone_flags & libc::CLONE_NEWUSER != 0
    }

    /// Parent side, before clone: join pid/time namespaces for the children and make
    /// a new time namespace with its offsets.
    pub fn parent_prepare(&self, linux: Option<&Linux>) -> Result<()> {
        for (typ, flag, fd) in &self.join {
            if *flag == libc::CLONE_NEWPID || *flag == libc::CLONE_NEWTIME {
                sys::setns(fd.as_fd(), *flag).ctx(|| format!("join {typ} namespace"))?;
            }
        }
        if self.new_timens {
            sys::unshare(libc::CLONE_NEWTIME).ctx(|| "create time namespace".into())?;
            if let Some(offs) = linux.and_then(|l| l.time_offsets.as_ref()) {
                let mut s = String::new();
                for (clock, off) in offs {
                    let name = match clock.as_str() {
                        "monotonic" | "boottime" => clock.as_str(),
                        other => {
                            return Err(Error::config(
                                format!("linux.timeOffsets.{other}"),
                                "only monotonic and boottime clocks can be offset",
                            ))
                        }
                    };
                    s.push_str(&format!("{name} {} {}\n", off.secs, off.nanosecs));
                }
                std::fs::write("/proc/self/timens_offsets", s)
                    .ctx(|| "write /proc/self/timens_offsets".into())?;
            }
        }
        Ok(())
    }

    /// Init side, first thing: join the namespaces given by path (user first, so the
    /// others are joined with the capabilities it grants — setns(2)).
    pub fn child_join(&self) -> Result<()> {
        let mut order: Vec<&(String, libc::c_int, OwnedFd)> = self
            .join
            .iter()
            .filter(|(_, f, _)| *f != libc::CLONE_NEWPID && *f != libc::CLONE_NEWTIME)
            .collect();
        order.sort_by_key(|(_, f, _)| if *f == libc::CLONE_NEWUSER { 0 } else { 1 });
        for (typ, flag, fd) in order {
            sys::setns(fd.as_fd(), *flag).ctx(|| format!("join {typ} namespace"))?;
        }
        Ok(())
    }
}

/// Is the namespace `fd` refers to the one at `path` (nsfs inodes, namespaces(7))?
pub fn same_ns(fd: &OwnedFd, path: &std::ffi::CStr) -> Result<bool> {
    let theirs = std::fs::File::from(fd.try_clone().ctx(|| "dup namespace fd".into())?)
        .metadata()
        .ctx(|| "fstat namespace fd".into())?;
    let path_str = path.to_string_lossy();
    let ours = std::fs::metadata(&*path_str).ctx(|| format!("stat {path_str}"))?;
    use std::os::unix::fs::MetadataExt;
    Ok(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
}

/// Parent side: write the child's uid/gid maps (user_namespaces(7)), directly or
/// through newuidmap/newgidmap for an unprivileged caller (crate::rootless).
pub fn write_id_maps(
    pid: libc::pid_t,
    linux: &Linux,
    method: crate::rootless::MapMethod,
) -> Result<()> {
    check_id_maps(linux)?;
    crate::rootless::write_maps(pid, method, &linux.uid_mappings, &linux.gid_mappings)
}

/// A new user namespace needs both maps (checked before anything is created).
pub fn check_id_maps(linux: &Linux) -> Result<()> {
    if linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty() {
        return Err(Error::config(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }
    Ok(())
}

/// A new network namespace for a child to enter with setns(2), made by this
/// process, which stays in its own. `create` makes init's this way, after the
/// clone and while init sets up its rootfs, instead of with CLONE_NEWNET in the
/// clone, where it is most of the clone's cost and delays init's start (~0.5 ms
/// here: every pernet subsystem initialises, docs/benchmarks.md). Owned by our
/// user namespace, as the clone's would be; only for a child that stays in that
/// user namespace, since setns needs CAP_SYS_ADMIN in the namespace's owner.
pub fn new_net_ns() -> Result<OwnedFd> {
    let own = sys::open(c"/proc/thread-self/ns/net", libc::O_RDONLY, 0)
        .map_err(|e| Error::sys("open the runtime's network namespace", e))?;
    sys::unshare(libc::CLONE_NEWNET)
        .map_err(|e| Error::sys("create the container's network namespace", e))?;
    let new = sys::open(c"/proc/thread-self/ns/net", libc::O_RDONLY, 0);
    // Back first, whatever the open did: this process's later work (hooks it runs,
    // its exit) belongs in the runtime's namespace.
    sys::setns(own.as_fd(), libc::CLONE_NEWNET)
        .map_err(|e| Error::sys("return to the runtime's network namespace", e))?;
    new.map_err(|e| Error::sys("open the container's network namespace", e))
}

/// Bring up `lo` in a new network namespace, as runc's "loopback" strategy does.
pub fn loopback_up() -> Result<()> {
    // SAFETY: plain socket call.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(Error::last("socket for loopback"));
    }
    // SAFETY: s is a fresh fd we own.
    let s = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(s) };
    // SAFETY: zeroed ifreq is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, c) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *c as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: ioctl with a valid ifreq.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
        return Err(Error::last("get lo flags"));
    }
    // SAFETY: union field access on a struct the kernel filled in.
    unsafe { ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above.
    if unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
        return Err(Error::last("bring lo up"));
    }
    Ok(())
}
