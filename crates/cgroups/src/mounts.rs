//! The cgroup mounts of the calling process' mount namespace through
//! listmount(2) and statmount(2) (Linux ≥ 6.11 for the options a v1 hierarchy's
//! controllers are read from), instead of `/proc/self/mountinfo`.
//!
//! Why: mountinfo formats every mount of the namespace in full, and a container
//! host has many (an overlay per running container, with lower-layer paths in
//! its options: `perf` of `stats --no-stream` over 50 containers put ~6 % of the
//! command in `show_mountinfo` and `ovl_show_options`). Here each mount costs a
//! `statmount` of its superblock's magic, and only the cgroup mounts are asked for
//! strings. The answer is what the mountinfo parse reads from the same mounts:
//! type, root, mount point (both relative to this process' root, unreachable
//! mounts left out, as mountinfo does) and the superblock's options. Any failure
//! — an older kernel (`ENOSYS`), a seccomp filter, a field the kernel did not
//! fill — returns `None`, and the caller reads mountinfo as before.

use std::os::raw::c_long;

/// The syscall numbers, the same on every architecture with the unified table
/// (Linux's syscall_64.tbl / asm-generic unistd.h); elsewhere mountinfo is read.
const SYSCALLS: Option<(c_long, c_long)> = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "arm",
    target_arch = "x86",
    target_arch = "powerpc64",
    target_arch = "s390x",
    target_arch = "loongarch64"
)) {
    Some((457, 458))
} else {
    None
};

/// include/uapi/linux/mount.h.
const LSMT_ROOT: u64 = u64::MAX;
const MNT_ID_REQ_SIZE_VER0: u32 = 24;
const STATMOUNT_SB_BASIC: u64 = 0x1;
const STATMOUNT_MNT_ROOT: u64 = 0x8;
const STATMOUNT_MNT_POINT: u64 = 0x10;
const STATMOUNT_FS_TYPE: u64 = 0x20;
const STATMOUNT_MNT_OPTS: u64 = 0x80;
/// include/uapi/linux/magic.h.
const CGROUP_SUPER_MAGIC: u64 = 0x27e0eb;
const CGROUP2_SUPER_MAGIC: u64 = 0x63677270;

/// Offsets in `struct statmount` (include/uapi/linux/mount.h): the string
/// fields are offsets into `str[]`, which starts after the fixed 512 bytes.
const SM_MNT_OPTS: usize = 4;
const SM_MASK: usize = 8;
const SM_SB_MAGIC: usize = 24;
const SM_FS_TYPE: usize = 36;
const SM_MNT_ROOT: usize = 104;
const SM_MNT_POINT: usize = 108;
const SM_STR: usize = 512;

/// One cgroup mount, as a mountinfo line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    pub root: String,
    pub mountpoint: String,
    /// The superblock's options (mountinfo's last field, without `rw`/`ro`).
    pub opts: String,
}

#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

/// The cgroup mounts in mount-id order (mountinfo's), or `None` where the kernel
/// cannot say through these calls.
pub(crate) fn cgroup_mounts() -> Option<Vec<CgroupMount>> {
    let (statmount, listmount) = SYSCALLS?;
    collect(statmount, list_below(listmount, LSMT_ROOT)?)
}

/// The cgroup mounts at and below `dir` alone (the mount that holds it and that
/// mount's subtree), in mount-id order; `None` where the kernel cannot say.
///
/// Why: [`cgroup_mounts`] asks `statmount` about every mount of the namespace,
/// and a container host has one per running container (its rootfs overlay): 50
/// containers made `stats` and every `create` ask ~80 times, where the cgroup
/// hierarchies are a dozen mounts under `/sys/fs/cgroup`. The caller checks the
/// answer covers every hierarchy the process is in (`Layout::detect`), and asks
/// [`cgroup_mounts`] where it does not: hierarchies mounted elsewhere are found
/// as before.
pub(crate) fn cgroup_mounts_below(dir: &std::path::Path) -> Option<Vec<CgroupMount>> {
    let (statmount, listmount) = SYSCALLS?;
    let top = unique_mount_id(dir)?;
    let mut ids = list_below(listmount, top)?;
    ids.push(top);
    ids.sort_unstable();
    ids.dedup();
    collect(statmount, ids)
}

/// The 64-bit mount id (`STATX_MNT_ID_UNIQUE`, Linux ≥ 6.8, the id listmount and
/// statmount take) of the mount that holds `dir`.
fn unique_mount_id(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statx fills the zeroed struct; c is NUL-terminated.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_MNT_ID_UNIQUE,
            &mut st,
        )
    };
    (r == 0 && st.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0).then_some(st.stx_mnt_id)
}

/// The cgroup mounts among `ids`, in their order.
fn collect(statmount: c_long, ids: Vec<u64>) -> Option<Vec<CgroupMount>> {
    // u64 words: the header's fields are read at their natural alignment.
    let mut buf = vec![0u64; 4096 / 8];
    let mut out = Vec::new();
    for id in ids {
        let sm = stat(statmount, id, STATMOUNT_SB_BASIC, &mut buf)?;
        if sm.u64_at(SM_MASK) & STATMOUNT_SB_BASIC == 0 {
            return None;
        }
        let magic = sm.u64_at(SM_SB_MAGIC);
        if magic != CGROUP_SUPER_MAGIC && magic != CGROUP2_SUPER_MAGIC {
            continue;
        }
        let want =
            STATMOUNT_FS_TYPE | STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT | STATMOUNT_MNT_OPTS;
        let sm = stat(statmount, id, want, &mut buf)?;
        let got = sm.u64_at(SM_MASK);
        if got & STATMOUNT_MNT_POINT == 0 {
            // Not reachable from this process' root: mountinfo leaves it out too.
            continue;
        }
        if got & (STATMOUNT_FS_TYPE | STATMOUNT_MNT_ROOT) != STATMOUNT_FS_TYPE | STATMOUNT_MNT_ROOT
        {
            return None;
        }
        let fstype = sm.str_at(SM_FS_TYPE)?;
        // A kernel fills no options where there are none (cgroup2 without mount
        // options), and one before 6.11 never: a v1 hierarchy always has some (its
        // controllers or its name), so there the missing field means the latter.
        let opts = if got & STATMOUNT_MNT_OPTS != 0 {
            sm.str_at(SM_MNT_OPTS)?
        } else if magic == CGROUP2_SUPER_MAGIC {
            String::new()
        } else {
            return None;
        };
        out.push(CgroupMount {
            fstype,
            root: sm.str_at(SM_MNT_ROOT)?,
            mountpoint: sm.str_at(SM_MNT_POINT)?,
            opts,
        });
    }
    Some(out)
}

/// Every mount below mount `top` reachable from this process' root (listmount of
/// `LSMT_ROOT` lists the whole tree), a page of ids at a time.
fn list_below(nr: c_long, top: u64) -> Option<Vec<u64>> {
    let mut ids: Vec<u64> = Vec::new();
    let mut page = [0u64; 256];
    loop {
        let req = MntIdReq {
            size: MNT_ID_REQ_SIZE_VER0,
            spare: 0,
            mnt_id: top,
            // Where to continue: the last id of the previous page.
            param: ids.last().copied().unwrap_or(0),
        };
        // SAFETY: req is a valid mnt_id_req of the size it states; page has room
        // for the count passed.
        let n = unsafe {
            libc::syscall(
                nr,
                &req as *const MntIdReq,
                page.as_mut_ptr(),
                page.len(),
                0u32,
            )
        };
        let n = usize::try_from(n).ok()?;
        let got = page.get(..n)?;
        // Ids come in ascending order after `param`: a page that does not move past
        // the last one (a kernel ignoring `param`) would loop forever.
        if got
            .first()
            .is_some_and(|&f| ids.last().is_some_and(|&l| f <= l))
        {
            return None;
        }
        ids.extend_from_slice(got);
        if n < page.len() {
            return Some(ids);
        }
    }
}

/// A `struct statmount` the kernel filled.
struct Sm<'a> {
    bytes: &'a [u8],
}

impl Sm<'_> {
    fn u64_at(&self, off: usize) -> u64 {
        self.bytes
            .get(off..off + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_ne_bytes)
    }

    fn u32_at(&self, off: usize) -> Option<u32> {
        self.bytes
            .get(off..off + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
    }

    /// The NUL-terminated string a field points at (raw bytes, which mountinfo
    /// shows escaped; its parse unescapes them, lossily as here).
    fn str_at(&self, field: usize) -> Option<String> {
        let start = SM_STR.checked_add(self.u32_at(field)? as usize)?;
        let s = self.bytes.get(start..)?;
        let end = s.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&s[..end]).into_owned())
    }
}

fn stat(nr: c_long, id: u64, mask: u64, buf: &mut [u64]) -> Option<Sm<'_>> {
    let req = MntIdReq {
        size: MNT_ID_REQ_SIZE_VER0,
        spare: 0,
        mnt_id: id,
        param: mask,
    };
    let len = std::mem::size_of_val(buf);
    // SAFETY: req is a valid mnt_id_req; buf is writable for len bytes.
    let r = unsafe { libc::syscall(nr, &req as *const MntIdReq, buf.as_mut_ptr(), len, 0u32) };
    if r != 0 {
        // EOVERFLOW (strings longer than the buffer), ENOENT (unmounted since the
        // listing): mountinfo decides.
        return None;
    }
    // SAFETY: buf is len initialised bytes; u8 has no alignment requirement.
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
    let size = u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    Some(Sm {
        bytes: bytes.get(..size.min(len))?,
    })
}
