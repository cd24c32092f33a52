//! libseccomp, loaded with `dlopen` on first use.
//!
//! Why not link it: the runtime binary starts on every `create`; a cached filter
//! needs no libseccomp at all, so the dynamic loader should not pay for mapping and
//! relocating it (and the binary does not need libseccomp-dev to build). Only a cache
//! miss loads `libseccomp.so.2`; the handle is kept for the life of the process.
//!
//! libseccomp is used only to *compile*: rules → classic BPF via `seccomp_export_bpf`.
//! Loading the program is ours (see `install`), so kernel flags libseccomp 2.5.4
//! cannot express (WAIT_KILLABLE_RECV) still work.

use crate::SeccompError;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

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

/// `enum scmp_filter_attr` values used here.
pub const ATTR_CTL_NNP: c_int = 3;
pub const ATTR_CTL_OPTIMIZE: c_int = 8;

type Ctx = *mut c_void;

// The C signatures of seccomp.h (libseccomp 2.5).
type InitFn = unsafe extern "C" fn(u32) -> Ctx;
type ReleaseFn = unsafe extern "C" fn(Ctx);
type ArchAddFn = unsafe extern "C" fn(Ctx, u32) -> c_int;
type ArchNativeFn = unsafe extern "C" fn() -> u32;
type ResolveNameFn = unsafe extern "C" fn(*const c_char) -> c_int;
type ResolveNameArchFn = unsafe extern "C" fn(u32, *const c_char) -> c_int;
type RuleAddArrayFn = unsafe extern "C" fn(Ctx, u32, c_int, c_uint, *const ScmpArgCmp) -> c_int;
type ExportBpfFn = unsafe extern "C" fn(Ctx, c_int) -> c_int;
type AttrSetFn = unsafe extern "C" fn(Ctx, c_int, u32) -> c_int;
type VersionFn = unsafe extern "C" fn() -> *const ScmpVersion;
type ApiGetFn = unsafe extern "C" fn() -> c_uint;

struct Api {
    init: InitFn,
    release: ReleaseFn,
    arch_add: ArchAddFn,
    arch_native: ArchNativeFn,
    resolve_name: ResolveNameFn,
    resolve_name_arch: ResolveNameArchFn,
    rule_add_array: RuleAddArrayFn,
    export_bpf: ExportBpfFn,
    attr_set: AttrSetFn,
    version: VersionFn,
    api_get: ApiGetFn,
    /// The file dlopen actually mapped (from `dladdr`), for the cache's staleness stamp.
    path: String,
}

// SAFETY: Api holds only function pointers into a library that is never unloaded and
// a String; libseccomp's functions used here are safe to call from any thread on
// distinct contexts.
unsafe impl Send for Api {}
unsafe impl Sync for Api {}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

const SONAME: &CStr = c"libseccomp.so.2";

fn dlerror_string() -> String {
    // SAFETY: dlerror returns NULL or a valid C string owned by libc.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: non-null, NUL-terminated per dlerror(3).
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn load() -> Result<Api, String> {
    // SAFETY: dlopen with a valid C string; RTLD_NOW resolves everything up front so a
    // missing symbol fails here, not mid-compile.
    let h = unsafe { libc::dlopen(SONAME.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        return Err(format!(
            "cannot load libseccomp ({}): {} (install libseccomp2 >= 2.5)",
            SONAME.to_string_lossy(),
            dlerror_string()
        ));
    }
    macro_rules! sym {
        ($name:literal, $ty:ty) => {{
            // SAFETY: h is a live handle; the name is NUL-terminated.
            let p = unsafe { libc::dlsym(h, concat!($name, "\0").as_ptr().cast()) };
            if p.is_null() {
                return Err(format!("libseccomp lacks {}: {}", $name, dlerror_string()));
            }
            // SAFETY: the symbol has the C signature declared in seccomp.h 2.5, which
            // the field type below mirrors.
            unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
        }};
    }
    let init_ptr = {
        // SAFETY: as above.
        let p = unsafe { libc::dlsym(h, c"seccomp_init".as_ptr()) };
        if p.is_null() {
            return Err(format!(
                "libseccomp lacks seccomp_init: {}",
                dlerror_string()
            ));
        }
        p
    };
    // SAFETY: Dl_info is plain data; dladdr fills it for an address inside a mapped object.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: init_ptr points into the library just loaded.
    let path = if unsafe { libc::dladdr(init_ptr, &mut info) } != 0 && !info.dli_fname.is_null() {
        // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
        unsafe { CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned()
    } else {
        String::new()
    };
    let api = Api {
        // SAFETY: seccomp_init(uint32_t def_action) -> scmp_filter_ctx.
        init: unsafe { std::mem::transmute::<*mut c_void, InitFn>(init_ptr) },
        release: sym!("seccomp_release", ReleaseFn),
        arch_add: sym!("seccomp_arch_add", ArchAddFn),
        arch_native: sym!("seccomp_arch_native", ArchNativeFn),
        resolve_name: sym!("seccomp_syscall_resolve_name", ResolveNameFn),
        resolve_name_arch: sym!("seccomp_syscall_resolve_name_arch", ResolveNameArchFn),
        rule_add_array: sym!("seccomp_rule_add_array", RuleAddArrayFn),
        export_bpf: sym!("seccomp_export_bpf", ExportBpfFn),
        attr_set: sym!("seccomp_attr_set", AttrSetFn),
        version: sym!("seccomp_version", VersionFn),
        api_get: sym!("seccomp_api_get", ApiGetFn),
        path,
    };
    let (maj, min, _) = version_of(&api);
    if (maj, min) < (2, 5) {
        return Err(format!(
            "libseccomp {maj}.{min} is too old: SCMP_ACT_NOTIFY and the runtime-spec actions need >= 2.5"
        ));
    }
    Ok(api)
}

fn version_of(api: &Api) -> (u32, u32, u32) {
    // SAFETY: seccomp_version returns a pointer to static data (never NULL in 2.x).
    let v = unsafe { (api.version)() };
    if v.is_null() {
        return (0, 0, 0);
    }
    // SAFETY: non-null pointer to a static struct.
    let v = unsafe { &*v };
    (v.major, v.minor, v.micro)
}

fn api() -> Result<&'static Api, SeccompError> {
    API.get_or_init(load)
        .as_ref()
        .map_err(|e| SeccompError::Library(e.clone()))
}

/// Path and version of the loaded libseccomp.
pub fn library() -> Result<(String, (u32, u32, u32)), SeccompError> {
    let a = api()?;
    Ok((a.path.clone(), version_of(a)))
}

/// libseccomp's API level (seccomp_api_get): what the running kernel supports, as
/// libseccomp detected it (5 = NOTIFY).
pub fn api_level() -> Result<u32, SeccompError> {
    let a = api()?;
    // SAFETY: no arguments, no preconditions.
    Ok(unsafe { (a.api_get)() })
}

/// Native syscall number for `name` (negative: a libseccomp pseudo-syscall, valid in
/// rules for the arches that have it); None if libseccomp does not know the name.
pub fn resolve(name: &str) -> Result<Option<i32>, SeccompError> {
    let a = api()?;
    let Ok(c) = CString::new(name) else {
        return Ok(None);
    };
    // SAFETY: valid C string.
    let n = unsafe { (a.resolve_name)(c.as_ptr()) };
    // __NR_SCMP_ERROR is -1.
    Ok((n != -1).then_some(n))
}

/// Syscall number of `name` on architecture `token`.
pub fn resolve_arch(token: u32, name: &str) -> Result<Option<i32>, SeccompError> {
    let a = api()?;
    let Ok(c) = CString::new(name) else {
        return Ok(None);
    };
    // SAFETY: valid C string; an unknown arch token yields __NR_SCMP_ERROR.
    let n = unsafe { (a.resolve_name_arch)(token, c.as_ptr()) };
    Ok((n != -1).then_some(n))
}

/// libseccomp's idea of the native arch token.
pub fn native_token() -> Result<u32, SeccompError> {
    let a = api()?;
    // SAFETY: no arguments.
    Ok(unsafe { (a.arch_native)() })
}

fn errno_err(rc: c_int) -> io::Error {
    io::Error::from_raw_os_error(-rc)
}

/// An owned `scmp_filter_ctx`.
pub struct Filter {
    api: &'static Api,
    ctx: Ctx,
}

impl Drop for Filter {
    fn drop(&mut self) {
        // SAFETY: ctx came from seccomp_init and is released once.
        unsafe { (self.api.release)(self.ctx) }
    }
}

impl Filter {
    pub fn new(default_action: u32) -> Result<Filter, SeccompError> {
        let api = api()?;
        // SAFETY: plain call; NULL means failure (e.g. an action the kernel lacks).
        let ctx = unsafe { (api.init)(default_action) };
        if ctx.is_null() {
            return Err(SeccompError::Library(format!(
                "seccomp_init({default_action:#x}) failed: the default action is not supported by this kernel or libseccomp"
            )));
        }
        Ok(Filter { api, ctx })
    }

    pub fn attr_set(&mut self, attr: c_int, value: u32) -> io::Result<()> {
        // SAFETY: live ctx.
        let rc = unsafe { (self.api.attr_set)(self.ctx, attr, value) };
        if rc < 0 {
            return Err(errno_err(rc));
        }
        Ok(())
    }

    /// Add an architecture; an already present one (the native arch) is fine.
    pub fn arch_add(&mut self, token: u32) -> io::Result<()> {
        // SAFETY: live ctx.
        let rc = unsafe { (self.api.arch_add)(self.ctx, token) };
        if rc < 0 && rc != -libc::EEXIST {
            return Err(errno_err(rc));
        }
        Ok(())
    }

    pub fn rule_add(&mut self, action: u32, syscall: i32, args: &[ScmpArgCmp]) -> io::Result<()> {
        // SAFETY: live ctx; args points to args.len() initialised structs.
        let rc = unsafe {
            (self.api.rule_add_array)(
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
        let rc = unsafe { (self.api.export_bpf)(self.ctx, fd.as_raw_fd()) };
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
