//! `opendo:durable-object/transaction`: nested savepoints as a resource.
//!
//! A `txn` handle's representation is the storage's transaction number. Numbers are never reused
//! on a connection, so a handle kept past its event (its transaction was rolled back when the
//! event ended) can only ever report that it has ended.

use wasmtime::component::Resource;

use super::{Host, storage_result};
use crate::bindings::GuestError;
use crate::bindings::opendo::durable_object::transaction::{self, Txn};

type GuestResult<T> = wasmtime::Result<Result<T, GuestError>>;

fn transaction_id(handle: &Resource<Txn>) -> u64 {
    u64::from(handle.rep())
}

impl transaction::Host for Host {
    fn begin(&mut self) -> GuestResult<Resource<Txn>> {
        let begun = storage_result(self.db()?.begin_transaction())?;
        match begun {
            Ok(id) => {
                let rep = u32::try_from(id)
                    .map_err(|_| wasmtime::Error::msg("too many transactions on one connection"))?;
                Ok(Ok(Resource::new_own(rep)))
            }
            Err(err) => Ok(Err(err)),
        }
    }
}

impl transaction::HostTxn for Host {
    fn commit(&mut self, handle: Resource<Txn>) -> GuestResult<()> {
        storage_result(self.db()?.commit_transaction(transaction_id(&handle)))
    }

    fn rollback(&mut self, handle: Resource<Txn>) -> GuestResult<()> {
        storage_result(self.db()?.rollback_transaction(transaction_id(&handle)))
    }

    fn drop(&mut self, handle: Resource<Txn>) -> wasmtime::Result<()> {
        let id = transaction_id(&handle);
        let db = self.db()?;
        if db.is_transaction_open(id) {
            // Dropped without commit: roll back. Only a database failure can make this fail.
            if let Err(err) = storage_result(db.rollback_transaction(id))? {
                tracing::debug!("rolling back a dropped transaction: {}", err.message);
            }
        }
        Ok(())
    }
}
