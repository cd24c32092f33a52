//! Where the engine keeps things (docs/engine.md, "Where things live").

use std::path::{Path, PathBuf};

/// The engine's two roots: persistent state and run-time state.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `--root`: images, `containers.db`, `containers/<id>/` (survives a reboot).
    pub root: PathBuf,
    /// `--runroot`: the runtimes' state (`/run` is emptied by a reboot).
    pub runroot: PathBuf,
}

impl Layout {
    /// The default roots, as podman's `/var/lib/containers` and `/run/containers`.
    pub const DEFAULT_ROOT: &'static str = "/var/lib/oxcart";
    pub const DEFAULT_RUNROOT: &'static str = "/run/oxcart/engine";

    pub fn new(root: &Path, runroot: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
            runroot: runroot.to_path_buf(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("containers.db")
    }

    /// The events journal (docs/engine.md "Events").
    pub fn events_dir(&self) -> PathBuf {
        self.root.join("events")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn ctr_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// The `--root` handed to a runtime: one directory per runtime name, so two
    /// runtimes never read each other's state files.
    pub fn runtime_root(&self, runtime: &str) -> PathBuf {
        self.runroot.join("runtime").join(runtime)
    }
}
