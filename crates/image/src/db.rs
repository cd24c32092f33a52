//! Image metadata in SQLite (WAL mode), shared safely by concurrent `oxcart` processes:
//! every write is one `BEGIN IMMEDIATE` transaction (so two writers never deadlock on a
//! lock upgrade) and readers wait on a busy timeout instead of failing.

use crate::digest::Digest;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// Database error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("image database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value does not parse (the database was edited by hand or is corrupt),
    /// or the schema is from a newer version.
    #[error("image database: {0}")]
    Corrupt(String),
}

/// One layer of an image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerRef {
    /// ChainID (the layer store key).
    pub chain_id: Digest,
    /// DiffID (uncompressed digest).
    pub diff_id: Digest,
    /// Digest of the blob as distributed (compressed).
    pub blob: Digest,
    /// Media type of the blob.
    pub media_type: String,
    /// Size of the blob.
    pub blob_size: u64,
}

/// An image as recorded after a pull, load or import.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageRecord {
    /// ImageID: digest of the config JSON.
    pub id: Digest,
    /// Digest of the image manifest.
    pub manifest_digest: Digest,
    /// Media type of the manifest.
    pub manifest_media_type: String,
    /// The index the manifest was chosen from, if any.
    pub index_digest: Option<Digest>,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Creation time from the config.
    pub created: Option<String>,
    /// Unpacked size of all layers.
    pub size: u64,
    /// When it was stored (unix seconds).
    pub added: i64,
    /// Layers, base first.
    pub layers: Vec<LayerRef>,
    /// Tags (`registry/repo:tag`).
    pub tags: Vec<String>,
    /// Repository digests (`registry/repo@sha256:…`).
    pub digests: Vec<String>,
}

fn dg(s: String) -> Result<Digest, DbError> {
    Digest::parse(&s).map_err(|_| DbError::Corrupt(format!("corrupt digest {s:?}")))
}

/// An open metadata database.
pub struct Db {
    conn: Connection,
}

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    index_digest TEXT,
    platform TEXT NOT NULL,
    created TEXT,
    size INTEGER NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    blob TEXT NOT NULL,
    media_type TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest'))
);
CREATE INDEX IF NOT EXISTS names_image ON names(image_id);
CREATE TABLE IF NOT EXISTS layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_users (
    image_id TEXT NOT NULL REFERENCES images(id),
    user TEXT NOT NULL,
    PRIMARY KEY (image_id, user)
);
"#;

/// The WAL size past which a closing connection truncates it: the automatic
/// checkpoint's threshold (64 pages of 4 KiB, plus frame headers).
const WAL_TRIM_BYTES: u64 = 64 * 4120;

/// For a database left in WAL mode on close (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`):
/// truncate its WAL when it has grown past [`WAL_TRIM_BYTES`]. Why: the next process
/// to open it is usually the only connection, so it rebuilds the WAL-index by
/// reading every valid frame, and that rebuild forgets what was checkpointed — so
/// the log is never restarted by a later writer, grows by every command's commits
/// and is read, and checkpointed again, in full by every command (1.3 MB read at
/// each open after ~300 runs). `TRUNCATE` empties it; it is tried without waiting
/// (another process using the database will trim it when it closes), and its cost
/// (the checkpoint's fsyncs) is paid once per ~64 pages written, not per command.
pub fn trim_wal(conn: &Connection) {
    let Some(path) = conn.path().filter(|p| !p.is_empty()) else {
        return;
    };
    let big = std::fs::metadata(format!("{path}-wal")).is_ok_and(|m| m.len() > WAL_TRIM_BYTES);
    if big && conn.busy_timeout(Duration::ZERO).is_ok() {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        trim_wal(&self.conn);
    }
}

impl Db {
    /// Open (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        // WAL: readers never block the writer. synchronous=NORMAL (durable across
        // process crashes, the case we must survive, and cheap) and a 64-page
        // automatic checkpoint (why the WAL is kept: below) are this build's SQLite
        // defaults, as for the engine's containers.db (.cargo/config.toml; tested by
        // `defaults_are_built_in`).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Every command is a short process, hence usually the last connection, which
        // SQLite makes checkpoint the WAL into the database and delete it on close —
        // and the next command's first commit creates it again: four fsyncs (WAL
        // header, directory, WAL, database) per command that writes, e.g. each
        // `run`'s image hold and its release. The WAL is as crash-safe as the
        // database; leave it for the automatic checkpoint of a later commit, kept
        // short so a fresh process's WAL-index rebuild stays cheap (as the engine's
        // containers.db does).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Schema version: refuse a database written by a newer oxcart rather than
        // misread it; older ones are upgraded by the idempotent CREATEs above.
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(DbError::Corrupt(format!(
                "schema version {v} is newer than this oxcart's {SCHEMA_VERSION}"
            )));
        }
        conn.execute_batch(SCHEMA)?;
        if v < SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(Db { conn })
    }

    /// Whether a layer is recorded.
    pub fn has_layer(&self, chain: &Digest) -> Result<bool, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM layers WHERE chain_id = ?1",
                [chain.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Record an unpacked layer (after its directory was renamed into place).
    pub fn record_layer(
        &mut self,
        chain: &Digest,
        diff: &Digest,
        parent: Option<&Digest>,
        size: u64,
    ) -> Result<(), DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size) VALUES (?1, ?2, ?3, ?4)",
            params![chain.to_string(), diff.to_string(), parent.map(|p| p.to_string()), size as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Unpacked size of a layer.
    pub fn layer_size(&self, chain: &Digest) -> Result<Option<u64>, DbError> {
        Ok(self
            .conn
            .query_row(
                "SELECT size FROM layers WHERE chain_id = ?1",
                [chain.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|s| s as u64))
    }

    /// Store an image and point `names` (tags or digest names) at it, in one transaction.
    pub fn put_image(
        &mut self,
        rec: &ImageRecord,
        names: &[(String, &str)],
    ) -> Result<(), DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO images (id, manifest_digest, manifest_media_type, index_digest, platform, created, size, added)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                manifest_media_type = excluded.manifest_media_type,
                index_digest = COALESCE(excluded.index_digest, images.index_digest),
                platform = excluded.platform, created = excluded.created, size = excluded.size",
            params![
                rec.id.to_string(),
                rec.manifest_digest.to_string(),
                rec.manifest_media_type,
                rec.index_digest.as_ref().map(|d| d.to_string()),
                rec.platform,
                rec.created,
                rec.size as i64,
                rec.added
            ],
        )?;
        tx.execute(
            "DELETE FROM image_layers WHERE image_id = ?1",
            [rec.id.to_string()],
        )?;
        for (i, l) in rec.layers.iter().enumerate() {
            tx.execute(
                "INSERT INTO image_layers (image_id, idx, chain_id, diff_id, blob, media_type, blob_size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![rec.id.to_string(), i as i64, l.chain_id.to_string(), l.diff_id.to_string(), l.blob.to_string(), l.media_type, l.blob_size as i64],
            )?;
        }
        for (name, kind) in names {
            tx.execute(
                "INSERT INTO names (name, image_id, kind) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, kind = excluded.kind",
                params![name, rec.id.to_string(), kind],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self, id: &str) -> Result<Option<ImageRecord>, DbError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, manifest_digest, manifest_media_type, index_digest, platform, created, size, added FROM images WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, md, mt, idx, platform, created, size, added)) = row else {
            return Ok(None);
        };
        let mut st = self.conn.prepare_cached(
            "SELECT chain_id, diff_id, blob, media_type, blob_size FROM image_layers WHERE image_id = ?1 ORDER BY idx",
        )?;
        let mut layers = Vec::new();
        for r in st.query_map([&id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })? {
            let (c, d, b, m, s) = r?;
            layers.push(LayerRef {
                chain_id: dg(c)?,
                diff_id: dg(d)?,
                blob: dg(b)?,
                media_type: m,
                blob_size: s as u64,
            });
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT name, kind FROM names WHERE image_id = ?1 ORDER BY name")?;
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for r in st.query_map([&id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (n, k) = r?;
            if k == "tag" {
                tags.push(n)
            } else {
                digests.push(n)
            }
        }
        Ok(Some(ImageRecord {
            id: dg(id)?,
            manifest_digest: dg(md)?,
            manifest_media_type: mt,
            index_digest: idx.map(dg).transpose()?,
            platform,
            created,
            size: size as u64,
            added,
            layers,
            tags,
            digests,
        }))
    }

    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, DbError> {
        let mut st = self
            .conn
            .prepare("SELECT id FROM images ORDER BY added DESC, id")?;
        let ids: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(r) = self.load(&id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Find an image by exact name (tag or digest name) or by ID / unique ID prefix
    /// (with or without `sha256:`). `names` are candidate normalised names to try first.
    pub fn find(
        &self,
        names: &[String],
        id_or_prefix: &str,
    ) -> Result<Option<ImageRecord>, DbError> {
        for n in names {
            let id: Option<String> = self
                .conn
                .query_row("SELECT image_id FROM names WHERE name = ?1", [n], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(id) = id {
                return self.load(&id);
            }
        }
        let hex = id_or_prefix.strip_prefix("sha256:").unwrap_or(id_or_prefix);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut st = self
            .conn
            .prepare("SELECT id FROM images WHERE substr(id, 8, ?1) = ?2 LIMIT 2")?;
        let ids: Vec<String> = st
            .query_map(params![hex.len() as i64, hex.to_ascii_lowercase()], |r| {
                r.get(0)
            })?
            .collect::<Result<_, _>>()?;
        if ids.len() == 1 {
            return self.load(&ids[0]);
        }
        Ok(None)
    }

    /// Point a tag at an image.
    pub fn tag(&mut self, id: &Digest, name: &str) -> Result<(), DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO names (name, image_id, kind) VALUES (?1, ?2, 'tag')
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, kind = 'tag'",
            params![name, id.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Remove a name. Returns whether the image it pointed to has no tags left (in
    /// which case its digest names are removed too, as docker does).
    pub fn untag(&mut self, name: &str, id: &Digest) -> Result<bool, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM names WHERE name = ?1", [name])?;
        let left: i64 = tx.query_row(
            "SELECT COUNT(*) FROM names WHERE image_id = ?1 AND kind = 'tag'",
            [id.to_string()],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(left == 0)
    }

    /// Record that `user` (e.g. a container) uses an image, so it cannot be removed.
    pub fn add_user(&mut self, id: &Digest, user: &str) -> Result<(), DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO image_users (image_id, user) VALUES (?1, ?2)",
            params![id.to_string(), user],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forget a user of an image. Returns whether it was recorded.
    pub fn remove_user(&mut self, id: &Digest, user: &str) -> Result<bool, DbError> {
        let n = self.conn.execute(
            "DELETE FROM image_users WHERE image_id = ?1 AND user = ?2",
            params![id.to_string(), user],
        )?;
        Ok(n > 0)
    }

    /// Users of an image.
    pub fn users(&self, id: &Digest) -> Result<Vec<String>, DbError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT user FROM image_users WHERE image_id = ?1 ORDER BY user")?;
        let v = st
            .query_map([id.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(v)
    }

    /// Delete an image, its names and its layer list (the layers go in GC).
    pub fn delete_image(&mut self, id: &Digest) -> Result<(), DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM names WHERE image_id = ?1", [id.to_string()])?;
        tx.execute(
            "DELETE FROM image_layers WHERE image_id = ?1",
            [id.to_string()],
        )?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])?;
        tx.commit()?;
        Ok(())
    }

    /// Every blob and layer some image still references.
    pub fn referenced(
        &self,
    ) -> Result<
        (
            std::collections::HashSet<String>,
            std::collections::HashSet<String>,
        ),
        DbError,
    > {
        let mut blobs = std::collections::HashSet::new();
        let mut layers = std::collections::HashSet::new();
        let mut st = self
            .conn
            .prepare("SELECT id, manifest_digest, index_digest FROM images")?;
        for r in st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })? {
            let (a, b, c) = r?;
            blobs.insert(a);
            blobs.insert(b);
            if let Some(c) = c {
                blobs.insert(c);
            }
        }
        let mut st = self
            .conn
            .prepare("SELECT chain_id, blob FROM image_layers")?;
        for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (c, b) = r?;
            layers.insert(c);
            blobs.insert(b);
        }
        Ok((blobs, layers))
    }

    /// Recorded layers no image references.
    pub fn forget_layer(&mut self, chain: &str) -> Result<(), DbError> {
        self.conn
            .execute("DELETE FROM layers WHERE chain_id = ?1", [chain])?;
        Ok(())
    }

    /// All recorded layer ChainIDs.
    pub fn all_layers(&self) -> Result<Vec<String>, DbError> {
        let mut st = self.conn.prepare("SELECT chain_id FROM layers")?;
        let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `open` leaves `synchronous` and the automatic checkpoint to this build's
    /// SQLite defaults: a build without .cargo/config.toml's flags would fsync the
    /// WAL at every commit and checkpoint every 1000 pages.
    #[test]
    fn defaults_are_built_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("images.db")).expect("open");
        let get = |name: &str| {
            db.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .expect("pragma")
        };
        // 1: NORMAL.
        assert_eq!(get("synchronous"), 1);
        assert_eq!(get("wal_autocheckpoint"), 64);
    }
}
