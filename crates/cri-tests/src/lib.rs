//! Test-only crate: the CRI end-to-end suite lives in `tests/cri.rs` (see
//! docs/kubernetes.md). Nothing is exported.
