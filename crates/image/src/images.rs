//! The image store: blobs + layers + metadata under one root, and the operations the
//! CLI exposes (list, inspect, tag, remove, garbage collection).

use crate::db::{Db, DbError, ImageRecord};
use crate::digest::Digest;
use crate::reference::{Reference, ReferenceError};
use crate::store::{Store, StoreError, StoreLock};
use std::path::Path;

/// One entry of an image's history ([`ImageStore::history`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// RFC 3339, as the config has it.
    pub created: Option<String>,
    pub created_by: String,
    pub comment: String,
    /// The unpacked size of the layer the entry made; 0 for an `empty_layer` one.
    pub size: u64,
}

/// Any image-store error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Store I/O or verification.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Metadata.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Registry.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// Layer extraction.
    #[error(transparent)]
    Unpack(#[from] crate::unpack::UnpackError),
    /// Reference syntax.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Manifest content.
    #[error("{what}: {source}")]
    Manifest {
        /// Which manifest.
        what: String,
        /// Cause.
        source: crate::oci::ManifestError,
    },
    /// Credentials.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// No such image.
    #[error("image not known: {0}")]
    NotFound(String),
    /// Anything else about an image's content, with the image named.
    #[error("{image}: {reason}")]
    Invalid {
        /// The image.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// Removal refused.
    #[error("{0}")]
    Conflict(String),
    /// Archive (save/load/import) errors.
    #[error("{path}: {reason}")]
    Archive {
        /// The archive.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// What `remove` did.
#[derive(Debug, Default)]
pub struct Removed {
    /// Names removed.
    pub untagged: Vec<String>,
    /// Images deleted.
    pub deleted: Vec<Digest>,
}

/// What garbage collection freed.
#[derive(Debug, Default)]
pub struct Freed {
    /// Blobs deleted.
    pub blobs: usize,
    /// Layers deleted.
    pub layers: usize,
    /// Their unpacked sizes as recorded, summed: what a prune reports reclaimed
    /// (moby adds the DiffSize of the layers it deletes, not the images' sizes, so a
    /// base shared with a kept image is not counted).
    pub layer_bytes: u64,
}

/// An open image store. Holds the store lock (shared) while alive.
pub struct ImageStore {
    pub(crate) store: Store,
    pub(crate) db: Db,
    pub(crate) lock: StoreLock,
}

/// Candidate names for a user-given image string: as a normalised reference (with its
/// tag, and digest), so `busybox` finds `docker.io/library/busybox:latest`.
pub(crate) fn candidate_names(s: &str) -> Vec<String> {
    let mut v = vec![s.to_string()];
    if let Ok(r) = Reference::parse(s) {
        if let Some(d) = &r.digest {
            v.push(format!("{}@{}", r.name(), d));
        }
        if let Some(t) = r.tagged() {
            v.push(t);
        }
    }
    v
}

impl ImageStore {
    /// Open the store at `root`, creating it if needed; cleans debris of dead commands.
    pub fn open(root: &Path) -> Result<ImageStore, Error> {
        let store = Store::open(root)?;
        let lock = store.lock()?;
        let db = Db::open(&root.join("images.db"))?;
        Ok(ImageStore { store, db, lock })
    }

    /// The blob/layer store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// All images.
    pub fn list(&self) -> Result<Vec<ImageRecord>, Error> {
        Ok(self.db.list()?)
    }

    /// Find an image by name, digest name or ID prefix.
    pub fn find(&self, name: &str) -> Result<ImageRecord, Error> {
        self.db
            .find(&candidate_names(name), name)?
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// The raw config JSON of an image.
    pub fn config(&self, rec: &ImageRecord) -> Result<Vec<u8>, Error> {
        Ok(self.store.read_blob(&rec.id)?)
    }

    /// The config's `history`, newest first, as docker's `history` lists it: an
    /// entry that made a layer (not `empty_layer`) has that layer's unpacked size,
    /// layers counted from the bottom as the entries are (moby's ImageHistory).
    pub fn history(&self, rec: &ImageRecord) -> Result<Vec<HistoryEntry>, Error> {
        let invalid = |reason: String| Error::Invalid {
            image: rec.id.to_string(),
            reason,
        };
        let config: serde_json::Value = serde_json::from_slice(&self.config(rec)?)
            .map_err(|e| invalid(format!("config: {e}")))?;
        let mut layers = rec.layers.iter();
        let mut out = Vec::new();
        for h in config["history"].as_array().into_iter().flatten() {
            let empty_layer = h["empty_layer"].as_bool() == Some(true);
            let size = if empty_layer {
                0
            } else {
                // More entries with layers than layers: docker refuses the image.
                let l = layers
                    .next()
                    .ok_or_else(|| invalid("too many non-empty layers in its history".into()))?;
                self.layer_size(&l.chain_id)?.unwrap_or(0)
            };
            let text = |k: &str| h[k].as_str().unwrap_or_default().to_string();
            out.push(HistoryEntry {
                created: h["created"].as_str().map(str::to_string),
                created_by: text("created_by"),
                comment: text("comment"),
                size,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// The image's labels (its config's `config.Labels`; none when it has none).
    pub fn labels(
        &self,
        rec: &ImageRecord,
    ) -> Result<std::collections::BTreeMap<String, String>, Error> {
        let config: serde_json::Value =
            serde_json::from_slice(&self.config(rec)?).map_err(|e| Error::Invalid {
                image: rec.id.to_string(),
                reason: format!("config: {e}"),
            })?;
        Ok(config["config"]["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The raw manifest JSON of an image.
    pub fn manifest(&self, rec: &ImageRecord) -> Result<Vec<u8>, Error> {
        Ok(self.store.read_blob(&rec.manifest_digest)?)
    }

    /// A layer's unpacked size as recorded when it was stored (`None`: not recorded).
    pub fn layer_size(&self, chain: &Digest) -> Result<Option<u64>, Error> {
        Ok(self.db.layer_size(chain)?)
    }

    /// Directories of the image's layers, base first (overlayfs wants them top first).
    pub fn layer_dirs(&self, rec: &ImageRecord) -> Vec<std::path::PathBuf> {
        rec.layers
            .iter()
            .map(|l| self.store.layer_path(&l.chain_id))
            .collect()
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<String, Error> {
        let rec = self.find(source)?;
        let r = Reference::parse(target)?;
        let name = r.tagged().ok_or_else(|| Error::Invalid {
            image: target.to_string(),
            reason: "a tag name cannot be a digest".into(),
        })?;
        if r.digest.is_some() {
            return Err(Error::Invalid {
                image: target.to_string(),
                reason: "a tag name cannot contain a digest".into(),
            });
        }
        self.db.tag(&rec.id, &name)?;
        Ok(name)
    }

    /// `rmi NAME`: untag; delete the image when no tag is left (or when named by ID).
    /// Then free blobs and layers no image uses.
    pub fn remove(&mut self, name: &str, force: bool) -> Result<(Removed, Freed), Error> {
        let rec = self.find(name)?;
        let mut out = Removed::default();
        let by_name = candidate_names(name)
            .into_iter()
            .find(|n| rec.tags.contains(n) || rec.digests.contains(n));
        let only_untag = by_name
            .as_ref()
            .is_some_and(|n| rec.tags.contains(n) && rec.tags.len() > 1);
        if only_untag {
            if let Some(n) = by_name {
                self.db.untag(&n, &rec.id)?;
                out.untagged.push(n);
            }
        } else {
            let users = self.db.users(&rec.id)?;
            if !users.is_empty() {
                return Err(Error::Conflict(format!(
                    "image {} is in use by {}; remove those first",
                    rec.id.short(),
                    users.join(", ")
                )));
            }
            if by_name.is_none() && rec.tags.len() > 1 && !force {
                return Err(Error::Conflict(format!(
                    "image {} is referenced by several tags ({}); remove them by name or use --force",
                    rec.id.short(),
                    rec.tags.join(", ")
                )));
            }
            out.untagged.extend(rec.tags.iter().cloned());
            out.untagged.extend(rec.digests.iter().cloned());
            self.db.delete_image(&rec.id)?;
            out.deleted.push(rec.id.clone());
        }
        let freed = if out.deleted.is_empty() {
            Freed::default()
        } else {
            self.gc()?
        };
        Ok((out, freed))
    }

    /// Remove every image no one uses, then collect garbage (`rmi --all`). Returns how
    /// many images were removed and how many were kept because they are in use.
    pub fn remove_all(&mut self) -> Result<(usize, usize, Freed), Error> {
        let list = self.list()?;
        let mut removed = 0;
        let mut kept = 0;
        for r in &list {
            if self.db.users(&r.id)?.is_empty() {
                self.db.delete_image(&r.id)?;
                removed += 1;
            } else {
                kept += 1;
            }
        }
        Ok((removed, kept, self.gc()?))
    }

    /// Mark an image as used by `user` (a container ID, say): `rmi` refuses to remove it
    /// and GC keeps its layers until [`ImageStore::release`].
    pub fn retain(&mut self, image: &Digest, user: &str) -> Result<(), Error> {
        Ok(self.db.add_user(image, user)?)
    }

    /// Who holds an image (the marks [`ImageStore::retain`] made).
    pub fn users(&self, image: &Digest) -> Result<Vec<String>, Error> {
        Ok(self.db.users(image)?)
    }

    /// Drop a mark made by [`ImageStore::retain`]. Returns whether it existed.
    pub fn release(&mut self, image: &Digest, user: &str) -> Result<bool, Error> {
        Ok(self.db.remove_user(image, user)?)
    }

    /// Delete every blob and layer no image references. Waits for other commands to
    /// finish first (exclusive store lock), so nothing being pulled is collected.
    pub fn gc(&mut self) -> Result<Freed, Error> {
        let lockp = self.store.root().join("store.lock");
        self.lock.upgrade().map_err(crate::store::io_err(&lockp))?;
        let r = self.gc_locked();
        self.lock
            .downgrade()
            .map_err(crate::store::io_err(&lockp))?;
        r
    }

    fn gc_locked(&mut self) -> Result<Freed, Error> {
        let (blobs, layers) = self.db.referenced()?;
        let mut freed = Freed::default();
        for chain in self.db.all_layers()? {
            if !layers.contains(&chain) {
                if let Ok(d) = Digest::parse(&chain) {
                    freed.layer_bytes += self.db.layer_size(&d)?.unwrap_or(0);
                    let p = self.store.layer_path(&d);
                    crate::unpack::remove_tree(&p).map_err(crate::store::io_err(&p))?;
                }
                self.db.forget_layer(&chain)?;
                freed.layers += 1;
            }
        }
        // Layer directories without a row: a crash between rename and record.
        let ldir = self.store.root().join("layers");
        for e in std::fs::read_dir(&ldir)
            .map_err(crate::store::io_err(&ldir))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !layers.contains(&format!("sha256:{name}")) {
                crate::unpack::remove_tree(&e.path()).map_err(crate::store::io_err(e.path()))?;
            }
        }
        // Per-layer lock files: safe to delete only now, with no other command running
        // (unlinking a lock file someone waits on would split the lock in two).
        let locks = self.store.root().join("locks");
        for e in std::fs::read_dir(&locks)
            .map_err(crate::store::io_err(&locks))?
            .flatten()
        {
            if !layers.contains(&format!("sha256:{}", e.file_name().to_string_lossy())) {
                std::fs::remove_file(e.path()).map_err(crate::store::io_err(e.path()))?;
            }
        }
        for alg in ["sha256", "sha512"] {
            let dir = self.store.root().join("blobs").join(alg);
            for e in std::fs::read_dir(&dir)
                .map_err(crate::store::io_err(&dir))?
                .flatten()
            {
                let d = format!("{alg}:{}", e.file_name().to_string_lossy());
                if !blobs.contains(&d) {
                    std::fs::remove_file(e.path()).map_err(crate::store::io_err(e.path()))?;
                    freed.blobs += 1;
                }
            }
        }
        Ok(freed)
    }
}
