//! docker's json-file log driver format (docs/engine.md): one JSON object per line,
//! `{"log":"…","stream":"stdout|stderr","time":"<RFC3339Nano UTC>"}`, rotated by
//! renaming `ctr.log` → `ctr.log.1` → … like `--log-opt max-size/max-file`.
//!
//! The [`Writer`] is the monitor's and needs no JSON library; the reader (feature
//! `reader`) is for `logs` and parses with serde_json.

mod escape;
pub mod events;
mod time;
mod writer;

#[cfg(feature = "reader")]
mod reader;

pub use escape::escape_json_string;
pub use time::Timestamp;
pub use writer::{Writer, WriterOptions, MAX_LINE};

#[cfg(feature = "reader")]
pub use reader::{follow, log_files, read, Entry, ReadOptions};

use std::path::PathBuf;

/// Which of the container's output streams an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name docker writes in the `stream` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Errors of the log reader and writer, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a json-file log entry: {msg}")]
    Parse {
        path: PathBuf,
        line: u64,
        msg: String,
    },
    /// The caller's sink failed (e.g. its stdout was closed).
    #[error("writing log output: {0}")]
    Sink(#[source] std::io::Error),
}

#[cfg(feature = "reader")]
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
