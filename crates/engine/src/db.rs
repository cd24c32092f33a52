//! `containers.db`: one row per container, shared by every `oxcart` process. SQLite in
//! WAL mode with a busy timeout, every write one `BEGIN IMMEDIATE` transaction (as the
//! image database): the UNIQUE name column is what makes two concurrent `create
//! --name x` end with one container and one clear conflict.

use crate::error::{EngineError, Result};
use crate::record::Record;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    created TEXT NOT NULL,
    record TEXT NOT NULL,
    network_mode TEXT,
    cgroup_parent TEXT
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
";

/// The record's `HostConfig.NetworkMode` and `HostConfig.CgroupParent` as columns of
/// their own (schema version 2), so `stats` lists its containers without parsing
/// each ~1.7 KB record for them (an eighth of its instructions). Both are fixed at
/// create. NULL in a row that a version-1 oxcart wrote: then the record is read.
const MIGRATE_2: &str = "
ALTER TABLE containers ADD COLUMN network_mode TEXT;
ALTER TABLE containers ADD COLUMN cgroup_parent TEXT;
";
/// What `stats` lists, as a covering index: the listing reads its few pages, not
/// the table's (two records a page: 25 page reads, and as many 4 KiB page-cache
/// buffers faulted in, for 50 containers). Made after the columns exist, so in
/// the migration and not in SCHEMA (which an old table meets first).
const LISTING_INDEX: &str = "
CREATE INDEX IF NOT EXISTS containers_listing
    ON containers(created, id, name, network_mode, cgroup_parent);
";
const BACKFILL_2: &str = "
UPDATE containers SET
    network_mode = coalesce(json_extract(record, '$.host_config.NetworkMode'), ''),
    cgroup_parent = coalesce(json_extract(record, '$.host_config.CgroupParent'), '')
WHERE network_mode IS NULL OR cgroup_parent IS NULL;
";

/// `PRAGMA user_version` of a database that has [`SCHEMA`] and WAL mode, both
/// persistent: an open that reads it skips the statements that would check them
/// (every `ps` and `stats` opens the database; each statement is parsed anew).
/// Bump it with any change to SCHEMA. 2: the network mode and cgroup parent columns
/// and their covering index (`migrate`).
const SCHEMA_VERSION: i64 = 2;

/// Run `f` again while SQLite answers busy or locked. The busy timeout covers waits
/// for a lock, but not every case: switching a new database to WAL needs an exclusive
/// lock for which SQLite gives up at once while another process opens it, and
/// schema statements can meet the same (CI: six concurrent `create`s on a fresh root
/// failed "database is locked" at open).
pub(crate) fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(2);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// WAL mode, set only when the database is not in it yet (once per database): asking
/// for it every time would take the exclusive lock on every open.
pub(crate) fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = retry_busy(|| conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)))?;
    if !mode.eq_ignore_ascii_case("wal") {
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
    }
    Ok(())
}

/// Bring a database of an older schema version to [`SCHEMA_VERSION`] and mark it, in
/// one transaction: processes that open the same old database at once each find
/// it either done or not started.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    // A database that SCHEMA just made has the columns already.
    let has_columns: bool = tx.query_row(
        "SELECT count(*) FROM pragma_table_info('containers') WHERE name = 'network_mode'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_columns {
        tx.execute_batch(MIGRATE_2)?;
    }
    tx.execute_batch(BACKFILL_2)?;
    tx.execute_batch(LISTING_INDEX)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// Durability and checkpoint settings of every connection to `containers.db` and
/// the network database. `synchronous=NORMAL` (a connection with SQLite's
/// default `FULL` would `fsync` the WAL at every commit; NORMAL in WAL mode is
/// durable across process crashes, the case we must survive) and an automatic
/// checkpoint every 64 pages are this build's SQLite defaults
/// (`SQLITE_DEFAULT_WAL_SYNCHRONOUS`, `SQLITE_DEFAULT_WAL_AUTOCHECKPOINT` in
/// .cargo/config.toml), not pragmas: each pragma is a statement parsed anew by every
/// `ps` and `stats`. `defaults_are_built_in` checks that the build has them.
pub(crate) fn tune(conn: &Connection) -> rusqlite::Result<()> {
    // Every command is a short process, hence the last connection, which SQLite
    // makes checkpoint the WAL into the database on close: two fsyncs per command.
    // Leave the WAL (it is as crash-safe as the database) for the automatic
    // checkpoint of a later commit instead; kept short (oxcart_image's trim_wal), so
    // the WAL-index a fresh process rebuilds from it stays cheap to read.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    Ok(())
}

pub struct Db {
    conn: Connection,
}

fn corrupt(id: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Corrupt {
        id: id.to_string(),
        why: e.to_string(),
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Left in WAL mode on close (below): keep the log short (oxcart_image's
        // trim_wal says why).
        oxcart_image::db::trim_wal(&self.conn);
    }
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let version: i64 = retry_busy(|| conn.query_row("PRAGMA user_version", [], |r| r.get(0)))?;
        if version != SCHEMA_VERSION {
            // WAL: readers (`ps`) never wait for a writer (`run`).
            set_wal(&conn)?;
            retry_busy(|| conn.execute_batch(SCHEMA))?;
            // A newer oxcart's mark is left as it is (the statements above change
            // nothing in its database: they only create what is missing).
            if version < SCHEMA_VERSION {
                retry_busy(|| migrate(&conn))?;
            }
        }
        tune(&conn)?;
        Ok(Db { conn })
    }

    /// Insert a new container; the name's UNIQUE constraint is the atomic check.
    pub fn insert(&mut self, r: &Record) -> Result<()> {
        let json = serde_json::to_string(r).map_err(|e| corrupt(&r.id, e))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(other) = tx
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                params![r.name],
                |row| row.get::<_, String>(0),
            )
            .optional()?
        {
            return Err(EngineError::NameInUse {
                name: r.name.clone(),
                id: other,
            });
        }
        tx.execute(
            "INSERT INTO containers (id, name, image_id, created, record, network_mode, cgroup_parent) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                r.id,
                r.name,
                r.image_id,
                r.created,
                json,
                r.host_config.network_mode,
                r.host_config.cgroup_parent
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Replace a container's record (same id); a new name must still be free.
    pub fn update(&mut self, r: &Record) -> Result<()> {
        let json = serde_json::to_string(r).map_err(|e| corrupt(&r.id, e))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(other) = tx
            .query_row(
                "SELECT id FROM containers WHERE name = ?1 AND id != ?2",
                params![r.name, r.id],
                |row| row.get::<_, String>(0),
            )
            .optional()?
        {
            return Err(EngineError::NameInUse {
                name: r.name.clone(),
                id: other,
            });
        }
        let n = tx.execute(
            "UPDATE containers SET name = ?2, record = ?3, network_mode = ?4, cgroup_parent = ?5 \
             WHERE id = ?1",
            params![
                r.id,
                r.name,
                json,
                r.host_config.network_mode,
                r.host_config.cgroup_parent
            ],
        )?;
        tx.commit()?;
        if n == 0 {
            return Err(EngineError::NoSuchContainer(r.id.clone()));
        }
        Ok(())
    }

    /// The connection, for the volumes table (volumes.rs) kept in the same file.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn delete(&mut self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM containers WHERE id = ?1", params![id])?
            > 0)
    }

    fn parse(id: &str, json: &str) -> Result<Record> {
        serde_json::from_str(json).map_err(|e| corrupt(id, e))
    }

    pub fn get(&self, id: &str) -> Result<Option<Record>> {
        let row = self
            .conn
            .query_row(
                "SELECT id, record FROM containers WHERE id = ?1",
                params![id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        row.map(|(id, j)| Self::parse(&id, &j)).transpose()
    }

    /// docker's lookup order: the full id, then a name (with or without its `/`), then
    /// a unique id prefix.
    pub fn find(&self, key: &str) -> Result<Record> {
        let key_name = key.strip_prefix('/').unwrap_or(key);
        if key.is_empty() {
            return Err(EngineError::NoSuchContainer(key.to_string()));
        }
        let exact = self
            .conn
            .query_row(
                "SELECT id, record FROM containers WHERE id = ?1 OR name = ?2 ORDER BY id = ?1 DESC LIMIT 1",
                params![key, key_name],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        if let Some((id, j)) = exact {
            return Self::parse(&id, &j);
        }
        if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(EngineError::NoSuchContainer(key.to_string()));
        }
        let mut st = self.conn.prepare_cached(
            "SELECT id, record FROM containers WHERE substr(id, 1, ?2) = ?1 LIMIT 2",
        )?;
        let rows: Vec<(String, String)> = st
            .query_map(params![key.to_ascii_lowercase(), key.len() as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        match rows.as_slice() {
            [] => Err(EngineError::NoSuchContainer(key.to_string())),
            [(id, j)] => Self::parse(id, j),
            _ => Err(EngineError::Ambiguous(key.to_string())),
        }
    }

    /// Every container, newest first (docker's `ps` order).
    pub fn list(&self) -> Result<Vec<Record>> {
        // Sorted here, not by SQL: SQLite's sorter would copy every selected row,
        // whole records (~1.7 KB of JSON each) included, into memory of its own first.
        let mut st = self
            .conn
            .prepare_cached("SELECT id, record FROM containers")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, j) = row?;
            out.push(Self::parse(&id, &j)?);
        }
        out.sort_by(|a, b| newest_first((&a.created, &a.id), (&b.created, &b.id)));
        Ok(out)
    }

    /// What `stats` needs of every container, in [`Db::list`]'s order: the network
    /// mode and cgroup parent from their columns (through `containers_listing`,
    /// which covers the query); the record only of a row that a version-1 oxcart
    /// wrote, and then for those two alone.
    pub fn list_for_stats(&self) -> Result<Vec<crate::stats::StatsCtr>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, name, created, network_mode, cgroup_parent FROM containers",
        )?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let columns: (Option<String>, Option<String>) = (row.get(3)?, row.get(4)?);
            let (network_mode, cgroup_parent) = match columns {
                (Some(n), Some(p)) => (n, p),
                _ => self.host_fields_of_record(&id)?,
            };
            let created: String = row.get(2)?;
            out.push((
                created,
                crate::stats::StatsCtr {
                    name: row.get(1)?,
                    network_mode,
                    cgroup_parent,
                    id,
                },
            ));
        }
        // Sorted here, as in `list`.
        out.sort_by(|(ca, a), (cb, b)| newest_first((ca, &a.id), (cb, &b.id)));
        Ok(out.into_iter().map(|(_, c)| c).collect())
    }

    /// The network mode and cgroup parent of a row without its columns (a
    /// version-1 oxcart wrote it), from its record, skipping the rest of it.
    fn host_fields_of_record(&self, id: &str) -> Result<(String, String)> {
        #[derive(serde::Deserialize)]
        struct Lean<'a> {
            #[serde(borrow)]
            host_config: LeanHost<'a>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct LeanHost<'a> {
            #[serde(borrow, default)]
            network_mode: std::borrow::Cow<'a, str>,
            #[serde(borrow, default)]
            cgroup_parent: std::borrow::Cow<'a, str>,
        }
        let json: String = self.conn.query_row(
            "SELECT record FROM containers WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        let lean: Lean<'_> = serde_json::from_str(&json).map_err(|e| corrupt(id, e))?;
        Ok((
            lean.host_config.network_mode.into_owned(),
            lean.host_config.cgroup_parent.into_owned(),
        ))
    }

    /// Ids of the containers made from an image (rmi's check).
    pub fn users_of_image(&self, image_id: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id FROM containers WHERE image_id = ?1 ORDER BY id")?;
        let rows = st.query_map(params![image_id], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn has(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM containers WHERE id = ?1",
                params![id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

/// `ORDER BY created DESC, id` of two `(created, id)` pairs: TEXT under SQLite's
/// default BINARY collation compares as bytes, as `str` does.
fn newest_first(a: (&str, &str), b: (&str, &str)) -> std::cmp::Ordering {
    b.0.cmp(a.0).then_with(|| a.1.cmp(b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma(path: &Path, name: &str) -> String {
        let c = Connection::open(path).expect("open");
        c.query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .expect("pragma")
    }

    fn has_index(path: &Path) -> bool {
        let c = Connection::open(path).expect("open");
        c.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'containers_image'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .expect("query")
            == 1
    }

    #[test]
    fn the_schema_mark_is_set_once_and_then_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A fresh database: tables, WAL, the mark.
        let fresh = dir.path().join("fresh.db");
        drop(Db::open(&fresh).expect("open"));
        assert_eq!(pragma(&fresh, "user_version"), SCHEMA_VERSION.to_string());
        assert_eq!(pragma(&fresh, "journal_mode"), "wal");
        assert!(has_index(&fresh));
        // One made before the mark existed (tables, WAL, user_version 0) is marked.
        let old = dir.path().join("old.db");
        {
            let c = Connection::open(&old).expect("open");
            set_wal(&c).expect("wal");
            c.execute_batch(SCHEMA).expect("schema");
        }
        assert_eq!(pragma(&old, "user_version"), "0");
        let db = Db::open(&old).expect("open");
        assert_eq!(db.list().expect("list").len(), 0);
        drop(db);
        assert_eq!(pragma(&old, "user_version"), SCHEMA_VERSION.to_string());
        // A marked database is trusted: what SCHEMA would create again is not.
        Connection::open(&old)
            .expect("open")
            .execute_batch("DROP INDEX containers_image")
            .expect("drop");
        drop(Db::open(&old).expect("open"));
        assert!(!has_index(&old));
        // An unmarked one gets it back, and a newer oxcart's mark stays.
        Connection::open(&old)
            .expect("open")
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("mark");
        drop(Db::open(&old).expect("open"));
        assert!(has_index(&old));
        assert_eq!(
            pragma(&old, "user_version"),
            (SCHEMA_VERSION + 1).to_string()
        );
    }

    /// A version-1 database (no network mode or cgroup parent columns) gets them,
    /// filled from its records, and `stats`'s listing reads the same either way —
    /// also of a row a version-1 oxcart writes afterwards (NULL columns).
    #[test]
    fn version_1_rows_are_migrated_and_still_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v1.db");
        let v1_insert = |c: &Connection, r: &Record| {
            c.execute(
                "INSERT INTO containers (id, name, image_id, created, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id, r.name, r.image_id, r.created, serde_json::to_string(r).expect("json")],
            )
            .expect("insert");
        };
        let mut bridged = record("b1", "web", "2026-12-07T07:00:00.000000002Z");
        bridged.host_config.network_mode = "bridge".into();
        bridged.host_config.cgroup_parent = "/custom".into();
        {
            let c = Connection::open(&path).expect("open");
            set_wal(&c).expect("wal");
            c.execute_batch(
                "CREATE TABLE containers (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                 image_id TEXT NOT NULL, created TEXT NOT NULL, record TEXT NOT NULL);
                 CREATE INDEX containers_image ON containers(image_id);
                 PRAGMA user_version = 1;",
            )
            .expect("v1 schema");
            v1_insert(&c, &bridged);
        }
        let mut db = Db::open(&path).expect("open");
        assert_eq!(pragma(&path, "user_version"), SCHEMA_VERSION.to_string());
        let col = |id: &str| {
            Connection::open(&path)
                .expect("open")
                .query_row(
                    "SELECT network_mode, cgroup_parent FROM containers WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<_, Option<String>>(0)?,
                            r.get::<_, Option<String>>(1)?,
                        ))
                    },
                )
                .expect("row")
        };
        assert_eq!(col("b1"), (Some("bridge".into()), Some("/custom".into())));
        // A row as a version-1 oxcart still running would insert it.
        let mut late = record("a2", "late", "2026-12-07T07:00:00.000000003Z");
        late.host_config.cgroup_parent = "/other".into();
        v1_insert(&db.conn, &late);
        assert_eq!(col("a2"), (None, None));
        // One of ours.
        db.insert(&record("c3", "new", "2026-12-07T07:00:00.000000001Z"))
            .expect("insert");
        assert_eq!(col("c3"), (Some("none".into()), Some(String::new())));
        let listed: Vec<(String, String, String)> = db
            .list_for_stats()
            .expect("list")
            .into_iter()
            .map(|c| (c.id, c.network_mode, c.cgroup_parent))
            .collect();
        let want = |id: &str, n: &str, p: &str| (id.to_string(), n.to_string(), p.to_string());
        assert_eq!(
            listed,
            [
                want("a2", "none", "/other"),
                want("b1", "bridge", "/custom"),
                want("c3", "none", "")
            ]
        );
        // The listing reads the covering index, not the table.
        let plan: String = db
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id, name, created, network_mode, cgroup_parent FROM containers",
                [],
                |r| r.get(3),
            )
            .expect("plan");
        assert!(plan.contains("COVERING INDEX containers_listing"), "{plan}");
        // `update` keeps the columns with the record.
        let mut moved = db.get("a2").expect("get").expect("a2");
        moved.name = "renamed".into();
        db.update(&moved).expect("update");
        assert_eq!(col("a2"), (Some("none".into()), Some("/other".into())));
    }

    /// `tune` leaves `synchronous` and the automatic checkpoint to this build's
    /// SQLite defaults: a build without .cargo/config.toml's flags would fsync the
    /// WAL at every commit and checkpoint every 1000 pages.
    #[test]
    fn defaults_are_built_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("c.db")).expect("open");
        let get = |name: &str| {
            db.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0))
                .expect("pragma")
        };
        // 1: NORMAL.
        assert_eq!(get("synchronous"), 1);
        assert_eq!(get("wal_autocheckpoint"), 64);
    }

    fn record(id: &str, name: &str, created: &str) -> Record {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "created": created, "image_id": "img",
            "config": {}, "host_config": {"NetworkMode": "none"},
            "path": "", "args": [], "runtime": ""
        }))
        .expect("a minimal record")
    }

    /// `list` and `list_for_stats` sort in Rust what SQL's `ORDER BY created DESC,
    /// id` would: newest first, ties by id.
    #[test]
    fn listings_are_in_sqls_newest_first_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db");
        let mut db = Db::open(&path).expect("open");
        for (id, created) in [
            ("b2", "2026-12-07T07:00:00.000000002Z"),
            ("a1", "2026-12-07T07:00:00.000000001Z"),
            ("c3", "2026-12-07T07:00:00.000000002Z"),
            ("a3", "2026-12-07T07:00:00.000000002Z"),
            ("z9", "2026-12-06T23:59:59.999999999Z"),
            ("m5", "2026-12-07T08:00:00.000000000Z"),
        ] {
            db.insert(&record(id, &format!("n-{id}"), created))
                .expect("insert");
        }
        let sql: Vec<String> = {
            let mut st = db
                .conn
                .prepare("SELECT id FROM containers ORDER BY created DESC, id")
                .expect("prepare");
            let ids = st
                .query_map([], |r| r.get(0))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            ids
        };
        assert_eq!(sql, ["m5", "a3", "b2", "c3", "a1", "z9"]);
        let listed: Vec<String> = db.list().expect("list").into_iter().map(|r| r.id).collect();
        assert_eq!(listed, sql);
        let stats: Vec<String> = db
            .list_for_stats()
            .expect("list")
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(stats, sql);
    }
}
