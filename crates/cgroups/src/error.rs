//! Errors of this crate. Every message names what it was about: the
//! `linux.resources.*` field, the cgroup file written, or the path resolved.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong managing cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A resource value this host cannot honour, or that is invalid.
    /// `field` is the runtime-spec path, e.g. `linux.resources.cpu.cpus`.
    #[error("{field}: {msg}")]
    Invalid { field: String, msg: String },

    /// Writing a resource value to a cgroup file failed.
    #[error("{field}: writing {value:?} to {}: {source}", path.display())]
    FieldWrite {
        field: String,
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    /// Writing a cgroup control file (not tied to one resource field) failed.
    #[error("writing {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    /// Reading a cgroup or procfs file failed.
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A file had content we could not parse.
    #[error("parsing {}: {msg}", path.display())]
    Parse { path: PathBuf, msg: String },

    /// Creating a cgroup directory failed.
    #[error("creating cgroup {}: {source}", path.display())]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Removing a cgroup directory failed.
    #[error("removing cgroup {}: {source}", path.display())]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `linux.cgroupsPath` (or the systemd `slice:prefix:name` form) is invalid.
    #[error("linux.cgroupsPath {path:?}: {msg}")]
    Path { path: String, msg: String },

    /// `--systemd-cgroup` was asked for and cannot be honoured.
    #[error("systemd cgroup driver: {0}")]
    Systemd(String),

    /// The host's cgroup layout could not be determined.
    #[error("detecting cgroup hierarchies: {0}")]
    Detect(String),

    /// A system call outside file I/O failed (bpf, eventfd, inotify, kill...).
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: io::Error,
    },

    /// Waiting for the kernel to reach a state (frozen, empty) took too long.
    #[error("{0}")]
    Timeout(String),

    /// A state blob from `Manager::to_state` could not be used.
    #[error("cgroup manager state: {0}")]
    State(String),
}

pub type Result<T, E = CgroupError> = std::result::Result<T, E>;

impl CgroupError {
    pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        CgroupError::Invalid {
            field: field.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn sys(op: impl Into<String>, source: io::Error) -> Self {
        CgroupError::Sys {
            op: op.into(),
            source,
        }
    }

    /// The OS error behind this error, if any (`ENOENT`, `EBUSY`...).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::FieldWrite { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Read { source, .. }
            | CgroupError::Mkdir { source, .. }
            | CgroupError::Rmdir { source, .. }
            | CgroupError::Sys { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
