use crate::Storage;
use crate::bindings::opendo::durable_object::state as wit;

/// The object's identity and its storage.
#[derive(Debug, Clone)]
pub struct State {
    id: String,
    name: Option<String>,
    namespace: String,
}

impl State {
    #[doc(hidden)]
    pub fn current() -> Self {
        State { id: wit::id(), name: wit::name(), namespace: wit::namespace() }
    }

    /// The object's id: 64 lowercase hex characters.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The name the object is addressed by, if it was addressed by name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The namespace (class) of the object.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The object's private storage.
    pub fn storage(&self) -> Storage {
        Storage::new()
    }
}
