//! oxcart_api: docker's Engine API (v1.41) over the same engine and stores the `oxcart`
//! CLI uses, served by `oxcart system service`. It holds no state of its own that a
//! crash could lose: every request opens the engine, and what it keeps in memory
//! (exec instances, attach requests waiting for a start) lives only as long as the
//! connections that asked for it, as in docker's daemon. docs/api.md has the details.
//!
//! hyper on tokio (a current-thread runtime; engine calls run on its blocking pool),
//! kept in this crate so the monitor links none of it.

#![recursion_limit = "256"]

pub mod attach;
pub mod auth;
pub mod containers;
pub mod exec;
pub mod http;
pub mod images;
pub mod listen;
pub mod objects;
pub mod router;
pub mod server;
pub mod system;

pub use listen::{Listen, ListenError};
pub use server::{serve, ServiceOptions};

/// The API version this service speaks, and the oldest it accepts (docker's minimum).
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.24";
