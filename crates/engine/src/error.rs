//! The engine's errors. Their text is what the CLI prints after `Error: `, so it
//! follows docker's wording where scripts match on it ("No such container: x").

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// docker: `Error: No such container: x`.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// docker: `multiple IDs found with provided prefix: x`.
    #[error("multiple IDs found with provided prefix: {0}")]
    Ambiguous(String),
    /// docker's wording, which compose matches on.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    /// docker's name rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is paused, unpause the container before stopping or killing")]
    Paused(String),
    #[error("Container {0} is not paused")]
    NotPaused(String),
    #[error("You cannot remove a {state} container {id}. Stop the container before attempting removal or force remove")]
    CannotRemove { id: String, state: String },
    #[error("cannot {op} container {id}: {why}")]
    WrongState { op: String, id: String, why: String },
    /// A bad value the user gave, named.
    #[error("{0}")]
    Invalid(String),
    /// Something the engine cannot do (yet): never a silently weaker container.
    #[error("{0}")]
    Unsupported(String),
    /// The container's command cannot be found (exit code 127, as docker).
    #[error("{0}")]
    CommandNotFound(String),
    /// The container's command cannot be run (exit code 126, as docker).
    #[error("{0}")]
    CommandCannotRun(String),
    /// The OCI runtime failed; its own message.
    #[error("OCI runtime {op} failed: {msg}")]
    Runtime { op: String, msg: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("container record {id}: {why}")]
    Corrupt { id: String, why: String },
    #[error(transparent)]
    Image(#[from] oxcart_image::Error),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Copy(#[from] crate::copy::CopyError),
    #[error(transparent)]
    Commit(#[from] crate::commit::CommitError),
    #[error(transparent)]
    Changes(#[from] crate::changes::ChangesError),
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
}

impl EngineError {
    /// docker's exit codes for `run`/`start`/`exec` failures: 127 the command was not
    /// found, 126 it cannot be invoked, 125 the engine failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::CommandNotFound(_) => 127,
            EngineError::CommandCannotRun(_) => 126,
            _ => 125,
        }
    }
}

pub fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.into();
    move |source| EngineError::Io { path, source }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
