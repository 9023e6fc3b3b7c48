//! The data of a front instance's `Store`: what a front gets from the host. `types` and
//! `objects` as objects get them (ids, and calls that wait on no chain), WASI's clocks, random and
//! output (into the log as namespace `_front`), and no storage.

use std::sync::{Arc, Mutex, Weak};

use opendo_storage::ObjectId;
use wasmtime::component::Resource;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::HttpResult;
use wasmtime_wasi_http::p2::types::HostOutgoingRequest;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::calls::{Call, UpgradedSocket, call_error};
use super::errors::convert_error;
use super::log::{GuestLog, LogBudget};
use super::objects::{id_from_name, id_from_string, new_unique_id};
use super::outbound::{OutboundHooks, SendsHttp, allowed};
use super::store::{EventInfo, HostLimits, MemoryLimiter};
use crate::bindings::opendo::durable_object::{objects, types};
use crate::bindings::{GuestError, GuestRequest, GuestResponse};
use crate::dispatch::Dispatch;
use crate::error::HostError;
use crate::http::asks_websocket;
use crate::identity::Identity;
use crate::mailbox::CallChain;
use crate::metrics::NamespaceStats;

/// What a front's log lines are tagged with: a namespace no object can have.
pub(crate) const FRONT_LOG_NAMESPACE: &str = "_front";

/// The data of one front instance's `Store`.
pub(crate) struct FrontHost {
    /// The request being served (its CPU time, its waits for calls).
    pub(crate) event: EventInfo,
    /// The request is a WebSocket upgrade: the first call that passes it on may bring back a
    /// socket an object accepted.
    pub(crate) upgrade: bool,
    pub(crate) upgraded: Option<UpgradedSocket>,
    pub(crate) limiter: MemoryLimiter,
    limits: Arc<HostLimits>,
    dispatch: Weak<Dispatch>,
    /// The front's call counters (namespace `_front`).
    stats: NamespaceStats,
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) http: WasiHttpCtx,
    pub(super) outbound: OutboundHooks,
    /// Who its log lines (and refused requests) are tagged with.
    pub(super) identity: Arc<Identity>,
}

impl FrontHost {
    pub(crate) fn new(
        dispatch: Weak<Dispatch>,
        limits: Arc<HostLimits>,
        memory_limit: usize,
        log_budget: Arc<Mutex<LogBudget>>,
        stats: NamespaceStats,
        outbound: OutboundHooks,
        env: &[(String, String)],
    ) -> Self {
        let identity = Arc::new(Identity::new(
            FRONT_LOG_NAMESPACE.into(),
            ObjectId::from_name(FRONT_LOG_NAMESPACE, "front"),
            None,
        ));
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestLog::new(identity.clone(), log_budget.clone(), "stdout"))
            .stderr(GuestLog::new(identity.clone(), log_budget, "stderr"))
            .envs(env)
            .build();
        FrontHost {
            event: EventInfo::new(CallChain::default()),
            upgrade: false,
            upgraded: None,
            limiter: MemoryLimiter::new(memory_limit),
            limits,
            dispatch,
            stats,
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            outbound,
            identity,
        }
    }
}

impl types::Host for FrontHost {
    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<GuestError> {
        convert_error(err)
    }
}

impl objects::Host for FrontHost {
    async fn fetch(
        &mut self,
        namespace: String,
        target: objects::Target,
        request: GuestRequest,
    ) -> wasmtime::Result<Result<GuestResponse, objects::CallError>> {
        let Some(dispatch) = self.dispatch.upgrade() else {
            return Ok(Err(call_error(objects::CallErrorCode::Unavailable, "the server is shutting down")));
        };
        let passes_upgrade = self.upgrade && self.upgraded.is_none() && asks_websocket(&request.headers);
        self.stats.calls.inc();
        // A front holds no object's turn: its calls start a chain.
        let prepared = Call::prepare(&dispatch, &CallChain::default(), None, &namespace, target, request);
        let mut call = match prepared {
            Ok(call) => call,
            Err(err) => {
                self.stats.call_errors.inc();
                return Ok(Err(err));
            }
        };
        call.upgrade = passes_upgrade;
        let answered = call.send(&dispatch, &mut self.event).await;
        if answered.is_err() {
            self.stats.call_errors.inc();
        }
        Ok(answered.map(|answered| {
            if answered.socket.is_some() {
                self.upgraded = answered.socket;
            }
            answered.response
        }))
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

impl WasiView for FrontHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for FrontHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { hooks: &mut self.outbound, table: &mut self.table, ctx: &mut self.http }
    }
}

impl SendsHttp for FrontHost {
    fn before_request(&mut self, request: &Resource<HostOutgoingRequest>) -> HttpResult<()> {
        allowed(&self.outbound, &self.table, request, &self.identity)
    }
}
