//! What an operator sees of an object's database and does to it as a whole (the admin API): a
//! summary, read-only SQL, a snapshot to export, and checking a snapshot to import.
//!
//! The caller gives these exclusive access to the database, as for events: the runtime runs them
//! in the object's actor, between batches; the offline tools hold the data directory's lock.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, MAIN_DB, OptionalExtension};

use crate::alarm::Alarm;
use crate::db::ObjectDb;
use crate::error::{Error, Result};
use crate::files::{FORMAT_VERSION_BYTES, ROLLBACK_FORMAT, WAL_FORMAT};
use crate::sandbox;
use crate::sql::SqlResult;
use crate::wal::Durability;

/// What an object's database holds, in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The name it was created under, if recorded.
    pub name: Option<String>,
    /// Bytes of the database (pages in use times page size).
    pub size_bytes: u64,
    /// Keys in the KV store.
    pub kv_keys: u64,
    /// The tables the object's SQL created, by name, with their row counts.
    pub tables: Vec<TableRows>,
    pub alarm: Option<Alarm>,
}

/// A table and how many rows it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    pub name: String,
    pub rows: u64,
}

/// A snapshot checked for import: the database image to write, and the alarm it holds.
#[derive(Debug)]
pub struct Import {
    pub(crate) image: Vec<u8>,
    pub alarm: Option<Alarm>,
}

const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

impl ObjectDb {
    /// The object's name, size, KV key count, tables with row counts, and alarm.
    pub fn summary(&self) -> Result<Summary> {
        let kv_keys: i64 = self.conn.query_row("SELECT count(*) FROM _opendo_kv", [], |row| row.get(0))?;
        Ok(Summary {
            name: self.name()?,
            size_bytes: self.database_size()?,
            kv_keys: u64::try_from(kv_keys).unwrap_or(0),
            tables: table_rows(&self.conn)?,
            alarm: self.get_alarm()?,
        })
    }

    /// Runs one statement of SQL that only reads, judged by the guest sandbox (the runtime's
    /// tables are out of reach) and stopped at `deadline`. A statement that would write, or more
    /// than one statement, is refused with [`Error::NotAuthorized`] before it runs.
    pub fn query_read_only(&mut self, query: &str, deadline: Instant) -> Result<SqlResult> {
        let single = query.trim_end_matches(|c: char| c.is_whitespace() || c == ';');
        crate::sql::check_guest_text(single)?;
        if single.trim().is_empty() {
            return Err(Error::InvalidArgument("no SQL statement given".into()));
        }
        let (len, _) = crate::ffi::first_statement(&self.conn, single)
            .map_err(|err| crate::sql::guest_error(err, self.sandbox.take_denial()))?;
        if !single[len..].trim().is_empty() {
            return Err(Error::NotAuthorized("only one statement at a time is run here".into()));
        }
        self.set_deadline(Some(deadline));
        let result = crate::sql::read_only(&self.conn, &self.sandbox, single);
        self.set_deadline(None);
        result
    }

    /// A consistent copy of the whole database as of the last commit (the WAL's frames
    /// included), in SQLite's file format. Called between batches.
    pub fn snapshot(&mut self) -> Result<Vec<u8>> {
        if self.in_transaction() {
            return Err(Error::Transaction("a snapshot is taken between batches only".into()));
        }
        Ok(self.conn.serialize(MAIN_DB)?.to_vec())
    }
}

/// User tables (not SQLite's, not the runtime's) with their row counts, by name.
fn table_rows(conn: &Connection) -> Result<Vec<TableRows>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let names = stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut tables = Vec::new();
    for name in names.into_iter().filter(|name| !sandbox::is_reserved(name)) {
        let quoted = name.replace('"', "\"\"");
        let rows: i64 =
            conn.query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |row| row.get(0))?;
        tables.push(TableRows { name, rows: u64::try_from(rows).unwrap_or(0) });
    }
    Ok(tables)
}

/// Checks that `bytes` is an object database this runtime can take: a SQLite file that passes
/// `PRAGMA integrity_check`, holds the runtime's tables exactly as the runtime makes them, and
/// is no larger than `storage_cap`. The copy gets `name` as its recorded name (none for `None`),
/// so importing under another name makes a copy of the object. Nothing is written to disk.
pub fn check_import(bytes: &[u8], storage_cap: u64, name: Option<&str>) -> Result<Import> {
    if !bytes.starts_with(SQLITE_HEADER) || bytes.len() < 100 {
        return Err(Error::InvalidArgument("the import is not a SQLite database".into()));
    }
    if bytes.len() as u64 > storage_cap {
        return Err(Error::StorageFull(format!(
            "the import is {} bytes, over the storage cap of {storage_cap} bytes",
            bytes.len()
        )));
    }
    // An in-memory database cannot be in WAL mode: read it as a rollback-journal file.
    let mut image = bytes.to_vec();
    for offset in FORMAT_VERSION_BYTES {
        image[offset] = ROLLBACK_FORMAT;
    }
    let mut conn = Connection::open_in_memory()?;
    let len = image.len();
    conn.deserialize_read_exact(MAIN_DB, image.as_slice(), len, false).map_err(|err| {
        Error::InvalidArgument(format!("the import is not a readable SQLite database: {err}"))
    })?;
    let damaged = |err: rusqlite::Error| Error::InvalidArgument(format!("the import is damaged: {err}"));
    let check: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).map_err(damaged)?;
    if check != "ok" {
        return Err(Error::InvalidArgument(format!("the import fails SQLite's integrity check: {check}")));
    }
    let fresh = Connection::open_in_memory()?;
    fresh.execute_batch(crate::schema::SCHEMA)?;
    let expected = runtime_schema(&fresh)?;
    if runtime_schema(&conn).map_err(|err| Error::InvalidArgument(err.to_string()))? != expected {
        return Err(Error::InvalidArgument(
            "the import is not an open-do object: it lacks the runtime's tables (_opendo_kv, _opendo_alarm, _opendo_meta) as the runtime makes them".into(),
        ));
    }
    let alarm = conn
        .query_row("SELECT time_ms, retry_count FROM _opendo_alarm WHERE id = 0", [], |row| {
            Ok(Alarm { time_ms: row.get(0)?, retry_count: row.get(1)? })
        })
        .optional()
        .map_err(|err| Error::InvalidArgument(format!("the import's alarm is unreadable: {err}")))?;
    match name {
        Some(name) => {
            conn.execute("INSERT OR REPLACE INTO _opendo_meta (key, value) VALUES ('name', ?1)", [name])?
        }
        None => conn.execute("DELETE FROM _opendo_meta WHERE key = 'name'", [])?,
    };
    let mut image = conn.serialize(MAIN_DB)?.to_vec();
    for offset in FORMAT_VERSION_BYTES {
        image[offset] = WAL_FORMAT;
    }
    Ok(Import { image, alarm })
}

/// Puts a checked import at `path` in place of the object's database, which must be closed with
/// its WAL checkpointed (or not exist). A crash leaves the old database or the new one, whole.
pub fn replace_database(path: &Path, import: &Import, durability: Durability) -> Result<()> {
    crate::files::replace(path, &import.image, durability != Durability::Relaxed)
}

/// Deletes the object database at `path`, which must be closed with its WAL checkpointed, with
/// its WAL. Returns whether there was one.
pub fn delete_database(path: &Path) -> Result<bool> {
    crate::files::remove(path)
}

/// The runtime's tables as SQLite records them: (name, sql), by name.
fn runtime_schema(conn: &Connection) -> Result<Vec<(String, Option<String>)>> {
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM sqlite_schema WHERE name LIKE '\\_opendo\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    Ok(stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::SqlValue;

    fn object(dir: &std::path::Path) -> ObjectDb {
        let mut db = ObjectDb::open(&dir.join("a.sqlite"), Durability::Relaxed).unwrap();
        db.record_name_at_creation("alice");
        db.begin_batch().unwrap();
        db.put("k1", b"v1").unwrap();
        db.put("k2", &[0xff, 0]).unwrap();
        db.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('a'), ('b')", &[]).unwrap();
        db.set_alarm(5_000).unwrap();
        db.commit_batch().unwrap();
        db
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn a_summary_counts_keys_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let summary = object(dir.path()).summary().unwrap();
        assert_eq!(summary.name.as_deref(), Some("alice"));
        assert_eq!(summary.kv_keys, 2);
        assert_eq!(summary.tables, [TableRows { name: "notes".into(), rows: 2 }]);
        assert_eq!(summary.alarm.map(|a| a.time_ms), Some(5_000));
        assert!(summary.size_bytes > 0);
    }

    #[test]
    fn read_only_sql_reads_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = object(dir.path());
        let result = db.query_read_only("SELECT body FROM notes ORDER BY body;", soon()).unwrap();
        assert_eq!(result.rows, [[SqlValue::Text("a".into())], [SqlValue::Text("b".into())]]);
        for writing in [
            "DELETE FROM notes",
            "INSERT INTO notes VALUES ('c')",
            "DROP TABLE notes",
            "CREATE TABLE t (x)",
            "SELECT 1; DELETE FROM notes",
            "SELECT * FROM _opendo_kv",
            "PRAGMA foreign_keys = OFF",
            "BEGIN",
        ] {
            let err = db.query_read_only(writing, soon()).unwrap_err();
            assert!(matches!(err, Error::NotAuthorized(_)), "{writing}: {err:?}");
        }
        let err = db.query_read_only("SELEC 1", soon()).unwrap_err();
        assert!(matches!(err, Error::Sql { .. }), "{err:?}");
        assert_eq!(db.summary().unwrap().tables[0].rows, 2, "nothing was written");
        let endless =
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n";
        let err = db.query_read_only(endless, Instant::now() + Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::Interrupted), "{err:?}");
    }

    #[test]
    fn a_snapshot_imports_under_another_name_with_its_data_and_alarm() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = object(dir.path());
        let snapshot = db.snapshot().unwrap();
        let import = check_import(&snapshot, u64::MAX, Some("bob")).unwrap();
        assert_eq!(import.alarm.map(|a| a.time_ms), Some(5_000));
        let path = dir.path().join("b.sqlite");
        replace_database(&path, &import, Durability::Full).unwrap();
        let copy = ObjectDb::open(&path, Durability::Relaxed).unwrap();
        assert_eq!(copy.name().unwrap().as_deref(), Some("bob"));
        assert_eq!(copy.get("k2").unwrap().as_deref(), Some(&[0xff, 0][..]));
        assert_eq!(copy.summary().unwrap().tables[0].rows, 2);
        assert_eq!(copy.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn imports_that_are_not_objects_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = object(dir.path()).snapshot().unwrap();
        let refused = |bytes: &[u8], cap: u64| check_import(bytes, cap, None).unwrap_err().to_string();
        assert!(refused(b"hello", u64::MAX).contains("not a SQLite database"));
        assert!(refused(&snapshot, 100).contains("storage cap"));
        let mut torn = snapshot.clone();
        torn.truncate(snapshot.len() / 2 + 1);
        let err = refused(&torn, u64::MAX);
        assert!(err.contains("damaged") || err.contains("integrity") || err.contains("readable"), "{err}");
        let mut scribbled = snapshot.clone();
        for byte in &mut scribbled[4096..8192] {
            *byte = 0x5a;
        }
        let err = refused(&scribbled, u64::MAX);
        assert!(err.contains("damaged") || err.contains("integrity"), "{err}");
        let plain = Connection::open_in_memory().unwrap();
        plain.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1)").unwrap();
        let mut plain = plain;
        let bytes = plain.serialize(MAIN_DB).unwrap().to_vec();
        assert!(refused(&bytes, u64::MAX).contains("lacks the runtime's tables"));
    }
}
