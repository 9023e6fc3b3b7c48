//! Who an object is.

use std::sync::{Arc, OnceLock};

use opendo_storage::ObjectId;

/// An object as the directory (and a chain of calls) knows it: its namespace's name and its id.
pub(crate) type ObjectKey = (Arc<str>, ObjectId);

/// An object's namespace, id and name: shared by its actor, its host state and its log lines.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) namespace: Arc<str>,
    pub(crate) id: ObjectId,
    /// The name it is addressed by. An actor started by id (an admin call, an alarm without a
    /// recorded name) learns it from the first event that comes by name, or from its database.
    name: OnceLock<String>,
}

impl Identity {
    pub(crate) fn new(namespace: Arc<str>, id: ObjectId, name: Option<String>) -> Self {
        let known = OnceLock::new();
        if let Some(name) = name {
            let _ = known.set(name);
        }
        Identity { namespace, id, name: known }
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.name.get().map(String::as_str)
    }

    /// Records the object's name if it was not known. An id is derived from its name, so an
    /// object has one name at most: a second one is the same.
    pub(crate) fn learn_name(&self, name: &str) {
        if self.name.get().is_none() {
            let _ = self.name.set(name.to_string());
        }
    }
}
