//! `opendo:durable-object/kv`: the object's key-value store.

use opendo_storage::ListOptions;

use super::store::Host;
use crate::bindings::opendo::durable_object::kv;
use crate::error::HostError;

impl kv::Host for Host {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self.db()?.get(&key)?)
    }

    fn get_many(&mut self, keys: Vec<String>) -> Result<Vec<kv::Entry>, HostError> {
        Ok(self.db()?.get_many(&keys)?)
    }

    fn put(&mut self, key: String, value: Vec<u8>) -> Result<(), HostError> {
        Ok(self.db()?.put(&key, &value)?)
    }

    fn put_many(&mut self, entries: Vec<kv::Entry>) -> Result<(), HostError> {
        Ok(self.db()?.put_many(&entries)?)
    }

    fn delete(&mut self, key: String) -> Result<bool, HostError> {
        Ok(self.db()?.delete(&key)?)
    }

    fn delete_many(&mut self, keys: Vec<String>) -> Result<u32, HostError> {
        Ok(self.db()?.delete_many(&keys)?)
    }

    fn list(&mut self, options: kv::ListOptions) -> Result<Vec<kv::Entry>, HostError> {
        let options = ListOptions {
            start: options.start,
            start_after: options.start_after,
            end: options.end,
            prefix: options.prefix,
            reverse: options.reverse,
            limit: options.limit,
        };
        Ok(self.db()?.list(&options)?)
    }

    fn delete_all(&mut self) -> Result<(), HostError> {
        Ok(self.db()?.delete_all()?)
    }
}
