//! What the host gives a guest: the `durable-object` imports (one file per WIT interface),
//! WASI (clocks, random, stdout/stderr into the log; no files, environment or sockets), and the
//! memory limiter.
//!
//! # Traps versus guest-visible errors
//! This module decides it, in [`storage_result`]: an error caused by the guest's arguments (a key
//! too long, a batch too big, the storage cap) is returned to the guest as `error`; a failure of
//! the database itself (I/O, corruption) traps the event, which rolls back and resets the object.

mod alarms;
mod kv;
mod log;
mod sql;
mod state;
mod transaction;
mod websockets;

use std::sync::Arc;

use opendo_storage::{ObjectDb, ObjectId};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{ErrorCode, GuestError};
use crate::runtime::Shared;
use crate::websocket::{EventSockets, Sockets};

pub(crate) use self::log::{GuestLog, LogBudget};

/// Who an object is; shared by its host state and its log lines for the life of its actor.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) namespace: Arc<str>,
    pub(crate) id: ObjectId,
    pub(crate) name: Option<String>,
    /// How much guest output may still reach the log (shared by stdout and stderr).
    pub(crate) log_budget: std::sync::Mutex<LogBudget>,
}

/// The data of one object's wasmtime `Store`.
pub(crate) struct Host {
    /// The object's database. `None` only while the store is being replaced (see `object.rs`).
    pub(crate) db: Option<ObjectDb>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) limiter: MemoryLimiter,
    /// The object's open WebSockets (they outlive this store).
    pub(crate) sockets: Arc<Sockets>,
    /// What the running event did to sockets, collected for the output gate.
    pub(crate) event_sockets: EventSockets,
    pub(crate) shared: Arc<Shared>,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl Host {
    pub(crate) fn new(
        db: Option<ObjectDb>,
        identity: Arc<Identity>,
        shared: Arc<Shared>,
        sockets: Arc<Sockets>,
    ) -> Self {
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestLog::new(identity.clone(), "stdout"))
            .stderr(GuestLog::new(identity.clone(), "stderr"))
            .build();
        Host {
            db,
            identity,
            limiter: MemoryLimiter { limit: shared.config.memory_limit, hit: false },
            sockets,
            event_sockets: EventSockets::default(),
            shared,
            wasi,
            table: ResourceTable::new(),
        }
    }

    fn db(&mut self) -> wasmtime::Result<&mut ObjectDb> {
        self.db.as_mut().ok_or_else(|| wasmtime::Error::msg("object database is not open"))
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Turns a storage result into what a guest sees: its own errors as `error`, failures of the
/// database as a trap.
fn storage_result<T>(result: opendo_storage::Result<T>) -> wasmtime::Result<Result<T, GuestError>> {
    use opendo_storage::Error as E;
    let err = match result {
        Ok(value) => return Ok(Ok(value)),
        Err(err) => err,
    };
    let (code, sqlite_code) = match &err {
        E::InvalidArgument(_) => (ErrorCode::InvalidArgument, None),
        E::LimitExceeded(_) => (ErrorCode::LimitExceeded, None),
        E::StorageFull(_) => (ErrorCode::StorageFull, None),
        E::Sql { code, .. } => (ErrorCode::SqlError, Some(*code)),
        E::NotAuthorized(_) => (ErrorCode::NotAuthorized, None),
        E::Transaction(_) => (ErrorCode::Transaction, None),
        E::Interrupted => return Err(wasmtime::Error::new(DeadlineExceeded)),
        E::Sqlite(_) | E::Corrupt(_) | E::Io { .. } | E::InUse(_) => {
            return Err(wasmtime::Error::new(StorageFailure(err.to_string())));
        }
    };
    Ok(Err(GuestError { code, message: err.to_string(), sqlite_code }))
}

/// A trap raised because a statement ran past the event's deadline (the CPU limit).
#[derive(Debug, thiserror::Error)]
#[error("a storage call ran past the event's time limit")]
pub(crate) struct DeadlineExceeded;

/// A trap raised because the object's database failed (not because of the guest).
#[derive(Debug, thiserror::Error)]
#[error("object storage failed: {0}")]
pub(crate) struct StorageFailure(pub(crate) String);

/// Caps an instance's linear memory and remembers whether the cap was hit, so the trap that
/// follows can be reported as a memory-limit trap.
pub(crate) struct MemoryLimiter {
    limit: usize,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit exceeded: growing to {desired} bytes, the limit is {} bytes",
                self.limit
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million entries is far beyond any real object.
        Ok(desired <= 1_000_000)
    }
}
