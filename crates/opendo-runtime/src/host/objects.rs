//! `opendo:durable-object/objects`: ids of objects in the namespaces the runtime serves, and
//! calls to them (`calls.rs`).

use opendo_storage::ObjectId;

use super::store::Host;
use crate::bindings::opendo::durable_object::objects;
use crate::bindings::{GuestRequest, GuestResponse};
use crate::error::{HostError, Refusal};
use crate::names::validate_object_name;

impl objects::Host for Host {
    async fn fetch(
        &mut self,
        namespace: String,
        target: objects::Target,
        request: GuestRequest,
    ) -> wasmtime::Result<Result<GuestResponse, objects::CallError>> {
        self.call_object(namespace, target, request).await
    }

    fn id_from_name(&mut self, namespace: String, name: String) -> Result<String, HostError> {
        self.check_served(&namespace)?;
        validate_object_name(&name).map_err(|err| Refusal::InvalidArgument(err.to_string()))?;
        Ok(ObjectId::from_name(&namespace, &name).to_hex())
    }

    fn new_unique_id(&mut self, namespace: String) -> Result<String, HostError> {
        self.check_served(&namespace)?;
        Ok(ObjectId::unique(&namespace).to_hex())
    }

    fn id_from_string(&mut self, namespace: String, id: String) -> Result<String, HostError> {
        self.check_served(&namespace)?;
        let id = ObjectId::parse(&namespace, &id).map_err(|err| Refusal::InvalidArgument(err.to_string()))?;
        Ok(id.to_hex())
    }
}

impl Host {
    fn check_served(&self, namespace: &str) -> Result<(), Refusal> {
        match self.limits.serves(namespace) {
            true => Ok(()),
            false => Err(Refusal::InvalidArgument(format!("this server runs no namespace `{namespace}`"))),
        }
    }
}
