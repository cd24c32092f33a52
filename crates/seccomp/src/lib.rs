//! oxcart_seccomp — the runtime-spec seccomp profile (`config-linux.md` "Seccomp"),
//! compiled to classic BPF in the runtime's parent process and loaded by the
//! container's init right before `execve`.
//!
//! ```text
//! parent (before clone)                     init (after all setup, before exec.fifo)
//! ---------------------                     -------------------------------------
//! compile / compile_cached(profile)  ──►    filter.install()  → Option<listener fd>
//!   validate (always, pure Rust)            (one raw seccomp(2); no allocation)
//!   cache hit: read + verify one file
//!   miss: libseccomp (static), rules → BPF,
//!         prepend runc's ENOSYS stub, store
//! ```
//! With `SCMP_ACT_NOTIFY`, the listener fd must reach the agent at `listenerPath`:
//! [`send_listener_fd`] does what runc does (connect, send the container process
//! state JSON with the fd attached via `SCM_RIGHTS`).
//!
//! See docs/seccomp.md for the design, runc differences and measurements.

mod bpf;
mod cache;
mod compile;
mod features;
mod kernel;
mod libseccomp;
mod notify;
mod profile;

pub use bpf::SockFilter;
pub use cache::{cache_key, CacheStatus, DEFAULT_CACHE_DIR};
pub use features::{features, libseccomp_version, SeccompFeatures, ACTIONS, FLAGS, OPERATORS};
pub use notify::{send_listener_fd, ContainerProcessState, ProcessStateInner, SECCOMP_FD_NAME};
pub use profile::filter_flag;

use oxcart_spec::LinuxSeccomp;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A malformed profile; `field` is the JSON path of the bad entry
    /// (`linux.seccomp.syscalls[3].action`).
    #[error("{field}: {msg}")]
    Invalid { field: String, msg: String },
    /// The profile is well-formed but this build/host cannot compile it.
    #[error("{field}: {msg}")]
    Compile { field: String, msg: String },
    /// libseccomp refused the request (e.g. an action this kernel lacks).
    #[error("seccomp: {0}")]
    Library(String),
    /// seccomp(2) refused the program (in init).
    #[error("seccomp(SECCOMP_SET_MODE_FILTER, flags={flags:#x}): {source}")]
    Install {
        flags: u32,
        #[source]
        source: io::Error,
    },
    #[error("seccomp cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Handing the notify listener fd to the agent failed.
    #[error("seccomp listener {}: {op}: {source}", path.display())]
    Listener {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A compiled, ready-to-load seccomp filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    program: Vec<SockFilter>,
    flags: u32,
    uses_notify: bool,
    skipped: Vec<String>,
}

/// `SECCOMP_SET_MODE_FILTER` (linux/seccomp.h).
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

impl Filter {
    /// The classic BPF program, ENOSYS stub included.
    pub fn program(&self) -> &[SockFilter] {
        &self.program
    }

    /// `SECCOMP_FILTER_FLAG_*` passed to seccomp(2) (see [`filter_flag`]).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether a rule uses `SCMP_ACT_NOTIFY`: `install` then returns the listener fd,
    /// which the runtime must hand to `listenerPath` ([`send_listener_fd`]).
    pub fn uses_notify(&self) -> bool {
        self.uses_notify
    }

    /// Syscall names in the profile this build does not know and skipped (runc logs
    /// each as `unknown seccomp syscall "x" ignored` at debug level).
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }

    /// Load the filter into the calling thread (`seccomp(SECCOMP_SET_MODE_FILTER)`).
    ///
    /// Meant for the container's init at the end of its setup (runc: just before the
    /// exec.fifo wait that precedes `execve`; see docs/seccomp.md): it allocates nothing
    /// and makes exactly one syscall, so it is safe after `clone`/`fork` in a process whose
    /// other threads may hold locks. The caller must have set `no_new_privs` or hold
    /// `CAP_SYS_ADMIN` (seccomp(2) EACCES otherwise). Returns the notify listener fd
    /// when the filter uses `SCMP_ACT_NOTIFY` (`SECCOMP_FILTER_FLAG_NEW_LISTENER`).
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let prog = bpf::SockFprog {
            // compile() bounds the length by BPF_MAXINSNS (4096).
            len: self.program.len() as u16,
            filter: self.program.as_ptr(),
        };
        // SAFETY: prog points to a live program of `len` instructions for the duration
        // of the call; the kernel copies it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &prog as *const bpf::SockFprog,
            )
        };
        if rc < 0 {
            return Err(SeccompError::Install {
                flags: self.flags,
                source: io::Error::last_os_error(),
            });
        }
        if self.flags & filter_flag::NEW_LISTENER != 0 {
            // SAFETY: with NEW_LISTENER, seccomp(2) returns a new fd that we now own.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }));
        }
        if rc != 0 {
            // seccomp(2): with TSYNC, a positive return is the id of a thread that
            // could not be synchronised; the filter was not installed.
            return Err(SeccompError::Install {
                flags: self.flags,
                source: io::Error::from_raw_os_error(libc::ESRCH),
            });
        }
        Ok(None)
    }
}

/// True when runc would treat the profile as "seccomp disabled": no `defaultAction`
/// and no `syscalls` (runc `specconv.SetupSeccomp`). [`compile`] rejects such a profile
/// (missing action); the runtime should skip seccomp instead.
pub fn is_noop(profile: &LinuxSeccomp) -> bool {
    profile.default_action.is_empty() && profile.syscalls.is_empty()
}

/// Validate `profile` and compile it to a loadable filter (libseccomp, loaded on
/// first use). Runs in the runtime's parent, before clone.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let p = profile::validate(profile)?;
    kernel::check(profile, &p)?;
    let c = compile::compile(&p)?;
    Ok(Filter {
        program: c.program,
        flags: p.flags,
        uses_notify: p.uses_notify,
        skipped: c.skipped,
    })
}

/// [`compile`], through an on-disk cache under `cache_dir` (e.g. [`DEFAULT_CACHE_DIR`]),
/// keyed by a SHA-256 of the profile, this crate's version and the native arch. The
/// profile is validated (and its actions and flags checked against the kernel) every
/// time; a hit costs one file read and a checksum, no libseccomp. A miss compiles and
/// stores atomically (temp file + rename); failing to store is not an error (the
/// filter is returned, the reason in [`CacheStatus`]).
pub fn compile_cached(
    profile: &LinuxSeccomp,
    cache_dir: &Path,
) -> Result<(Filter, CacheStatus), SeccompError> {
    let p = profile::validate(profile)?;
    kernel::check(profile, &p)?;
    let key = cache::cache_key(profile);
    if let Some(f) = cache::load(cache_dir, &key) {
        // Flags and NOTIFY follow from the profile just validated; an entry that
        // disagrees is not ours to trust (it is recompiled and replaced).
        if f.flags == p.flags && f.uses_notify == p.uses_notify {
            return Ok((f, CacheStatus::Hit));
        }
    }
    let c = compile::compile(&p)?;
    let f = Filter {
        program: c.program,
        flags: p.flags,
        uses_notify: p.uses_notify,
        skipped: c.skipped,
    };
    let status = match cache::store(cache_dir, &key, &f) {
        Ok(()) => CacheStatus::Stored,
        Err(e) => CacheStatus::NotStored(e),
    };
    Ok((f, status))
}
