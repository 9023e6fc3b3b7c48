//! Transactions a guest opens inside its event: nested savepoints.
//!
//! They nest: the innermost open transaction must end first. Committing one that still has an
//! inner transaction open is refused; rolling one back also rolls back (and ends) every inner one.
//! A transaction left open when the event ends is rolled back.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::statements::run;

/// A guest transaction, by number. Numbers are never reused within a connection.
pub type TransactionId = u64;

/// The guest's open transactions on one connection.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    /// Savepoint numbers of the open transactions, innermost last.
    open: Vec<TransactionId>,
    next: TransactionId,
}

impl Transactions {
    /// Opens a transaction nested in whatever is open.
    pub(crate) fn begin(&mut self, conn: &Connection) -> Result<TransactionId> {
        let id = self.next;
        self.next += 1;
        run(conn, &savepoint_sql("SAVEPOINT", id))?;
        self.open.push(id);
        Ok(id)
    }

    /// Keeps the writes of transaction `id` (they become part of the enclosing one).
    pub(crate) fn commit(&mut self, conn: &Connection, id: TransactionId) -> Result<()> {
        match self.open.last() {
            Some(&innermost) if innermost == id => {
                run(conn, &savepoint_sql("RELEASE", id))?;
                self.open.pop();
                Ok(())
            }
            _ if self.open.contains(&id) => Err(Error::Transaction(
                "an inner transaction is still open: commit or roll it back first".into(),
            )),
            _ => Err(Error::Transaction("the transaction has already ended".into())),
        }
    }

    /// Undoes the writes of transaction `id` and of every transaction inside it.
    pub(crate) fn rollback(&mut self, conn: &Connection, id: TransactionId) -> Result<()> {
        let Some(position) = self.open.iter().position(|&open| open == id) else {
            return Err(Error::Transaction("the transaction has already ended".into()));
        };
        run(conn, &savepoint_sql("ROLLBACK TO", id))?;
        run(conn, &savepoint_sql("RELEASE", id))?;
        self.open.truncate(position);
        Ok(())
    }

    /// Whether transaction `id` is open.
    pub(crate) fn is_open(&self, id: TransactionId) -> bool {
        self.open.contains(&id)
    }

    /// Whether any transaction is open.
    pub(crate) fn any_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Rolls back every open transaction.
    pub(crate) fn rollback_all(&mut self, conn: &Connection) -> Result<()> {
        match self.open.first() {
            Some(&outermost) => self.rollback(conn, outermost),
            None => Ok(()),
        }
    }
}

fn savepoint_sql(verb: &str, id: TransactionId) -> String {
    format!("{verb} _opendo_txn_{id}")
}
