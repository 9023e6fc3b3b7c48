//! `opendo:durable-object/kv`: the object's key-value store.

use opendo_storage::ListOptions;

use super::{Host, storage_result};
use crate::bindings::GuestError;
use crate::bindings::opendo::durable_object::kv;

type GuestResult<T> = wasmtime::Result<Result<T, GuestError>>;

impl kv::Host for Host {
    fn get(&mut self, key: String) -> GuestResult<Option<Vec<u8>>> {
        storage_result(self.db()?.get(&key))
    }

    fn get_many(&mut self, keys: Vec<String>) -> GuestResult<Vec<kv::Entry>> {
        storage_result(self.db()?.get_many(&keys))
    }

    fn put(&mut self, key: String, value: Vec<u8>) -> GuestResult<()> {
        storage_result(self.db()?.put(&key, &value))
    }

    fn put_many(&mut self, entries: Vec<kv::Entry>) -> GuestResult<()> {
        storage_result(self.db()?.put_many(&entries))
    }

    fn delete(&mut self, key: String) -> GuestResult<bool> {
        storage_result(self.db()?.delete(&key))
    }

    fn delete_many(&mut self, keys: Vec<String>) -> GuestResult<u32> {
        storage_result(self.db()?.delete_many(&keys))
    }

    fn list(&mut self, options: kv::ListOptions) -> GuestResult<Vec<kv::Entry>> {
        let options = ListOptions {
            start: options.start,
            start_after: options.start_after,
            end: options.end,
            prefix: options.prefix,
            reverse: options.reverse,
            limit: options.limit,
        };
        storage_result(self.db()?.list(&options))
    }

    fn delete_all(&mut self) -> GuestResult<()> {
        storage_result(self.db()?.delete_all())
    }
}

impl crate::bindings::opendo::durable_object::types::Host for Host {}
