//! The front: a project's stateless component that receives every HTTP request (when the
//! project has one) and reaches objects through `objects`. Each request runs on an instance of
//! its own, taken from a pool of idle ones or made for it, on the blocking pool like an object's
//! batch; a trap throws its instance away.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Semaphore;
use wasmtime::Store;
use wasmtime::component::Linker;

use crate::bindings::GuestRequest;
use crate::bindings::front::{Front as FrontInstance, FrontPre};
use crate::blocking::on_blocking_pool;
use crate::component;
use crate::config::{GuestSettings, ObjectLimits, Outbound};
use crate::connection::AcceptedWebSocket;
use crate::context::Context;
use crate::dispatch::Dispatch;
use crate::engine::deadline_ticks;
use crate::error::{Error, EventError, TrapCause};
use crate::host::{
    EventInfo, FRONT_LOG_NAMESPACE, FrontHost, LogBudget, OutboundHooks, UpgradedSocket, limit_cpu,
    trap_cause,
};
use crate::http::{Request, Response};
use crate::mailbox::CallChain;
use crate::metrics::NamespaceStats;

/// Idle instances kept for the next requests; more are dropped when they finish.
const MAX_IDLE: usize = 64;
/// Requests the front runs at once (each on an instance of its own); more wait their turn.
const MAX_RUNNING: usize = 1024;

/// A loaded front.
pub(crate) struct Front {
    pre: FrontPre<FrontHost>,
    /// Memory, run time and response size of one request (the storage cap means nothing here).
    limits: ObjectLimits,
    idle: Mutex<Vec<Instance>>,
    dispatch: Arc<Dispatch>,
    context: Arc<Context>,
    /// Shared by every instance: the front's writes per second that reach the log.
    log_budget: Arc<Mutex<LogBudget>>,
    stats: NamespaceStats,
    /// The hosts it may send HTTP requests to, and its environment variables.
    outbound: Arc<Outbound>,
    env: Arc<[(String, String)]>,
    /// Requests served at once; more wait for a turn.
    running: Arc<Semaphore>,
}

struct Instance {
    store: Store<FrontHost>,
    front: FrontInstance,
}

impl Front {
    /// Loads `module`, which must be a component of the `front` world, for `dispatch`'s runtime.
    pub(crate) fn load(
        module: &Path,
        linker: &Linker<FrontHost>,
        limits: ObjectLimits,
        guests: GuestSettings,
        dispatch: &Arc<Dispatch>,
    ) -> Result<Self, Error> {
        let context = dispatch.context.clone();
        let cache_dir = context.config.data_dir.join(".cache").join("components");
        let component = component::load(linker.engine(), module, &cache_dir)?;
        let pre = component::fit_front_world(linker, &component, module)?;
        Ok(Front {
            pre,
            limits,
            idle: Mutex::default(),
            dispatch: dispatch.clone(),
            log_budget: Arc::new(Mutex::new(LogBudget::new(context.config.log_writes_per_second))),
            stats: context.stats.for_namespace(FRONT_LOG_NAMESPACE),
            running: Arc::new(Semaphore::new(MAX_RUNNING)),
            outbound: Arc::new(guests.outbound),
            env: guests.env.into(),
            context,
        })
    }

    /// Runs `request` through the front and returns its response. For an `upgrade` request,
    /// with the socket an object accepted through the front, if the front answered 101.
    pub(crate) async fn fetch(
        self: &Arc<Self>,
        request: Request,
        upgrade: bool,
    ) -> Result<(Response, Option<AcceptedWebSocket>), EventError> {
        // Each running request holds an instance (up to its memory limit): their number is bounded.
        let Ok(_turn) = self.running.acquire().await else {
            return Err(EventError::ShuttingDown);
        };
        self.context.stats.front_requests.inc();
        let front = self.clone();
        match on_blocking_pool(async move { front.serve(request, upgrade).await }).await {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::error!(namespace = FRONT_LOG_NAMESPACE, "front request failed: {err}");
                Err(EventError::Internal("the front failed; the server log has the cause".into()))
            }
        }
    }

    async fn serve(
        &self,
        request: Request,
        upgrade: bool,
    ) -> Result<(Response, Option<AcceptedWebSocket>), EventError> {
        let pooled = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut instance = match pooled {
            Some(instance) => instance,
            None => self.instantiate().await?,
        };
        let Request { method, path, headers, body } = request;
        let request = GuestRequest { method, path, headers, body };
        let host = instance.store.data_mut();
        host.event = EventInfo::new(CallChain::default());
        host.limiter.hit = false;
        host.upgrade = upgrade;
        instance.store.set_epoch_deadline(deadline_ticks(self.limits.cpu_limit));
        let handler = instance.front.opendo_durable_object_front_handler();
        let answered = handler.call_fetch(&mut instance.store, &request).await;
        // Dropped unless the front answers 101: the object then hears the socket closed.
        let upgraded = instance.store.data_mut().upgraded.take().map(|socket| self.socket(socket));
        let response = match answered {
            Ok(response) => response,
            Err(err) => return Err(EventError::Trapped(self.trapped(&instance, &err))),
        };
        if response.body.len() > self.limits.max_response_bytes {
            tracing::warn!(
                namespace = FRONT_LOG_NAMESPACE,
                cause = %TrapCause::ResponseTooLarge,
                "front response body of {} bytes is over the limit of {} bytes",
                response.body.len(),
                self.limits.max_response_bytes
            );
            return Err(EventError::Trapped(TrapCause::ResponseTooLarge));
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(instance);
        }
        let socket = if response.status == 101 { upgraded } else { None };
        Ok((Response { status: response.status, headers: response.headers, body: response.body }, socket))
    }

    fn socket(&self, upgraded: UpgradedSocket) -> AcceptedWebSocket {
        let UpgradedSocket { target, sockets, accepted } = upgraded;
        AcceptedWebSocket::new(self.dispatch.clone(), target, sockets, accepted)
    }

    async fn instantiate(&self) -> Result<Instance, EventError> {
        let host = FrontHost::new(
            Arc::downgrade(&self.dispatch),
            self.context.host_limits.clone(),
            self.limits.memory_limit,
            self.log_budget.clone(),
            self.stats.clone(),
            OutboundHooks::new(self.outbound.clone(), self.limits.max_response_bytes, &self.context),
            &self.env,
        );
        let mut store = Store::new(self.pre.engine(), host);
        store.limiter(|host| &mut host.limiter);
        limit_cpu(&mut store, self.limits.cpu_limit, |host| &host.event);
        store.set_epoch_deadline(deadline_ticks(self.limits.cpu_limit));
        match self.pre.instantiate_async(&mut store).await {
            Ok(front) => Ok(Instance { store, front }),
            Err(err) => {
                let cause = trap_cause(&err, store.data().limiter.hit);
                tracing::warn!(namespace = FRONT_LOG_NAMESPACE, cause = %cause, "front instance failed to start: {err:?}");
                self.context.stats.traps.inc();
                Err(EventError::Trapped(cause))
            }
        }
    }

    fn trapped(&self, instance: &Instance, err: &wasmtime::Error) -> TrapCause {
        let cause = trap_cause(err, instance.store.data().limiter.hit);
        tracing::warn!(
            namespace = FRONT_LOG_NAMESPACE,
            cause = %cause,
            "front request trapped, instance thrown away: {err:?}"
        );
        self.context.stats.traps.inc();
        cause
    }
}
