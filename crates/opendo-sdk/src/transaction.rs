use crate::Result;
use crate::bindings::opendo::durable_object::transaction as wit;

/// An open transaction inside the current event (a savepoint over KV and SQL together).
///
/// Dropping it without [`Transaction::commit`] rolls it back. Rolling back does not reset the
/// object: in-memory state stays as it is.
#[derive(Debug)]
pub struct Transaction {
    handle: wit::Txn,
}

impl Transaction {
    pub(crate) fn begin() -> Result<Self> {
        Ok(Transaction { handle: wit::begin()? })
    }

    /// Keeps the transaction's writes (they commit with the event).
    pub fn commit(self) -> Result<()> {
        Ok(self.handle.commit()?)
    }

    /// Undoes the transaction's writes.
    pub fn rollback(self) -> Result<()> {
        Ok(self.handle.rollback()?)
    }
}
