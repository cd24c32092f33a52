//! libseccomp, linked statically (build.rs).
//!
//! Why static: a dynamically linked libseccomp is mapped and relocated at every start
//! of the runtime, though a cached filter needs no libseccomp at all; a static archive
//! costs nothing until a cache miss calls into it (its pages are only faulted in then).
//! It also lets the release `oxcart-runtime` be one static executable that does not
//! depend on the host's libseccomp (as runc's release binaries link it). The archive
//! comes from libseccomp-dev (>= 2.5, checked by build.rs).
//!
//! libseccomp is used only to *compile*: rules → classic BPF via `seccomp_export_bpf`.
//! Loading the program is ours (see `install`), so kernel flags libseccomp 2.5.4
//! cannot express (WAIT_KILLABLE_RECV) still work.

use crate::SeccompError;
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `struct scmp_arg_cmp` (seccomp.h).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ScmpArgCmp {
    pub arg: c_uint,
    pub op: c_uint,
    pub datum_a: u64,
    pub datum_b: u64,
}

#[repr(C)]
struct ScmpVersion {
    major: c_uint,
    minor: c_uint,
    micro: c_uint,
}

// ARCHIVE_DIGEST: FNV-1a of the libseccomp.a that build.rs linked (cache.rs stamps
// entries with it).
include!(concat!(env!("OUT_DIR"), "/libseccomp_archive.rs"));

/// `enum scmp_filter_attr` values used here.
pub const ATTR_CTL_NNP: c_int = 3;
pub const ATTR_CTL_OPTIMIZE: c_int = 8;

type Ctx = *mut c_void;

// The C declarations of seccomp.h (libseccomp 2.5). The library itself is linked by
// build.rs (`cargo:rustc-link-lib=static=seccomp`).
extern "C" {
    fn seccomp_init(def_action: u32) -> Ctx;
    fn seccomp_release(ctx: Ctx);
    fn seccomp_arch_add(ctx: Ctx, arch_token: u32) -> c_int;
    fn seccomp_arch_native() -> u32;
    fn seccomp_syscall_resolve_name(name: *const c_char) -> c_int;
    fn seccomp_syscall_resolve_name_arch(arch_token: u32, name: *const c_char) -> c_int;
    fn seccomp_rule_add_array(
        ctx: Ctx,
        action: u32,
        syscall: c_int,
        arg_cnt: c_uint,
        arg_array: *const ScmpArgCmp,
    ) -> c_int;
    fn seccomp_export_bpf(ctx: Ctx, fd: c_int) -> c_int;
    fn seccomp_attr_set(ctx: Ctx, attr: c_int, value: u32) -> c_int;
    fn seccomp_version() -> *const ScmpVersion;
    fn seccomp_api_get() -> c_uint;
}

/// `(major, minor, micro)` of the linked libseccomp.
pub fn version() -> (u32, u32, u32) {
    // SAFETY: seccomp_version returns a pointer to static data (never NULL in 2.x).
    let v = unsafe { seccomp_version() };
    if v.is_null() {
        return (0, 0, 0);
    }
    // SAFETY: non-null pointer to a static struct.
    let v = unsafe { &*v };
    (v.major, v.minor, v.micro)
}

/// libseccomp's API level (seccomp_api_get): what the running kernel supports, as
/// libseccomp detected it (5 = NOTIFY).
pub fn api_level() -> u32 {
    // SAFETY: no arguments, no preconditions.
    unsafe { seccomp_api_get() }
}

/// Native syscall number for `name` (negative: a libseccomp pseudo-syscall, valid in
/// rules for the arches that have it); None if libseccomp does not know the name.
pub fn resolve(name: &str) -> Option<i32> {
    let c = CString::new(name).ok()?;
    // SAFETY: valid C string.
    let n = unsafe { seccomp_syscall_resolve_name(c.as_ptr()) };
    // __NR_SCMP_ERROR is -1.
    (n != -1).then_some(n)
}

/// Syscall number of `name` on architecture `token`.
pub fn resolve_arch(token: u32, name: &str) -> Option<i32> {
    let c = CString::new(name).ok()?;
    // SAFETY: valid C string; an unknown arch token yields __NR_SCMP_ERROR.
    let n = unsafe { seccomp_syscall_resolve_name_arch(token, c.as_ptr()) };
    (n != -1).then_some(n)
}

/// libseccomp's idea of the native arch token.
pub fn native_token() -> u32 {
    // SAFETY: no arguments.
    unsafe { seccomp_arch_native() }
}

fn errno_err(rc: c_int) -> io::Error {
    io::Error::from_raw_os_error(-rc)
}

/// An owned `scmp_filter_ctx`.
pub struct Filter {
    ctx: Ctx,
}

impl Drop for Filter {
    fn drop(&mut self) {
        // SAFETY: ctx came from seccomp_init and is released once.
        unsafe { seccomp_release(self.ctx) }
    }
}

impl Filter {
    pub fn new(default_action: u32) -> Result<Filter, SeccompError> {
        // SAFETY: plain call; NULL means failure (e.g. an action the kernel lacks).
        let ctx = unsafe { seccomp_init(default_action) };
        if ctx.is_null() {
            return Err(SeccompError::Library(format!(
                "seccomp_init({default_action:#x}) failed: the default action is not supported by this kernel or libseccomp"
            )));
        }
        Ok(Filter { ctx })
    }

    pub fn attr_set(&mut self, attr: c_int, value: u32) -> io::Result<()> {
        // SAFETY: live ctx.
        let rc = unsafe { seccomp_attr_set(self.ctx, attr, value) };
        if rc < 0 {
            return Err(errno_err(rc));
        }
        Ok(())
    }

    /// Add an architecture; an already present one (the native arch) is fine.
    pub fn arch_add(&mut self, token: u32) -> io::Result<()> {
        // SAFETY: live ctx.
        let rc = unsafe { seccomp_arch_add(self.ctx, token) };
        if rc < 0 && rc != -libc::EEXIST {
            return Err(errno_err(rc));
        }
        Ok(())
    }

    pub fn rule_add(&mut self, action: u32, syscall: i32, args: &[ScmpArgCmp]) -> io::Result<()> {
        // SAFETY: live ctx; args points to args.len() initialised structs.
        let rc = unsafe {
            seccomp_rule_add_array(
                self.ctx,
                action,
                syscall,
                args.len() as c_uint,
                args.as_ptr(),
            )
        };
        if rc < 0 {
            return Err(errno_err(rc));
        }
        Ok(())
    }

    /// Export the classic BPF program (host endian `struct sock_filter` array).
    pub fn export_bpf(&self) -> io::Result<Vec<u8>> {
        // SAFETY: memfd_create with a valid name; the fd is owned below.
        let fd = unsafe { libc::memfd_create(c"oxcart-seccomp-bpf".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: live ctx and a valid fd.
        let rc = unsafe { seccomp_export_bpf(self.ctx, fd.as_raw_fd()) };
        if rc < 0 {
            return Err(errno_err(rc));
        }
        let mut f = std::fs::File::from(fd);
        use std::io::{Read, Seek, SeekFrom};
        f.seek(SeekFrom::Start(0))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(buf)
    }
}
