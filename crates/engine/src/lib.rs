//! oxcart_engine: everything an engine command does — container records, the OCI
//! spec from an image config and docker's run options, overlay snapshots, the
//! per-container monitor's protocol — with typed errors and no printing.
//! docs/engine.md has the layout and the life of a container.

pub mod attach;
pub mod changes;
pub mod commit;
pub mod copy;
pub mod monitor;
pub mod snapshot;
pub mod spec;
pub mod types;
