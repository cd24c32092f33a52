//! The verbs that read or write a container's filesystem — `cp`, `export`, `diff`,
//! `commit` — on its merged root: the live mount while it runs, else a temporary
//! mount made and removed under the container's lock (so a `start` cannot race it).

use crate::changes::Change;
use crate::commit::CommitOptions;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::lock::CtrLock;
use crate::record::Record;
use crate::snapshot::Snapshot;
use crate::state::Status;
use oxcart_image::db::ImageRecord;
use std::path::{Path, PathBuf};

/// What `commit` is asked besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub reference: Option<String>,
    pub author: String,
    pub message: String,
    pub changes: Vec<String>,
    /// docker's default: freeze a running container while its layer is read.
    pub pause: bool,
}

/// Paths `diff` leaves out (podman's `initInodes`): mount points made for the engine.
const INIT_INODES: &[&str] = &[
    "/dev",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/mtab",
    "/etc/resolv.conf",
    "/proc",
    "/run",
    "/run/.containerenv",
    "/run/notify",
    "/run/secrets",
    "/sys",
];

impl Engine {
    fn lowers(&self, rec: &Record) -> Result<Vec<PathBuf>> {
        let images = self.open_images()?;
        let img = images.find(&rec.image_id)?;
        Ok(images.layer_dirs(&img))
    }

    /// Run `f` on the container's merged root.
    pub fn with_rootfs<T>(
        &self,
        key: &str,
        f: impl FnOnce(&Record, &Path) -> Result<T>,
    ) -> Result<T> {
        let rec = self.find(key)?;
        let dir = self.ctr_dir(&rec.id);
        let snap = Snapshot::open(&dir)?;
        if self.observe(&rec)?.status.is_running() && snap.is_mounted()? {
            return f(&rec, &snap.rootfs());
        }
        let _lock = CtrLock::acquire(&dir)?;
        // Under the lock: a concurrent start may have mounted it meanwhile.
        if snap.is_mounted()? {
            return f(&rec, &snap.rootfs());
        }
        let m = snap.mount_temporarily(&self.lowers(&rec)?)?;
        let r = f(&rec, &m.root());
        let u = m.finish();
        let v = r?;
        u?;
        Ok(v)
    }

    /// Run `f` on the root `cp` works in: a running container's own view
    /// (`/proc/PID/root`, its mount namespace: `-v` binds, `--tmpfs`, `--read-only`
    /// as the container sees them, as podman's cp does), else the merged rootfs with
    /// the container's volumes and binds mounted at their destinations (in a private
    /// mount namespace of a thread, volumes/offline.rs), as docker's cp mounts them.
    pub fn with_container_root<T: Send>(
        &self,
        key: &str,
        f: impl FnOnce(&Record, &Path) -> Result<T> + Send,
    ) -> Result<T> {
        use std::os::unix::fs::MetadataExt;
        let rec = self.find(key)?;
        let o = self.observe(&rec)?;
        if o.status.is_running() && o.pid > 0 {
            let root = PathBuf::from(format!("/proc/{}/root", o.pid));
            let rootfs = Snapshot::open(&self.ctr_dir(&rec.id))?.rootfs();
            // Only when the process's root is our rootfs: a sandboxing runtime's
            // (runsc's) pid is its sandbox, whose root is elsewhere.
            let same = match (std::fs::metadata(&root), std::fs::metadata(&rootfs)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if same {
                return f(&rec, &root);
            }
        }
        self.with_rootfs(key, |rec, root| {
            self.volumes_for_cp(rec, root)?;
            let mounts = crate::volumes::offline_mounts(rec);
            crate::volumes::with_offline_mounts(root, &mounts, || f(rec, root))
        })
    }

    /// `diff`: the changes in the container's writable layer.
    pub fn diff(&self, key: &str) -> Result<Vec<Change>> {
        let rec = self.find(key)?;
        let snap = Snapshot::open(&self.ctr_dir(&rec.id))?;
        let mut all = crate::changes::changes(&snap.upper(), &self.lowers(&rec)?)?;
        // The mount points the runtime creates for the engine's own mounts are not the
        // container's changes: docker keeps them in an "init" layer below the writable
        // one, podman leaves out this same list (libpod diff.go `initInodes`).
        all.retain(|c| !INIT_INODES.iter().any(|p| c.path == Path::new(p)));
        Ok(all)
    }

    /// `commit`: a new image of the container's image plus its writable layer.
    pub fn commit(&mut self, key: &str, req: &CommitRequest) -> Result<ImageRecord> {
        let rec = self.find(key)?;
        let rt = self.runtime_of(&rec)?;
        let paused = req.pause && self.observe(&rec)?.status == Status::Running;
        if paused {
            rt.pause(&rec.id)?;
        }
        let r = self.commit_paused(&rec, req);
        if paused {
            rt.resume(&rec.id)?;
        }
        if let Ok(img) = &r {
            // moby's commit: the new reference's `tag` event, then the container's
            // `commit` event with the message, the new image's id and reference.
            let id = img.id.to_string();
            let reference = req.reference.clone().unwrap_or_default();
            if !reference.is_empty() {
                crate::events::ImageEvents::new(&self.layout, &self.config).tag(&id, &reference);
            }
            self.emit_ctr(
                &rec,
                "commit",
                &[
                    ("comment", &req.message),
                    ("imageID", &id),
                    ("imageRef", &reference),
                ],
            );
        }
        r
    }

    fn commit_paused(&self, rec: &Record, req: &CommitRequest) -> Result<ImageRecord> {
        let mut images = self.open_images()?;
        let parent = images.find(&rec.image_id)?;
        let snap = Snapshot::open(&self.ctr_dir(&rec.id))?;
        let mut created_by = vec![rec.path.clone()];
        created_by.extend(rec.args.iter().cloned());
        let opts = CommitOptions {
            config: rec.config.clone(),
            changes: req.changes.clone(),
            author: req.author.clone(),
            message: req.message.clone(),
            created_by: created_by.join(" "),
            reference: req.reference.clone(),
        };
        crate::commit::commit(&mut images, &parent, &snap.upper(), &opts).map_err(EngineError::from)
    }
}
