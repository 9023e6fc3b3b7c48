use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use indexmap::IndexMap;
use opendo_storage::ObjectId;
use opendo_storage::layout::DataDirLock;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{DurableObject, Request, Response};
use crate::engine::{EpochTicker, deadline_ticks, new_engine};
use crate::host::{Host, Identity, LogBudget};
use crate::namespace::Namespace;
use crate::object::{self, ActorControl, AlarmRun, Answer, Envelope, ObjectCtx, SocketEvent};
use crate::sync::GroupSync;
use crate::websocket::{Accepted, Sockets};
use crate::{Config, Durability, Error, EventError};

/// Longest object name, in bytes.
pub const MAX_OBJECT_NAME_BYTES: usize = 256;

/// Checks an object name: 1 to 256 bytes of UTF-8 with no control characters, and not `.` or `..`
/// (which HTTP clients rewrite away).
pub fn validate_object_name(name: &str) -> Result<(), EventError> {
    let problem = if name.is_empty() {
        "object name is empty"
    } else if name.len() > MAX_OBJECT_NAME_BYTES {
        "object name is longer than 256 bytes"
    } else if name.chars().any(char::is_control) {
        "object name contains a control character"
    } else if name == "." || name == ".." {
        "object name `.` and `..` are reserved"
    } else {
        return Ok(());
    };
    Err(EventError::BadObjectName(problem.into()))
}

/// Counters about the objects of a runtime.
#[derive(Debug, Default)]
pub struct Stats {
    /// Objects with a live instance and an open database right now.
    pub active: AtomicUsize,
    /// Times an object was activated (its database opened) since start.
    pub activations: AtomicU64,
    /// Times an object hibernated after its idle timeout since start.
    pub hibernations: AtomicU64,
    /// Batch transactions committed (several queued events share one: group commit).
    pub commits: AtomicU64,
    /// Objects hibernated early because `max_active` was reached.
    pub evictions: AtomicU64,
    /// Events that trapped.
    pub traps: AtomicU64,
    /// Alarm handler runs (successful or not).
    pub alarm_runs: AtomicU64,
    /// Failed alarm runs scheduled for a retry.
    pub alarm_retries: AtomicU64,
    /// Alarms dropped after their last retry failed.
    pub alarms_dropped: AtomicU64,
    /// WebSockets connected right now.
    pub websockets: AtomicUsize,
    /// Messages answered by an object's auto-response, without an event.
    pub auto_responses: AtomicU64,
    /// How long waking a hibernated object took: from its first event's arrival to the release of
    /// that batch's outputs (opening the database, instantiating, running, committing).
    pub wake: Histogram,
    /// How long each batch of events ran on its thread: opening the object if needed, running
    /// the events, committing, making the commit durable, releasing the outputs.
    pub batch: Histogram,
}

/// Upper bounds of the [`Histogram`] buckets, in seconds.
pub const HISTOGRAM_BOUNDS: [f64; 13] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// A latency histogram with fixed buckets ([`HISTOGRAM_BOUNDS`]), in the shape Prometheus
/// expects: per-bucket counts (not cumulative here), a sum and a count.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; HISTOGRAM_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn record(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket =
            HISTOGRAM_BOUNDS.iter().position(|bound| seconds <= *bound).unwrap_or(HISTOGRAM_BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations per bucket: one more than [`HISTOGRAM_BOUNDS`], the last for larger values.
    pub fn counts(&self) -> Vec<u64> {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect()
    }

    /// The sum of every observation.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed))
    }
}

/// The state every actor shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) engine: Engine,
    pub(crate) deadline_ticks: u64,
    pub(crate) stats: Stats,
    /// Woken when an alarm may have become due sooner, or the runtime is closing.
    pub(crate) alarm_wakeup: Notify,
    /// `max_active` permits: an object holds one while active.
    active_slots: Arc<Semaphore>,
    started: std::time::Instant,
    last_trim: AtomicU64,
    /// A trim is due (see [`Shared::return_freed_memory`]).
    trim_scheduled: AtomicBool,
    objects: Mutex<Objects>,
    /// The number the next accepted WebSocket gets (unique for the life of the process).
    pub(crate) next_socket: AtomicU64,
    /// Cancelled when the runtime shuts down: connections close with 1001.
    shutdown: CancellationToken,
    /// With full durability on Linux: makes new objects' first commits durable in shared
    /// flushes (see `sync`).
    pub(crate) group_sync: Option<GroupSync>,
    /// Keeps other processes out of the data directory while any part of the runtime runs.
    _data_dir_lock: DataDirLock,
}

#[derive(Default)]
struct Objects {
    closing: bool,
    /// Indexed, so that picking an object to hibernate can sample it (see [`EVICTION_SAMPLE`]).
    mailboxes: IndexMap<(Arc<str>, ObjectId), Mailbox>,
}

/// Objects looked at to pick one to hibernate when every active slot is taken: the coldest of a
/// random sample is close enough to the least recently used, at a cost that does not grow with
/// the number of objects (a full scan held the table's lock for as long as it took).
const EVICTION_SAMPLE: usize = 16;

/// An actor as the runtime holds it: where to send its events, and its controls.
struct Mailbox {
    sender: mpsc::Sender<Envelope>,
    control: Arc<ActorControl>,
    sockets: Arc<Sockets>,
}

/// An object as addressed by events from outside its actor.
#[derive(Clone)]
pub(crate) struct Target {
    namespace: Arc<Namespace>,
    id: ObjectId,
    name: Option<String>,
}

/// A WebSocket the object accepted while answering an upgrade request with 101. Hand the
/// upgraded connection to [`AcceptedWebSocket::attach`]; dropping it instead tells the object the
/// socket closed (code 1006).
pub struct AcceptedWebSocket {
    runtime: Runtime,
    target: Target,
    sockets: Arc<Sockets>,
    accepted: Option<Accepted>,
}

impl AcceptedWebSocket {
    /// Serves the socket over `io` (the connection after the 101 response) until it closes.
    pub fn attach<S>(mut self, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(accepted) = self.accepted.take() else { return };
        let runtime = self.runtime.clone();
        let target = self.target.clone();
        let sockets = self.sockets.clone();
        self.runtime.tracker.spawn(async move {
            runtime.shared.stats.websockets.fetch_add(1, Ordering::Relaxed);
            crate::websocket::connection::serve(runtime.clone(), target, sockets, accepted, io).await;
            runtime.shared.stats.websockets.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

impl Drop for AcceptedWebSocket {
    fn drop(&mut self) {
        let Some(accepted) = self.accepted.take() else { return };
        if self.sockets.mark_closed(accepted.socket) {
            let runtime = self.runtime.clone();
            let target = self.target.clone();
            let event = SocketEvent::Close { code: 1006, reason: String::new(), was_clean: false };
            self.runtime.tracker.spawn(async move {
                runtime.deliver_socket_event(&target, accepted.socket, event).await;
            });
        }
    }
}

impl Shared {
    fn objects(&self) -> MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives memory freed by hibernated objects back to the operating system: glibc otherwise
    /// keeps it, and a server whose objects all hibernated would stay as large as at its peak.
    /// Trimming walks the heap under the allocator's lock, so it runs at most once every 5
    /// seconds; hibernations meanwhile are covered by one trim at the end of that window, so the
    /// last objects to hibernate are not left out.
    pub(crate) fn return_freed_memory(self: &Arc<Self>) {
        const EVERY: Duration = Duration::from_secs(5);
        if self.trim_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let since_last =
            Duration::from_nanos(self.uptime_nanos().saturating_sub(self.last_trim.load(Ordering::Relaxed)));
        let wait = EVERY.saturating_sub(since_last);
        // Weak: a pending trim must not keep a stopped runtime (and its data directory's lock)
        // alive.
        let shared = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(shared) = shared.upgrade() else { return };
            // Cleared first: memory freed from now on needs the next trim.
            shared.trim_scheduled.store(false, Ordering::Release);
            shared.last_trim.store(shared.uptime_nanos(), Ordering::Relaxed);
            drop(shared);
            let _ = tokio::task::spawn_blocking(|| {
                #[cfg(all(target_os = "linux", target_env = "gnu"))]
                // SAFETY: malloc_trim only releases free heap pages; it is safe to call at any time.
                unsafe {
                    libc::malloc_trim(0);
                }
            })
            .await;
        });
    }

    /// Nanoseconds since the runtime started (a monotonic clock for "least recently used").
    pub(crate) fn uptime_nanos(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Waits for one of the `max_active` slots, asking the least recently used idle object (of a
    /// sample: [`EVICTION_SAMPLE`]) to hibernate while none is free.
    pub(crate) async fn take_active_slot(&self, namespace: &Arc<str>, id: &ObjectId) -> OwnedSemaphorePermit {
        loop {
            if let Ok(slot) = self.active_slots.clone().try_acquire_owned() {
                return slot;
            }
            self.evict_coldest(namespace, id);
            tokio::select! {
                slot = self.active_slots.clone().acquire_owned() => {
                    if let Ok(slot) = slot {
                        return slot;
                    }
                }
                // Every active object may be busy: look again shortly.
                () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            }
        }
    }

    fn evict_coldest(&self, namespace: &Arc<str>, id: &ObjectId) {
        let objects = self.objects();
        if let Some(mailbox) = coldest_idle(&objects.mailboxes, (namespace, id)) {
            mailbox.control.evict.notify_one();
        }
    }

    /// Called by a hibernated actor: leaves the table if no event is waiting. Events are only
    /// sent while the table is locked, so none can slip in between the check and the removal.
    pub(crate) fn retire(
        &self,
        namespace: &Arc<str>,
        id: &ObjectId,
        mailbox: &mpsc::Receiver<Envelope>,
    ) -> bool {
        let mut objects = self.objects();
        if !mailbox.is_empty() {
            return false;
        }
        objects.mailboxes.swap_remove(&(namespace.clone(), *id));
        true
    }
}

/// An active object without a running batch, other than `except`, to hibernate: the least
/// recently used of [`EVICTION_SAMPLE`] random ones, or of all if the table is small or the sample
/// found none.
fn coldest_idle<'a>(
    mailboxes: &'a IndexMap<(Arc<str>, ObjectId), Mailbox>,
    except: (&Arc<str>, &ObjectId),
) -> Option<&'a Mailbox> {
    let idle = |(key, mailbox): &(&(Arc<str>, ObjectId), &Mailbox)| {
        (key.1 != *except.1 || key.0 != *except.0)
            && mailbox.control.active.load(Ordering::Relaxed)
            && !mailbox.control.busy.load(Ordering::Relaxed)
    };
    let last_used =
        |(_, mailbox): &(&(Arc<str>, ObjectId), &Mailbox)| mailbox.control.last_used.load(Ordering::Relaxed);
    let len = mailboxes.len();
    let sampled = if len > EVICTION_SAMPLE * 4 {
        (0..EVICTION_SAMPLE)
            .filter_map(|_| mailboxes.get_index(rand::random_range(0..len)))
            .filter(idle)
            .min_by_key(last_used)
    } else {
        None
    };
    sampled.or_else(|| mailboxes.iter().filter(idle).min_by_key(last_used)).map(|(_, mailbox)| mailbox)
}

/// Runs the objects of one or more namespaces.
///
/// Cheap to clone; all clones share the same objects.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    namespaces: Arc<RwLock<HashMap<String, Arc<Namespace>>>>,
    linker: Arc<Linker<Host>>,
    tracker: TaskTracker,
    scheduler: Arc<std::sync::Once>,
    _ticker: Arc<EpochTicker>,
}

impl Runtime {
    /// A runtime with no namespace yet. Creates the data directory.
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::with_group_sync(config, GroupSync::new)
    }

    /// [`Runtime::new`], with the group sync (used in [`Durability::Full`] on Linux) made by
    /// `group_sync` from the data directory: tests give it a flush they control.
    fn with_group_sync(
        config: Config,
        group_sync: impl FnOnce(&Path) -> std::io::Result<GroupSync>,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(&config.data_dir).map_err(Error::io(&config.data_dir))?;
        let data_dir_lock =
            opendo_storage::layout::lock_data_dir(&config.data_dir).map_err(|err| match err {
                opendo_storage::Error::Io { path, source } => Error::Io { path, source },
                in_use => Error::InvalidConfig(in_use.to_string()),
            })?;
        // This process's objects trust that an empty WAL file is empty on disk too
        // (`opendo_storage::ObjectDb::open`); a previous process may have stopped before syncing
        // one it had just emptied.
        crate::sync::flush_filesystem(&config.data_dir).map_err(Error::io(&config.data_dir))?;
        let engine = new_engine(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        DurableObject::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        let ticker = EpochTicker::start(engine.clone())?;
        let max_active = config.max_active.clamp(1, Semaphore::MAX_PERMITS);
        let group_sync = match config.durability {
            Durability::Full if cfg!(target_os = "linux") => {
                Some(group_sync(&config.data_dir).map_err(Error::io(&config.data_dir))?)
            }
            _ => None,
        };
        Ok(Runtime {
            shared: Arc::new(Shared {
                deadline_ticks: deadline_ticks(config.cpu_limit),
                config,
                engine,
                stats: Stats::default(),
                alarm_wakeup: Notify::new(),
                active_slots: Arc::new(Semaphore::new(max_active)),
                started: std::time::Instant::now(),
                last_trim: AtomicU64::new(0),
                trim_scheduled: AtomicBool::new(false),
                objects: Mutex::new(Objects::default()),
                next_socket: AtomicU64::new(1),
                shutdown: CancellationToken::new(),
                group_sync,
                _data_dir_lock: data_dir_lock,
            }),
            namespaces: Arc::default(),
            linker: Arc::new(linker),
            tracker: TaskTracker::new(),
            scheduler: Arc::new(std::sync::Once::new()),
            _ticker: Arc::new(ticker),
        })
    }

    /// Loads the component at `module` as namespace `name`. Fails with one message naming what is
    /// wrong if the file is not a component of the `durable-object` world.
    ///
    /// Must be called inside a tokio runtime: the first namespace starts the alarm scheduler.
    pub fn load_namespace(&self, name: &str, module: &Path) -> Result<(), Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidConfig("load_namespace must be called inside a tokio runtime".into())
        })?;
        let config = &self.shared.config;
        let namespace = Namespace::load(
            &self.shared.engine,
            &self.linker,
            &config.data_dir,
            name,
            module,
            config.durability,
        )?;
        let mut namespaces = self.namespaces.write().unwrap_or_else(PoisonError::into_inner);
        if namespaces.contains_key(name) {
            return Err(Error::InvalidConfig(format!("namespace `{name}` is loaded twice")));
        }
        namespaces.insert(name.to_string(), Arc::new(namespace));
        drop(namespaces);
        self.scheduler.call_once(|| {
            // Tracked, so that `shutdown` returns only once it let go of the runtime (and with
            // it of the data directory's lock).
            self.tracker.spawn_on(crate::scheduler::run(self.clone()), &handle);
        });
        self.shared.alarm_wakeup.notify_one();
        Ok(())
    }

    pub(crate) fn loaded_namespaces(&self) -> Vec<Arc<Namespace>> {
        self.namespaces.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.shared.objects().closing
    }

    pub(crate) fn wakeup(&self) -> &Notify {
        &self.shared.alarm_wakeup
    }

    pub(crate) fn clock_now_ms(&self) -> i64 {
        self.shared.config.clock.now_ms()
    }

    /// Asks the object `id` of `namespace` to run its alarm if due.
    pub(crate) fn fire_alarm(
        &self,
        namespace: &Arc<Namespace>,
        id: ObjectId,
        name: Option<&str>,
    ) -> Result<oneshot::Receiver<Result<AlarmRun, EventError>>, EventError> {
        let (reply, outcome) = oneshot::channel();
        self.send(namespace, id, name, Envelope::Alarm { reply })?;
        Ok(outcome)
    }

    /// Delivers an HTTP request to the object called `object_name` in `namespace` and waits for
    /// its response, which is released only after the event's writes are durable.
    pub async fn fetch(
        &self,
        namespace: &str,
        object_name: &str,
        request: Request,
    ) -> Result<Response, EventError> {
        let (answer, _) = self.fetch_event(namespace, object_name, request, false).await?;
        Ok(answer.response)
    }

    /// Like [`Runtime::fetch`], for a WebSocket upgrade request: the object may accept the socket
    /// and answer 101. The socket comes back only with a 101 response.
    pub async fn fetch_upgrade(
        &self,
        namespace: &str,
        object_name: &str,
        request: Request,
    ) -> Result<(Response, Option<AcceptedWebSocket>), EventError> {
        let (answer, (target, sockets)) = self.fetch_event(namespace, object_name, request, true).await?;
        let accepted = answer.accepted.map(|accepted| AcceptedWebSocket {
            runtime: self.clone(),
            target,
            sockets,
            accepted: Some(accepted),
        });
        Ok((answer.response, accepted))
    }

    async fn fetch_event(
        &self,
        namespace: &str,
        object_name: &str,
        request: Request,
        upgrade: bool,
    ) -> Result<(Answer, (Target, Arc<Sockets>)), EventError> {
        let namespace = self
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(namespace)
            .cloned()
            .ok_or_else(|| EventError::UnknownNamespace(namespace.to_string()))?;
        validate_object_name(object_name)?;
        let id = ObjectId::from_name(&namespace.name, object_name);
        let (reply, outcome) = oneshot::channel();
        let sockets =
            self.send(&namespace, id, Some(object_name), Envelope::Fetch { request, upgrade, reply })?;
        let answer = outcome
            .await
            .map_err(|_| EventError::Internal("the object stopped before answering".into()))??;
        let target = Target { namespace, id, name: Some(object_name.to_string()) };
        Ok((answer, (target, sockets)))
    }

    /// Queues a socket's event for its object, waiting while the object's mailbox is full (so a
    /// fast client is slowed down, not refused). Dropped if the runtime is shutting down.
    pub(crate) async fn deliver_socket_event(&self, target: &Target, socket: u64, event: SocketEvent) {
        let sender = {
            let mut objects = self.shared.objects();
            if objects.closing {
                return;
            }
            let mailbox = objects
                .mailboxes
                .entry((target.namespace.name.clone(), target.id))
                .or_insert_with(|| self.spawn_actor(&target.namespace, target.id, target.name.as_deref()));
            mailbox.sender.clone()
        };
        // A connection waiting here must not hold the actor (and so shutdown) open.
        tokio::select! {
            _ = sender.send(Envelope::Socket { socket, event }) => {}
            () = self.shared.shutdown.cancelled() => {}
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.shared.config
    }

    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.shared.shutdown
    }

    pub(crate) fn count_auto_response(&self) {
        self.shared.stats.auto_responses.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends `envelope` to the object's actor (starting one if needed); returns its sockets.
    fn send(
        &self,
        namespace: &Arc<Namespace>,
        id: ObjectId,
        name: Option<&str>,
        envelope: Envelope,
    ) -> Result<Arc<Sockets>, EventError> {
        let mut objects = self.shared.objects();
        if objects.closing {
            return Err(EventError::ShuttingDown);
        }
        let mailbox = objects
            .mailboxes
            .entry((namespace.name.clone(), id))
            .or_insert_with(|| self.spawn_actor(namespace, id, name));
        mailbox.sender.try_send(envelope).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => EventError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => EventError::Internal("the object's actor is gone".into()),
        })?;
        Ok(mailbox.sockets.clone())
    }

    fn spawn_actor(&self, namespace: &Arc<Namespace>, id: ObjectId, name: Option<&str>) -> Mailbox {
        let (sender, mailbox) = mpsc::channel(self.shared.config.max_queued_events.max(1));
        let control = Arc::new(ActorControl::default());
        let sockets = Arc::new(Sockets::default());
        let ctx = ObjectCtx {
            shared: self.shared.clone(),
            namespace: namespace.clone(),
            identity: Arc::new(Identity {
                namespace: namespace.name.clone(),
                id,
                name: name.map(String::from),
                log_budget: Mutex::new(LogBudget::new(self.shared.config.log_writes_per_second)),
            }),
            db_path: opendo_storage::layout::object_db_path(
                &self.shared.config.data_dir,
                &namespace.name,
                &id,
            ),
            control: control.clone(),
            sockets: sockets.clone(),
        };
        self.tracker.spawn(object::run(ctx, mailbox));
        Mailbox { sender, control, sockets }
    }

    /// Counters about the runtime's objects.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Objects that are active right now.
    pub fn active_objects(&self) -> usize {
        self.shared.stats.active.load(Ordering::Relaxed)
    }

    /// Stops taking events, closes every WebSocket with code 1001, lets queued and running events
    /// finish and commit, and closes every object's database. Returns `false` if that took longer than `grace` (the remaining events
    /// are abandoned uncommitted: none of them was answered).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        {
            let mut objects = self.shared.objects();
            objects.closing = true;
            // Dropping the senders ends each actor once its mailbox is drained.
            objects.mailboxes.clear();
        }
        self.shared.shutdown.cancel();
        self.shared.alarm_wakeup.notify_one();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `count` objects named "n0".."n{count-1}", each last used at its number.
    fn table(count: u64) -> IndexMap<(Arc<str>, ObjectId), Mailbox> {
        let namespace: Arc<str> = Arc::from("ns");
        (0..count)
            .map(|n| {
                let control = ActorControl::default();
                control.active.store(true, Ordering::Relaxed);
                control.last_used.store(n, Ordering::Relaxed);
                let mailbox = Mailbox {
                    sender: mpsc::channel(1).0,
                    control: Arc::new(control),
                    sockets: Arc::new(Sockets::default()),
                };
                ((namespace.clone(), ObjectId::from_name("ns", &format!("n{n}"))), mailbox)
            })
            .collect()
    }

    fn last_used(mailbox: &Mailbox) -> u64 {
        mailbox.control.last_used.load(Ordering::Relaxed)
    }

    #[test]
    fn a_small_table_gives_up_its_least_recently_used_idle_object() {
        let mailboxes = table(10);
        mailboxes[0].control.busy.store(true, Ordering::Relaxed);
        mailboxes[1].control.active.store(false, Ordering::Relaxed);
        let key2 = mailboxes.get_index(2).unwrap().0.clone();
        let picked = coldest_idle(&mailboxes, (&key2.0, &key2.1)).unwrap();
        assert_eq!(last_used(picked), 3, "busy, hibernated and the asking object are skipped");
        let key3 = mailboxes.get_index(3).unwrap().0.clone();
        assert_eq!(last_used(coldest_idle(&mailboxes, (&key3.0, &key3.1)).unwrap()), 2);
    }

    #[test]
    fn a_large_table_gives_up_one_of_its_coldest_objects_and_finds_a_lone_idle_one() {
        let mailboxes = table(1000);
        let nobody = ObjectId::from_name("ns", "nobody");
        let namespace: Arc<str> = Arc::from("ns");
        for _ in 0..100 {
            let picked = coldest_idle(&mailboxes, (&namespace, &nobody)).unwrap();
            // The coldest of 16 random ones: past 800 only if all 16 were (odds 0.2^16).
            assert!(last_used(picked) < 800, "picked an object last used at {}", last_used(picked));
        }
        for (_, mailbox) in mailboxes.iter().filter(|(_, m)| last_used(m) != 567) {
            mailbox.control.busy.store(true, Ordering::Relaxed);
        }
        let picked = coldest_idle(&mailboxes, (&namespace, &nobody)).unwrap();
        assert_eq!(last_used(picked), 567, "a sample that misses the only idle object falls back to a scan");
    }

    /// Object `b` commits while the flush that object `a`'s commit led is running: `b`'s answer
    /// waits for the next flush, whose outcome it carries.
    async fn answered_after_the_next_flush(failing: Option<u64>) -> Result<Response, EventError> {
        use crate::sync::gate::{Gate, TIMEOUT};
        let dir = tempfile::tempdir().unwrap();
        let (gate, flush) = Gate::new(failing);
        let config =
            Config { data_dir: dir.path().into(), durability: Durability::Full, ..Config::default() };
        let runtime = Runtime::with_group_sync(config, |_| GroupSync::with_flush(flush)).unwrap();
        runtime.load_namespace("probe", Path::new(opendo_test_support::PROBE)).unwrap();
        let put = |object: &'static str| {
            let runtime = runtime.clone();
            let request = Request {
                method: "PUT".into(),
                path: "/kv/k".into(),
                headers: Vec::new(),
                body: b"v".to_vec(),
            };
            tokio::spawn(async move { runtime.fetch("probe", object, request).await })
        };
        let sync = runtime.shared.group_sync.as_ref().unwrap();
        let a = put("a");
        tokio::task::block_in_place(|| gate.entered(1));
        let b = put("b");
        tokio::task::block_in_place(|| sync.wait_until_issued(2));
        gate.release();
        let a = tokio::time::timeout(TIMEOUT, a).await.unwrap().unwrap().unwrap();
        assert_eq!(a.status, 204, "the commit that led the first flush");
        tokio::task::block_in_place(|| gate.entered(2));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!b.is_finished(), "answered before the flush that covers its commit ended");
        gate.release();
        tokio::time::timeout(TIMEOUT, b).await.unwrap().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_made_during_a_flush_is_answered_after_the_next_flush() {
        assert_eq!(answered_after_the_next_flush(None).await.unwrap().status, 204);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_whose_flush_fails_is_answered_with_an_error() {
        let outcome = answered_after_the_next_flush(Some(2)).await;
        assert!(matches!(outcome, Err(EventError::Internal(_))), "{outcome:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_a_new_objects_first_commit_waits_for_a_shared_flush() {
        use crate::sync::gate::{Gate, TIMEOUT};
        let dir = tempfile::tempdir().unwrap();
        let (gate, flush) = Gate::new(None);
        let config = Config {
            data_dir: dir.path().into(),
            durability: Durability::Full,
            idle_timeout: Duration::from_secs(1),
            ..Config::default()
        };
        let runtime = Runtime::with_group_sync(config, |_| GroupSync::with_flush(flush)).unwrap();
        runtime.load_namespace("probe", Path::new(opendo_test_support::PROBE)).unwrap();
        let put = |body: &[u8]| {
            let runtime = runtime.clone();
            let request = Request {
                method: "PUT".into(),
                path: "/kv/k".into(),
                headers: Vec::new(),
                body: body.to_vec(),
            };
            tokio::spawn(async move { runtime.fetch("probe", "a", request).await })
        };
        let sync = runtime.shared.group_sync.as_ref().unwrap();
        // The new object's first commit (with its new files) waits for a flush of the filesystem.
        let first = put(b"1");
        tokio::task::block_in_place(|| gate.entered(1));
        gate.release();
        assert_eq!(tokio::time::timeout(TIMEOUT, first).await.unwrap().unwrap().unwrap().status, 204);
        // Later ones are synced by the object's own database: no flush is asked for (one would
        // be held by the gate until the test's timeout).
        for body in [b"2", b"3"] {
            let later = tokio::time::timeout(TIMEOUT, put(body)).await.unwrap().unwrap().unwrap();
            assert_eq!(later.status, 204);
        }
        assert_eq!(sync.issued(), 1, "tickets handed out");
        // Hibernation syncs the checkpoint itself too.
        tokio::time::timeout(TIMEOUT, async {
            while runtime.stats().hibernations.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
        // And so does the wake's first commit.
        let woken = tokio::time::timeout(TIMEOUT, put(b"4")).await.unwrap().unwrap().unwrap();
        assert_eq!(woken.status, 204);
        assert_eq!(sync.issued(), 1, "tickets handed out");
        let got = runtime
            .fetch(
                "probe",
                "a",
                Request { method: "GET".into(), path: "/kv/k".into(), headers: Vec::new(), body: Vec::new() },
            )
            .await
            .unwrap();
        assert_eq!(got.body, b"4");
    }

    #[tokio::test(start_paused = true)]
    async fn hibernations_within_the_trim_window_get_one_trim_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(Config { data_dir: dir.path().into(), ..Config::default() }).unwrap();
        let shared = &runtime.shared;
        // Just started: the window since the (notional) last trim is still open.
        shared.return_freed_memory();
        shared.return_freed_memory();
        assert!(shared.trim_scheduled.load(Ordering::Acquire), "a trim waits for the end of the window");
        assert_eq!(shared.last_trim.load(Ordering::Relaxed), 0, "not trimmed yet");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!shared.trim_scheduled.load(Ordering::Acquire), "the trim ran");
        assert!(shared.last_trim.load(Ordering::Relaxed) > 0);
        // Memory freed after that trim is covered by the next one.
        shared.return_freed_memory();
        assert!(shared.trim_scheduled.load(Ordering::Acquire));
    }
}
