//! Volumes, as docker's `local` driver keeps them: `<root>/volumes/<name>/_data`, one row
//! per volume in `containers.db` (name UNIQUE, driver, options, labels, created, whether
//! it is anonymous). Which containers use a volume is never stored as a counter: it is
//! derived from the containers' records (their `volumes`, resolved at `create`), so a
//! crash anywhere leaves nothing to reconcile.
//!
//! Ordering against `kill -9`: `create` writes the directory, then the row; `rm`
//! deletes the row, then renames the directory to a `.trash-` name and removes it. A
//! directory without a row is debris that the next `volume create` of that name or
//! `volume prune` collects; a row without a directory is an empty
//! volume whose directory is made again when it is used.
//!
//! copy-up (docker's "populate volume from the image"): container.rs.

mod container;
mod copyup;
mod offline;

pub(crate) use offline::{offline_mounts, with_offline_mounts};

pub use container::VolumeMount;

use crate::engine::Engine;
use crate::error::{io_err, EngineError, Result};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL,
    created TEXT NOT NULL,
    labels TEXT NOT NULL,
    options TEXT NOT NULL,
    anonymous INTEGER NOT NULL
);
";

/// docker labels the volumes it makes for `-v /path` and image `VOLUME`s so `volume
/// prune` (without `-a`) can tell them from named ones.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume's errors; their text is what the CLI prints after `Error: `.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// docker: `Error: No such volume: x`.
    #[error("No such volume: {0}")]
    NoSuchVolume(String),
    /// docker's wording, with the containers' names (not only ids) so the user knows
    /// what to remove.
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    /// docker's local driver's name rule.
    #[error("create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    InvalidName(String),
    /// `-d x` other than `local`.
    #[error(
        "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
    )]
    NoDriver { name: String, driver: String },
    /// `-o` the local driver does not know.
    #[error(
        "create {name}: invalid option: {opt:?} (the local driver takes type, device, o, size)"
    )]
    BadOption { name: String, opt: String },
    /// A volume's filesystem (`-o type=…`) cannot be mounted.
    #[error("mounting volume {name} ({typ} {device}): {source}")]
    Mount {
        name: String,
        typ: String,
        device: String,
        #[source]
        source: std::io::Error,
    },
    /// copy-up of the image's content into a volume failed.
    #[error("copying the image's {path} into volume {name}: {source}")]
    CopyUp {
        name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One volume, as `volume inspect` shows it (docker's `volume.Volume`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: String,
    pub name: String,
    pub options: BTreeMap<String, String>,
    pub scope: String,
    /// Set when a copy-up was interrupted and not yet redone (the next start redoes
    /// it); docker has no such state, so it is shown only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub incomplete: bool,
    #[serde(skip)]
    pub anonymous: bool,
}

/// `volume create`'s request.
#[derive(Debug, Clone, Default)]
pub struct VolumeCreate {
    /// None: an anonymous volume (64 hex digits).
    pub name: Option<String>,
    /// `local` (or empty).
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// The local driver's `type`, `device`, `o` (mount(8)'s), as docker's.
    pub options: BTreeMap<String, String>,
}

/// docker's local volume name rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The marker of a copy-up under way: present after a `kill -9`, it says `_data` is
/// incomplete; the next start empties and refills it.
pub(crate) const COPYING: &str = "copying";

impl Engine {
    pub fn volumes_dir(&self) -> PathBuf {
        self.layout.root.join("volumes")
    }

    /// `<root>/volumes/<name>`: `_data`, `lock`, the copy-up marker.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.volumes_dir().join(name)
    }

    fn vol_conn(&self) -> Result<&rusqlite::Connection> {
        let c = self.db.conn();
        crate::db::retry_busy(|| c.execute_batch(SCHEMA))?;
        Ok(c)
    }

    fn row_to_volume(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Volume> {
        let name: String = r.get(0)?;
        let labels: String = r.get(3)?;
        let options: String = r.get(4)?;
        let dir = self.volume_dir(&name);
        Ok(Volume {
            mountpoint: dir.join("_data").to_string_lossy().into_owned(),
            // Looked at by `volume_get` only: `ls` of many volumes need not stat each.
            incomplete: false,
            driver: r.get(1)?,
            created_at: r.get(2)?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            options: serde_json::from_str(&options).unwrap_or_default(),
            scope: "local".into(),
            anonymous: r.get::<_, i64>(5)? != 0,
            name,
        })
    }

    /// `volume create`; an existing volume of that name is returned as it is (docker's
    /// create is idempotent).
    pub fn volume_create(&mut self, req: VolumeCreate) -> Result<Volume> {
        let anonymous = req.name.is_none();
        let name = match req.name {
            Some(n) => n,
            None => crate::names::new_id()?,
        };
        if !valid_name(&name) {
            return Err(VolumeError::InvalidName(name).into());
        }
        if !matches!(req.driver.as_str(), "" | "local") {
            return Err(VolumeError::NoDriver {
                name,
                driver: req.driver,
            }
            .into());
        }
        check_options(&name, &req.options)?;
        if let Some(v) = self.volume_get(&name)? {
            return Ok(v);
        }
        let mut labels = req.labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let vdir = self.volumes_dir();
        std::fs::create_dir_all(&vdir).map_err(io_err(&vdir))?;
        // A directory without a row is a removed volume's debris: a new volume starts
        // empty, as docker's.
        let dir = self.volume_dir(&name);
        if dir.exists() {
            self.trash(&name)?;
        }
        let tmp = vdir.join(format!(".new-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        std::fs::create_dir(tmp.join("_data")).map_err(io_err(&tmp))?;
        let conn = self.vol_conn()?;
        let created = crate::time::now();
        let lj = serde_json::to_string(&labels).unwrap_or_else(|_| "{}".into());
        let oj = serde_json::to_string(&req.options).unwrap_or_else(|_| "{}".into());
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO volumes (name, driver, created, labels, options, anonymous) VALUES (?1, 'local', ?2, ?3, ?4, ?5)",
            params![name, created, lj, oj, anonymous as i64],
        )?;
        if inserted != 0 {
            self.emit("volume", "create", &name, &[("driver", "local")]);
        }
        if inserted == 0 {
            // A concurrent create of the same name won: theirs is the volume.
            let _ = std::fs::remove_dir_all(&tmp);
        } else if let Err(e) = std::fs::rename(&tmp, &dir) {
            // Another process made the directory since (a concurrent create that lost
            // the insert cleans its own `.new-`): ours is the row, theirs the debris.
            if !dir.join("_data").is_dir() {
                let _ = conn.execute("DELETE FROM volumes WHERE name = ?1", params![name]);
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(io_err(&dir)(e));
            }
            let _ = std::fs::remove_dir_all(&tmp);
        }
        self.volume_get(&name)?
            .ok_or_else(|| VolumeError::NoSuchVolume(name).into())
    }

    pub fn volume_get(&self, name: &str) -> Result<Option<Volume>> {
        let conn = self.vol_conn()?;
        let v = conn
            .query_row(
                "SELECT name, driver, created, labels, options, anonymous FROM volumes WHERE name = ?1",
                params![name],
                |r| self.row_to_volume(r),
            )
            .optional()?;
        Ok(v.map(|mut v| {
            v.incomplete = self.volume_dir(&v.name).join(COPYING).exists();
            v
        }))
    }

    /// `volume inspect NAME`.
    pub fn volume_inspect(&self, name: &str) -> Result<Volume> {
        self.volume_get(name)?
            .ok_or_else(|| VolumeError::NoSuchVolume(name.to_string()).into())
    }

    /// Every volume, by name (`volume ls`; `Incomplete` is left unset: `volume_get`
    /// has it).
    pub fn volume_list(&self) -> Result<Vec<Volume>> {
        let conn = self.vol_conn()?;
        let mut st = conn.prepare_cached(
            "SELECT name, driver, created, labels, options, anonymous FROM volumes ORDER BY name",
        )?;
        let rows = st.query_map([], |r| self.row_to_volume(r))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Which containers use each volume (by container name), derived from the records.
    pub fn volume_users(&self) -> Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for rec in self.list()? {
            for m in &rec.volumes {
                if m.kind == "volume" {
                    let users = out.entry(m.name.clone()).or_default();
                    if !users.contains(&rec.name) {
                        users.push(rec.name.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// `volume rm [-f]`. In use by any container (running or not), it is refused
    /// naming them; `-f` removes those containers first (podman's `volume rm -f`; docker
    /// refuses even then), so no record is left naming a volume that is gone.
    pub fn volume_remove(&mut self, name: &str, force: bool) -> Result<()> {
        if self.volume_get(name)?.is_none() {
            return Err(VolumeError::NoSuchVolume(name.to_string()).into());
        }
        let users = self.volume_users()?.remove(name).unwrap_or_default();
        if !users.is_empty() {
            if !force {
                return Err(VolumeError::InUse {
                    name: name.to_string(),
                    users,
                }
                .into());
            }
            for u in &users {
                self.remove(u, true)?;
            }
        }
        self.volume_delete(name)
    }

    /// The row (under a write transaction that re-checks no container names the
    /// volume), then the directory.
    fn volume_delete(&mut self, name: &str) -> Result<()> {
        let users = self.volume_users()?.remove(name).unwrap_or_default();
        {
            let conn = self.db.conn_mut();
            crate::db::retry_busy(|| conn.execute_batch(SCHEMA))?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // A `create` that inserted its row since our scan names the volume now
            // (a record's VolumeMount serialises `Type` then `Name`).
            let like = format!(
                "%\"Type\":\"volume\",\"Name\":\"{}\"%",
                name.replace('_', "\\_")
            );
            let late: Option<String> = tx
                .query_row(
                    "SELECT name FROM containers WHERE record LIKE ?1 ESCAPE '\\' LIMIT 1",
                    params![like],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(c) = late.filter(|_| users.is_empty()) {
                return Err(VolumeError::InUse {
                    name: name.to_string(),
                    users: vec![c],
                }
                .into());
            }
            tx.execute("DELETE FROM volumes WHERE name = ?1", params![name])?;
            tx.commit()?;
        }
        self.trash(name)?;
        self.emit("volume", "destroy", name, &[("driver", "local")]);
        Ok(())
    }

    /// Move a volume's directory out of the way, unmount what is mounted on it, and
    /// remove it; a kill mid-way leaves a `.trash-` directory [`Self::collect_volume_debris`]
    /// finishes.
    fn trash(&self, name: &str) -> Result<()> {
        let dir = self.volume_dir(name);
        container::unmount_data(&dir);
        let t = self
            .volumes_dir()
            .join(format!(".trash-{name}-{}", std::process::id()));
        match std::fs::rename(&dir, &t) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&dir)(e)),
        }
        std::fs::remove_dir_all(&t).map_err(io_err(&t))
    }

    /// Directories no row names: a `volume rm` or `create` killed half-way.
    pub fn collect_volume_debris(&self) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(self.volumes_dir()) else {
            return Ok(());
        };
        let names: std::collections::HashSet<String> = {
            let mut st = self
                .vol_conn()?
                .prepare_cached("SELECT name FROM volumes")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let stale = if n.starts_with(".trash-") || n.starts_with(".new-") {
                // A `.new-` of a live create is seconds old.
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|a| n.starts_with(".trash-") || a.as_secs() > 60)
            } else {
                !names.contains(&n)
            };
            if stale {
                container::unmount_data(&e.path());
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(())
    }

    /// `volume prune [-a]`: volumes no container uses; without `all` only anonymous
    /// ones (docker ≥ 23). Returns the names removed and the bytes they held.
    pub fn volume_prune(
        &mut self,
        all: bool,
        filter: impl Fn(&Volume) -> bool,
    ) -> Result<(Vec<String>, u64)> {
        self.collect_volume_debris()?;
        let users = self.volume_users()?;
        let mut gone = Vec::new();
        let mut bytes = 0;
        for v in self.volume_list()? {
            if users.contains_key(&v.name) || !(all || v.anonymous) || !filter(&v) {
                continue;
            }
            let size = crate::engine::dir_size(Path::new(&v.mountpoint));
            match self.volume_delete(&v.name) {
                Ok(()) => {
                    bytes += size;
                    gone.push(v.name);
                }
                // Taken into use since the scan: not unused any more.
                Err(EngineError::Volume(VolumeError::InUse { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((gone, bytes))
    }

    /// `rm -v` and `--rm`: the container's anonymous volumes, unless another container
    /// uses one too (`--volumes-from`), which docker keeps silently.
    pub fn remove_anonymous_volumes(&mut self, rec: &crate::record::Record) -> Result<()> {
        let users = self.volume_users()?;
        for m in rec.volumes.iter().filter(|m| m.anonymous) {
            if users.contains_key(&m.name) || self.volume_get(&m.name)?.is_none() {
                continue;
            }
            match self.volume_delete(&m.name) {
                Ok(()) | Err(EngineError::Volume(VolumeError::InUse { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The local driver's options: `type`, `device`, `o` (and podman's `size`, `uid`, `gid`
/// are not taken: docker's are).
fn check_options(name: &str, opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(VolumeError::BadOption {
                name: name.to_string(),
                opt: k.clone(),
            }
            .into());
        }
    }
    // docker: a device without a type (or the reverse) is an error at create.
    if opts.contains_key("type") != opts.contains_key("device") {
        return Err(VolumeError::BadOption {
            name: name.to_string(),
            opt: "type and device must be given together".into(),
        }
        .into());
    }
    Ok(())
}

/// `flock` on `<volume>/lock`: one copy-up or mount of a volume at a time.
pub(crate) struct VolLock {
    _lock: crate::lock::FileLock,
}

impl VolLock {
    pub(crate) fn acquire(dir: &Path) -> Result<VolLock> {
        let p = dir.join("lock");
        let l = crate::lock::FileLock::acquire(&p).map_err(io_err(&p))?;
        Ok(VolLock { _lock: l })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "A0", "data_1.x-y", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "_a", "a/b", "a b", "a:b", "../x", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn options() {
        let o = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(check_options("v", &o(&[("type", "tmpfs"), ("device", "tmpfs")])).is_ok());
        assert!(check_options("v", &o(&[("type", "tmpfs")])).is_err());
        let e = check_options("v", &o(&[("color", "red")])).expect_err("bad");
        assert!(e.to_string().contains("\"color\""), "{e}");
    }
}
