//! CVE-2019-5736: the container must never reach a writable runtime binary.
//!
//! oxcart does not re-exec to become init: init and exec children are forks of
//! the runtime, so until they execve the container's program their
//! `/proc/<pid>/exe` is this binary. Being non-dumpable keeps other container
//! processes out of it, except two ways:
//!
//! - a program in the image whose interpreter is `#!/proc/self/exe`: execve()
//!   resolves the interpreter as the exec'ing process, i.e. runs *this* binary
//!   inside the container, now dumpable, and the container opens its
//!   `/proc/<pid>/exe` and writes through it once it exits (the original attack);
//! - a container process with CAP_SYS_PTRACE, for which non-dumpable is no bar.
//!
//! So every process that enters the container must run from a binary that
//! cannot be written through before the container can reach it: `exec` sees to
//! it for its own process before the fork, `create` and `run` leave it to init
//! where init can ([`prepare_for_init`], [`become_in_init`]). The binary already
//! cannot be written through when it lies on a read-only mount (write access through any path to it is EROFS, and
//! a container cannot remount a mount of another mount namespace) or is a
//! sealed memfd. Otherwise the runtime re-executes itself through a read-only
//! view of its binary: a detached bind mount of just the file, made read-only
//! (open_tree(2) OPEN_TREE_CLONE, then mount_setattr(2)), which is in no
//! mount namespace and is dissolved, so that nobody can remount it, as soon as
//! the exec closes the fd that made it. No host mount is touched, and no copy
//! is made. Where the kernel allows it (CAP_SYS_ADMIN, CONFIG_CHECKPOINT_RESTORE)
//! there is not even an exec: the process moves its own mappings off the
//! writable file and points its exe link at the view (`become_view`), which
//! saves a whole process start (~1 ms here). This is runc 1.2's idea (libcontainer/exeseal: a read-only
//! overlayfs mount of the binary's directory) done with one file and no child.
//! Where the caller may not make mounts (rootless) or the kernel is older than
//! 5.12, the binary is copied into a memfd instead and
//! sealed (memfd_create(2), fcntl(2) F_ADD_SEALS: no write, grow, shrink, or
//! further sealing), as runc 1.1 and crun do. Installing the binary on a
//! read-only mount skips the re-exec too.

use crate::error::{Error, Result};
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
// include/uapi/linux/memfd.h (Linux 6.3): an executable memfd, asked for
// explicitly so a vm.memfd_noexec=1 host does not give us a non-executable one.
const MFD_EXEC: libc::c_uint = 0x10;

/// How the running binary is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exe {
    /// On a read-only mount.
    ReadOnlyMount,
    /// A sealed memfd (a copy made by an earlier call of this process tree).
    Sealed,
    /// Writable: a copy is needed.
    Writable,
}

fn open_self() -> Result<OwnedFd> {
    crate::sys::open(c"/proc/self/exe", libc::O_RDONLY, 0)
        .map_err(|e| Error::sys("open /proc/self/exe", e))
}

/// Classify the binary behind `fd`.
fn classify(fd: &OwnedFd) -> Result<Exe> {
    // SAFETY: fcntl on an fd we own; F_GET_SEALS fails with EINVAL on files that
    // cannot be sealed, which just means "not a memfd".
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    if seals >= 0 && seals & SEALS == SEALS {
        return Ok(Exe::Sealed);
    }
    // SAFETY: fstatvfs fills the zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(Error::last("fstatvfs /proc/self/exe"));
    }
    if st.f_flag & libc::ST_RDONLY != 0 {
        return Ok(Exe::ReadOnlyMount);
    }
    Ok(Exe::Writable)
}

/// Return once the running binary cannot be written through: it already could
/// not, or this process now runs from a read-only view of it (switched in place,
/// [`become_view`]), or else re-execute this process, with the same argv and
/// environment, from the view or a sealed copy (this call then does not return).
/// An error names what failed: without the protection no container process may
/// be made, so there is no unprotected fallback.
pub fn ensure_sealed() -> Result<()> {
    let exe = open_self()?;
    if classify(&exe)? != Exe::Writable {
        return Ok(());
    }
    seal_here(exe)
}

/// What `create` and `run` leave to init ([`prepare_for_init`]).
#[derive(Debug)]
pub enum ForInit {
    /// Nothing: this process already runs from a binary that cannot be written
    /// through, and so will every fork of it.
    Nothing,
    /// init switches to this read-only view itself ([`become_in_init`]), first
    /// thing after the clone.
    Switch(OwnedFd),
}

/// [`ensure_sealed`] for `create` and `run`, whose own process never enters the
/// container: only init must not reach a writable binary. With `init_can` (init
/// has this process's credentials: no user namespace) and a kernel that lets us
/// switch in place, the switch is left to init, which does it while this process
/// makes the cgroups, off the critical path (~0.3 ms per create,
/// docs/benchmarks.md); the view is made here, because open_tree(2) clones only
/// mounts of the caller's own mount namespace. Otherwise this process is
/// protected now, as `exec`'s is.
pub fn prepare_for_init(init_can: bool) -> Result<ForInit> {
    let exe = open_self()?;
    if classify(&exe)? != Exe::Writable {
        return Ok(ForInit::Nothing);
    }
    if init_can && may_switch() {
        if let Some(view) = read_only_view(&exe) {
            return Ok(ForInit::Switch(view));
        }
    }
    seal_here(exe)?;
    Ok(ForInit::Nothing)
}

/// Can [`become_view`] be expected to work? prctl(2) PR_SET_MM_MAP with an exe
/// fd needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE (kernel/sys.c
/// `prctl_set_mm_map`) and a kernel built with CONFIG_CHECKPOINT_RESTORE, whose
/// absence PR_SET_MM_MAP_SIZE reports (EINVAL) without needing either.
fn may_switch() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_CHECKPOINT_RESTORE: u32 = 40;
    let Ok(eff) = crate::caps::effective() else {
        return false;
    };
    if eff & (1 << CAP_SYS_ADMIN | 1 << CAP_CHECKPOINT_RESTORE) == 0 {
        return false;
    }
    let mut size: libc::c_uint = 0;
    // SAFETY: PR_SET_MM_MAP_SIZE writes one unsigned int.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_MAP_SIZE,
            &mut size as *mut libc::c_uint,
            0,
            0,
        )
    };
    r == 0 && size as usize == std::mem::size_of::<MmMap>()
}

/// In init, before anything else: switch to the view the parent made
/// ([`prepare_for_init`]) and check that `/proc/self/exe` is now that read-only
/// file. An error leaves init running the same bytes from the host's file: it
/// must then make no container process.
///
/// Returns the view's fd for init to close once its setup is done, before it
/// waits for `start`: that close dissolves the view's mount (the parent has
/// closed its copy), which waits for an RCU grace period (~0.2 ms here) that
/// need not be on `create`'s path. Until then only init holds the fd, and
/// changing the view's flags through it would need CAP_SYS_ADMIN in the host's
/// user namespace.
///
/// # Safety
/// As [`become_view`]: init is a clone3 child, so it has one thread, and it
/// runs nothing else meanwhile.
pub unsafe fn become_in_init(view: OwnedFd) -> Result<OwnedFd> {
    const WHAT: &str =
        "CVE-2019-5736 protection: switch init to a read-only view of oxcart-runtime";
    // SAFETY: the caller's contract.
    unsafe { become_view(&view) }.map_err(|e| Error::sys(WHAT, e))?;
    if !runs_read_only_from(&view)? {
        return Err(Error::Other(format!(
            "{WHAT}: /proc/self/exe is not the read-only view afterwards"
        )));
    }
    Ok(view)
}

/// Run this command again from a read-only view or a sealed copy of the binary,
/// which needs no switch: for `create` when init could not switch
/// ([`become_in_init`]) and everything the attempt made has been undone.
/// Returns only the error of a failed exec.
pub fn reexec_protected() -> Error {
    let copy = match open_self() {
        Ok(exe) => read_only_view(&exe).map_or_else(|| sealed_copy(&exe), Ok),
        Err(e) => Err(e),
    };
    match copy {
        Ok(copy) => match exec_copy(copy) {
            Ok(never) => match never {},
            Err(e) => e,
        },
        Err(e) => e,
    }
}

/// The protection for this process: switch in place, or re-execute.
fn seal_here(exe: OwnedFd) -> Result<()> {
    let copy = match read_only_view(&exe) {
        Some(view) => {
            // SAFETY: the callers run before any container process exists: one
            // thread, no signal handler that touches our data (see become_view).
            if unsafe { become_view(&view) }.is_ok() {
                // The fd that made the view goes before anything else happens:
                // once it is closed the view's mount is dissolved and its flags
                // are fixed for good (see read_only_view).
                drop(view);
                if runs_read_only_from(&exe)? {
                    return Ok(());
                }
                // Not what we asked for: the re-exec below still protects us.
                read_only_view(&exe).map_or_else(|| sealed_copy(&exe), Ok)?
            } else {
                view
            }
        }
        None => sealed_copy(&exe)?,
    };
    drop(exe);
    match exec_copy(copy)? {}
}

/// After a switch: does this process now run from `file` (the same inode), on a
/// read-only mount?
fn runs_read_only_from(file: &OwnedFd) -> Result<bool> {
    let now = open_self()?;
    Ok(classify(&now)? == Exe::ReadOnlyMount && same_file(file, &now))
}

/// execveat(2) `copy` with this process's argv and environment; returns only on
/// failure.
fn exec_copy(copy: OwnedFd) -> Result<std::convert::Infallible> {
    let argv = cstrings(std::env::args_os())?;
    let envp = cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|c| c.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of valid C strings that outlive the call;
    // AT_EMPTY_PATH executes the fd itself (execveat(2)). The memfd is
    // close-on-exec, which execveat allows for an ELF binary.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            copy.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(Error::sys(
        "CVE-2019-5736 protection: execute the sealed copy of oxcart-runtime (install the binary on a read-only mount to run without the copy)",
        io::Error::last_os_error(),
    ))
}

/// An `O_PATH` fd of our binary on a read-only bind mount that is in no mount
/// namespace (see the module comment), or `None` where that cannot be made (no
/// privilege to make mounts, a kernel before 5.12): the caller falls back to a
/// sealed copy, which always works.
///
/// open_tree(2) with OPEN_TREE_CLONE on the open binary makes a detached bind
/// mount of just that file, living in an anonymous mount namespace only this fd
/// reaches; mount_setattr(2) makes it read-only (and nosuid, nodev). The fd is
/// close-on-exec: when `execveat` closes it, the kernel dissolves that namespace
/// (`dissolve_on_fput`), leaving the mount unmounted and alive only through the
/// new image's exe link, so no process can change its flags any more
/// (mount_setattr and remounts need a mounted mount). Two syscalls and no child,
/// where a bind mount made in a private mount namespace needs a child to copy,
/// and later tear down, the whole mount table.
fn read_only_view(exe: &OwnedFd) -> Option<OwnedFd> {
    use std::os::fd::AsFd;
    let flags = crate::sys::OPEN_TREE_CLONE
        | crate::sys::OPEN_TREE_CLOEXEC
        | libc::AT_EMPTY_PATH as libc::c_uint;
    let view = crate::sys::open_tree(Some(exe.as_fd()), c"", flags).ok()?;
    let attr = crate::sys::MountAttr {
        attr_set: crate::sys::MOUNT_ATTR_RDONLY
            | crate::sys::MOUNT_ATTR_NOSUID
            | crate::sys::MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    crate::sys::mount_setattr(
        view.as_fd(),
        c"",
        libc::AT_EMPTY_PATH as libc::c_uint,
        &attr,
    )
    .ok()?;
    // Trust nothing we did not check: the view must be our binary, read-only.
    if classify(&view).ok()? != Exe::ReadOnlyMount || !same_file(exe, &view) {
        return None;
    }
    Some(view)
}

/// The part of `prctl_mm_map` (include/uapi/linux/prctl.h) PR_SET_MM_MAP reads.
#[repr(C)]
struct MmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: *const u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// One `PT_LOAD` segment of the running executable, page-aligned.
struct Segment {
    start: usize,
    len: usize,
    offset: libc::off_t,
    prot: libc::c_int,
    /// Written at run time (relocations, data, bss): copied, not re-mapped.
    written: bool,
}

/// The running executable's load segments, and its RELRO range (start, end).
struct Found {
    segs: Vec<Segment>,
    relro: Option<(usize, usize)>,
    done: bool,
}

/// The running executable's program headers (dl_iterate_phdr(3): the first
/// object it reports is the executable).
fn own_segments() -> Option<Found> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info and our data pointer.
        let (info, found) = unsafe { (&*info, &mut *(data as *mut Found)) };
        if found.done {
            return 1;
        }
        found.done = true;
        let page = page_size();
        let down = |x: usize| x & !(page - 1);
        let up = |x: usize| (x + page - 1) & !(page - 1);
        let base = info.dlpi_addr as usize;
        // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
        for ph in phdrs {
            let vaddr = base + ph.p_vaddr as usize;
            match ph.p_type {
                libc::PT_LOAD => {
                    let written = ph.p_flags & libc::PF_W != 0 || ph.p_memsz != ph.p_filesz;
                    let mut prot = 0;
                    if ph.p_flags & libc::PF_R != 0 {
                        prot |= libc::PROT_READ;
                    }
                    if ph.p_flags & libc::PF_W != 0 {
                        prot |= libc::PROT_WRITE;
                    }
                    if ph.p_flags & libc::PF_X != 0 {
                        prot |= libc::PROT_EXEC;
                    }
                    let start = down(vaddr);
                    found.segs.push(Segment {
                        start,
                        len: up(vaddr + ph.p_memsz as usize) - start,
                        offset: down(ph.p_offset as usize) as libc::off_t,
                        prot,
                        written,
                    });
                }
                libc::PT_GNU_RELRO => {
                    // As the loader protects it (glibc _dl_protect_relro): the
                    // whole pages inside the range.
                    found.relro = Some((down(vaddr), down(vaddr + ph.p_memsz as usize)));
                }
                _ => {}
            }
        }
        1
    }
    let mut found = Found {
        segs: Vec::new(),
        relro: None,
        done: false,
    };
    // SAFETY: the callback only reads what the loader passes and writes `found`.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut found as *mut Found).cast()) };
    (!found.segs.is_empty()).then_some(found)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// Make the read-only `view` this process's executable without executing it
/// again (a process start costs ~1 ms of CPUID probing on our VMs alone,
/// docs/benchmarks.md). The kernel lets a process change its exe link only once
/// no mapping of the old file is left (kernel/fork.c `replace_mm_exe_file`), so
/// first every mapping of the binary is moved off it:
///
/// - segments never written (headers, code, read-only data) are mapped again,
///   in place, from the view: the same inode, so the same page-cache pages and
///   the same bytes under the instructions being executed;
/// - written ones (RELRO after relocation, data, bss) are copied to anonymous
///   memory, which mremap(2) then moves over the original in one step, and RELRO
///   is made read-only again.
///
/// Then prctl(PR_SET_MM, PR_SET_MM_MAP) with `exe_fd` (prctl(2); CAP_SYS_ADMIN or
/// CAP_CHECKPOINT_RESTORE, what CRIU uses; PR_SET_MM_EXE_FILE would need
/// CAP_SYS_RESOURCE) sets the exe link, with every other field as the kernel
/// has it (/proc/self/stat). Any failure leaves a working process that still
/// runs the same bytes; the caller then re-executes instead.
///
/// # Safety
/// Single-threaded, and nothing may write the process's static data between a
/// segment's copy and its mremap: no allocation, no signal handler that runs.
unsafe fn become_view(view: &OwnedFd) -> io::Result<()> {
    // mmap needs a readable fd; the view is O_PATH. Reopened through /proc, it
    // is the same file on the same (view) mount.
    let path = CString::new(format!("/proc/self/fd/{}", view.as_raw_fd()))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let ro = crate::sys::open(&path, libc::O_RDONLY, 0)?;
    let Found { segs, relro, .. } = own_segments().ok_or(io::ErrorKind::NotFound)?;
    for seg in segs.iter().filter(|s| !s.written) {
        // SAFETY: the range is our own mapping of these very bytes (see above).
        let r = unsafe {
            libc::mmap(
                seg.start as *mut libc::c_void,
                seg.len,
                seg.prot,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                ro.as_raw_fd(),
                seg.offset,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
    }
    for seg in segs.iter().filter(|s| s.written) {
        // SAFETY: a fresh anonymous mapping.
        let tmp = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                seg.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if tmp == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both ranges are mapped and readable/writable as used; from
        // this copy to the mremap nothing writes the segment (caller's contract).
        let moved = unsafe {
            std::ptr::copy_nonoverlapping(seg.start as *const u8, tmp as *mut u8, seg.len);
            libc::syscall(
                libc::SYS_mremap,
                tmp,
                seg.len,
                seg.len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                seg.start,
            )
        };
        if moved == -1 {
            let e = io::Error::last_os_error();
            // SAFETY: our own temporary mapping.
            unsafe { libc::munmap(tmp, seg.len) };
            return Err(e);
        }
    }
    if let Some((start, end)) = relro.filter(|(s, e)| e > s) {
        // SAFETY: our own pages, now anonymous; read-only as the loader had them.
        if unsafe { libc::mprotect(start as *mut libc::c_void, end - start, libc::PROT_READ) } != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields 3.. (proc_pid_stat(5)); we need 26-28 and 45-51.
    let fields: Vec<u64> = crate::sys::stat_fields(&stat)?
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |n: usize| fields.get(n - 3).copied().ok_or(io::ErrorKind::InvalidData);
    let mut map = MmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_stack: field(28)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        brk: 0,
        arg_start: field(48)?,
        arg_end: field(49)?,
        env_start: field(50)?,
        env_end: field(51)?,
        auxv: std::ptr::null(),
        auxv_size: 0,
        exe_fd: ro.as_raw_fd() as u32,
    };
    // Read last, with nothing allocating before the prctl: the heap's end.
    // SAFETY: brk(0) only reports the current break.
    map.brk = unsafe { libc::syscall(libc::SYS_brk, 0) } as u64;
    // SAFETY: a valid prctl_mm_map of the size we pass; auxv_size 0 keeps the
    // saved auxv as it is.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_MAP,
            &map as *const MmMap,
            std::mem::size_of::<MmMap>(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn same_file(a: &OwnedFd, b: &OwnedFd) -> bool {
    let st = |fd: &OwnedFd| {
        // SAFETY: fstat fills the zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        (unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0).then_some((st.st_dev, st.st_ino))
    };
    matches!((st(a), st(b)), (Some(x), Some(y)) if x == y)
}

/// A sealed memfd holding a copy of `exe`.
fn sealed_copy(exe: &OwnedFd) -> Result<OwnedFd> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let name = c"oxcart-runtime";
    // SAFETY: valid name; the fd is owned below.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Before Linux 6.3 MFD_EXEC is unknown, and every memfd is executable.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(Error::last("CVE-2019-5736 protection: memfd_create"));
    }
    // SAFETY: fresh fd.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fstat fills the zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(exe.as_raw_fd(), &mut st) } != 0 {
        return Err(Error::last("fstat /proc/self/exe"));
    }
    let mut left = st.st_size as usize;
    while left > 0 {
        // SAFETY: both fds are open; a NULL offset reads from the file position.
        let n = unsafe {
            libc::sendfile(
                memfd.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                left,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::sys(
                "CVE-2019-5736 protection: copy the runtime binary",
                e,
            ));
        }
        if n == 0 {
            return Err(Error::Other(
                "CVE-2019-5736 protection: the runtime binary shrank while being copied".into(),
            ));
        }
        left -= n as usize;
    }
    // SAFETY: fcntl on our memfd.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(Error::last("CVE-2019-5736 protection: seal the copy"));
    }
    Ok(memfd)
}

fn cstrings(it: impl Iterator<Item = OsString>) -> Result<Vec<CString>> {
    it.map(|s| {
        CString::new(s.into_vec()).map_err(|_| {
            Error::Other("an argument or environment variable contains a NUL byte".into())
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mount_setattr(2) clearing read-only on whatever mount `fd` is on.
    fn make_writable(fd: &OwnedFd) -> io::Result<()> {
        use std::os::fd::AsFd;
        let attr = crate::sys::MountAttr {
            attr_set: 0,
            attr_clr: crate::sys::MOUNT_ATTR_RDONLY,
            propagation: 0,
            userns_fd: 0,
        };
        crate::sys::mount_setattr(fd.as_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint, &attr)
    }

    #[test]
    fn the_read_only_view_is_the_file_and_cannot_be_written_or_remounted() {
        // A copy of a real program, so it can be executed through the view.
        let p = std::env::temp_dir().join(format!("oxcart-selfexe-{}", std::process::id()));
        std::fs::copy("/bin/sleep", &p).unwrap();
        let cp = CString::new(p.to_str().unwrap()).unwrap();
        let f = crate::sys::open(&cp, libc::O_RDONLY, 0).unwrap();
        // Root here (the test suite runs as root); a non-root caller gets None.
        let view = read_only_view(&f).expect("read-only view");
        assert_eq!(classify(&view).unwrap(), Exe::ReadOnlyMount);
        assert!(same_file(&f, &view));
        let err = std::fs::OpenOptions::new()
            .append(true)
            .open(format!("/proc/self/fd/{}", view.as_raw_fd()))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        // The mount is in no namespace: ours still has the file writable, and
        // no mount at its path.
        assert_eq!(classify(&f).unwrap(), Exe::Writable);
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mi.lines().any(|l| l.split(' ').nth(4) == p.to_str()),
            "the bind mount leaked into our namespace"
        );

        // While the fd that made a view is open, its flags can be changed through
        // it (which is why ensure_sealed lets the exec close it): the check below
        // is one that can fail.
        let open_view = read_only_view(&f).expect("second view");
        make_writable(&open_view).expect("clear read-only on an open view");
        drop(open_view);

        // Run the program through the view, as ensure_sealed does, then drop the
        // fd that made the view: the running program's exe is on the view, and
        // neither writing through it nor clearing read-only on it works any more.
        let argv = [c"sleep".as_ptr(), c"30".as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        // SAFETY: the child only calls execveat and _exit (async-signal-safe).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above.
            unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    view.as_raw_fd(),
                    c"".as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
                libc::_exit(127);
            }
        }
        drop(view);
        // Wait until the child has exec'd (its exe is no longer the test binary).
        let exe_link = format!("/proc/{pid}/exe");
        let me = std::fs::read_link("/proc/self/exe").unwrap();
        for _ in 0..500 {
            if std::fs::read_link(&exe_link).is_ok_and(|l| l != me) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let exe =
            crate::sys::open(&CString::new(exe_link.clone()).unwrap(), libc::O_PATH, 0).unwrap();
        let running = (|| {
            if !same_file(&f, &exe) {
                return Err(format!(
                    "{exe_link} is not the program run through the view"
                ));
            }
            if make_writable(&exe).is_ok() {
                return Err(format!("read-only cleared on the mount of {exe_link}"));
            }
            Ok(())
        })();
        // SAFETY: our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = crate::sys::waitpid(pid, 0);
        running.unwrap();
        // The attack writes once the program has exited (ETXTBSY before): what
        // it kept of the exe is on a mount that stays read-only.
        let w = std::fs::OpenOptions::new()
            .append(true)
            .open(format!("/proc/self/fd/{}", exe.as_raw_fd()));
        assert_eq!(
            w.as_ref().err().and_then(|e| e.raw_os_error()),
            Some(libc::EROFS),
            "{w:?}"
        );
        assert!(make_writable(&exe).is_err(), "read-only cleared after exit");
        let _ = std::fs::remove_file(&p);
        // And our own binary gets one too.
        assert!(read_only_view(&open_self().unwrap()).is_some());
    }

    /// In a forked child (one thread, as in the runtime): the process becomes
    /// its read-only view in place and keeps working.
    fn become_view_in_child() -> Result<(), String> {
        let exe = open_self().map_err(|e| e.to_string())?;
        let orig = std::fs::read_link("/proc/self/exe").map_err(|e| e.to_string())?;
        let view = read_only_view(&exe).ok_or("no read-only view")?;
        // SAFETY: the forked child is single-threaded and handles no signals.
        unsafe { become_view(&view) }.map_err(|e| format!("become_view: {e}"))?;
        drop(view);
        let now = open_self().map_err(|e| e.to_string())?;
        if classify(&now).map_err(|e| e.to_string())? != Exe::ReadOnlyMount {
            return Err("the exe is not on a read-only mount".into());
        }
        if !same_file(&exe, &now) {
            return Err("the exe is another file".into());
        }
        if make_writable(&now).is_ok() {
            return Err("read-only cleared on the exe's mount".into());
        }
        let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
        if let Some(l) = maps
            .lines()
            .find(|l| l.ends_with(orig.to_str().unwrap_or("?")))
        {
            return Err(format!("still mapped from the writable file: {l}"));
        }
        // Code, relocated data (a trait object's vtable), the heap: all work.
        let d: Box<dyn std::fmt::Display> = Box::new(12345u32);
        if format!("{d}") != "12345" {
            return Err("relocated data lost".into());
        }
        Ok(())
    }

    #[test]
    fn the_process_becomes_its_read_only_view_without_an_exec() {
        // SAFETY: the child only runs become_view_in_child and _exit; glibc's
        // fork keeps malloc usable in the child; messages go out with write(2),
        // not through std's (possibly locked) stderr.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = match become_view_in_child() {
                Ok(()) => 0,
                Err(e) => {
                    let m = format!("{e}\n");
                    // SAFETY: writing our own buffer to stderr.
                    unsafe { libc::write(2, m.as_ptr().cast(), m.len()) };
                    1
                }
            };
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(code) };
        }
        let (_, status) = crate::sys::waitpid(pid, 0).unwrap();
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status:#x} (see its message above)"
        );
    }

    #[test]
    fn a_sealed_copy_cannot_be_written_and_is_recognised() {
        let exe = open_self().unwrap();
        let copy = sealed_copy(&exe).unwrap();
        assert_eq!(classify(&copy).unwrap(), Exe::Sealed);
        // SAFETY: write to our own fd.
        let n = unsafe { libc::write(copy.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(n, -1);
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
        // SAFETY: ftruncate on our own fd.
        assert_ne!(unsafe { libc::ftruncate(copy.as_raw_fd(), 0) }, 0);
        // Same bytes as the original.
        let a = std::fs::read("/proc/self/exe").unwrap();
        let b = std::fs::read(format!("/proc/self/fd/{}", copy.as_raw_fd())).unwrap();
        assert!(a == b, "copy differs from the binary");
    }
}
