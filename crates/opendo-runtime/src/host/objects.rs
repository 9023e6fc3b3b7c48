//! `opendo:durable-object/objects`: ids of objects in the namespaces the runtime serves, and
//! calls to them (`calls.rs`).

use opendo_storage::ObjectId;

use super::store::{Host, HostLimits};
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
        id_from_name(&self.limits, &namespace, &name)
    }

    fn new_unique_id(&mut self, namespace: String) -> Result<String, HostError> {
        new_unique_id(&self.limits, &namespace)
    }

    fn id_from_string(&mut self, namespace: String, id: String) -> Result<String, HostError> {
        id_from_string(&self.limits, &namespace, &id)
    }
}

// The `objects` ids, for objects and fronts alike.

pub(super) fn id_from_name(limits: &HostLimits, namespace: &str, name: &str) -> Result<String, HostError> {
    check_served(limits, namespace)?;
    validate_object_name(name).map_err(|err| Refusal::InvalidArgument(err.to_string()))?;
    Ok(ObjectId::from_name(namespace, name).to_hex())
}

pub(super) fn new_unique_id(limits: &HostLimits, namespace: &str) -> Result<String, HostError> {
    check_served(limits, namespace)?;
    Ok(ObjectId::unique(namespace).to_hex())
}

pub(super) fn id_from_string(limits: &HostLimits, namespace: &str, id: &str) -> Result<String, HostError> {
    check_served(limits, namespace)?;
    let id = ObjectId::parse(namespace, id).map_err(|err| Refusal::InvalidArgument(err.to_string()))?;
    Ok(id.to_hex())
}

fn check_served(limits: &HostLimits, namespace: &str) -> Result<(), Refusal> {
    match limits.serves(namespace) {
        true => Ok(()),
        false => Err(Refusal::InvalidArgument(format!("this server runs no namespace `{namespace}`"))),
    }
}
