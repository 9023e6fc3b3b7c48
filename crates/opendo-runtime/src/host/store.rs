//! The data of one object's wasmtime `Store`, and the limits it enforces on the guest.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use opendo_storage::{Alarm, ObjectDb};
use wasmtime::component::Resource;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::types::HostOutgoingRequest;
use wasmtime_wasi_http::p2::{HttpError, HttpResult};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::log::GuestLog;
use super::outbound::{OutboundHooks, SendsHttp, allowed};
use crate::actor::{BatchState, ObjectCtx};
use crate::config::Config;
use crate::identity::Identity;
use crate::mailbox::CallChain;
use crate::sockets::{EventSockets, Sockets};

/// What the host enforces on every object of a runtime (the memory limit is its namespace's),
/// the numbering of its sockets, and the namespaces served.
#[derive(Debug)]
pub(crate) struct HostLimits {
    pub(crate) max_websockets_per_object: usize,
    pub(crate) max_websocket_message_bytes: usize,
    /// The number the next accepted WebSocket gets (unique for the life of the process).
    pub(crate) next_socket: AtomicU64,
    /// The namespaces the runtime serves (the `objects` import names them).
    served: RwLock<BTreeSet<String>>,
}

impl HostLimits {
    pub(crate) fn new(config: &Config) -> Self {
        HostLimits {
            max_websockets_per_object: config.max_websockets_per_object,
            max_websocket_message_bytes: config.max_websocket_message_bytes,
            next_socket: AtomicU64::new(1),
            served: RwLock::default(),
        }
    }

    /// Adds a namespace the runtime serves.
    pub(crate) fn serve(&self, namespace: &str) {
        self.served.write().unwrap_or_else(PoisonError::into_inner).insert(namespace.to_string());
    }

    pub(crate) fn serves(&self, namespace: &str) -> bool {
        self.served.read().unwrap_or_else(PoisonError::into_inner).contains(namespace)
    }
}

/// The running event, as its CPU limit and the calls it makes need it.
#[derive(Debug, Clone)]
pub(crate) struct EventInfo {
    /// The objects waiting for this event through calls (see `CallChain`).
    pub(crate) chain: CallChain,
    pub(crate) started: Instant,
    /// Time spent waiting for calls: not the event's CPU time.
    pub(crate) waited: Duration,
    /// For an alarm event: the alarm it runs (cleared in the database for the handler).
    pub(crate) alarm: Option<Alarm>,
}

impl EventInfo {
    pub(crate) fn new(chain: CallChain) -> Self {
        EventInfo { chain, started: Instant::now(), waited: Duration::ZERO, alarm: None }
    }

    /// The event's time so far, without its waits for calls.
    pub(crate) fn busy_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.waited)
    }
}

/// The data of one object's wasmtime `Store`.
pub(crate) struct Host {
    /// The object's database. `None` only while the store is being replaced (see
    /// `actor/instance.rs`).
    pub(crate) db: Option<ObjectDb>,
    /// What committing the open batch needs (a call commits from inside an event).
    pub(crate) batch: BatchState,
    pub(crate) event: EventInfo,
    /// The object and its runtime (calls go through its dispatch).
    pub(crate) object: Arc<ObjectCtx>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) limiter: MemoryLimiter,
    /// The object's open WebSockets (they outlive this store).
    pub(crate) sockets: Arc<Sockets>,
    /// What the running event did to sockets, collected for the output gate.
    pub(crate) event_sockets: EventSockets,
    pub(crate) limits: Arc<HostLimits>,
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) http: WasiHttpCtx,
    pub(super) outbound: OutboundHooks,
}

impl Host {
    pub(crate) fn new(object: Arc<ObjectCtx>, db: Option<ObjectDb>, batch: BatchState) -> Self {
        let identity = object.identity.clone();
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestLog::new(identity.clone(), object.log_budget.clone(), "stdout"))
            .stderr(GuestLog::new(identity.clone(), object.log_budget.clone(), "stderr"))
            .envs(&object.namespace.env)
            .build();
        Host {
            db,
            batch,
            event: EventInfo::new(CallChain::default()),
            identity,
            limiter: MemoryLimiter::new(object.namespace.limits.memory_limit),
            sockets: object.sockets.clone(),
            event_sockets: EventSockets::default(),
            limits: object.context.host_limits.clone(),
            http: WasiHttpCtx::new(),
            outbound: OutboundHooks::new(
                object.namespace.outbound.clone(),
                object.namespace.limits.max_response_bytes,
                &object.context,
            ),
            object,
            wasi,
            table: ResourceTable::new(),
        }
    }

    pub(super) fn db(&mut self) -> wasmtime::Result<&mut ObjectDb> {
        self.db.as_mut().ok_or_else(|| wasmtime::Error::msg("object database is not open"))
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps an instance's linear memory and remembers whether the cap was hit, so the trap that
/// follows can be reported as a memory-limit trap.
pub(crate) struct MemoryLimiter {
    limit: usize,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> Self {
        MemoryLimiter { limit, hit: false }
    }
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

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { hooks: &mut self.outbound, table: &mut self.table, ctx: &mut self.http }
    }
}

impl SendsHttp for Host {
    fn before_request(&mut self, request: &Resource<HostOutgoingRequest>) -> HttpResult<()> {
        allowed(&self.outbound, &self.table, request, &self.identity)?;
        // The output gate: this event's writes so far are durable before the request leaves.
        match crate::actor::commit_inside_event(&self.object.clone(), self) {
            Ok(()) => Ok(()),
            Err(err @ (opendo_storage::Error::Transaction(_) | opendo_storage::Error::Sql { .. })) => {
                Err(ErrorCode::InternalError(Some(err.to_string())).into())
            }
            Err(err) => {
                Err(HttpError::trap(wasmtime::Error::new(crate::host::StorageFailure(err.to_string()))))
            }
        }
    }
}
