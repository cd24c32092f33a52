//! Errors of the runtime core. Messages keep runc's wording where callers match on
//! it (compat.md §6.4/§6.5): "container not running", "does not exist",
//! "no such file or directory", "permission denied", "executable file not found in $PATH".

use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0:?} does not exist")]
    NotExist(String),
    #[error("container with id {0:?} already exists")]
    Exists(String),
    #[error("{0}")]
    InvalidId(String),
    #[error(transparent)]
    Spec(#[from] oxcart_spec::SpecError),
    #[error("config.json: {0}")]
    Validation(#[from] oxcart_spec::validate::ValidationError),
    /// From oxcart_cgroups; kept as text so this crate's error type does not
    /// change shape when the cgroups crate's does.
    #[error("{0}")]
    Cgroup(String),
    #[error("{0}")]
    Seccomp(String),
    /// A system call failed; `what` says which and on what.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The container is not in a state that allows the operation.
    #[error("{0}")]
    State(String),
    /// Setup inside the container's init failed; the message comes from init.
    #[error("{0}")]
    Init(String),
    /// init could not switch to the read-only view of the runtime binary
    /// (crate::selfexe::become_in_init); `create` then runs again from a
    /// protected binary where it can.
    #[error("unable to start container process: {0}")]
    InitSeal(String),
    #[error("{field}: {msg}")]
    Config { field: String, msg: String },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn sys(what: impl Into<String>, source: io::Error) -> Error {
        Error::Sys {
            what: what.into(),
            source,
        }
    }
    pub fn last(what: impl Into<String>) -> Error {
        Error::sys(what, io::Error::last_os_error())
    }
    pub fn config(field: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Config {
            field: field.into(),
            msg: msg.into(),
        }
    }
}

/// Attach context to io results.
pub trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Ctx<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(what(), e))
    }
}

/// Bare io errors (a path with a NUL byte, mostly) become plain messages; call
/// sites that know what failed use [`Ctx::ctx`] instead.
impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Other(e.to_string())
    }
}
