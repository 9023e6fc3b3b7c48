//! Traps versus guest-visible errors: the one place it is decided, for every import.
//!
//! An error the guest's own call caused (its arguments, its SQL, the storage cap, misuse of a
//! transaction, a refused socket operation) is returned to the guest as `error`, and the event
//! goes on. A failure of the database itself (I/O, corruption) or a statement stopped by the
//! event's deadline traps the event, which rolls back its writes and resets the object.
//!
//! Host functions with a `result<_, error>` return [`HostError`]; wasmtime calls
//! `convert_error` below on the way out (the bindings' `trappable_error_type`).

use opendo_storage::Error as StorageError;

use super::store::Host;
use crate::bindings::opendo::durable_object::types;
use crate::bindings::{ErrorCode, GuestError};
use crate::error::{HostError, Refusal, TrapCause};
use wasmtime::Trap;

impl types::Host for Host {
    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<GuestError> {
        convert_error(err)
    }
}

/// The guest's `error`, or the trap, for `err`.
pub(super) fn convert_error(err: HostError) -> wasmtime::Result<GuestError> {
    let (code, message, sqlite_code) = match err {
        HostError::Trap(trap) => return Err(trap),
        HostError::Refused(Refusal::InvalidArgument(message)) => (ErrorCode::InvalidArgument, message, None),
        HostError::Refused(Refusal::LimitExceeded(message)) => (ErrorCode::LimitExceeded, message, None),
        HostError::Storage(err) => {
            let (code, sqlite_code) = match &err {
                StorageError::InvalidArgument(_) => (ErrorCode::InvalidArgument, None),
                StorageError::LimitExceeded(_) => (ErrorCode::LimitExceeded, None),
                StorageError::StorageFull(_) => (ErrorCode::StorageFull, None),
                StorageError::Sql { code, .. } => (ErrorCode::SqlError, Some(*code)),
                StorageError::NotAuthorized(_) => (ErrorCode::NotAuthorized, None),
                StorageError::Transaction(_) => (ErrorCode::Transaction, None),
                StorageError::Interrupted => return Err(wasmtime::Error::new(DeadlineExceeded)),
                StorageError::Sqlite(_)
                | StorageError::Corrupt(_)
                | StorageError::Io { .. }
                | StorageError::InUse(_) => {
                    return Err(wasmtime::Error::new(StorageFailure(err.to_string())));
                }
            };
            (code, err.to_string(), sqlite_code)
        }
    };
    Ok(GuestError { code, message, sqlite_code })
}

/// What caused the guest's trap `err`; `memory_limit_hit`: the store's limiter refused a growth.
pub(crate) fn trap_cause(err: &wasmtime::Error, memory_limit_hit: bool) -> TrapCause {
    if memory_limit_hit {
        TrapCause::MemoryLimit
    } else if err.downcast_ref::<StorageFailure>().is_some() {
        TrapCause::Storage
    } else if err.downcast_ref::<DeadlineExceeded>().is_some() {
        TrapCause::CpuLimit
    } else {
        match err.downcast_ref::<Trap>() {
            Some(Trap::UnreachableCodeReached) => TrapCause::Panic,
            Some(Trap::Interrupt) => TrapCause::CpuLimit,
            Some(Trap::StackOverflow) => TrapCause::StackOverflow,
            _ => TrapCause::Other,
        }
    }
}

/// A trap raised because a statement ran past the event's deadline (the CPU limit).
#[derive(Debug, thiserror::Error)]
#[error("a storage call ran past the event's time limit")]
pub(crate) struct DeadlineExceeded;

/// A trap raised because the object's database failed (not because of the guest).
#[derive(Debug, thiserror::Error)]
#[error("object storage failed: {0}")]
pub(crate) struct StorageFailure(pub(crate) String);
