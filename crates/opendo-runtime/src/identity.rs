//! Who an object is.

use std::sync::Arc;

use opendo_storage::ObjectId;

/// An object's namespace, id and name: shared by its actor, its host state and its log lines.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) namespace: Arc<str>,
    pub(crate) id: ObjectId,
    /// The name it was addressed by.
    pub(crate) name: Option<String>,
}
