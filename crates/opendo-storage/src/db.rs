use std::cell::Cell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};

use crate::files;
use crate::sandbox::Sandbox;
use crate::{Error, Result};

/// Default storage cap of one object.
pub const DEFAULT_STORAGE_CAP: u64 = 10 * 1024 * 1024 * 1024;

/// SQLite's default: a commit that leaves the WAL this many pages long checkpoints it.
const AUTOCHECKPOINT_PAGES: u32 = 1000;

/// Longest WAL that [`ObjectDb::close_keeping_wal`] leaves in place; a longer one is
/// checkpointed as [`ObjectDb::close`] does. It bounds both the disk an evicted object keeps in
/// its WAL and what its next open reads back.
pub const KEPT_WAL_LIMIT: u64 = 64 * 1024;

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A commit returns once it is on disk (the WAL is fsynced): survives power loss.
    #[default]
    Full,
    /// A commit returns once it is in the operating system's cache: survives a crash of the
    /// process, may lose the last commits on power loss. Never corrupts.
    Relaxed,
    /// Like `Full`, except a new database's first commit: it is not synced, and
    /// [`ObjectDb::commit_batch`] returns `true` so that the caller makes it durable with a
    /// flush of the whole filesystem shared with other objects, which also covers the new
    /// files' directory entries. Every later commit is synced on the committing thread.
    ///
    /// Syncing each commit's own WAL, rather than flushing the filesystem for all of them, is
    /// what scales across objects: the kernel merges the device flushes of concurrent fsyncs,
    /// and each one writes only its own file, where `syncfs` walks every dirty inode and the
    /// block device's metadata, one call at a time.
    SharedCreation,
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
    /// Opened on an empty WAL and nothing written since: SQLite runs without syncs and without
    /// automatic checkpoints until the first commit that writes (see `open`).
    unsynced_wal: bool,
    durability: Durability,
    /// The running event is the only one in its batch, so it has no savepoint of its own (see
    /// [`ObjectDb::begin_event`]).
    event_alone: bool,
    storage_cap: u64,
    /// An upper bound of the database's size in bytes, while one is known: the size measured by
    /// the last cap check plus the most each write since could have added (see
    /// [`ObjectDb::write_within_cap`]). `None` until a check measures it, and after writes
    /// whose growth has no bound here.
    size_bound: Cell<Option<u64>>,
    /// Fixed for the file's life: a database in WAL mode cannot change its page size, and guest
    /// SQL may only read it (`sandbox::READ_ONLY_PRAGMAS`).
    pub(crate) page_size: u64,
    path: PathBuf,
    /// Declared after `conn`, so it runs after SQLite closed the file.
    wal_sync: WalSyncOnDrop,
    new_files: NewFilesOnDrop,
}

// The runtime's tables. New files get them from the prebuilt image (`files`), which is built from
// this; opening an existing file that lacks them runs it, so a file made otherwise gets them as
// well.
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
        // A new database in `Full` syncs its files' directory entries itself; in the other modes
        // the caller's flush of the whole filesystem after the first commit covers them. A
        // database that syncs its commits (`Full`, `SharedCreation`) and lost its WAL file
        // recreates it with a synced entry: SQLite would create it on the first write without
        // one, and no shared flush follows that commit.
        let created = !path.exists();
        if created {
            files::create(path, settings.durability == Durability::Full)?;
        } else if settings.durability != Durability::Relaxed && !files::wal_path(path).exists() {
            files::create_wal(path, true)?;
        }
        // Made before anything below can fail, so a failed open syncs the new files' folder too.
        let new_files = NewFilesOnDrop {
            folder: (created && settings.durability == Durability::SharedCreation)
                .then(|| path.parent().map(Path::to_path_buf))
                .flatten(),
        };
        // SQLite's default VFS keeps every open file in one list, searched under a global mutex
        // on each open: with thousands of objects active, opening one more cost time in
        // proportion to them. `unix-none` does no file locking and keeps no such list.
        let mut conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), c"unix-none")?;
        // SQLite syncs the header of a WAL it starts, even where commits are not synced, because
        // a restarted WAL still holds frames of the previous one on disk, which a header lost in
        // a crash would bring back. An empty WAL file holds no frames, and its emptiness is
        // durable: closing syncs it (`close`, `WalSyncOnDrop`), and so does creating a database
        // where a stale WAL was left. That is every new object and every wake after a
        // checkpointing close (an eviction may leave frames: `close_keeping_wal`). Until their
        // first commit that writes there is nothing to protect, and the sync, one per wake that
        // writes, is skipped (in `SharedCreation` that commit is then synced once, header and
        // frames together). Checkpoints must sync the database file before the WAL restarts over
        // what they copied, so they wait for that commit too.
        let unsynced_wal = settings.durability != Durability::Full && files::wal_is_empty(path);
        let (synchronous, autocheckpoint) = match settings.durability {
            _ if unsynced_wal => ("OFF", 0),
            durability => (synchronous_after_start(durability), AUTOCHECKPOINT_PAGES),
        };
        // Exclusive locking must be set before WAL so SQLite keeps the WAL index in memory.
        conn.execute_batch(&format!(
            "PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA wal_autocheckpoint = {autocheckpoint};
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
        // Checked in the schema SQLite has just read: running the statements on every wake cost a
        // parse and an empty write transaction.
        if !created && !has_runtime_tables(&conn)? {
            conn.execute_batch(SCHEMA)?;
        }
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        // The cap holds after each write ([`ObjectDb::write_atomically`], which can undo just that
        // write, and [`ObjectDb::write_within_cap`]). SQLite's own limit is only a backstop above
        // it: hitting it may roll back the whole transaction.
        let hard_cap = settings.storage_cap.saturating_add((settings.storage_cap / 8).max(16 << 20));
        let page_size = u64::try_from(page_size).unwrap_or(4096).max(512);
        let max_pages = (hard_cap / page_size).max(16);
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
            unsynced_wal,
            durability: settings.durability,
            event_alone: false,
            storage_cap: settings.storage_cap,
            size_bound: Cell::new(None),
            page_size,
            path: path.to_path_buf(),
            wal_sync: WalSyncOnDrop {
                wal: files::wal_path(path),
                armed: settings.durability != Durability::Full,
            },
            new_files,
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

    /// Commits the batch (durable per the database's [`Durability`]). Returns whether the caller
    /// must flush the filesystem to make it durable: something was written to the database's
    /// files since the last commit (including by creating them), and SQLite did not sync it.
    pub fn commit_batch(&mut self) -> Result<bool> {
        self.run("COMMIT")?;
        let created = std::mem::take(&mut self.created);
        if created {
            // Handed to the caller's flush with this commit.
            self.new_files.folder = None;
        }
        let written = self.take_pages_written() > 0 || created;
        let synced = match self.durability {
            Durability::Full => true,
            Durability::Relaxed => false,
            Durability::SharedCreation if created => false,
            // The WAL's header and first frames, which SQLite wrote without syncing (see `open`),
            // in one sync rather than SQLite's two (header, then commit).
            Durability::SharedCreation if written && self.unsynced_wal => {
                self.wal_sync.sync_data()?;
                true
            }
            Durability::SharedCreation => true,
        };
        if written {
            self.sync_wal_from_now_on()?;
        }
        Ok(written && !synced)
    }

    /// Ends the unsynced start of the WAL (see `open`) once something was committed to it.
    fn sync_wal_from_now_on(&mut self) -> Result<()> {
        if std::mem::take(&mut self.unsynced_wal) {
            self.conn.execute_batch(&format!(
                "PRAGMA synchronous = {}; PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES};",
                synchronous_after_start(self.durability)
            ))?;
        }
        Ok(())
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

    /// Marks the start of one event inside the batch. An event `alone` in its batch gets no
    /// savepoint: the batch's transaction already begins where it begins, so undoing it is
    /// undoing the batch, and the savepoint's statements would be spent on every lone event.
    pub fn begin_event(&mut self, alone: bool) -> Result<()> {
        self.event_alone = alone;
        if alone {
            return Ok(());
        }
        self.run("SAVEPOINT _opendo_event")
    }

    /// Ends the current event: keeps its writes (`keep`) or rolls back to where it began (for an
    /// event alone in its batch: rolls the batch back and begins it again, empty).
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
        match (keep && refused.is_none(), self.event_alone) {
            (true, true) => {}
            (true, false) => self.run("RELEASE _opendo_event")?,
            (false, true) => {
                self.rollback_batch()?;
                self.begin_batch()?;
            }
            (false, false) => {
                self.run("ROLLBACK TO _opendo_event")?;
                self.run("RELEASE _opendo_event")?;
            }
        }
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
    ///
    /// The WAL file stays, emptied, and its emptiness is synced in [`Durability::Relaxed`] (the
    /// next open relies on it; see `open`).
    pub fn close(mut self) -> Result<()> {
        // A checkpoint must sync the database file before emptying the WAL.
        self.sync_wal_from_now_on()?;
        // Everything into the database file and the WAL emptied: the WAL file stays (see
        // `keep_wal_file`), at zero bytes.
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        self.conn.close().map_err(|(_, e)| Error::Sqlite(e))?;
        self.wal_sync.sync_now()
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
        let wal_len = std::fs::metadata(files::wal_path(&self.path)).map_or(u64::MAX, |m| m.len());
        if wal_len > KEPT_WAL_LIMIT {
            return self.close();
        }
        self.conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        // Nothing to sync: the WAL's frames are as durable as their commits made them.
        self.wal_sync.armed = false;
        self.conn.close().map_err(|(_, e)| Error::Sqlite(e))
    }

    pub(crate) fn run(&self, sql: &str) -> Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Runs `f` atomically: if it fails, whatever it wrote is undone.
    pub(crate) fn atomically<T>(&self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        // `f` may write anything: the size is unknown until measured again.
        self.size_bound.set(None);
        self.run("SAVEPOINT _opendo_op")?;
        match f(self) {
            Ok(value) => {
                self.run("RELEASE _opendo_op")?;
                Ok(value)
            }
            Err(err) if self.conn.is_autocommit() => Err(transaction_lost(err)),
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
        let mut measured = None;
        let value = self.atomically(|db| {
            let value = f(db)?;
            let size = db.database_size()?;
            if size > db.storage_cap {
                return Err(Error::StorageFull(format!(
                    "the object's storage would grow to {size} bytes, past its cap of {} bytes",
                    db.storage_cap
                )));
            }
            measured = Some(size);
            Ok(value)
        })?;
        self.size_bound.set(measured);
        Ok(value)
    }

    /// Runs `write`, one SQL statement that adds at most `most` bytes to the database, refusing
    /// it (undone) if it leaves the database larger than its storage cap.
    ///
    /// While the size bound plus `most` stays within the cap, the write cannot pass it and runs
    /// alone. The check it skips is most of a small write's cost: SQLite prepares `PRAGMA
    /// page_count` again on every run (pragma statements run once), and the savepoint around
    /// the write is there only so that the check can undo it. A single statement needs no
    /// savepoint to fail cleanly ([`ObjectDb::one_statement`]).
    pub(crate) fn write_within_cap(&self, most: u64, write: impl FnOnce(&Self) -> Result<()>) -> Result<()> {
        let Some(after) = self.size_bound.get().and_then(|bound| bound.checked_add(most)) else {
            return self.write_atomically(write);
        };
        if after > self.storage_cap {
            return self.write_atomically(write);
        }
        self.one_statement(write)?;
        self.size_bound.set(Some(after));
        Ok(())
    }

    /// Runs `statement`, one SQL statement, without a savepoint: if it fails, SQLite undoes it by
    /// itself, or gives up the whole transaction, which is then reported as such.
    pub(crate) fn one_statement<T>(&self, statement: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        let in_transaction = !self.conn.is_autocommit();
        statement(self).map_err(|err| match in_transaction && self.conn.is_autocommit() {
            true => transaction_lost(err),
            false => err,
        })
    }

    /// Keeps the size bound an upper bound after a write of one statement that adds at most
    /// `most` bytes and is not checked against the cap (deletes, the alarm).
    pub(crate) fn may_have_grown(&self, most: u64) {
        self.size_bound.set(self.size_bound.get().and_then(|bound| bound.checked_add(most)));
    }

    /// The most one statement that inserts or deletes a single row of `row_bytes` in a b-tree
    /// can add to the database: the row's overflow pages, plus the pages that rebalancing the
    /// tree allocates: up to two per level (SQLite spreads the cells of at most three sibling
    /// pages over at most five) over at most 20 levels (`BTCURSOR_MAX_DEPTH`), and a new root;
    /// with a margin.
    pub(crate) fn most_one_row_adds(&self, row_bytes: usize) -> u64 {
        let usable = self.page_size.saturating_sub(4).max(1);
        let overflow_pages = (row_bytes as u64).saturating_add(64).div_ceil(usable);
        overflow_pages.saturating_add(2 * 20 + 1 + 8).saturating_mul(self.page_size)
    }
}

/// The error of a write after which SQLite gave up the whole transaction (it may on a full disk
/// or an I/O error): not something one call can undo.
fn transaction_lost(err: Error) -> Error {
    Error::Corrupt(format!("SQLite rolled back the transaction after: {err}"))
}

/// Whether the runtime's tables exist: always in a file made from the image (`files`); a file
/// made otherwise gets them from [`SCHEMA`] when it opens.
fn has_runtime_tables(conn: &Connection) -> Result<bool> {
    Ok(conn.table_exists(Some("main"), "_opendo_kv")? && conn.table_exists(Some("main"), "_opendo_alarm")?)
}

/// SQLite's `synchronous` for a database past its unsynced start (see `ObjectDb::open`): in WAL
/// mode `FULL` syncs the WAL at every commit, `NORMAL` only when checkpointing.
fn synchronous_after_start(durability: Durability) -> &'static str {
    match durability {
        Durability::Full | Durability::SharedCreation => "FULL",
        Durability::Relaxed => "NORMAL",
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

/// Syncs the WAL file once SQLite closed the database, so that an empty WAL found by the next
/// open is empty on disk too (see `ObjectDb::open`). SQLite empties the WAL when it closes a
/// database, also when the handle is dropped without [`ObjectDb::close`] (after an error).
#[derive(Debug)]
struct WalSyncOnDrop {
    wal: PathBuf,
    /// Only `Full` syncs new WAL headers itself (the other modes skip it); disarmed once synced.
    armed: bool,
}

impl WalSyncOnDrop {
    /// Syncs the WAL's contents (the file is open in SQLite, so it exists).
    fn sync_data(&self) -> Result<()> {
        let io = |source| Error::Io { path: self.wal.clone(), source };
        File::open(&self.wal).and_then(|file| file.sync_data()).map_err(io)
    }

    fn sync_now(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.armed) {
            return Ok(());
        }
        match File::open(&self.wal) {
            Ok(file) => file.sync_all().map_err(|source| Error::Io { path: self.wal.clone(), source }),
            // No WAL (never written, or deleted by hand): the next open starts a new file.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { path: self.wal.clone(), source }),
        }
    }
}

impl Drop for WalSyncOnDrop {
    fn drop(&mut self) {
        if let Err(err) = self.sync_now() {
            tracing::error!("syncing a closed object's WAL: {err}");
        }
    }
}

/// The folder of a new database's files in [`Durability::SharedCreation`] until its first commit hands
/// them to the caller's flush. If the database closes before that (its first batch failed, it never ran
/// one, or its open failed after creating them), the folder is synced here: a later open of the file
/// finds it existing and syncs only its WAL on commit, so nothing else would make its directory entries
/// durable.
#[derive(Debug)]
struct NewFilesOnDrop {
    folder: Option<PathBuf>,
}

impl Drop for NewFilesOnDrop {
    fn drop(&mut self) {
        if let Some(folder) = self.folder.take()
            && let Err(err) = files::sync_folder(&folder)
        {
            tracing::error!("syncing the folder of a new object's files: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Runs of `PRAGMA page_count`, the size check behind the storage cap.
    fn size_checks(db: &ObjectDb) -> u64 {
        let stmt = db.conn.prepare_cached("PRAGMA page_count").unwrap();
        u64::try_from(stmt.get_status(rusqlite::StatementStatus::Run)).unwrap()
    }

    #[test]
    fn puts_far_below_the_cap_measure_the_size_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ObjectDb::open(&dir.path().join("a.sqlite"), Durability::Relaxed).unwrap();
        db.begin_batch().unwrap();
        for n in 0..100 {
            db.put(&format!("k{n}"), b"value").unwrap();
        }
        assert_eq!(size_checks(&db), 1, "only the first put measures");
        // Deletes and the alarm add their most to the bound: puts after them still skip.
        assert!(db.delete("k1").unwrap());
        db.set_alarm(1).unwrap();
        db.delete_alarm().unwrap();
        db.put("k1", b"again").unwrap();
        assert_eq!(size_checks(&db), 1);
        // Writes of several statements and guest SQL measure again.
        db.put_many(&[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]).unwrap();
        assert_eq!(size_checks(&db), 2);
        db.exec("CREATE TABLE t (v)", &[]).unwrap();
        assert_eq!(size_checks(&db), 3);
        db.put("k2", b"after").unwrap();
        assert_eq!(size_checks(&db), 3);
        db.commit_batch().unwrap();
        assert_eq!(db.get("k1").unwrap().as_deref(), Some(&b"again"[..]));
    }

    #[test]
    fn sql_that_only_reads_is_not_measured() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ObjectDb::open(&dir.path().join("a.sqlite"), Durability::Relaxed).unwrap();
        db.begin_batch().unwrap();
        db.exec("CREATE TABLE t (v)", &[]).unwrap();
        db.exec("INSERT INTO t VALUES (?1)", &[crate::SqlValue::Integer(1)]).unwrap();
        assert_eq!(size_checks(&db), 2);
        let counted = db.exec("SELECT count(*) FROM t", &[]).unwrap();
        assert_eq!(counted.rows, vec![vec![crate::SqlValue::Integer(1)]]);
        assert_eq!(size_checks(&db), 2, "a read cannot grow the database");
        // A failing read leaves the batch as it was.
        assert!(db.exec("SELECT * FROM missing", &[]).is_err());
        db.exec("INSERT INTO t VALUES (2); SELECT 1", &[]).unwrap();
        assert_eq!(size_checks(&db), 3, "several statements are measured");
        db.commit_batch().unwrap();
        assert_eq!(
            db.exec("SELECT sum(v) FROM t", &[]).unwrap().rows,
            vec![vec![crate::SqlValue::Integer(3)]]
        );
    }
}
