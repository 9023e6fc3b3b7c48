//! One object's actor: a tokio task owning the object's instance and database, draining its
//! mailbox one batch at a time.
//!
//! A batch is every event queued when the actor looks (up to [`MAX_BATCH`]). It runs on tokio's
//! blocking pool: one SQLite transaction, one savepoint per event (none for an event alone in its
//! batch), one commit. Then the actor releases the replies and socket outputs (the output gate).
//! A trapped event rolls back its own writes only, and resets the instance.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use std::time::Duration;

use opendo_storage::{Alarm, Durability, ObjectDb, Settings};
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc, oneshot};
use wasmtime::{Store, Trap};

use crate::bindings::{AlarmInfo, DurableObject, Request, Response, WsMessage};
use crate::host::{DeadlineExceeded, Host, Identity, StorageFailure};
use crate::namespace::Namespace;
use crate::runtime::Shared;
use crate::sync::{Flushed, Ticket};
use crate::websocket::{Accepted, EventSockets, Outputs, Sockets};
use crate::{EventError, TrapCause};

/// Most events committed together.
const MAX_BATCH: usize = 64;

/// Failed alarm runs retried before the alarm is dropped.
pub(crate) const MAX_ALARM_RETRIES: u32 = 6;

/// One event waiting in a mailbox, with where its outcome goes.
pub(crate) enum Envelope {
    Fetch {
        request: Request,
        /// Whether the request asks for a WebSocket upgrade (the guest may accept it).
        upgrade: bool,
        reply: oneshot::Sender<Result<Answer, EventError>>,
    },
    /// The scheduler found the object's alarm (possibly) due.
    Alarm { reply: oneshot::Sender<Result<AlarmRun, EventError>> },
    /// Something happened on one of the object's sockets. Nobody waits for the outcome.
    Socket { socket: u64, event: SocketEvent },
}

/// An object's answer to a request: its response and, for an accepted upgrade, the socket.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) response: Response,
    pub(crate) accepted: Option<Accepted>,
}

/// What a connection reports to its object.
#[derive(Debug)]
pub(crate) enum SocketEvent {
    Message(tokio_tungstenite::tungstenite::Message),
    Close { code: u16, reason: String, was_clean: bool },
    Error(String),
}

impl SocketEvent {
    /// Whether this is the socket's last event (after it, the socket leaves the table).
    fn ends_socket(&self) -> bool {
        matches!(self, SocketEvent::Close { .. } | SocketEvent::Error(_))
    }
}

/// What an alarm event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlarmRun {
    /// No alarm was due (the index entry was early or stale).
    NotDue,
    /// The handler ran and succeeded.
    Ran,
    /// The handler failed; the alarm is set again for retry number `retry_count`.
    Retrying { retry_count: u32 },
    /// The handler failed after every retry; the alarm was deleted.
    Dropped,
}

impl Envelope {
    fn fail(self, sockets: &Sockets, err: EventError) {
        match self {
            Envelope::Fetch { reply, .. } => drop(reply.send(Err(err))),
            Envelope::Alarm { reply } => drop(reply.send(Err(err))),
            Envelope::Socket { socket, event } => {
                if event.ends_socket() {
                    sockets.remove(socket);
                }
            }
        }
    }
}

/// An event that ran, with its outcome and socket outputs held until the batch commits.
struct Done {
    reply: Reply,
    outputs: Outputs,
}

enum Reply {
    Fetch(oneshot::Sender<Result<Answer, EventError>>, Result<Answer, EventError>),
    Alarm(oneshot::Sender<Result<AlarmRun, EventError>>, AlarmRun),
    None,
}

impl Done {
    fn release(self, sockets: &Sockets) {
        sockets.release(self.outputs);
        match self.reply {
            Reply::Fetch(reply, outcome) => {
                if let Err(Ok(Answer { accepted: Some(accepted), .. })) = reply.send(outcome) {
                    // The client left before the answer: the socket will never connect.
                    sockets.remove(accepted.socket);
                }
            }
            Reply::Alarm(reply, run) => drop(reply.send(Ok(run))),
            Reply::None => {}
        }
    }

    fn fail(self, sockets: &Sockets, err: EventError) {
        let accepted = match self.reply {
            Reply::Fetch(reply, outcome) => {
                drop(reply.send(Err(err)));
                outcome.ok().and_then(|answer| answer.accepted)
            }
            Reply::Alarm(reply, _) => {
                drop(reply.send(Err(err)));
                None
            }
            Reply::None => None,
        };
        EventSockets { upgrade: false, accepted, outputs: self.outputs }.discard(sockets);
    }
}

/// What an actor needs to know, shared with its blocking batches.
pub(crate) struct ObjectCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) namespace: Arc<Namespace>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) db_path: PathBuf,
    pub(crate) control: Arc<ActorControl>,
    /// The object's WebSockets; they outlive its instance (see `websocket`).
    pub(crate) sockets: Arc<Sockets>,
}

/// What the runtime sees of an actor, to pick one to hibernate when `max_active` is reached.
#[derive(Debug, Default)]
pub(crate) struct ActorControl {
    /// When its last batch ended, in nanoseconds since the runtime started.
    pub(crate) last_used: AtomicU64,
    /// Whether it holds an open instance and database.
    pub(crate) active: AtomicBool,
    /// Whether a batch is running right now.
    pub(crate) busy: AtomicBool,
    /// Asks it to hibernate now.
    pub(crate) evict: Notify,
}

/// An active object: its store (holding the database) and, once instantiated, its instance.
struct Active {
    store: Store<Host>,
    instance: Option<DurableObject>,
    /// The alarm as of the last commit, once read (saves reading it around every batch).
    committed_alarm: Option<Option<Alarm>>,
    _counted: Counted,
    /// One of the runtime's `max_active` slots, given back when the object closes.
    _slot: OwnedSemaphorePermit,
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
    fn open(ctx: &ObjectCtx, slot: OwnedSemaphorePermit) -> Result<Self, EventError> {
        // Under group sync `GroupSync` makes a new object's first commit durable, with the new
        // files' directory entries; the database fsyncs its other commits itself.
        let durability = match ctx.shared.group_sync {
            Some(_) => Durability::SharedCreation,
            None => ctx.shared.config.durability,
        };
        let settings = Settings { durability, storage_cap: ctx.shared.config.storage_cap };
        let db = ObjectDb::open(&ctx.db_path, settings).map_err(|err| {
            tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "cannot open object database: {err}");
            EventError::Internal("cannot open the object's storage".into())
        })?;
        Ok(Active {
            store: new_store(ctx, Some(db)),
            instance: None,
            committed_alarm: None,
            _counted: Counted::new(&ctx.shared),
            _slot: slot,
        })
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

    /// Calls into the instance (instantiating it first if needed) under the event's limits.
    fn call<T>(
        &mut self,
        ctx: &ObjectCtx,
        f: impl FnOnce(&DurableObject, &mut Store<Host>) -> wasmtime::Result<T>,
    ) -> Result<T, TrapCause> {
        self.store.set_epoch_deadline(ctx.shared.deadline_ticks);
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
    fn take_event_sockets(&mut self) -> EventSockets {
        std::mem::take(&mut self.store.data_mut().event_sockets)
    }

    fn fetch(&mut self, ctx: &ObjectCtx, request: &Request) -> Result<Response, TrapCause> {
        let response = self.call(ctx, |instance, store| {
            instance.opendo_durable_object_handler().call_fetch(store, request)
        })?;
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
        ctx.shared.stats.traps.fetch_add(1, Ordering::Relaxed);
        cause
    }

    /// Drops the instance and closes the database: checkpointing its WAL, except for an
    /// evicted object with a short WAL (see [`Closing`]).
    fn close(mut self, ctx: &ObjectCtx, closing: Closing) {
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

/// How an active object closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Its WAL checkpointed into the database file: an object that went idle, failed, or
    /// closes with the runtime.
    Checkpointed,
    /// Evicted to make room for another object (`max_active`). Such an object was in use
    /// moments ago and is likely wanted again soon, while another request waits for its slot:
    /// a short WAL stays as it is (`ObjectDb::close_keeping_wal`), so closing writes and syncs
    /// nothing. Its next idle hibernation checkpoints it.
    Evicted,
}

fn new_store(ctx: &ObjectCtx, db: Option<ObjectDb>) -> Store<Host> {
    let host = Host::new(db, ctx.identity.clone(), ctx.shared.clone(), ctx.sockets.clone());
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
        let received = tokio::select! {
            received = tokio::time::timeout(idle, mailbox.recv()) => received.map_err(|_| false),
            () = ctx.control.evict.notified(), if active.is_some() => Err(true),
        };
        let first = match received {
            Ok(Some(envelope)) => envelope,
            // Every sender is gone: the runtime is shutting down.
            Ok(None) => break,
            Err(evicted) => {
                if let Some(object) = active.take() {
                    let closing = if evicted { Closing::Evicted } else { Closing::Checkpointed };
                    close(&ctx, object, closing).await;
                    if evicted {
                        ctx.shared.stats.evictions.fetch_add(1, Ordering::Relaxed);
                    } else {
                        ctx.shared.stats.hibernations.fetch_add(1, Ordering::Relaxed);
                        // Memory of an object that went idle is not needed soon (an evicted one's
                        // is reused at once by the object that replaced it).
                        ctx.shared.return_freed_memory();
                    }
                }
                // With sockets open the actor stays: it holds them while the object hibernates.
                if ctx.sockets.is_empty()
                    && ctx.shared.retire(&ctx.namespace.name, &ctx.identity.id, &mailbox)
                {
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
        let waking = active.is_none().then(Instant::now);
        let slot = match active {
            Some(_) => None,
            None => Some(ctx.shared.take_active_slot(&ctx.namespace.name, &ctx.identity.id).await),
        };
        ctx.control.busy.store(true, Ordering::Relaxed);
        let batch_ctx = ctx.clone();
        let object = active.take();
        let Ran { object, done, flush_pending } = match tokio::task::spawn_blocking(move || {
            run_batch(&batch_ctx, object, slot, batch)
        })
        .await
        {
            Ok(ran) => ran,
            Err(err) => {
                // A panic in host code: the batch's callers see their reply channel closed.
                tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "event batch failed: {err}");
                Ran::closed()
            }
        };
        active = object;
        // Awaited here, not on the blocking thread: that thread is free for another object's
        // batch meanwhile, and one flush wakes all the actors it covered at once.
        let durable = match (flush_pending, &ctx.shared.group_sync) {
            (Some(ticket), Some(sync)) => sync.wait(ticket).await,
            _ => Ok(()),
        };
        match durable {
            // Released by the actor, not on the blocking thread: that thread then wakes only the
            // actor, and the callers' tasks are woken from inside the async runtime.
            Ok(()) => done.into_iter().for_each(|event| event.release(&ctx.sockets)),
            Err(err) => {
                tracing::error!(
                    namespace = %ctx.identity.namespace,
                    object = %ctx.identity.id,
                    "a committed batch could not be made durable; its {} events failed: {err}",
                    done.len()
                );
                for event in done {
                    event.fail(&ctx.sockets, storage_failure());
                }
                if let Some(object) = active.take() {
                    close(&ctx, object, Closing::Checkpointed).await;
                }
            }
        }
        if let (Some(started), Some(_)) = (waking, &active) {
            ctx.shared.stats.wake.record(started.elapsed());
        }
        ctx.control.active.store(active.is_some(), Ordering::Relaxed);
        ctx.control.last_used.store(ctx.shared.uptime_nanos(), Ordering::Relaxed);
        ctx.control.busy.store(false, Ordering::Relaxed);
    }
    if let Some(object) = active.take() {
        close(&ctx, object, Closing::Checkpointed).await;
    }
}

async fn close(ctx: &Arc<ObjectCtx>, object: Active, closing: Closing) {
    ctx.control.active.store(false, Ordering::Relaxed);
    let ctx = ctx.clone();
    // Closing checkpoints and fsyncs: never on an async worker.
    let _ = tokio::task::spawn_blocking(move || object.close(&ctx, closing)).await;
}

/// What a batch leaves to the actor.
struct Ran {
    /// `None` if the object had to close.
    object: Option<Active>,
    /// Events whose replies and socket outputs may be released once the batch is durable. Events
    /// that failed with the batch were answered already.
    done: Vec<Done>,
    /// The batch committed under group sync while another flush ran: durable once a later
    /// flush covers this ticket.
    flush_pending: Option<Ticket>,
}

impl Ran {
    fn closed() -> Self {
        Ran { object: None, done: Vec::new(), flush_pending: None }
    }
}

fn storage_failure() -> EventError {
    EventError::Internal("the object's storage failed; the server log has the cause".into())
}

/// Runs a batch and commits it.
fn run_batch(
    ctx: &ObjectCtx,
    active: Option<Active>,
    slot: Option<OwnedSemaphorePermit>,
    batch: Vec<Envelope>,
) -> Ran {
    let started = Instant::now();
    let ran = run_events(ctx, active, slot, batch);
    ctx.shared.stats.batch.record(started.elapsed());
    ran
}

fn run_events(
    ctx: &ObjectCtx,
    active: Option<Active>,
    slot: Option<OwnedSemaphorePermit>,
    batch: Vec<Envelope>,
) -> Ran {
    let opened = match (active, slot) {
        (Some(active), _) => Ok(active),
        (None, Some(slot)) => Active::open(ctx, slot),
        (None, None) => Err(EventError::Internal("no active slot for the object".into())),
    };
    let mut active = match opened {
        Ok(active) => active,
        Err(err) => {
            for envelope in batch {
                envelope.fail(&ctx.sockets, err.clone());
            }
            return Ran::closed();
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    let alone = batch.len() == 1;
    let mut pending = batch.into_iter();
    let outcome = (|| -> Result<Option<Ticket>, opendo_storage::Error> {
        active.db()?.begin_batch()?;
        let alarm_before = match active.committed_alarm {
            Some(alarm) => alarm,
            None => active.db()?.get_alarm()?,
        };
        let alarm_writes = active.db()?.alarm_writes();
        let mut ran_alarm = false;
        for envelope in pending.by_ref() {
            match envelope {
                Envelope::Fetch { request, upgrade, reply } => {
                    let (outcome, outputs) = run_fetch(ctx, &mut active, &request, upgrade, alone)?;
                    done.push(Done { reply: Reply::Fetch(reply, outcome), outputs });
                }
                Envelope::Alarm { reply } => {
                    ran_alarm = true;
                    let (run, outputs) = run_alarm(ctx, &mut active, alone)?;
                    done.push(Done { reply: Reply::Alarm(reply, run), outputs });
                }
                Envelope::Socket { socket, event } => {
                    let outputs = run_socket_event(ctx, &mut active, socket, event, alone)?;
                    done.push(Done { reply: Reply::None, outputs });
                }
            }
        }
        let alarm_after = match active.db()?.alarm_writes() == alarm_writes {
            true => alarm_before,
            false => active.db()?.get_alarm()?,
        };
        let moved = alarm_before.map(|a| a.time_ms) != alarm_after.map(|a| a.time_ms);
        if let (true, Some(alarm)) = (moved, alarm_after) {
            // Before the commit, so the index never misses an alarm the database holds.
            ctx.namespace.with_alarm_index(|index| {
                index.lower(&ctx.identity.id, ctx.identity.name.as_deref(), alarm.time_ms)
            })?;
        }
        let wrote = active.db()?.commit_batch()?;
        let flush_pending = match (wrote, &ctx.shared.group_sync) {
            (true, Some(sync)) => {
                // The alarm index may follow the object's alarm only once the commit is durable.
                let flushed =
                    if moved || ran_alarm { Flushed::Now(sync.wait_durable()) } else { sync.flush() };
                match flushed {
                    Flushed::Now(outcome) => {
                        outcome.map_err(|source| opendo_storage::Error::Io {
                            path: ctx.shared.config.data_dir.clone(),
                            source,
                        })?;
                        None
                    }
                    Flushed::Later(ticket) => Some(ticket),
                }
            }
            _ => None,
        };
        active.committed_alarm = Some(alarm_after);
        ctx.shared.stats.commits.fetch_add(1, Ordering::Relaxed);
        if moved || ran_alarm {
            sync_alarm_index(ctx, alarm_after);
        }
        Ok(flush_pending)
    })();
    match outcome {
        Ok(flush_pending) => Ran { object: Some(active), done, flush_pending },
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
            for event in done {
                event.fail(&ctx.sockets, storage_failure());
            }
            for envelope in pending {
                envelope.fail(&ctx.sockets, storage_failure());
            }
            active.close(ctx, Closing::Checkpointed);
            Ran::closed()
        }
    }
}

fn run_fetch(
    ctx: &ObjectCtx,
    active: &mut Active,
    request: &Request,
    upgrade: bool,
    alone: bool,
) -> Result<(Result<Answer, EventError>, Outputs), opendo_storage::Error> {
    begin_event(ctx, active, alone)?;
    active.store.data_mut().event_sockets.upgrade = upgrade;
    let result = active.fetch(ctx, request);
    let mut sockets = active.take_event_sockets();
    let refused = finish_event(ctx, active, result.is_ok(), &mut sockets)?;
    if result.is_err() {
        active.reset(ctx);
    }
    let outcome = match (result, refused) {
        (Err(cause), _) => Err(EventError::Trapped(cause)),
        (Ok(_), Some(reason)) => Err(EventError::Refused(reason.to_string())),
        (Ok(response), None) => {
            // Only a 101 answer completes an upgrade; any other status discards the socket.
            let accepted = if response.status == 101 { sockets.accepted.take() } else { None };
            Ok(Answer { response, accepted })
        }
    };
    if outcome.is_err() {
        sockets.discard(&ctx.sockets);
        return Ok((outcome, Vec::new()));
    }
    if let Some(unused) = sockets.accepted.take() {
        ctx.sockets.remove(unused.socket);
    }
    Ok((outcome, sockets.outputs))
}

/// Starts an event (see `ObjectDb::begin_event`) with its CPU deadline; returns the database.
fn begin_event<'a>(
    ctx: &ObjectCtx,
    active: &'a mut Active,
    alone: bool,
) -> Result<&'a mut ObjectDb, opendo_storage::Error> {
    let db = active.db()?;
    db.begin_event(alone)?;
    db.set_deadline(Some(Instant::now() + ctx.shared.config.cpu_limit));
    Ok(db)
}

/// Ends the event's savepoint (see `ObjectDb::finish_event`). If the database fails, the
/// event's socket outputs are undone before the error ends the batch.
fn finish_event(
    ctx: &ObjectCtx,
    active: &mut Active,
    keep: bool,
    sockets: &mut EventSockets,
) -> Result<Option<opendo_storage::Error>, opendo_storage::Error> {
    let finished = active.db().and_then(|db| db.finish_event(keep));
    if finished.is_err() {
        std::mem::take(sockets).discard(&ctx.sockets);
    }
    finished
}

/// Runs a guest handler that returns `result<_, string>` as one event: its writes and socket
/// outputs are kept only if it returns `ok`. Returns the failure, if any, for the log.
fn run_handler(
    ctx: &ObjectCtx,
    active: &mut Active,
    call: impl FnOnce(&DurableObject, &mut Store<Host>) -> wasmtime::Result<Result<(), String>>,
) -> Result<(Option<String>, Outputs), opendo_storage::Error> {
    let result = active.call(ctx, call);
    let mut sockets = active.take_event_sockets();
    let failure = match &result {
        Ok(Ok(())) => None,
        Ok(Err(message)) => Some(format!("the handler returned an error: {message}")),
        Err(cause) => Some(format!("the handler trapped: {cause}")),
    };
    let refused = finish_event(ctx, active, failure.is_none(), &mut sockets)?;
    if result.is_err() {
        active.reset(ctx);
    }
    match failure.or(refused.map(|e| e.to_string())) {
        None => Ok((None, sockets.outputs)),
        Some(reason) => {
            sockets.discard(&ctx.sockets);
            Ok((Some(reason), Vec::new()))
        }
    }
}

/// Delivers a socket's message, close or error to the guest.
fn run_socket_event(
    ctx: &ObjectCtx,
    active: &mut Active,
    socket: u64,
    event: SocketEvent,
    alone: bool,
) -> Result<Outputs, opendo_storage::Error> {
    let ends = event.ends_socket();
    let result = call_socket_handler(ctx, active, socket, event, alone);
    if ends {
        // The object was told (or its storage failed trying): the tags and attachment go now.
        ctx.sockets.remove(socket);
    }
    result
}

fn call_socket_handler(
    ctx: &ObjectCtx,
    active: &mut Active,
    socket: u64,
    event: SocketEvent,
    alone: bool,
) -> Result<Outputs, opendo_storage::Error> {
    use tokio_tungstenite::tungstenite::Message;
    begin_event(ctx, active, alone)?;
    let kind = match &event {
        SocketEvent::Message(_) => "websocket-message",
        SocketEvent::Close { .. } => "websocket-close",
        SocketEvent::Error(_) => "websocket-error",
    };
    let (failure, outputs) = run_handler(ctx, active, |instance, store| {
        let handler = instance.opendo_durable_object_handler();
        match event {
            SocketEvent::Message(Message::Text(text)) => {
                handler.call_websocket_message(store, socket, &WsMessage::Text(text.to_string()))
            }
            SocketEvent::Message(message) => handler.call_websocket_message(
                store,
                socket,
                &WsMessage::Binary(message.into_data().to_vec()),
            ),
            SocketEvent::Close { code, reason, was_clean } => {
                handler.call_websocket_close(store, socket, code, &reason, was_clean)
            }
            SocketEvent::Error(message) => handler.call_websocket_error(store, socket, &message),
        }
    })?;
    if let Some(reason) = failure {
        tracing::warn!(
            namespace = %ctx.identity.namespace,
            object = %ctx.identity.id,
            socket,
            "{kind} rolled back: {reason}"
        );
    }
    Ok(outputs)
}

/// Runs the object's alarm if it is due: clears it, calls the handler, and on failure sets it
/// again for a retry (or drops it after [`MAX_ALARM_RETRIES`]).
fn run_alarm(
    ctx: &ObjectCtx,
    active: &mut Active,
    alone: bool,
) -> Result<(AlarmRun, Outputs), opendo_storage::Error> {
    let now = ctx.shared.config.clock.now_ms();
    let Some(alarm) = active.db()?.get_alarm()? else { return Ok((AlarmRun::NotDue, Vec::new())) };
    if alarm.time_ms > now {
        return Ok((AlarmRun::NotDue, Vec::new()));
    }
    // Inside the handler `get-alarm` is none unless the handler sets a new alarm.
    begin_event(ctx, active, alone)?.delete_alarm()?;
    let info = AlarmInfo { retry_count: alarm.retry_count, is_retry: alarm.retry_count > 0 };
    ctx.shared.stats.alarm_runs.fetch_add(1, Ordering::Relaxed);
    let (failure, outputs) = run_handler(ctx, active, |instance, store| {
        instance.opendo_durable_object_handler().call_alarm(store, info)
    })?;
    let Some(reason) = failure else { return Ok((AlarmRun::Ran, outputs)) };
    let retry_count = alarm.retry_count + 1;
    if retry_count > MAX_ALARM_RETRIES {
        active.db()?.delete_alarm()?;
        ctx.shared.stats.alarms_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            namespace = %ctx.identity.namespace,
            object = %ctx.identity.id,
            "alarm dropped after {MAX_ALARM_RETRIES} retries; last failure: {reason}"
        );
        return Ok((AlarmRun::Dropped, Vec::new()));
    }
    let delay = retry_delay(ctx.shared.config.alarm_retry_base, retry_count);
    let time_ms = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
    active.db()?.put_alarm(Alarm { time_ms, retry_count })?;
    ctx.shared.stats.alarm_retries.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        namespace = %ctx.identity.namespace,
        object = %ctx.identity.id,
        retry_count,
        "alarm failed, retrying in {delay:?}: {reason}"
    );
    Ok((AlarmRun::Retrying { retry_count }, Vec::new()))
}

/// `base * 2^(retry - 1)`, plus up to 25% jitter.
fn retry_delay(base: Duration, retry_count: u32) -> Duration {
    let delay = base.saturating_mul(1 << retry_count.saturating_sub(1).min(20));
    delay.mul_f64(1.0 + rand::random::<f64>() * 0.25)
}

/// After a commit: makes the index entry exact (or removes it) and wakes the scheduler. A failure
/// here leaves an early or stale entry, which the scheduler corrects later.
fn sync_alarm_index(ctx: &ObjectCtx, alarm: Option<Alarm>) {
    let synced = ctx.namespace.with_alarm_index(|index| match alarm {
        Some(alarm) => index.set(&ctx.identity.id, ctx.identity.name.as_deref(), alarm.time_ms),
        None => index.remove(&ctx.identity.id),
    });
    if let Err(err) = synced {
        tracing::warn!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "updating the alarm index: {err}");
    }
    ctx.shared.alarm_wakeup.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_at_most_a_quarter_of_jitter() {
        for (retry, base_ms) in [(1, 2000), (2, 4000), (3, 8000), (6, 64000)] {
            let delay = retry_delay(Duration::from_secs(2), retry).as_millis();
            assert!(delay >= base_ms && delay <= base_ms * 5 / 4, "retry {retry}: {delay} ms");
        }
    }
}
