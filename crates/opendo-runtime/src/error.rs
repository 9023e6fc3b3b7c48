use std::fmt;
use std::path::PathBuf;

/// Errors setting up the runtime or loading a namespace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The module is not a component of the `durable-object` world. The message names what is
    /// missing or mismatched.
    #[error("{0}")]
    InvalidModule(String),
    /// A setting or name is not acceptable.
    #[error("{0}")]
    InvalidConfig(String),
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The Wasm engine could not be set up.
    #[error("wasm engine: {0}")]
    Engine(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// Why an event trapped: the class reported to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapCause {
    /// The guest panicked (or reached `unreachable`).
    Panic,
    /// The event ran past its CPU time limit.
    CpuLimit,
    /// The instance tried to grow its memory past the limit.
    MemoryLimit,
    /// The guest's stack overflowed.
    StackOverflow,
    /// The object's storage failed underneath it.
    Storage,
    /// The object returned a response body larger than the limit.
    ResponseTooLarge,
    /// Any other trap.
    Other,
}

impl fmt::Display for TrapCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrapCause::Panic => "panic",
            TrapCause::CpuLimit => "CPU time limit exceeded",
            TrapCause::MemoryLimit => "memory limit exceeded",
            TrapCause::StackOverflow => "stack overflow",
            TrapCause::Storage => "storage failure",
            TrapCause::ResponseTooLarge => "response too large",
            TrapCause::Other => "trap",
        })
    }
}

/// Why an event produced no response from the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// No namespace of that name is loaded.
    #[error("unknown namespace `{0}`")]
    UnknownNamespace(String),
    /// The object name or id is not acceptable.
    #[error("{0}")]
    BadObjectName(String),
    /// The object's queue of waiting events is full.
    #[error("object overloaded: too many queued events")]
    Overloaded,
    /// The runtime is shutting down and takes no new events.
    #[error("server is shutting down")]
    ShuttingDown,
    /// On a node of a cluster: this node does not hold the object (its shard is owned by another
    /// node, or moving). Nothing of the event was kept: it may be sent again to the owner.
    #[error("the object is not on this node right now")]
    Moved,
    /// The event trapped: its writes were rolled back and the instance reset.
    #[error("the object's event failed: {0}")]
    Trapped(TrapCause),
    /// The event returned, but its writes could not be kept for a reason the guest caused (for
    /// example foreign-key violations it deferred and never resolved); they were rolled back.
    #[error("the object's writes were rolled back: {0}")]
    Refused(String),
    /// The runtime failed to run or commit the event (details are in the log).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The header of the server's own error responses that names the error
/// ([`EventError::wire_kind`]).
pub const ERROR_HEADER: &str = "opendo-error";

impl EventError {
    /// The error as one token, for the `opendo-error` header of the server's own error
    /// responses: how a cluster's node tells the caller of a forwarded call what failed.
    pub fn wire_kind(&self) -> &'static str {
        match self {
            EventError::UnknownNamespace(_) => "unknown-namespace",
            EventError::BadObjectName(_) => "bad-object-name",
            EventError::Overloaded => "overloaded",
            EventError::ShuttingDown => "shutting-down",
            EventError::Moved => "moved",
            EventError::Trapped(cause) => match cause {
                TrapCause::Panic => "trapped-panic",
                TrapCause::CpuLimit => "trapped-cpu-limit",
                TrapCause::MemoryLimit => "trapped-memory-limit",
                TrapCause::StackOverflow => "trapped-stack-overflow",
                TrapCause::Storage => "trapped-storage",
                TrapCause::ResponseTooLarge => "trapped-response-too-large",
                TrapCause::Other => "trapped-other",
            },
            EventError::Refused(_) => "refused",
            EventError::Internal(_) => "internal",
        }
    }

    /// The error [`EventError::wire_kind`] named, with the response's text as its message.
    pub fn from_wire(kind: &str, message: &str) -> EventError {
        let message = message.trim();
        // The text is the error's own Display: take its message back out of it.
        let inner = |prefix: &str| message.strip_prefix(prefix).unwrap_or(message).to_string();
        let trapped = EventError::Trapped;
        match kind {
            "unknown-namespace" => {
                EventError::UnknownNamespace(message.split('`').nth(1).unwrap_or(message).to_string())
            }
            "bad-object-name" => EventError::BadObjectName(message.to_string()),
            "overloaded" => EventError::Overloaded,
            "shutting-down" => EventError::ShuttingDown,
            "moved" => EventError::Moved,
            "trapped-panic" => trapped(TrapCause::Panic),
            "trapped-cpu-limit" => trapped(TrapCause::CpuLimit),
            "trapped-memory-limit" => trapped(TrapCause::MemoryLimit),
            "trapped-stack-overflow" => trapped(TrapCause::StackOverflow),
            "trapped-storage" => trapped(TrapCause::Storage),
            "trapped-response-too-large" => trapped(TrapCause::ResponseTooLarge),
            "trapped-other" => trapped(TrapCause::Other),
            "refused" => EventError::Refused(inner("the object's writes were rolled back: ")),
            _ => EventError::Internal(inner("internal error: ")),
        }
    }
}

/// Why an admin call (listing, inspecting, importing, deleting objects) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No namespace of that name is loaded (or stored, offline).
    #[error("unknown namespace `{0}`")]
    UnknownNamespace(String),
    /// The object has no database. The text says which object (its name or id).
    #[error("no such object: {0}")]
    UnknownObject(String),
    /// The request is malformed or not allowed: a bad name, id, cursor or limit, SQL that
    /// writes or fails, an import that is not an object database.
    #[error("{0}")]
    BadRequest(String),
    /// The object is overloaded or the server is shutting down: try again.
    #[error("{0}")]
    Unavailable(String),
    /// The call needs a running server (it runs the object's code, or acts on a live object).
    #[error("{0}")]
    NeedsServer(String),
    /// The runtime failed (details are in the log).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<opendo_storage::Error> for AdminError {
    fn from(err: opendo_storage::Error) -> Self {
        use opendo_storage::Error as E;
        match err {
            E::InvalidArgument(_)
            | E::LimitExceeded(_)
            | E::StorageFull(_)
            | E::Sql { .. }
            | E::NotAuthorized(_)
            | E::Transaction(_) => AdminError::BadRequest(err.to_string()),
            E::Interrupted => AdminError::BadRequest("the query ran past the CPU time limit".into()),
            E::Sqlite(_) | E::Corrupt(_) | E::InUse(_) | E::Io { .. } => {
                tracing::error!("admin call failed on an object's storage: {err}");
                AdminError::Internal(err.to_string())
            }
        }
    }
}

impl From<EventError> for AdminError {
    fn from(err: EventError) -> Self {
        match err {
            EventError::UnknownNamespace(namespace) => AdminError::UnknownNamespace(namespace),
            EventError::BadObjectName(message) => AdminError::BadRequest(message),
            EventError::Overloaded | EventError::ShuttingDown | EventError::Moved => {
                AdminError::Unavailable(err.to_string())
            }
            EventError::Trapped(_) | EventError::Refused(_) | EventError::Internal(_) => {
                AdminError::Internal(err.to_string())
            }
        }
    }
}

/// How a host function whose WIT result is `result<_, error>` fails. Whether the guest sees the
/// failure as its `error` or the event traps is decided in one place, `host::errors`.
#[derive(Debug)]
pub(crate) enum HostError {
    /// The object's storage refused or failed the call.
    Storage(opendo_storage::Error),
    /// The host refused the call's arguments.
    Refused(Refusal),
    /// The event must trap.
    Trap(wasmtime::Error),
}

/// Why the host refused a call, as the guest is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    InvalidArgument(String),
    LimitExceeded(String),
}

impl From<opendo_storage::Error> for HostError {
    fn from(err: opendo_storage::Error) -> Self {
        HostError::Storage(err)
    }
}

impl From<Refusal> for HostError {
    fn from(refusal: Refusal) -> Self {
        HostError::Refused(refusal)
    }
}

impl From<wasmtime::Error> for HostError {
    fn from(trap: wasmtime::Error) -> Self {
        HostError::Trap(trap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_error_survives_its_wire_form() {
        let errors = [
            EventError::UnknownNamespace("counter".into()),
            EventError::BadObjectName("object name is empty".into()),
            EventError::Overloaded,
            EventError::ShuttingDown,
            EventError::Moved,
            EventError::Trapped(TrapCause::Panic),
            EventError::Trapped(TrapCause::CpuLimit),
            EventError::Trapped(TrapCause::MemoryLimit),
            EventError::Trapped(TrapCause::StackOverflow),
            EventError::Trapped(TrapCause::Storage),
            EventError::Trapped(TrapCause::ResponseTooLarge),
            EventError::Trapped(TrapCause::Other),
            EventError::Refused("deferred foreign keys".into()),
            EventError::Internal("the disk is gone".into()),
        ];
        for err in errors {
            // As the server writes it: the kind in a header, the Display as the body's line.
            let back = EventError::from_wire(err.wire_kind(), &format!("{err}\n"));
            assert_eq!(back, err);
        }
    }
}
