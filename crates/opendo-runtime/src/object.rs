//! One object's actor: a tokio task owning the object's instance and database, draining its
//! mailbox one batch at a time.
//!
//! A batch is every event queued when the actor looks (up to [`MAX_BATCH`]). It runs on tokio's
//! blocking pool: one SQLite transaction, one savepoint per event, one commit, then the replies
//! (the output gate). A trapped event rolls back its own savepoint only, and resets the instance.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use opendo_storage::{ObjectDb, Settings};
use tokio::sync::{mpsc, oneshot};
use wasmtime::{Store, Trap};

use crate::bindings::{DurableObject, Request, Response};
use crate::host::{DeadlineExceeded, Host, Identity, StorageFailure};
use crate::namespace::Namespace;
use crate::runtime::Shared;
use crate::{EventError, TrapCause};

/// Most events committed together.
const MAX_BATCH: usize = 64;

/// One event waiting in a mailbox, with where its outcome goes.
pub(crate) struct Envelope {
    pub(crate) request: Request,
    pub(crate) reply: oneshot::Sender<Result<Response, EventError>>,
}

/// What an actor needs to know, shared with its blocking batches.
pub(crate) struct ObjectCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) namespace: Arc<Namespace>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) db_path: PathBuf,
}

/// An active object: its store (holding the database) and, once instantiated, its instance.
struct Active {
    store: Store<Host>,
    instance: Option<DurableObject>,
    _counted: Counted,
}

/// Counts an active object in the runtime's stats for as long as it lives.
struct Counted(Arc<Shared>);

impl Counted {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.stats.active.fetch_add(1, Ordering::Relaxed);
        shared.stats.activations.fetch_add(1, Ordering::Relaxed);
        Counted(shared.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.stats.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Active {
    fn open(ctx: &ObjectCtx) -> Result<Self, EventError> {
        let settings =
            Settings { durability: ctx.shared.config.durability, storage_cap: ctx.shared.config.storage_cap };
        let db = ObjectDb::open(&ctx.db_path, settings).map_err(|err| {
            tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "cannot open object database: {err}");
            EventError::Internal("cannot open the object's storage".into())
        })?;
        Ok(Active { store: new_store(ctx, Some(db)), instance: None, _counted: Counted::new(&ctx.shared) })
    }

    fn db(&mut self) -> Result<&mut ObjectDb, opendo_storage::Error> {
        self.store
            .data_mut()
            .db
            .as_mut()
            .ok_or_else(|| opendo_storage::Error::Corrupt("object database is not open".into()))
    }

    /// Throws the instance away (in-memory state lost), keeping the database.
    fn reset(&mut self, ctx: &ObjectCtx) {
        let db = self.store.data_mut().db.take();
        self.store = new_store(ctx, db);
        self.instance = None;
    }

    fn fetch(&mut self, ctx: &ObjectCtx, request: &Request) -> Result<Response, TrapCause> {
        self.store.set_epoch_deadline(ctx.shared.deadline_ticks);
        self.store.data_mut().limiter.hit = false;
        if self.instance.is_none() {
            let instance = ctx.namespace.pre.instantiate(&mut self.store);
            self.instance = Some(instance.map_err(|e| self.classify(ctx, &e))?);
        }
        let result = match &self.instance {
            Some(instance) => instance.opendo_durable_object_handler().call_fetch(&mut self.store, request),
            None => Err(wasmtime::Error::msg("instance missing after instantiation")),
        };
        let response = result.map_err(|e| self.classify(ctx, &e))?;
        let limit = ctx.shared.config.max_response_bytes;
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
        Ok(response)
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
        cause
    }

    /// Drops the instance and closes the database (checkpointing its WAL).
    fn close(mut self, ctx: &ObjectCtx) {
        let db = self.store.data_mut().db.take();
        if let Some(Err(err)) = db.map(ObjectDb::close) {
            tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "closing object database: {err}");
        }
    }
}

fn new_store(ctx: &ObjectCtx, db: Option<ObjectDb>) -> Store<Host> {
    let host = Host::new(db, ctx.identity.clone(), ctx.shared.config.memory_limit);
    let mut store = Store::new(&ctx.shared.engine, host);
    store.limiter(|host| &mut host.limiter);
    store
}

/// The actor: waits for events, runs them in batches, hibernates when idle, and leaves the
/// runtime's table once hibernated with an empty mailbox.
pub(crate) async fn run(ctx: ObjectCtx, mut mailbox: mpsc::Receiver<Envelope>) {
    let ctx = Arc::new(ctx);
    let idle = ctx.shared.config.idle_timeout;
    let mut active: Option<Active> = None;
    loop {
        let first = match tokio::time::timeout(idle, mailbox.recv()).await {
            Ok(Some(envelope)) => envelope,
            // Every sender is gone: the runtime is shutting down.
            Ok(None) => break,
            Err(_idle) => {
                if let Some(object) = active.take() {
                    close(&ctx, object).await;
                    ctx.shared.stats.hibernations.fetch_add(1, Ordering::Relaxed);
                }
                if ctx.shared.retire(&ctx.namespace.name, &ctx.identity.id, &mailbox) {
                    return;
                }
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match mailbox.try_recv() {
                Ok(envelope) => batch.push(envelope),
                Err(_) => break,
            }
        }
        let batch_ctx = ctx.clone();
        let object = active.take();
        active = match tokio::task::spawn_blocking(move || run_batch(&batch_ctx, object, batch)).await {
            Ok(object) => object,
            Err(err) => {
                // A panic in host code: the batch's callers see their reply channel closed.
                tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "event batch failed: {err}");
                None
            }
        };
    }
    if let Some(object) = active.take() {
        close(&ctx, object).await;
    }
}

async fn close(ctx: &Arc<ObjectCtx>, object: Active) {
    let ctx = ctx.clone();
    // Closing checkpoints and fsyncs: never on an async worker.
    let _ = tokio::task::spawn_blocking(move || object.close(&ctx)).await;
}

fn run_batch(ctx: &ObjectCtx, active: Option<Active>, batch: Vec<Envelope>) -> Option<Active> {
    let mut active = match active.map_or_else(|| Active::open(ctx), Ok) {
        Ok(active) => active,
        Err(err) => {
            for envelope in batch {
                let _ = envelope.reply.send(Err(err.clone()));
            }
            return None;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    let mut pending = batch.into_iter();
    let outcome = (|| -> Result<(), opendo_storage::Error> {
        active.db()?.begin_batch()?;
        for envelope in pending.by_ref() {
            let db = active.db()?;
            db.begin_event()?;
            db.set_deadline(Some(Instant::now() + ctx.shared.config.cpu_limit));
            let result = active.fetch(ctx, &envelope.request);
            let refused = active.db()?.finish_event(result.is_ok())?;
            if result.is_err() {
                active.reset(ctx);
            }
            let outcome = match (result, refused) {
                (Err(cause), _) => Err(EventError::Trapped(cause)),
                (Ok(_), Some(reason)) => Err(EventError::Refused(reason.to_string())),
                (Ok(response), None) => Ok(response),
            };
            done.push((envelope.reply, outcome));
        }
        active.db()?.commit_batch()
    })();
    match outcome {
        Ok(()) => {
            for (reply, result) in done {
                let _ = reply.send(result);
            }
            Some(active)
        }
        Err(err) => {
            tracing::error!(
                namespace = %ctx.identity.namespace,
                object = %ctx.identity.id,
                "storage failed during an event batch; {} events rolled back: {err}",
                done.len() + pending.len()
            );
            if let Ok(db) = active.db() {
                let _ = db.rollback_batch();
            }
            let failure = EventError::Internal("the object's storage failed; nothing was written".into());
            for reply in done.into_iter().map(|(reply, _)| reply).chain(pending.map(|e| e.reply)) {
                let _ = reply.send(Err(failure.clone()));
            }
            active.close(ctx);
            None
        }
    }
}
