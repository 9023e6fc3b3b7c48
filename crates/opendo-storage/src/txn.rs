//! Transactions a guest opens inside its event: nested savepoints.
//!
//! They nest: the innermost open transaction must end first. Committing one that still has an
//! inner transaction open is refused; rolling one back also rolls back (and ends) every inner one.
//! A transaction left open when the event ends is rolled back.

use crate::{Error, ObjectDb, Result};

/// A guest transaction, by number. Numbers are never reused within a connection.
pub type TransactionId = u64;

impl ObjectDb {
    /// Opens a transaction nested in whatever is open.
    pub fn begin_transaction(&mut self) -> Result<TransactionId> {
        let id = self.next_transaction;
        self.next_transaction += 1;
        self.run(&savepoint_sql("SAVEPOINT", id))?;
        self.transactions.push(id);
        Ok(id)
    }

    /// Keeps the writes of transaction `id` (they become part of the enclosing one).
    pub fn commit_transaction(&mut self, id: TransactionId) -> Result<()> {
        match self.transactions.last() {
            Some(&innermost) if innermost == id => {
                self.run(&savepoint_sql("RELEASE", id))?;
                self.transactions.pop();
                Ok(())
            }
            _ if self.transactions.contains(&id) => Err(Error::Transaction(
                "an inner transaction is still open: commit or roll it back first".into(),
            )),
            _ => Err(Error::Transaction("the transaction has already ended".into())),
        }
    }

    /// Undoes the writes of transaction `id` and of every transaction inside it.
    pub fn rollback_transaction(&mut self, id: TransactionId) -> Result<()> {
        let Some(position) = self.transactions.iter().position(|&open| open == id) else {
            return Err(Error::Transaction("the transaction has already ended".into()));
        };
        self.run(&savepoint_sql("ROLLBACK TO", id))?;
        self.run(&savepoint_sql("RELEASE", id))?;
        self.transactions.truncate(position);
        Ok(())
    }

    /// Whether transaction `id` is open.
    pub fn is_transaction_open(&self, id: TransactionId) -> bool {
        self.transactions.contains(&id)
    }

    pub(crate) fn rollback_open_transactions(&mut self) -> Result<()> {
        match self.transactions.first() {
            Some(&outermost) => self.rollback_transaction(outermost),
            None => Ok(()),
        }
    }
}

fn savepoint_sql(verb: &str, id: TransactionId) -> String {
    format!("{verb} _opendo_txn_{id}")
}
