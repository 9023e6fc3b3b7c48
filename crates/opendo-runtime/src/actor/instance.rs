//! An active object: its wasmtime store (holding the database) and, once instantiated, its
//! instance; calls into the guest under the event's limits, and what a trap was caused by.

use std::sync::Arc;

use opendo_storage::ObjectDb;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;

use super::commit::BatchState;
use super::object::ObjectCtx;
use crate::bindings::{AlarmInfo, DurableObject, GuestRequest, GuestResponse, WsMessage, on_fiber};
use crate::component::ObjectPre;
use crate::context::Context;
use crate::error::{EventError, TrapCause};
use crate::host::{Host, limit_cpu, trap_cause};
use crate::http::{Request, Response};
use crate::sockets::EventSockets;

/// An active object: its store (holding the database) and, once instantiated, its instance.
pub(super) struct Active {
    pub(super) store: Store<Host>,
    instance: Option<Instance>,
    ctx: Arc<ObjectCtx>,
    _counted: Counted,
    /// One of the runtime's `max_active` slots, given back when the object closes.
    _slot: OwnedSemaphorePermit,
}

/// Counts an active object in the runtime's stats for as long as it lives.
struct Counted(Arc<Context>);

impl Counted {
    fn new(context: &Arc<Context>) -> Self {
        context.stats.active.inc();
        context.stats.activations.inc();
        Counted(context.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.stats.active.dec();
    }
}

/// How an active object closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closing {
    /// Its WAL checkpointed into the database file: an object that went idle, failed, or
    /// closes with the runtime.
    Checkpointed,
    /// Evicted to make room for another object (`max_active`). Such an object was in use
    /// moments ago and is likely wanted again soon, while another request waits for its slot:
    /// a short WAL stays as it is (`ObjectDb::close_keeping_wal`), so closing writes and syncs
    /// nothing. Its next idle hibernation checkpoints it.
    Evicted,
}

impl Active {
    pub(super) fn open(ctx: &Arc<ObjectCtx>, slot: OwnedSemaphorePermit) -> Result<Self, EventError> {
        let settings = ctx.context.object_settings(ctx.namespace.limits.storage_cap);
        let mut db = ObjectDb::open(&ctx.db_path, settings).map_err(|err| match err {
            // A cluster's previous owner of the object has not closed it yet.
            opendo_storage::Error::InUse(_) if ctx.context.config.cluster.is_some() => EventError::Moved,
            err => {
                tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "cannot open object database: {err}");
                EventError::Internal("cannot open the object's storage".into())
            }
        })?;
        // So that listings can show it; written with the first batch, only for a new object.
        match ctx.identity.name() {
            Some(name) => db.record_name_at_creation(name),
            // Started by id: the database may know the name.
            None => {
                if let Ok(Some(name)) = db.name() {
                    ctx.identity.learn_name(&name);
                }
            }
        }
        Ok(Active {
            store: new_store(ctx, Some(db), BatchState::default()),
            instance: None,
            ctx: ctx.clone(),
            _counted: Counted::new(&ctx.context),
            _slot: slot,
        })
    }

    pub(super) fn db(&mut self) -> Result<&mut ObjectDb, opendo_storage::Error> {
        self.store
            .data_mut()
            .db
            .as_mut()
            .ok_or_else(|| opendo_storage::Error::Corrupt("object database is not open".into()))
    }

    /// Throws the instance away (in-memory state lost), keeping the database.
    pub(super) fn reset(&mut self) {
        let host = self.store.data_mut();
        let (db, batch) = (host.db.take(), std::mem::take(&mut host.batch));
        self.store = new_store(&self.ctx, db, batch);
        self.instance = None;
    }

    /// Calls into the instance (instantiating it first if needed) under the event's limits.
    /// Async because the guest may wait for another object (`host/calls.rs`).
    pub(super) async fn call(&mut self, ctx: &ObjectCtx, call: GuestCall) -> Result<Returned, TrapCause> {
        self.store.set_epoch_deadline(ctx.namespace.deadline_ticks);
        self.store.data_mut().limiter.hit = false;
        if self.instance.is_none() {
            let instance = match &ctx.namespace.pre {
                ObjectPre::Direct(pre) => pre.instantiate(&mut self.store).map(Instance::Direct),
                ObjectPre::OnFiber(pre) => {
                    pre.instantiate_async(&mut self.store).await.map(Instance::OnFiber)
                }
            };
            self.instance = Some(instance.map_err(|e| self.classify(ctx, &e))?);
        }
        let result = match &self.instance {
            Some(instance) => call.run(instance, &mut self.store).await,
            None => Err(wasmtime::Error::msg("instance missing after instantiation")),
        };
        result.map_err(|e| self.classify(ctx, &e))
    }

    /// Takes what the event did to sockets out of the store (before a reset can drop it).
    pub(super) fn take_event_sockets(&mut self) -> EventSockets {
        std::mem::take(&mut self.store.data_mut().event_sockets)
    }

    pub(super) async fn fetch(&mut self, ctx: &ObjectCtx, request: Request) -> Result<Response, TrapCause> {
        let Request { method, path, headers, body } = request;
        let request = GuestRequest { method, path, headers, body };
        let Returned::Response(response) = self.call(ctx, GuestCall::Fetch(request)).await? else {
            return Err(TrapCause::Other);
        };
        let limit = ctx.namespace.limits.max_response_bytes;
        if response.body.len() > limit {
            tracing::warn!(
                namespace = %ctx.identity.namespace,
                object = %ctx.identity.id,
                cause = %TrapCause::ResponseTooLarge,
                "response body of {} bytes is over the limit of {limit} bytes; event rolled back",
                response.body.len()
            );
            return Err(TrapCause::ResponseTooLarge);
        }
        Ok(Response { status: response.status, headers: response.headers, body: response.body })
    }

    fn classify(&self, ctx: &ObjectCtx, err: &wasmtime::Error) -> TrapCause {
        let cause = trap_cause(err, self.store.data().limiter.hit);
        tracing::warn!(
            namespace = %ctx.identity.namespace,
            object = %ctx.identity.id,
            cause = %cause,
            "event trapped, rolled back and instance reset: {err:?}"
        );
        ctx.context.stats.traps.inc();
        cause
    }

    /// Drops the instance and closes the database: checkpointing its WAL, except for an
    /// evicted object with a short WAL (see [`Closing`]).
    pub(super) fn close(mut self, ctx: &ObjectCtx, closing: Closing) {
        let Some(db) = self.store.data_mut().db.take() else { return };
        // The database syncs its own checkpoint, also under group sync: when thousands of
        // objects hibernate together, their own fsyncs finished sooner than waiting for shared
        // flushes, two each (docs/performance-notes.md, durability across objects).
        let closed = match closing {
            Closing::Checkpointed => db.close(),
            Closing::Evicted => db.close_keeping_wal(),
        };
        if let Err(err) = closed {
            tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "closing object database: {err}");
        }
    }
}

/// A call into one of the guest's handlers.
pub(super) enum GuestCall {
    Fetch(GuestRequest),
    Alarm(AlarmInfo),
    SocketMessage(u64, WsMessage),
    SocketClose { socket: u64, code: u16, reason: String, was_clean: bool },
    SocketError(u64, String),
}

/// What a handler returned.
pub(super) enum Returned {
    Response(GuestResponse),
    /// `alarm` and the socket handlers: `ok`, or an error message for the log.
    Handled(Result<(), String>),
}

/// An object's instance, as its namespace's component is called (see `bindings.rs`).
enum Instance {
    Direct(DurableObject),
    OnFiber(on_fiber::DurableObject),
}

impl GuestCall {
    async fn run(self, instance: &Instance, store: &mut Store<Host>) -> wasmtime::Result<Returned> {
        let handler = match instance {
            Instance::Direct(instance) => return self.run_direct(instance, store),
            Instance::OnFiber(instance) => instance.opendo_durable_object_handler(),
        };
        let handled = match self {
            GuestCall::Fetch(request) => {
                return handler.call_fetch(store, &request).await.map(Returned::Response);
            }
            GuestCall::Alarm(AlarmInfo { retry_count, is_retry }) => {
                let info =
                    on_fiber::exports::opendo::durable_object::handler::AlarmInfo { retry_count, is_retry };
                handler.call_alarm(store, info).await
            }
            GuestCall::SocketMessage(socket, message) => {
                handler.call_websocket_message(store, socket, &message).await
            }
            GuestCall::SocketClose { socket, code, reason, was_clean } => {
                handler.call_websocket_close(store, socket, code, &reason, was_clean).await
            }
            GuestCall::SocketError(socket, message) => {
                handler.call_websocket_error(store, socket, &message).await
            }
        };
        handled.map(Returned::Handled)
    }

    fn run_direct(self, instance: &DurableObject, store: &mut Store<Host>) -> wasmtime::Result<Returned> {
        let handler = instance.opendo_durable_object_handler();
        let handled = match self {
            GuestCall::Fetch(request) => return handler.call_fetch(store, &request).map(Returned::Response),
            GuestCall::Alarm(info) => handler.call_alarm(store, info),
            GuestCall::SocketMessage(socket, message) => {
                handler.call_websocket_message(store, socket, &message)
            }
            GuestCall::SocketClose { socket, code, reason, was_clean } => {
                handler.call_websocket_close(store, socket, code, &reason, was_clean)
            }
            GuestCall::SocketError(socket, message) => handler.call_websocket_error(store, socket, &message),
        };
        handled.map(Returned::Handled)
    }
}

fn new_store(ctx: &Arc<ObjectCtx>, db: Option<ObjectDb>, batch: BatchState) -> Store<Host> {
    let mut store = Store::new(&ctx.context.engine, Host::new(ctx.clone(), db, batch));
    store.limiter(|host| &mut host.limiter);
    limit_cpu(&mut store, ctx.namespace.limits.cpu_limit, |host| &host.event);
    store
}
