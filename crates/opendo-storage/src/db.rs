use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::{Error, Result};

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

/// One object's open SQLite database.
///
/// The runtime drives transactions in two levels: a *batch* (one SQLite transaction, committed
/// once) containing one or more *events* (one savepoint each), so several queued events can share
/// one commit while a failed event rolls back alone.
#[derive(Debug)]
pub struct ObjectDb {
    pub(crate) conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS _opendo_kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
";

impl ObjectDb {
    /// Opens (creating if needed) the database at `path`. Its parent folder must exist.
    ///
    /// The file is in WAL mode with exclusive locking: one connection per object, no `-shm` file.
    /// A database left by a crash is recovered by SQLite here.
    pub fn open(path: &Path, durability: Durability) -> Result<Self> {
        let conn = Connection::open(path)?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Relaxed => "NORMAL",
        };
        // Exclusive locking must be set before WAL so SQLite keeps the WAL index in memory.
        conn.execute_batch(&format!(
            "PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA journal_size_limit = 4194304;"
        ))?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt(format!(
                "could not switch {} to WAL (mode is {mode})",
                path.display()
            )));
        }
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn, path: path.to_path_buf() })
    }

    /// The file this database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the transaction that a batch of events shares.
    pub fn begin_batch(&mut self) -> Result<()> {
        self.run("BEGIN IMMEDIATE")
    }

    /// Makes the batch durable (per the database's [`Durability`]).
    pub fn commit_batch(&mut self) -> Result<()> {
        self.run("COMMIT")
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
    pub fn finish_event(&mut self, keep: bool) -> Result<()> {
        if !keep {
            self.run("ROLLBACK TO _opendo_event")?;
        }
        self.run("RELEASE _opendo_event")
    }

    /// Whether a batch transaction is open.
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Closes the database, checkpointing the WAL into the main file.
    pub fn close(self) -> Result<()> {
        self.conn.close().map_err(|(_, e)| Error::Sqlite(e))
    }

    pub(crate) fn run(&self, sql: &str) -> Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Runs `f` atomically: if it fails, whatever it wrote is undone.
    pub(crate) fn atomically<T>(&mut self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.run("SAVEPOINT _opendo_op")?;
        match f(self) {
            Ok(value) => {
                self.run("RELEASE _opendo_op")?;
                Ok(value)
            }
            Err(err) => {
                self.run("ROLLBACK TO _opendo_op")?;
                self.run("RELEASE _opendo_op")?;
                Err(err)
            }
        }
    }
}
