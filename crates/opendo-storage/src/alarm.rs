//! Alarms: one per object, stored in the object's own database (the truth), and mirrored in a
//! namespace-level [`AlarmIndex`] so a scheduler can find due alarms without opening every file.
//!
//! # Crash ordering
//! The invariant: for every object whose database holds an alarm at time `t`, the index holds
//! an entry for it at a time `<= t`. The runtime keeps it by
//! 1. before committing a batch that set or moved an alarm to `t`, lowering the index entry to
//!    `min(entry, t)` ([`AlarmIndex::lower`], durable);
//! 2. committing the object's database;
//! 3. only then setting the entry to the exact time, or removing it if the alarm is gone.
//!
//! A crash after 1 leaves an entry that is early or points at no alarm: the scheduler wakes the
//! object, which compares with its database, fires nothing, and corrects the entry. A crash after
//! 2 leaves the same. So no alarm that a committed (let alone answered) event set is ever lost;
//! at worst an object is woken once for nothing.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::ObjectDb;
use crate::error::Result;
use crate::id::ObjectId;
use crate::statements::run;
use crate::wal::Durability;

/// An object's alarm as stored: when it is due, and how many times it failed and was retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    /// Due time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// Failed runs so far (0 for an alarm that has not failed yet).
    pub retry_count: u32,
}

/// More than a row of the alarm table takes (three integers and SQLite's record header).
const ALARM_ROW_BYTES: usize = 64;

impl ObjectDb {
    /// The object's alarm, if one is set.
    pub fn get_alarm(&self) -> Result<Option<Alarm>> {
        let mut stmt =
            self.conn.prepare_cached("SELECT time_ms, retry_count FROM _opendo_alarm WHERE id = 0")?;
        Ok(stmt
            .query_row([], |row| Ok(Alarm { time_ms: row.get(0)?, retry_count: row.get(1)? }))
            .optional()?)
    }

    /// Sets (or replaces) the alarm; a new alarm starts with no retries.
    pub fn set_alarm(&mut self, time_ms: i64) -> Result<()> {
        self.put_alarm(Alarm { time_ms, retry_count: 0 })
    }

    /// Stores `alarm` as is (the runtime uses it to schedule a retry).
    pub fn put_alarm(&mut self, alarm: Alarm) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO _opendo_alarm (id, time_ms, retry_count) VALUES (0, ?1, ?2)",
        )?;
        stmt.execute(params![alarm.time_ms, alarm.retry_count])?;
        drop(stmt);
        self.cap.may_have_grown(self.cap.most_one_row_adds(ALARM_ROW_BYTES));
        self.count_alarm_write();
        Ok(())
    }

    /// Removes the alarm, if any.
    pub fn delete_alarm(&mut self) -> Result<()> {
        self.count_alarm_write();
        run(&self.conn, "DELETE FROM _opendo_alarm")?;
        self.cap.may_have_grown(self.cap.most_one_row_adds(ALARM_ROW_BYTES));
        Ok(())
    }

    /// How many times the alarm was written (set, deleted, or removed by `delete_all`) through
    /// this handle, whether or not the writes were later rolled back. While it does not change,
    /// the alarm is what it was: callers can skip reading it again.
    pub fn alarm_writes(&self) -> u64 {
        self.alarm_writes
    }

    /// Counts a write to the alarm (see [`ObjectDb::alarm_writes`]), before it is made.
    pub(crate) fn count_alarm_write(&mut self) {
        self.alarm_writes += 1;
    }
}

/// The alarms of one namespace: object id, name and a time no later than its alarm.
#[derive(Debug)]
pub struct AlarmIndex {
    conn: Connection,
}

/// One entry of an [`AlarmIndex`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub id: ObjectId,
    pub name: Option<String>,
    pub time_ms: i64,
}

impl AlarmIndex {
    /// Opens (creating if needed) the index file at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self> {
        Self::open_with(path, durability, false)
    }

    /// Like [`AlarmIndex::open`], for an index that processes on several machines share (a
    /// cluster's nodes on a network filesystem): in SQLite's rollback-journal mode, which needs
    /// only the file locks, where WAL mode needs memory the processes share.
    pub fn open_shared(path: &Path, durability: Durability) -> Result<Self> {
        Self::open_with(path, durability, true)
    }

    fn open_with(path: &Path, durability: Durability, shared: bool) -> Result<Self> {
        let conn = Connection::open(path)?;
        let synchronous = if durability == Durability::Full { "FULL" } else { "NORMAL" };
        // A persistent journal, not one made and deleted per transaction: its directory entry
        // is synced once, below (SQLite syncs no directory in this build).
        let journal = if shared { "PERSIST" } else { "WAL" };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = {journal};
             PRAGMA synchronous = {synchronous};
             CREATE TABLE IF NOT EXISTS alarms (
                 id TEXT PRIMARY KEY NOT NULL,
                 name TEXT,
                 time_ms INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS alarms_by_time ON alarms (time_ms);"
        ))?;
        if shared {
            // A write, so that the journal file exists before its folder is synced.
            conn.execute_batch("PRAGMA user_version = 1")?;
        }
        if durability == Durability::Full
            && let Some(folder) = path.parent()
        {
            // SQLite does not sync directories in this build (see `files`): the index's WAL or
            // journal, created just now, must not vanish on power loss.
            crate::files::sync_folder(folder)?;
        }
        Ok(AlarmIndex { conn })
    }

    /// Makes sure the entry of `id` is no later than `time_ms` (creating it if missing).
    pub fn lower(&self, id: &ObjectId, name: Option<&str>, time_ms: i64) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO alarms (id, name, time_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET time_ms = min(time_ms, excluded.time_ms),
                                            name = coalesce(excluded.name, name)",
        )?;
        stmt.execute(params![id.to_hex(), name, time_ms])?;
        Ok(())
    }

    /// Sets the entry of `id` to exactly `time_ms`.
    pub fn set(&self, id: &ObjectId, name: Option<&str>, time_ms: i64) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO alarms (id, name, time_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET time_ms = excluded.time_ms, name = coalesce(excluded.name, name)",
        )?;
        stmt.execute(params![id.to_hex(), name, time_ms])?;
        Ok(())
    }

    /// Removes the entry of `id`.
    pub fn remove(&self, id: &ObjectId) -> Result<()> {
        self.conn.prepare_cached("DELETE FROM alarms WHERE id = ?1")?.execute([id.to_hex()])?;
        Ok(())
    }

    /// The entry time of `id`, if it has one.
    pub fn get(&self, id: &ObjectId) -> Result<Option<i64>> {
        let mut stmt = self.conn.prepare_cached("SELECT time_ms FROM alarms WHERE id = ?1")?;
        Ok(stmt.query_row([id.to_hex()], |row| row.get(0)).optional()?)
    }

    /// The earliest entry time, if any.
    pub fn next_time(&self) -> Result<Option<i64>> {
        Ok(self.conn.prepare_cached("SELECT min(time_ms) FROM alarms")?.query_row([], |row| row.get(0))?)
    }

    /// The earliest entry time after `now_ms`, if any.
    pub fn next_time_after(&self, now_ms: i64) -> Result<Option<i64>> {
        let mut stmt = self.conn.prepare_cached("SELECT min(time_ms) FROM alarms WHERE time_ms > ?1")?;
        Ok(stmt.query_row([now_ms], |row| row.get(0))?)
    }

    /// Entries due at `now_ms`, earliest first, at most `limit`. Entries whose id does not belong
    /// to `namespace` (a damaged index) are skipped.
    pub fn due(&self, namespace: &str, now_ms: i64, limit: usize) -> Result<Vec<IndexEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, time_ms FROM alarms WHERE time_ms <= ?1 ORDER BY time_ms LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit as i64], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?, row.get::<_, i64>(2)?))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (id, name, time_ms) = row?;
            if let Ok(id) = ObjectId::parse(namespace, &id) {
                entries.push(IndexEntry { id, name, time_ms });
            }
        }
        Ok(entries)
    }
}
