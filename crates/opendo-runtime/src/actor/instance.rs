//! An active object: its wasmtime store (holding the database) and, once instantiated, its
//! instance; calls into the guest under the event's limits, and what a trap was caused by.

use std::sync::Arc;

use opendo_storage::{Alarm, ObjectDb, Settings};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Store, Trap};

use super::object::ObjectCtx;
use crate::bindings::{DurableObject, GuestRequest};
use crate::context::Context;
use crate::error::{EventError, TrapCause};
use crate::host::{DeadlineExceeded, Host, StorageFailure};
use crate::http::{Request, Response};
use crate::sockets::EventSockets;

/// An active object: its store (holding the database) and, once instantiated, its instance.
pub(super) struct Active {
    pub(super) store: Store<Host>,
    instance: Option<DurableObject>,
    /// The alarm as of the last commit, once read (saves reading it around every batch).
    pub(super) committed_alarm: Option<Option<Alarm>>,
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
    pub(super) fn open(ctx: &ObjectCtx, slot: OwnedSemaphorePermit) -> Result<Self, EventError> {
        let settings = Settings {
            durability: ctx.context.object_durability(),
            storage_cap: ctx.namespace.limits.storage_cap,
        };
        let mut db = ObjectDb::open(&ctx.db_path, settings).map_err(|err| {
            tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "cannot open object database: {err}");
            EventError::Internal("cannot open the object's storage".into())
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
            store: new_store(ctx, Some(db)),
            instance: None,
            committed_alarm: None,
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
    pub(super) fn reset(&mut self, ctx: &ObjectCtx) {
        let db = self.store.data_mut().db.take();
        self.store = new_store(ctx, db);
        self.instance = None;
    }

    /// Calls into the instance (instantiating it first if needed) under the event's limits.
    pub(super) fn call<T>(
        &mut self,
        ctx: &ObjectCtx,
        f: impl FnOnce(&DurableObject, &mut Store<Host>) -> wasmtime::Result<T>,
    ) -> Result<T, TrapCause> {
        self.store.set_epoch_deadline(ctx.namespace.deadline_ticks);
        self.store.data_mut().limiter.hit = false;
        if self.instance.is_none() {
            let instance = ctx.namespace.pre.instantiate(&mut self.store);
            self.instance = Some(instance.map_err(|e| self.classify(ctx, &e))?);
        }
        let result = match &self.instance {
            Some(instance) => f(instance, &mut self.store),
            None => Err(wasmtime::Error::msg("instance missing after instantiation")),
        };
        result.map_err(|e| self.classify(ctx, &e))
    }

    /// Takes what the event did to sockets out of the store (before a reset can drop it).
    pub(super) fn take_event_sockets(&mut self) -> EventSockets {
        std::mem::take(&mut self.store.data_mut().event_sockets)
    }

    pub(super) fn fetch(&mut self, ctx: &ObjectCtx, request: Request) -> Result<Response, TrapCause> {
        let Request { method, path, headers, body } = request;
        let request = GuestRequest { method, path, headers, body };
        let response = self.call(ctx, |instance, store| {
            instance.opendo_durable_object_handler().call_fetch(store, &request)
        })?;
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
        let cause = if self.store.data().limiter.hit {
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
        };
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

fn new_store(ctx: &ObjectCtx, db: Option<ObjectDb>) -> Store<Host> {
    let host = Host::new(
        db,
        ctx.identity.clone(),
        ctx.log_budget.clone(),
        ctx.context.host_limits.clone(),
        ctx.namespace.limits.memory_limit,
        ctx.sockets.clone(),
    );
    let mut store = Store::new(&ctx.context.engine, host);
    store.limiter(|host| &mut host.limiter);
    store
}
