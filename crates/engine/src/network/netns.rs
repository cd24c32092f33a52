//! A container's network namespace: made by a thread that `unshare`s one, kept alive
//! by bind-mounting its nsfs file onto `<runroot>/netns/<id>` (what `ip netns add`
//! does), so the OCI spec can name it as a path and nothing but our teardown (or a
//! reboot, which empties `/run`) ends it. Namespace switches happen only in that
//! short-lived thread: the process's other threads never change namespace.

use super::netlink::{index_of, Netlink};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// The container's end of the veth pair, as docker names it.
pub const CTR_IFNAME: &str = "eth0";

/// What the container's side gets.
pub struct CtrSide<'a> {
    pub host_veth: &'a str,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

fn cstr(p: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Make the namespace at `path` and its veth pair (the host end named
/// `side.host_veth`, in the caller's namespace), address, loopback and default route.
pub fn create(path: &Path, side: &CtrSide<'_>) -> io::Result<()> {
    let host_ns: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")?.into();
    std::fs::File::create(path)?;
    let r = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // SAFETY: unshare affects only this thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let src = cstr(Path::new("/proc/thread-self/ns/net"))?;
            let dst = cstr(path)?;
            // SAFETY: valid NUL-terminated paths; a bind mount with no data.
            let r = unsafe {
                libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            configure(&host_ns, side)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace thread panicked")))
    });
    if r.is_err() {
        remove(path);
    }
    r
}

/// Inside the new namespace: lo up, the veth pair, eth0's address and route.
fn configure(host_ns: &OwnedFd, side: &CtrSide<'_>) -> io::Result<()> {
    let mut nl = Netlink::open()?;
    if let Some(lo) = index_of("lo") {
        nl.set_up(lo, None)?;
    }
    nl.add_veth(CTR_IFNAME, side.mac, side.host_veth, host_ns.as_fd())?;
    let eth = index_of(CTR_IFNAME).ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
    nl.add_addr(eth, side.ip, side.prefix)?;
    nl.set_up(eth, None)?;
    nl.add_default_route(eth, side.gateway)
}

/// Unmount and remove a namespace file; a missing one is fine (idempotent teardown).
pub fn remove(path: &Path) {
    if let Ok(c) = cstr(path) {
        // SAFETY: a valid path; MNT_DETACH so a busy namespace never blocks teardown.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    let _ = std::fs::remove_file(path);
}

/// Add a veth pair to an existing namespace (`network connect`): the container's end
/// is the first free `ethN`, with an address and no default route (the first
/// network's stays the container's way out, as docker's).
pub fn add_link(path: &Path, side: &CtrSide<'_>) -> io::Result<String> {
    let host_ns: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")?.into();
    let target: OwnedFd = std::fs::File::open(path)?.into();
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<String> {
            // SAFETY: setns on an fd we own; it moves only this thread.
            if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let name = (1..100)
                .map(|i| format!("eth{i}"))
                .find(|n| index_of(n).is_none())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOSPC))?;
            let mut nl = Netlink::open()?;
            nl.add_veth(&name, side.mac, side.host_veth, host_ns.as_fd())?;
            let i = index_of(&name).ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
            nl.add_addr(i, side.ip, side.prefix)?;
            nl.set_up(i, None)?;
            Ok(name)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace thread panicked")))
    })
}
