//! Other objects: [`ObjectNamespace`], [`ObjectId`] and [`Stub`], with the names workers-rs uses.

use std::fmt;

use crate::bindings::opendo::durable_object::objects as wit;
use crate::{Error, Request, Response, Result};

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

    /// A stub for the object called `name` (`self.id_from_name(name)?.get_stub()`).
    pub fn get_by_name(&self, name: &str) -> Result<Stub> {
        self.id_from_name(name)?.get_stub()
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

    /// A stub to call the object with.
    pub fn get_stub(&self) -> Result<Stub> {
        Ok(Stub { id: self.clone() })
    }
}

/// Calls one object: each [`Stub::fetch_with_request`] is an ordinary event of that object (its
/// own queue, transaction and limits), and waits for its response.
///
/// Before the request leaves, the writes this event made so far are committed and durable: if
/// this event fails after the call, only what it wrote after the call is rolled back. A call
/// fails with [`Error::Call`] (and this event goes on) if the callee traps, is overloaded or
/// does not answer within the call timeout, if it is already waiting in this chain of calls
/// (A calls B, B calls A), if the chain would hold more than 16 objects, or inside a
/// [`Transaction`](crate::Transaction).
///
/// ```no_run
/// use opendo_sdk::{Error, Method, ObjectNamespace, Request, Response, Result};
///
/// /// Counts a visit in the `counter` object called `page`, and answers its new count.
/// fn count_visit(page: &str) -> Result<Response> {
///     let counter = ObjectNamespace::new("counter").get_by_name(page)?;
///     match counter.fetch_with_request(Request::new("/increment", Method::Post)) {
///         Ok(answer) => Response::ok(format!("visit number {}", answer.text()?)),
///         Err(Error::Call { code, message }) => Response::error(format!("{code:?}: {message}"), 502),
///         Err(err) => Err(err),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stub {
    id: ObjectId,
}

impl Stub {
    /// The object this stub calls.
    pub fn id(&self) -> &ObjectId {
        &self.id
    }

    /// Sends `request` to the object and returns its response, whatever its status.
    pub fn fetch_with_request(&self, request: Request) -> Result<Response> {
        let target = match &self.id.name {
            Some(name) => wit::Target::Name(name.clone()),
            None => wit::Target::Id(self.id.hex.clone()),
        };
        let response = wit::fetch(&self.id.namespace, &target, &request.into_wit())?;
        Ok(Response::from_wit(response))
    }

    /// Sends a `GET` of `url` (a path such as `/count`, or a URL whose scheme and host are
    /// ignored) to the object.
    pub fn fetch_with_str(&self, url: &str) -> Result<Response> {
        self.fetch_with_request(Request::new(url, crate::Method::Get))
    }
}

/// Why a call to another object gave no response (see [`Stub`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallErrorCode {
    /// The namespace, name, id or request is not acceptable. Nothing was sent.
    InvalidArgument,
    /// The callee is already waiting in this chain of calls. Nothing was sent.
    Cycle,
    /// The chain of calls would hold more than 16 objects. Nothing was sent.
    TooDeep,
    /// A transaction is open. Nothing was sent.
    InTransaction,
    /// The callee's event failed (it trapped, and its writes were rolled back).
    CalleeFailed,
    /// The callee has too many events waiting. Nothing was run.
    Overloaded,
    /// No answer within the call timeout; the callee may still run the request.
    Timeout,
    /// The server is shutting down, or failed to run the call.
    Unavailable,
}

impl From<wit::CallError> for Error {
    fn from(err: wit::CallError) -> Self {
        use wit::CallErrorCode as C;
        let code = match err.code {
            C::InvalidArgument => CallErrorCode::InvalidArgument,
            C::Cycle => CallErrorCode::Cycle,
            C::TooDeep => CallErrorCode::TooDeep,
            C::InTransaction => CallErrorCode::InTransaction,
            C::CalleeFailed => CallErrorCode::CalleeFailed,
            C::Overloaded => CallErrorCode::Overloaded,
            C::Timeout => CallErrorCode::Timeout,
            C::Unavailable => CallErrorCode::Unavailable,
        };
        Error::Call { code, message: err.message }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex)
    }
}
