//! oxcart_engine: everything an engine command does — container records, the OCI
//! spec from an image config and docker's run options, overlay snapshots, the
//! per-container monitor's protocol — with typed errors and no printing.
//! docs/engine.md has the layout and the life of a container.

pub mod attach;
pub mod changes;
pub mod commit;
pub mod config;
pub mod copy;
pub mod create;
mod db;
pub mod engine;
pub mod error;
pub mod etcfiles;
pub mod events;
pub mod exec;
pub mod filters;
pub mod fs;
pub mod health;
pub mod inspect;
pub mod listing;
pub mod lock;
pub mod monitor;
pub mod names;
mod netverbs;
pub mod network;
pub mod paths;
pub mod record;
pub mod remove;
pub mod restart;
pub mod runtime;
pub mod snapshot;
pub mod spec;
pub mod start;
pub mod state;
pub mod stats;
pub mod stop;
pub mod time;
pub mod trash;
pub mod types;
pub mod update;
pub mod volumes;
pub mod wait;

pub use engine::Engine;
pub use error::{EngineError, Result};
pub use paths::Layout;
