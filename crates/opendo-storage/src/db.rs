use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};

use crate::files;
use crate::sandbox::Sandbox;
use crate::{Error, Result};

/// Default storage cap of one object.
pub const DEFAULT_STORAGE_CAP: u64 = 10 * 1024 * 1024 * 1024;

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A commit returns once it is on disk (the WAL is fsynced): survives power loss.
    #[default]
    Full,
    /// A commit returns once it is in the operating system's cache: survives a crash of the
    /// process, may lose the last commits on power loss. Never corrupts.
    Relaxed,
}

/// How an object database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub durability: Durability,
    /// Largest size the database may grow to, in bytes; writes past it fail with
    /// [`Error::StorageFull`].
    pub storage_cap: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { durability: Durability::Full, storage_cap: DEFAULT_STORAGE_CAP }
    }
}

impl From<Durability> for Settings {
    fn from(durability: Durability) -> Self {
        Settings { durability, ..Settings::default() }
    }
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
    /// Savepoint numbers of the guest's open transactions, innermost last.
    pub(crate) transactions: Vec<u64>,
    pub(crate) next_transaction: u64,
    /// Writes to the alarm made through this handle (see [`ObjectDb::alarm_writes`]).
    pub(crate) alarm_writes: u64,
    /// The file was created by this open and its creation is not yet known to be durable: the
    /// first commit reports a write even if it wrote nothing itself.
    created: bool,
    storage_cap: u64,
    path: PathBuf,
}

// The runtime's tables. New files get them from the prebuilt image (`files`), which is built from
// this; opening runs it too (a no-op on any file this runtime made), so a file made otherwise
// gets them as well.
pub(crate) const SCHEMA: &str = "
    BEGIN;
    CREATE TABLE IF NOT EXISTS _opendo_kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS _opendo_alarm (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        time_ms INTEGER NOT NULL,
        retry_count INTEGER NOT NULL DEFAULT 0
    );
    COMMIT;
";

impl ObjectDb {
    /// Opens (creating if needed) the database at `path`. Its parent folder must exist.
    ///
    /// The file is in WAL mode with exclusive locking: one connection per object, no `-shm` file.
    /// It is opened without file locks (SQLite's `unix-none`): the caller makes sure no other
    /// connection opens it, in this process or another ([`crate::layout::lock_data_dir`]).
    /// A database left by a crash is recovered by SQLite here.
    pub fn open(path: &Path, settings: impl Into<Settings>) -> Result<Self> {
        let settings = settings.into();
        // In `Full` this database syncs its own commits, so its files' directory entries must be
        // synced too; in `Relaxed` they need not (group sync flushes them with everything else).
        let durable = settings.durability == Durability::Full;
        let created = !path.exists();
        if created {
            files::create(path, durable)?;
        } else if durable && !files::wal_path(path).exists() {
            files::create_wal(path, durable)?;
        }
        // SQLite's default VFS keeps every open file in one list, searched under a global mutex
        // on each open: with thousands of objects active, opening one more cost time in
        // proportion to them. `unix-none` does no file locking and keeps no such list.
        let mut conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), c"unix-none")?;
        let synchronous = match settings.durability {
            Durability::Full => "FULL",
            Durability::Relaxed => "NORMAL",
        };
        // Exclusive locking must be set before WAL so SQLite keeps the WAL index in memory.
        conn.execute_batch(&format!(
            "PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA journal_size_limit = 4194304;
             PRAGMA foreign_keys = ON;"
        ))?;
        keep_wal_file(&conn)?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt(format!(
                "could not switch {} to WAL (mode is {mode})",
                path.display()
            )));
        }
        conn.execute_batch(SCHEMA)?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        // The cap is checked after each write ([`ObjectDb::write_atomically`]), which can undo just
        // that write. SQLite's own limit is only a backstop above it: hitting it may roll back the
        // whole transaction.
        let hard_cap = settings.storage_cap.saturating_add((settings.storage_cap / 8).max(16 << 20));
        let max_pages = (hard_cap / u64::try_from(page_size).unwrap_or(4096).max(512)).max(16);
        conn.execute_batch(&format!("PRAGMA max_page_count = {max_pages}"))?;
        let sandbox = Arc::new(Sandbox::default());
        sandbox.install(&mut conn)?;
        Ok(Self {
            conn,
            sandbox,
            transactions: Vec::new(),
            next_transaction: 0,
            alarm_writes: 0,
            created,
            storage_cap: settings.storage_cap,
            path: path.to_path_buf(),
        })
    }

    /// The file this database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the transaction that a batch of events shares.
    pub fn begin_batch(&mut self) -> Result<()> {
        self.run("BEGIN IMMEDIATE")
    }

    /// Makes the batch durable (per the database's [`Durability`]). Returns whether anything was
    /// written to the database's files since the last commit (including by opening it), that is
    /// whether a flush of its files is needed to make this commit durable.
    pub fn commit_batch(&mut self) -> Result<bool> {
        self.run("COMMIT")?;
        let written = self.take_pages_written() > 0;
        Ok(written || std::mem::take(&mut self.created))
    }

    /// Pages written to the files (the WAL) since the last call; resets the count. If the count
    /// is unavailable, says something was written.
    fn take_pages_written(&self) -> i32 {
        self.db_status(rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE, true).unwrap_or(1)
    }

    /// Throws the whole batch away.
    pub fn rollback_batch(&mut self) -> Result<()> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.run("ROLLBACK")
    }

    /// Marks the start of one event inside the batch.
    pub fn begin_event(&mut self) -> Result<()> {
        self.run("SAVEPOINT _opendo_event")
    }

    /// Ends the current event: keeps its writes (`keep`) or rolls back to where it began.
    /// Transactions the guest left open are rolled back either way.
    ///
    /// Returns `Some(error)` if the event asked to keep its writes but they had to be rolled back
    /// because of the guest (foreign-key violations it deferred and never resolved).
    pub fn finish_event(&mut self, keep: bool) -> Result<Option<Error>> {
        self.set_deadline(None);
        if self.conn.is_autocommit() {
            // SQLite rolled the whole transaction back by itself (it does so on some I/O errors).
            return Err(Error::Corrupt("the batch transaction was rolled back by SQLite".into()));
        }
        self.rollback_open_transactions()?;
        let refused = if keep && self.deferred_foreign_key_violations() > 0 {
            Some(Error::Sql {
                code: rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
                message:
                    "FOREIGN KEY constraint failed: the event ended with deferred foreign key violations, \
                          so its writes were rolled back"
                        .into(),
            })
        } else {
            None
        };
        if !keep || refused.is_some() {
            self.run("ROLLBACK TO _opendo_event")?;
        }
        self.run("RELEASE _opendo_event")?;
        if refused.is_some() || self.deferred_foreign_key_violations() > 0 {
            // Deferral lasts until the batch commits; never let it reach the next event.
            self.run("PRAGMA defer_foreign_keys = OFF")?;
        }
        Ok(refused)
    }

    /// Foreign-key violations deferred (`PRAGMA defer_foreign_keys`) and not yet resolved.
    fn deferred_foreign_key_violations(&self) -> i32 {
        self.db_status(rusqlite::ffi::SQLITE_DBSTATUS_DEFERRED_FKS, false).unwrap_or(0)
    }

    /// The current value of one of SQLite's per-connection counters (`sqlite3_db_status`),
    /// resetting it if asked; `None` if SQLite does not know the counter.
    fn db_status(&self, counter: std::os::raw::c_int, reset: bool) -> Option<i32> {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: the handle is the live connection owned by `self`; the outputs are plain ints.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                self.conn.handle(),
                counter,
                &mut current,
                &mut highest,
                std::os::raw::c_int::from(reset),
            )
        };
        (rc == rusqlite::ffi::SQLITE_OK).then_some(current)
    }

    /// Statements still running at `deadline` are interrupted with [`Error::Interrupted`].
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.sandbox.set_deadline(deadline);
    }

    /// Whether a batch transaction is open.
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Runs SQLite's integrity check: `"ok"` means the file is sound.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }

    /// Closes the database, checkpointing the WAL into the main file.
    pub fn close(self) -> Result<()> {
        // Everything into the database file and the WAL emptied: the WAL file stays (see
        // `keep_wal_file`), at zero bytes.
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        self.conn.close().map_err(|(_, e)| Error::Sqlite(e))
    }

    pub(crate) fn run(&self, sql: &str) -> Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Runs `f` atomically: if it fails, whatever it wrote is undone.
    pub(crate) fn atomically<T>(&self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.run("SAVEPOINT _opendo_op")?;
        match f(self) {
            Ok(value) => {
                self.run("RELEASE _opendo_op")?;
                Ok(value)
            }
            Err(err) if self.conn.is_autocommit() => {
                // SQLite gave up the whole transaction (it may on a full disk or an I/O error):
                // not something one call can undo.
                Err(Error::Corrupt(format!("SQLite rolled back the transaction after: {err}")))
            }
            Err(err) => {
                self.run("ROLLBACK TO _opendo_op")?;
                self.run("RELEASE _opendo_op")?;
                Err(err)
            }
        }
    }

    /// Like [`ObjectDb::atomically`], and refuses (undoing it) a write that leaves the database
    /// larger than its storage cap.
    pub(crate) fn write_atomically<T>(&self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.atomically(|db| {
            let value = f(db)?;
            let size = db.database_size()?;
            if size > db.storage_cap {
                return Err(Error::StorageFull(format!(
                    "the object's storage would grow to {size} bytes, past its cap of {} bytes",
                    db.storage_cap
                )));
            }
            Ok(value)
        })
    }
}

/// Keeps the WAL file when the database closes (`SQLITE_FCNTL_PERSIST_WAL`). Deleting it on close
/// and creating it again on the next open made every wake of a hibernated object pay for a file
/// creation, the most expensive step of opening on ext4; an empty WAL file costs nothing.
fn keep_wal_file(conn: &Connection) -> Result<()> {
    let mut persist: std::os::raw::c_int = 1;
    // SAFETY: the handle is the live connection; the argument is the documented `int*` of
    // SQLITE_FCNTL_PERSIST_WAL, valid for the duration of the call.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            rusqlite::MAIN_DB.as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut persist).cast(),
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        return Err(Error::Corrupt(format!("could not keep the WAL file (SQLite code {rc})")));
    }
    Ok(())
}
