//! [`ObjectDb`]: one object's open database, the facade over its parts (`wal.rs`, `cap.rs`,
//! `txn.rs`, `sandbox.rs`). The operations on it are grouped by concern: `batch.rs` (the event
//! transactions the runtime drives), `meta.rs`, `kv.rs`, `sql.rs`, `alarm.rs`.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};

use crate::cap::Cap;
use crate::error::{Error, Result};
use crate::ffi;
use crate::sandbox::Sandbox;
use crate::schema::{SCHEMA, has_runtime_tables};
use crate::txn::{TransactionId, Transactions};
use crate::wal::{Durability, Wal};

/// Default storage cap of one object.
pub const DEFAULT_STORAGE_CAP: u64 = 10 * 1024 * 1024 * 1024;

/// Longest WAL that [`ObjectDb::close_keeping_wal`] leaves in place; a longer one is
/// checkpointed as [`ObjectDb::close`] does. It bounds both the disk an evicted object keeps in
/// its WAL and what its next open reads back.
pub const KEPT_WAL_LIMIT: u64 = 64 * 1024;

/// How an object database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub durability: Durability,
    /// Largest size the database may grow to, in bytes; writes past it fail with
    /// [`Error::StorageFull`].
    pub storage_cap: u64,
    /// Take SQLite's file locks (POSIX advisory locks), held from open to close: for a data
    /// directory that several processes share (a cluster's nodes), where the second to open an
    /// object gets [`Error::InUse`] instead of a database both would write. Without them (the
    /// default) the caller keeps every other connection out itself.
    pub file_locks: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { durability: Durability::Full, storage_cap: DEFAULT_STORAGE_CAP, file_locks: false }
    }
}

impl From<Durability> for Settings {
    fn from(durability: Durability) -> Self {
        Settings { durability, ..Settings::default() }
    }
}

/// Rows the object's KV and SQL calls read and wrote (see [`ObjectDb::take_row_counts`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    /// KV keys looked up or listed, plus what SQL statements returned and scanned.
    pub read: u64,
    /// KV entries stored or deleted, plus rows SQL statements inserted, updated or deleted.
    pub written: u64,
}

/// One object's open SQLite database.
///
/// The runtime drives transactions in two levels: a *batch* (one SQLite transaction, committed
/// once) containing one or more *events* (one savepoint each), so several queued events can share
/// one commit while a failed event rolls back alone.
#[derive(Debug)]
pub struct ObjectDb {
    pub(crate) conn: Connection,
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) cap: Cap,
    transactions: Transactions,
    /// Writes to the alarm made through this handle; counted by `alarm.rs` only (see
    /// [`ObjectDb::alarm_writes`]).
    pub(crate) alarm_writes: u64,
    /// The running event is the only one in its batch, so it has no savepoint of its own; set by
    /// `batch.rs` only (see [`ObjectDb::begin_event`]).
    pub(crate) event_alone: bool,
    /// The name to record with the first batch that commits; set and cleared by `meta.rs` only.
    pub(crate) pending_name: Option<String>,
    rows: Cell<RowCounts>,
    path: PathBuf,
    /// Declared after `conn`, so the syncs it owes on closing run after SQLite closed the files.
    pub(crate) wal: Wal,
}

impl ObjectDb {
    /// Opens (creating if needed) the database at `path`. Its parent folder must exist.
    ///
    /// The file is in WAL mode with exclusive locking: one connection per object, no `-shm` file.
    /// It is opened without file locks (SQLite's `unix-none`): the caller makes sure no other
    /// connection opens it, in this process or another ([`crate::layout::lock_data_dir`]). With
    /// [`Settings::file_locks`] it holds an exclusive POSIX lock on the file until it is closed,
    /// and fails with [`Error::InUse`] while another process holds the file.
    /// A database left by a crash is recovered by SQLite here.
    pub fn open(path: &Path, settings: impl Into<Settings>) -> Result<Self> {
        let settings = settings.into();
        let wal = Wal::prepare(path, settings.durability)?;
        // SQLite's default VFS keeps every open file in one list, searched under a global mutex
        // on each open: with thousands of objects active, opening one more cost time in
        // proportion to them. `unix-none` does no file locking and keeps no such list.
        let vfs = if settings.file_locks { c"unix" } else { c"unix-none" };
        let mut conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs)?;
        if settings.file_locks {
            // Another process's lock is held until it closes the object: fail fast, the caller
            // decides whether to try again.
            conn.busy_timeout(std::time::Duration::from_millis(100))?;
        }
        let (synchronous, autocheckpoint) = wal.settings();
        // Exclusive locking must be set before WAL so SQLite keeps the WAL index in memory (and,
        // with file locks, takes the file's exclusive lock on this first access).
        conn.execute_batch(&format!(
            "PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA wal_autocheckpoint = {autocheckpoint};
             PRAGMA journal_size_limit = 4194304;
             PRAGMA foreign_keys = ON;"
        ))
        .map_err(|err| match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Error::InUse(format!("{} is open in another process", path.display()))
            }
            _ => err.into(),
        })?;
        ffi::keep_wal_file(&conn)?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt(format!(
                "could not switch {} to WAL (mode is {mode})",
                path.display()
            )));
        }
        // Checked in the schema SQLite has just read: running the statements on every wake cost a
        // parse and an empty write transaction.
        if !wal.created() && !has_runtime_tables(&conn)? {
            conn.execute_batch(SCHEMA)?;
        }
        let cap = Cap::install(&conn, settings.storage_cap)?;
        let sandbox = Arc::new(Sandbox::default());
        sandbox.install(&mut conn)?;
        Ok(Self {
            conn,
            sandbox,
            cap,
            transactions: Transactions::default(),
            alarm_writes: 0,
            event_alone: false,
            pending_name: None,
            rows: Cell::default(),
            path: path.to_path_buf(),
            wal,
        })
    }

    /// The file this database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rows read and written since the last call (a counter for the runtime's metrics).
    pub fn take_row_counts(&mut self) -> RowCounts {
        self.rows.take()
    }

    pub(crate) fn count_rows(&self, read: u64, written: u64) {
        let rows = self.rows.get();
        self.rows.set(RowCounts { read: rows.read + read, written: rows.written + written });
    }

    /// Statements still running at `deadline` are interrupted with [`Error::Interrupted`].
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.sandbox.set_deadline(deadline);
    }

    /// Runs SQLite's integrity check: `"ok"` means the file is sound.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }

    /// Bytes the database file takes (pages in use times page size).
    pub fn database_size(&self) -> Result<u64> {
        self.cap.database_size(&self.conn)
    }

    /// Opens a guest transaction nested in whatever is open (see `txn.rs`).
    pub fn begin_transaction(&mut self) -> Result<TransactionId> {
        self.transactions.begin(&self.conn)
    }

    /// Keeps the writes of transaction `id` (they become part of the enclosing one).
    pub fn commit_transaction(&mut self, id: TransactionId) -> Result<()> {
        self.transactions.commit(&self.conn, id)
    }

    /// Undoes the writes of transaction `id` and of every transaction inside it.
    pub fn rollback_transaction(&mut self, id: TransactionId) -> Result<()> {
        self.transactions.rollback(&self.conn, id)
    }

    /// Whether transaction `id` is open.
    pub fn is_transaction_open(&self, id: TransactionId) -> bool {
        self.transactions.is_open(id)
    }

    /// Whether the guest has a transaction open.
    pub(crate) fn any_transaction_open(&self) -> bool {
        self.transactions.any_open()
    }

    /// Rolls back the transactions the guest left open (at the end of its event).
    pub(crate) fn rollback_open_transactions(&mut self) -> Result<()> {
        self.transactions.rollback_all(&self.conn)
    }

    /// Closes the database, checkpointing the WAL into the main file.
    ///
    /// The WAL file stays, emptied, and its emptiness is synced in [`Durability::Relaxed`] (the
    /// next open relies on it; see `wal.rs`).
    pub fn close(mut self) -> Result<()> {
        self.wal.sync_from_now_on(&self.conn)?;
        // Everything into the database file and the WAL emptied: the WAL file stays (see
        // `ffi::keep_wal_file`), at zero bytes.
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        self.conn.close().map_err(|(_, e)| Error::Sqlite(e))?;
        self.wal.closed()
    }

    /// Closes the database without a checkpoint when its WAL holds at most [`KEPT_WAL_LIMIT`]
    /// bytes (otherwise as [`ObjectDb::close`]). For an object that will likely be opened again
    /// soon, such as one evicted to make room for another: closing writes and syncs nothing,
    /// where a checkpoint costs a sync of the WAL, a sync of the database file and a truncation.
    /// The next open reads the frames back from the WAL.
    ///
    /// Nothing committed becomes less durable: in the modes that sync commits, every committed
    /// frame was synced by its commit; in [`Durability::Relaxed`] a crash may lose the last
    /// commits either way. Frames SQLite wrote for a rolled-back transaction carry no commit
    /// mark, and recovery ignores them.
    pub fn close_keeping_wal(mut self) -> Result<()> {
        let wal_len = std::fs::metadata(crate::files::wal_path(&self.path)).map_or(u64::MAX, |m| m.len());
        if wal_len > KEPT_WAL_LIMIT {
            return self.close();
        }
        self.conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        self.wal.keep_frames();
        self.conn.close().map_err(|(_, e)| Error::Sqlite(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files;
    use crate::wal::AUTOCHECKPOINT_PAGES;

    /// SQLite's `synchronous` (0 off, 1 normal, 2 full) and `wal_autocheckpoint`.
    fn sync_settings(db: &ObjectDb) -> (i64, i64) {
        let synchronous = db.conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).unwrap();
        let autocheckpoint = db.conn.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0)).unwrap();
        (synchronous, autocheckpoint)
    }

    fn write_batch(db: &mut ObjectDb, value: &[u8]) -> bool {
        db.begin_batch().unwrap();
        db.put("k", value).unwrap();
        db.commit_batch().unwrap()
    }

    /// A new object database in `dir` (Relaxed) after one batch wrote "1" under "k".
    fn written_once(dir: &Path) -> (PathBuf, ObjectDb) {
        let path = dir.join("a.sqlite");
        let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
        assert!(write_batch(&mut db, b"1"));
        (path, db)
    }

    #[test]
    fn an_empty_wal_is_synced_and_checkpointed_from_its_first_commit_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
        assert_eq!(sync_settings(&db), (0, 0));
        assert!(write_batch(&mut db, b"1"));
        assert_eq!(sync_settings(&db), (1, i64::from(AUTOCHECKPOINT_PAGES)));
        db.close().unwrap();

        // Closing emptied the WAL: a wake starts unsynced again.
        assert!(files::wal_is_empty(&path));
        let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
        assert_eq!(sync_settings(&db), (0, 0));
        assert!(!read_batch(&mut db), "nothing written: nothing to flush");
        assert_eq!(sync_settings(&db), (0, 0), "the start stays unsynced until a write");
        assert!(write_batch(&mut db, b"2"));
        assert_eq!(sync_settings(&db), (1, i64::from(AUTOCHECKPOINT_PAGES)));
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn a_wal_holding_frames_is_synced_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let (path, db) = written_once(dir.path());
        // Crash-like: the WAL keeps its frames.
        std::mem::forget(db);
        assert!(!files::wal_is_empty(&path));
        let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
        assert_eq!(sync_settings(&db), (1, i64::from(AUTOCHECKPOINT_PAGES)));
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn full_durability_syncs_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ObjectDb::open(&dir.path().join("a.sqlite"), Durability::Full).unwrap();
        assert_eq!(sync_settings(&db), (2, i64::from(AUTOCHECKPOINT_PAGES)));
        assert!(!write_batch(&mut db, b"1"), "SQLite synced it: no flush for the caller");
        assert_eq!(sync_settings(&db), (2, i64::from(AUTOCHECKPOINT_PAGES)));
    }

    #[test]
    fn closing_for_an_eviction_keeps_a_short_wal_and_checkpoints_a_long_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let wal_len = || std::fs::metadata(files::wal_path(&path)).unwrap().len();
        let full = (2, i64::from(AUTOCHECKPOINT_PAGES));
        let mut db = ObjectDb::open(&path, Durability::SharedCreation).unwrap();
        assert!(write_batch(&mut db, b"1"));
        assert!(!write_batch(&mut db, b"2"));
        db.close_keeping_wal().unwrap();
        let kept = wal_len();
        assert!(kept > 0 && kept <= KEPT_WAL_LIMIT, "the WAL keeps its frames: {kept} bytes");

        // The next open reads them back, and syncs from its first commit on.
        let mut db = ObjectDb::open(&path, Durability::SharedCreation).unwrap();
        assert_eq!(sync_settings(&db), full);
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"2"[..]));

        // Past the limit, the WAL is checkpointed and emptied, as by `close`.
        let big = vec![7u8; usize::try_from(KEPT_WAL_LIMIT).unwrap()];
        assert!(!write_batch(&mut db, &big));
        assert!(wal_len() > KEPT_WAL_LIMIT);
        db.close_keeping_wal().unwrap();
        assert!(files::wal_is_empty(&path));
        let db = ObjectDb::open(&path, Durability::SharedCreation).unwrap();
        assert_eq!(db.get("k").unwrap(), Some(big));
        assert_eq!(db.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn a_database_made_otherwise_gets_the_runtime_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        // Made by plain SQLite: rollback journal, one table of its own, and only one of ours.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE notes (body TEXT);
             CREATE TABLE _opendo_kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;",
        )
        .unwrap();
        drop(conn);
        let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
        assert!(has_runtime_tables(&db.conn).unwrap());
        assert!(write_batch(&mut db, b"1"));
        db.begin_batch().unwrap();
        db.set_alarm(5_000).unwrap();
        db.commit_batch().unwrap();
        db.close().unwrap();
        let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(db.get_alarm().unwrap().map(|alarm| alarm.time_ms), Some(5_000));
        assert_eq!(db.integrity_check().unwrap(), "ok");
    }

    fn read_batch(db: &mut ObjectDb) -> bool {
        db.begin_batch().unwrap();
        db.get("k").unwrap();
        db.commit_batch().unwrap()
    }

    #[test]
    fn a_shared_creation_leaves_only_a_new_databases_first_commit_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let full = (2, i64::from(AUTOCHECKPOINT_PAGES));
        let mut db = ObjectDb::open(&path, Durability::SharedCreation).unwrap();
        assert_eq!(sync_settings(&db), (0, 0));
        assert!(write_batch(&mut db, b"1"), "the new file and its first commit: the caller flushes");
        assert_eq!(sync_settings(&db), full);
        assert!(!write_batch(&mut db, b"2"), "synced by SQLite");
        assert!(!read_batch(&mut db));
        db.close().unwrap();

        // A wake: the WAL is empty again. A batch that writes nothing leaves the start unsynced.
        assert!(files::wal_is_empty(&path));
        let mut db = ObjectDb::open(&path, Durability::SharedCreation).unwrap();
        assert!(!read_batch(&mut db), "nothing written: nothing to flush");
        assert_eq!(sync_settings(&db), (0, 0));
        assert!(!write_batch(&mut db, b"3"), "the database syncs its WAL itself");
        assert_eq!(sync_settings(&db), full);
        assert!(!write_batch(&mut db, b"4"));

        // A WAL left holding frames (a crash) is synced from the start.
        std::mem::forget(db);
        assert!(!files::wal_is_empty(&path));
        let mut db = ObjectDb::open(&path, Durability::SharedCreation).unwrap();
        assert_eq!(sync_settings(&db), full);
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"4"[..]));
        assert!(!write_batch(&mut db, b"5"));
    }

    #[test]
    fn a_new_database_closed_before_its_first_commit_syncs_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| ObjectDb::open(&dir.path().join(name), Durability::SharedCreation).unwrap();
        let syncs = || files::tests::FOLDER_SYNCS.with(|syncs| syncs.get());
        let start = syncs();

        // The first commit hands the new files to the caller's flush.
        let mut db = open("committed.sqlite");
        assert!(write_batch(&mut db, b"1"));
        db.close().unwrap();
        assert_eq!(syncs(), start, "covered by the caller's flush");

        // The first batch fails and the object closes.
        let mut db = open("failed.sqlite");
        db.begin_batch().unwrap();
        db.put("k", b"1").unwrap();
        db.rollback_batch().unwrap();
        db.close().unwrap();
        assert_eq!(syncs(), start + 1);

        // Opened and dropped without a batch (the object failed to start), or evicted.
        drop(open("dropped.sqlite"));
        assert_eq!(syncs(), start + 2);
        open("evicted.sqlite").close_keeping_wal().unwrap();
        assert_eq!(syncs(), start + 3);

        // Opening an existing file creates nothing.
        drop(open("failed.sqlite"));
        assert_eq!(syncs(), start + 3);
    }
}
