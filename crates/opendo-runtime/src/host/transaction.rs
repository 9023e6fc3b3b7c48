//! `opendo:durable-object/transaction`: nested savepoints as a resource.
//!
//! A `txn` handle's representation is the storage's transaction number. Numbers are never reused
//! on a connection, so a handle kept past its event (its transaction was rolled back when the
//! event ended) can only ever report that it has ended.

use wasmtime::component::Resource;

use super::store::Host;
use crate::bindings::opendo::durable_object::transaction::{self, Txn};
use crate::bindings::opendo::durable_object::types::Host as _;
use crate::error::HostError;

fn transaction_id(handle: &Resource<Txn>) -> u64 {
    u64::from(handle.rep())
}

impl transaction::Host for Host {
    fn begin(&mut self) -> Result<Resource<Txn>, HostError> {
        let id = self.db()?.begin_transaction()?;
        let rep =
            u32::try_from(id).map_err(|_| wasmtime::Error::msg("too many transactions on one connection"))?;
        Ok(Resource::new_own(rep))
    }
}

impl transaction::HostTxn for Host {
    fn commit(&mut self, handle: Resource<Txn>) -> Result<(), HostError> {
        Ok(self.db()?.commit_transaction(transaction_id(&handle))?)
    }

    fn rollback(&mut self, handle: Resource<Txn>) -> Result<(), HostError> {
        Ok(self.db()?.rollback_transaction(transaction_id(&handle))?)
    }

    fn drop(&mut self, handle: Resource<Txn>) -> wasmtime::Result<()> {
        let id = transaction_id(&handle);
        let db = self.db()?;
        if !db.is_transaction_open(id) {
            return Ok(());
        }
        // Dropped without commit: roll back. Only a database failure can make this fail, which
        // traps; anything else is only logged, as nobody is left to see it.
        if let Err(err) = db.rollback_transaction(id) {
            let err = self.convert_error(err.into())?;
            tracing::debug!("rolling back a dropped transaction: {}", err.message);
        }
        Ok(())
    }
}
