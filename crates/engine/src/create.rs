//! `create`: a record, a directory with an empty writable layer, and a hold on the
//! image — all or nothing. The database row is the commit point: a directory without a
//! row is debris of a killed `create`, which the next `create` or `container prune`
//! removes (once nobody holds its lock).

use crate::engine::Engine;
use crate::error::{io_err, EngineError, Result};
use crate::lock::CtrLock;
use crate::names;
use crate::record::{History, Record};
use crate::types::{Config, HostConfig};
use oxcart_image::ImageStore;

/// What `create` (and `run`) is asked.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    /// The user's config; `image` names the image as given.
    pub config: Config,
    pub host_config: HostConfig,
    /// podman's `--health-on-failure`.
    pub health_on_failure: Option<String>,
}

/// How an image holds a container in the image store (`rmi` names it).
pub fn image_user(id: &str) -> String {
    format!("container:{id}")
}

/// The image's own `config` section in docker's shape (the OCI image config uses
/// docker's field names).
pub fn image_config(images: &ImageStore, rec: &oxcart_image::db::ImageRecord) -> Result<Config> {
    let raw = images.config(rec)?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| {
        EngineError::Invalid(format!("image {}: config does not parse: {e}", rec.id))
    })?;
    match v.get("config") {
        Some(c) if !c.is_null() => serde_json::from_value(c.clone()).map_err(|e| {
            EngineError::Invalid(format!("image {}: config does not parse: {e}", rec.id))
        }),
        _ => Ok(Config::default()),
    }
}

impl Engine {
    pub fn open_images(&self) -> Result<ImageStore> {
        Ok(ImageStore::open(&self.layout.root)?)
    }

    /// Create a container from an image already in the store.
    pub fn create(&mut self, req: CreateRequest) -> Result<Record> {
        self.collect_debris();
        let mut images = self.open_images()?;
        let img = images.find(&req.config.image).map_err(|e| match e {
            oxcart_image::Error::NotFound(_) => {
                EngineError::Invalid(format!("No such image: {}", req.config.image))
            }
            e => e.into(),
        })?;
        let merged = crate::spec::merge_image_config(&image_config(&images, &img)?, req.config);
        crate::health::validate(merged.healthcheck.as_ref())?;
        let on_failure = req.health_on_failure.clone().unwrap_or_default();
        crate::health::validate_on_failure(&on_failure)?;
        let (path, args) = command_of(&merged)?;
        let runtime = self
            .config
            .runtime(&req.host_config.runtime, &self.layout)?;
        validate_host_config(&req.host_config)?;
        crate::network::validate(&self.layout, &req.host_config)?;
        crate::spec::validate_host_config(&req.host_config)?;
        let id = names::new_id()?;
        let name = match &req.name {
            Some(n) => names::validate_name(n)?,
            None => names::generated_name(&id),
        };
        let mut host_config = req.host_config;
        host_config.runtime = runtime.name.clone();
        if host_config.log_config.kind.is_empty() {
            host_config.log_config.kind = self
                .config
                .engine
                .log_driver
                .clone()
                .unwrap_or_else(|| "json-file".into());
            if host_config.log_config.config.is_empty() {
                host_config.log_config.config = self.config.engine.log_opts.clone();
            }
        }
        let volumes = self.plan_volumes(&merged, &host_config)?;
        let rec = Record {
            id: id.clone(),
            name,
            created: crate::time::now(),
            image_id: img.id.to_string(),
            config: merged,
            host_config,
            path,
            args,
            runtime: runtime.name,
            history: History::default(),
            volumes,
            health_on_failure: on_failure,
        };
        let mut rec = rec;
        let mut tries = 0;
        loop {
            match self.materialise(&rec, &mut images) {
                // A generated name taken by another container: docker picks another.
                Err(EngineError::NameInUse { .. }) if req.name.is_none() && tries < 20 => {
                    tries += 1;
                    let seed = names::new_id()?;
                    rec.name = if tries < 10 {
                        names::generated_name(&seed)
                    } else {
                        format!("{}{}", names::generated_name(&seed), tries)
                    };
                }
                Err(e) => {
                    self.drop_anonymous(&rec.volumes);
                    return Err(e);
                }
                Ok(()) => break,
            }
        }
        self.layers_hint = Some((rec.image_id.clone(), images.layer_dirs(&img)));
        self.images_cache = Some(images);
        self.emit_ctr(&rec, "create", &[]);
        Ok(rec)
    }

    /// Directory, snapshot, image hold, then the row; undone in reverse on failure.
    fn materialise(&mut self, rec: &Record, images: &mut ImageStore) -> Result<()> {
        let dir = self.ctr_dir(&rec.id);
        // The directory appears under its id already locked (made under a temporary
        // name, locked, renamed): the debris collector of a concurrent `create` only
        // takes id directories whose lock it can take, so it never takes this one.
        // The temporary name carries the creator's pid and start time: the collector
        // leaves it alone while that process lives (it has not locked it yet just
        // after the mkdir), and takes it once the process is gone.
        let me = std::process::id() as i32;
        let start = crate::state::proc_start_time(me).unwrap_or(0);
        let tmp = self
            .layout
            .containers_dir()
            .join(format!(".new-{}-{me}-{start}", rec.id));
        std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        let lock = match CtrLock::acquire(&tmp) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        if let Err(e) = std::fs::rename(&tmp, &dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io_err(&dir)(e));
        }
        let undo = |images: &mut ImageStore| {
            let _ = images.release(&img_digest(&rec.image_id), &image_user(&rec.id));
            let _ = crate::snapshot::Snapshot::open(&dir).and_then(|s| s.remove());
            let _ = std::fs::remove_dir_all(&dir);
        };
        let r = (|| -> Result<()> {
            crate::snapshot::Snapshot::create(&dir)?;
            images.retain(&img_digest(&rec.image_id), &image_user(&rec.id))?;
            self.db.insert(rec)
        })();
        if let Err(e) = r {
            undo(images);
            drop(lock);
            return Err(e);
        }
        drop(lock);
        Ok(())
    }

    /// Remove directories no row names (a `create` killed before its commit point).
    pub(crate) fn collect_debris(&mut self) {
        crate::trash::collect_stale(&self.layout);
        let Ok(rd) = std::fs::read_dir(self.layout.containers_dir()) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let (id, creator) = match name.strip_prefix(".new-") {
                Some(rest) => (rest.get(..64).unwrap_or(rest).to_string(), creator_of(rest)),
                None => (name.clone(), None),
            };
            if id.len() != 64 || self.db.has(&id).unwrap_or(true) {
                continue;
            }
            let dir = e.path();
            if let Some((pid, start)) = creator {
                if crate::state::proc_start_time(pid) == Some(start) {
                    continue;
                }
            }
            // A live `create` holds the lock until its row exists.
            if let Ok(Some(_l)) = CtrLock::try_acquire(&dir) {
                if self.db.has(&id).unwrap_or(true) {
                    continue;
                }
                let _ = crate::snapshot::Snapshot::open(&dir).and_then(|s| s.remove());
                let _ = std::fs::remove_dir_all(&dir);
                if let Ok(mut images) = self.open_images() {
                    if let Ok(list) = images.list() {
                        for img in list {
                            let _ = images.release(&img.id, &image_user(&id));
                        }
                    }
                }
            }
        }
    }
}

impl Engine {
    /// Drop image holds of containers that no longer exist (a `create` killed after
    /// its hold and before its row, or an `rm` killed after its row went): `rmi` must
    /// not refuse an image nobody uses.
    pub fn release_stale_holds(&self, images: &mut ImageStore) -> Result<()> {
        for img in images.list()? {
            for user in images.users(&img.id)? {
                if let Some(id) = user.strip_prefix("container:") {
                    if !self.db.has(id)? && !self.ctr_dir(id).exists() {
                        images.release(&img.id, &user)?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Engine {
    /// `image prune` and the images part of `system prune`, for the CLI and the API:
    /// once stale holds are dropped, every image nothing holds (only the untagged
    /// ones unless `all`) that `labels` selects by its labels is removed. What each
    /// removal untagged and deleted, and the bytes of the layers freed (moby counts
    /// the layers it deletes, not the images' sizes, so a base a kept image shares is
    /// not counted). An image another command removed or took meanwhile is skipped.
    pub fn prune_images(
        &self,
        images: &mut ImageStore,
        all: bool,
        labels: Option<&crate::filters::LabelFilter>,
    ) -> Result<(Vec<oxcart_image::images::Removed>, u64)> {
        self.release_stale_holds(images)?;
        let mut removed = Vec::new();
        let mut bytes = 0;
        for img in images.list()? {
            if !(all || img.tags.is_empty()) || !images.users(&img.id)?.is_empty() {
                continue;
            }
            // An unreadable config has no labels to select it by.
            if labels.is_some_and(|l| !l.matches(&images.labels(&img).unwrap_or_default())) {
                continue;
            }
            if let Ok((r, freed)) = images.remove(&img.id.to_string(), true) {
                bytes += freed.layer_bytes;
                removed.push(r);
            }
        }
        Ok((removed, bytes))
    }
}

/// The `(pid, start time)` in a `.new-<id>-<pid>-<start>` name.
fn creator_of(rest: &str) -> Option<(i32, u64)> {
    let mut parts = rest.get(65..)?.splitn(2, '-');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

pub(crate) fn img_digest(s: &str) -> oxcart_image::Digest {
    // Ids in records were written from a parsed Digest; a hand-edited one fails later
    // at the image lookup with its own message.
    oxcart_image::Digest::parse(s).unwrap_or_else(|_| oxcart_image::Digest::sha256_of(s.as_bytes()))
}

/// docker's `Path` and `Args`: Entrypoint + Cmd; neither is docker's error.
pub fn command_of(c: &Config) -> Result<(String, Vec<String>)> {
    let mut all: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    all.extend(c.cmd.clone().unwrap_or_default());
    if all.is_empty() {
        return Err(EngineError::Invalid("no command specified".into()));
    }
    let path = all.remove(0);
    Ok((path, all))
}

/// What this engine cannot honour is refused at `create`, naming the flag.
fn validate_host_config(h: &HostConfig) -> Result<()> {
    match h.log_config.kind.as_str() {
        "" | "json-file" | "none" => {}
        d => {
            return Err(EngineError::Invalid(format!(
                "--log-driver {d}: unsupported logging driver (json-file or none)"
            )))
        }
    }
    for k in h.log_config.config.keys() {
        if k != "max-size" && k != "max-file" {
            return Err(EngineError::Invalid(format!(
                "--log-opt {k}: unknown log opt for json-file (max-size, max-file)"
            )));
        }
    }
    crate::restart::validate(&h.restart_policy, h.auto_remove)
}
