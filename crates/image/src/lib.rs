//! oxcart_image: image references, a registry client (distribution-spec), a
//! content-addressed blob store, safe overlayfs-ready layer unpacking keyed by ChainID,
//! and image metadata in SQLite.
//!
//! Library code never prints; progress is reported through [`pull::Progress`].

pub mod archive;
pub mod auth;
pub mod commit;
mod confine;
pub mod db;
pub mod digest;
pub mod images;
pub mod oci;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
mod transport;
pub mod unpack;

pub use digest::Digest;
pub use images::{Error, ImageStore};
pub use reference::Reference;
