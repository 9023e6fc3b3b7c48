//! Ids of objects: [`ObjectNamespace`] and [`ObjectId`], with the names workers-rs uses.

use std::fmt;

use crate::Result;
use crate::bindings::opendo::durable_object::objects as wit;

/// A namespace (a Durable Object class) the server runs, to make ids of its objects.
///
/// ```
/// use opendo_sdk::{ObjectNamespace, Response, Result};
///
/// /// Answers where a new link object can be reached.
/// fn new_link() -> Result<Response> {
///     let links = ObjectNamespace::new("link");
///     let id = links.unique_id()?;
///     Response::ok(id.path()) // "/_id/link/…": an object nobody has used yet
/// }
///
/// /// The id of the room called `name`, the same every time.
/// fn room(name: &str) -> Result<String> {
///     Ok(ObjectNamespace::new("chat-room").id_from_name(name)?.to_string())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectNamespace {
    name: String,
}

impl ObjectNamespace {
    /// The namespace called `name` (the runtime checks that it runs it when an id is made).
    pub fn new(name: impl Into<String>) -> Self {
        ObjectNamespace { name: name.into() }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id of the object called `name`: the same name always gives the same id. Fails if
    /// the server runs no such namespace, or `name` is not an object name (1 to 256 bytes).
    pub fn id_from_name(&self, name: &str) -> Result<ObjectId> {
        let hex = wit::id_from_name(&self.name, name)?;
        Ok(ObjectId { namespace: self.name.clone(), hex, name: Some(name.to_string()) })
    }

    /// A new, random id: an object nobody has used yet. Objects made this way have no name.
    pub fn unique_id(&self) -> Result<ObjectId> {
        let hex = wit::new_unique_id(&self.name)?;
        Ok(ObjectId { namespace: self.name.clone(), hex, name: None })
    }

    /// `id` (for instance from a URL), checked: it must be 64 lowercase hex characters made for
    /// this namespace. A malformed or mistyped id, or one of another namespace, is refused.
    pub fn id_from_string(&self, id: &str) -> Result<ObjectId> {
        let hex = wit::id_from_string(&self.name, id)?;
        Ok(ObjectId { namespace: self.name.clone(), hex, name: None })
    }
}

/// The id of an object: 64 lowercase hex characters (its `Display`), checked to belong to its
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId {
    namespace: String,
    hex: String,
    name: Option<String>,
}

impl ObjectId {
    /// The namespace the object belongs to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name the id was made from, for an id from [`ObjectNamespace::id_from_name`].
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The path that reaches the object over HTTP: `/_id/{namespace}/{id}`.
    pub fn path(&self) -> String {
        format!("/_id/{}/{}", self.namespace, self.hex)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex)
    }
}
