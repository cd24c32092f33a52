//! The engine: one open handle on the container database, the config and the layout,
//! which every command uses. Operations live in create.rs, start.rs, stop.rs and
//! remove.rs.

use crate::config::EngineConfig;
use crate::db::Db;
use crate::error::{io_err, Result};
use crate::paths::Layout;
use crate::record::Record;
use crate::runtime::Runtime;
use crate::state::{observe, Observed};
use std::path::PathBuf;

pub struct Engine {
    pub layout: Layout,
    pub config: EngineConfig,
    pub(crate) db: Db,
    /// The layer directories of the image `create` just used (id, dirs), so a `start`
    /// in the same command (`run`) need not open the image store again. Layers are
    /// content-addressed and the container holds its image, so they cannot change.
    pub(crate) layers_hint: Option<(String, Vec<PathBuf>)>,
    /// The image store `create` opened, kept for the same command's removal of the
    /// container (`run --rm` releases its image hold at the end): one open of
    /// `images.db` fewer — each open parses its schema and rebuilds its WAL index.
    pub(crate) images_cache: Option<oxcart_image::ImageStore>,
}

impl Engine {
    pub fn open(layout: Layout, config: EngineConfig) -> Result<Engine> {
        let cdir = layout.containers_dir();
        std::fs::create_dir_all(&cdir).map_err(io_err(&cdir))?;
        crate::paths::spread_subdirs(&cdir);
        let db = Db::open(&layout.db_path())?;
        Ok(Engine {
            layout,
            config,
            db,
            layers_hint: None,
            images_cache: None,
        })
    }

    /// Ready this engine for another command of a long-lived process (the API
    /// service's pool): the config as read now, and no hint left from the last one.
    pub fn recycle(&mut self, config: EngineConfig) {
        self.config = config;
        self.layers_hint = None;
        self.images_cache = None;
    }

    pub fn ctr_dir(&self, id: &str) -> PathBuf {
        self.layout.ctr_dir(id)
    }

    /// A container by id, name or unique id prefix.
    pub fn find(&self, key: &str) -> Result<Record> {
        self.db.find(key)
    }

    /// Every container, newest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        self.db.list()
    }

    /// What `stats` needs of every container, newest first.
    pub fn list_for_stats(&self) -> Result<Vec<crate::stats::StatsCtr>> {
        self.db.list_for_stats()
    }

    /// A container's record by its full id; `None` once it was removed.
    pub fn get(&self, id: &str) -> Result<Option<Record>> {
        self.db.get(id)
    }

    /// A [`crate::stats::StatsHost`] for a pass over this engine's containers.
    pub fn stats_host(&self) -> Result<crate::stats::StatsHost> {
        crate::stats::StatsHost::for_containers(self.layout.containers_dir())
    }

    /// The runtime a record names.
    pub fn runtime_of(&self, rec: &Record) -> Result<Runtime> {
        self.config.runtime(&rec.runtime, &self.layout)
    }

    /// The container's derived state; asks the runtime only when the monitor died.
    pub fn observe(&self, rec: &Record) -> Result<Observed> {
        // Resolving the runtime reads /proc/self/exe; a listing of many containers
        // needs it for none of those whose monitor is alive.
        observe(&self.ctr_dir(&rec.id), rec, &|| self.runtime_of(rec).ok())
    }

    /// Ids of the containers that use an image (for `rmi`).
    pub fn image_users(&self, image_id: &str) -> Result<Vec<String>> {
        self.db.users_of_image(image_id)
    }

    pub fn save(&mut self, rec: &Record) -> Result<()> {
        self.db.update(rec)
    }

    /// `rename OLD NEW`.
    pub fn rename(&mut self, key: &str, new_name: &str) -> Result<Record> {
        let name = crate::names::validate_name(new_name)?;
        let mut rec = self.find(key)?;
        let _lock = crate::lock::CtrLock::acquire(&self.ctr_dir(&rec.id))?;
        if rec.name == name {
            return Err(crate::error::EngineError::Invalid(format!(
                "Renaming a container with the same name as its current name: {name}"
            )));
        }
        let old = std::mem::replace(&mut rec.name, name);
        self.db.update(&rec)?;
        // A running container's monitor names it in its `die` (and later) events.
        crate::events::write_event_attrs(&self.ctr_dir(&rec.id), &rec)?;
        // docker's attribute keeps the old name's leading slash.
        let old = format!("/{}", old.trim_start_matches('/'));
        self.emit_ctr(&rec, "rename", &[("oldName", &old)]);
        Ok(rec)
    }
}

/// Bytes of the files under `p` (docker's `SizeRw` of a writable layer), not
/// following symlinks; unreadable entries count as 0.
pub fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return if md.is_file() { md.len() } else { 0 };
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}
