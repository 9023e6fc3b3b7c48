//! The transactions the runtime drives: a batch (one SQLite transaction, committed once) of
//! events (one savepoint each, none for an event alone in its batch).

use crate::db::ObjectDb;
use crate::error::{Error, Result};
use crate::ffi;
use crate::statements::run;

impl ObjectDb {
    /// Starts the transaction that a batch of events shares.
    pub fn begin_batch(&mut self) -> Result<()> {
        run(&self.conn, "BEGIN IMMEDIATE")?;
        self.write_pending_name()
    }

    /// Commits the batch (durable per the database's `Durability`). Returns whether the caller
    /// must flush the filesystem to make it durable: something was written to the database's
    /// files since the last commit (including by creating them), and SQLite did not sync it.
    #[must_use = "a commit left unsynced (`true`) is durable only after the caller's flush"]
    pub fn commit_batch(&mut self) -> Result<bool> {
        run(&self.conn, "COMMIT")?;
        self.name_committed();
        // Pages written to the files (the WAL) since the last commit; if the count is
        // unavailable, something was.
        let pages_written = ffi::db_status(&self.conn, rusqlite::ffi::SQLITE_DBSTATUS_CACHE_WRITE, true)
            .is_none_or(|pages| pages > 0);
        self.wal.committed(&self.conn, pages_written)
    }

    /// Throws the whole batch away.
    pub fn rollback_batch(&mut self) -> Result<()> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        run(&self.conn, "ROLLBACK")
    }

    /// Whether a batch transaction is open.
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Marks the start of one event inside the batch. An event `alone` in its batch gets no
    /// savepoint: the batch's transaction already begins where it begins, so undoing it is
    /// undoing the batch, and the savepoint's statements would be spent on every lone event.
    pub fn begin_event(&mut self, alone: bool) -> Result<()> {
        self.event_alone = alone;
        if alone {
            return Ok(());
        }
        run(&self.conn, "SAVEPOINT _opendo_event")
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
            (true, false) => run(&self.conn, "RELEASE _opendo_event")?,
            (false, true) => {
                self.rollback_batch()?;
                self.begin_batch()?;
            }
            (false, false) => {
                run(&self.conn, "ROLLBACK TO _opendo_event")?;
                run(&self.conn, "RELEASE _opendo_event")?;
            }
        }
        if refused.is_some() || self.deferred_foreign_key_violations() > 0 {
            // Deferral lasts until the batch commits; never let it reach the next event.
            run(&self.conn, "PRAGMA defer_foreign_keys = OFF")?;
        }
        Ok(refused)
    }

    /// Keeps the running event's writes so far in the batch, so that the batch can be committed
    /// in the middle of the event (before a call leaves it, so the callee never sees writes the
    /// caller could still lose). The event then goes on as if alone in the next batch
    /// transaction: [`ObjectDb::finish_event`] undoes only what it writes from here.
    ///
    /// Fails, changing nothing, with [`Error::Transaction`] while the guest has a transaction
    /// open (committing would end it), and with a FOREIGN KEY error while violations it
    /// deferred remain (the commit would fail).
    pub fn end_event_early(&mut self) -> Result<()> {
        if self.any_transaction_open() {
            return Err(Error::Transaction(
                "a transaction is open; commit or roll it back before the call".into(),
            ));
        }
        if self.deferred_foreign_key_violations() > 0 {
            return Err(Error::Sql {
                code: rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
                message: "FOREIGN KEY constraint failed: deferred foreign key violations must be resolved \
                          before the call"
                    .into(),
            });
        }
        if !self.event_alone {
            run(&self.conn, "RELEASE _opendo_event")?;
            self.event_alone = true;
        }
        Ok(())
    }

    /// Foreign-key violations deferred (`PRAGMA defer_foreign_keys`) and not yet resolved.
    fn deferred_foreign_key_violations(&self) -> i32 {
        ffi::db_status(&self.conn, rusqlite::ffi::SQLITE_DBSTATUS_DEFERRED_FKS, false).unwrap_or(0)
    }
}
