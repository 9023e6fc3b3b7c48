//! `opendo:durable-object/state`: the object's identity.

use super::store::Host;
use crate::bindings::opendo::durable_object::state;

impl state::Host for Host {
    fn id(&mut self) -> wasmtime::Result<String> {
        Ok(self.identity.id.to_hex())
    }

    fn name(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(self.identity.name().map(str::to_string))
    }

    fn namespace(&mut self) -> wasmtime::Result<String> {
        Ok(self.identity.namespace.to_string())
    }
}
