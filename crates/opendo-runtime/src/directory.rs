//! The object directory: which objects have an actor, the `max_active` slots, and picking an
//! object to hibernate when every slot is taken.
//!
//! Events are only sent while the table is locked ([`Directory::send`]), and an actor leaves the
//! table under the same lock only if its mailbox is empty ([`Directory::retire`]), so no event
//! can be sent to an actor that is ending.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::error::EventError;
use crate::identity::{Identity, ObjectKey};
use crate::mailbox::Envelope;
use crate::sockets::Sockets;

/// Objects looked at to pick one to hibernate when every active slot is taken: the coldest of a
/// random sample is close enough to the least recently used, at a cost that does not grow with
/// the number of objects (a full scan held the table's lock for as long as it took).
const EVICTION_SAMPLE: usize = 16;

/// The objects that have an actor, and the slots of those that are active.
pub(crate) struct Directory {
    objects: Mutex<Objects>,
    /// `max_active` permits: an object holds one while active.
    active_slots: Arc<Semaphore>,
    started: Instant,
    /// `started` on the wall clock, in milliseconds since the Unix epoch.
    started_ms: i64,
}

#[derive(Default)]
struct Objects {
    closing: bool,
    /// Indexed, so that picking an object to hibernate can sample it (see [`EVICTION_SAMPLE`]).
    actors: IndexMap<ObjectKey, ActorHandle>,
}

/// An actor as the directory holds it: where to send its events, and its controls.
pub(crate) struct ActorHandle {
    pub(crate) sender: mpsc::Sender<Envelope>,
    pub(crate) control: Arc<ActorControl>,
    pub(crate) identity: Arc<Identity>,
    /// The object's WebSockets; they outlive its instance (see `sockets.rs`).
    pub(crate) sockets: Arc<Sockets>,
}

/// What an admin listing shows of an object that has an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActorState {
    pub(crate) active: bool,
    /// When its last batch ended (milliseconds since the Unix epoch); `None` before its first.
    pub(crate) last_event_ms: Option<i64>,
    pub(crate) websockets: usize,
}

/// What the directory sees of an actor, to pick one to hibernate when `max_active` is reached.
#[derive(Debug, Default)]
pub(crate) struct ActorControl {
    /// When its last batch ended, in nanoseconds since the directory was made.
    pub(crate) last_used: AtomicU64,
    /// Whether it holds an open instance and database.
    pub(crate) active: AtomicBool,
    /// Whether a batch is running right now.
    pub(crate) busy: AtomicBool,
    /// Asks it to hibernate now.
    pub(crate) evict: Notify,
    /// Cancelled when the actor has ended (its database closed).
    pub(crate) ended: CancellationToken,
}

impl Directory {
    pub(crate) fn new(max_active: usize) -> Self {
        Directory {
            objects: Mutex::default(),
            active_slots: Arc::new(Semaphore::new(max_active.clamp(1, Semaphore::MAX_PERMITS))),
            started: Instant::now(),
            started_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    fn objects(&self) -> MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `envelope` to the object's actor, starting one with `start` if it has none;
    /// returns its sockets. `name`, if given, is the object's name (an actor started by id
    /// learns it). Refused when the actor's mailbox is full or the runtime is closing.
    pub(crate) fn send(
        &self,
        key: ObjectKey,
        name: Option<&str>,
        envelope: Envelope,
        start: impl FnOnce() -> ActorHandle,
    ) -> Result<Arc<Sockets>, EventError> {
        let mut objects = self.objects();
        if objects.closing {
            return Err(EventError::ShuttingDown);
        }
        let actor = objects.actors.entry(key).or_insert_with(start);
        if let Some(name) = name {
            actor.identity.learn_name(name);
        }
        actor.sender.try_send(envelope).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => EventError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => EventError::Internal("the object's actor is gone".into()),
        })?;
        Ok(actor.sockets.clone())
    }

    /// Where to send the object's events, starting an actor with `start` if it has none; `None`
    /// once the runtime is closing. For senders that wait while the mailbox is full.
    pub(crate) fn sender(
        &self,
        key: ObjectKey,
        start: impl FnOnce() -> ActorHandle,
    ) -> Option<mpsc::Sender<Envelope>> {
        let mut objects = self.objects();
        if objects.closing {
            return None;
        }
        Some(objects.actors.entry(key).or_insert_with(start).sender.clone())
    }

    /// The object's actor as a listing shows it, if it has one.
    pub(crate) fn state(&self, key: &ObjectKey) -> Option<ActorState> {
        let objects = self.objects();
        let actor = objects.actors.get(key)?;
        let last_used = actor.control.last_used.load(Ordering::Relaxed);
        Some(ActorState {
            active: actor.control.active.load(Ordering::Relaxed),
            last_event_ms: (last_used > 0).then(|| {
                self.started_ms.saturating_add(i64::try_from(last_used / 1_000_000).unwrap_or(i64::MAX))
            }),
            websockets: actor.sockets.len(),
        })
    }

    /// Takes no more events, and drops every sender: each actor ends once its mailbox is drained.
    pub(crate) fn close(&self) {
        let mut objects = self.objects();
        objects.closing = true;
        objects.actors.clear();
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.objects().closing
    }

    /// Nanoseconds since the directory was made (a monotonic clock for "least recently used").
    pub(crate) fn uptime_nanos(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Waits for one of the `max_active` slots, asking the least recently used idle object (of a
    /// sample: [`EVICTION_SAMPLE`]) to hibernate while none is free.
    pub(crate) async fn take_active_slot(&self, key: &ObjectKey) -> OwnedSemaphorePermit {
        loop {
            if let Ok(slot) = self.active_slots.clone().try_acquire_owned() {
                return slot;
            }
            self.evict_coldest(key);
            tokio::select! {
                slot = self.active_slots.clone().acquire_owned() => {
                    if let Ok(slot) = slot {
                        return slot;
                    }
                }
                // Every active object may be busy: look again shortly.
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    fn evict_coldest(&self, key: &ObjectKey) {
        let objects = self.objects();
        if let Some(actor) = coldest_idle(&objects.actors, key) {
            actor.control.evict.notify_one();
        }
    }

    /// Called by a hibernated actor: leaves the table if no event is waiting in `mailbox`.
    /// `control` tells it from a later actor of the same object (see [`Directory::release`]).
    pub(crate) fn retire(
        &self,
        key: &ObjectKey,
        control: &Arc<ActorControl>,
        mailbox: &mpsc::Receiver<Envelope>,
    ) -> bool {
        let mut objects = self.objects();
        if !mailbox.is_empty() {
            return false;
        }
        if objects.actors.get(key).is_some_and(|actor| Arc::ptr_eq(&actor.control, control)) {
            objects.actors.swap_remove(key);
        }
        true
    }

    /// Takes the objects for which `leaving` is true out of the table: their WebSockets close
    /// with code 1012, and each actor ends once it has run the events queued already and closed
    /// its database. Returns what tells when each has ended.
    pub(crate) fn release(&self, leaving: impl Fn(&ObjectKey) -> bool) -> Vec<CancellationToken> {
        let mut objects = self.objects();
        let mut ended = Vec::new();
        objects.actors.retain(|key, actor| {
            if !leaving(key) {
                return true;
            }
            actor.sockets.close_all(1012, "the object moved to another node");
            ended.push(actor.control.ended.clone());
            false
        });
        ended
    }
}

/// An active object without a running batch, other than `except`, to hibernate: the least
/// recently used of [`EVICTION_SAMPLE`] random ones, or of all if the table is small or the sample
/// found none.
fn coldest_idle<'a>(
    actors: &'a IndexMap<ObjectKey, ActorHandle>,
    except: &ObjectKey,
) -> Option<&'a ActorHandle> {
    let idle = |(key, actor): &(&ObjectKey, &ActorHandle)| {
        *key != except
            && actor.control.active.load(Ordering::Relaxed)
            && !actor.control.busy.load(Ordering::Relaxed)
    };
    let last_used = |(_, actor): &(&ObjectKey, &ActorHandle)| actor.control.last_used.load(Ordering::Relaxed);
    let len = actors.len();
    let sampled = if len > EVICTION_SAMPLE * 4 {
        (0..EVICTION_SAMPLE)
            .filter_map(|_| actors.get_index(rand::random_range(0..len)))
            .filter(idle)
            .min_by_key(last_used)
    } else {
        None
    };
    sampled.or_else(|| actors.iter().filter(idle).min_by_key(last_used)).map(|(_, actor)| actor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opendo_storage::ObjectId;

    /// A table of `count` objects named "n0".."n{count-1}", each last used at its number.
    fn table(count: u64) -> IndexMap<ObjectKey, ActorHandle> {
        let namespace: Arc<str> = Arc::from("ns");
        (0..count)
            .map(|n| {
                let control = ActorControl::default();
                control.active.store(true, Ordering::Relaxed);
                control.last_used.store(n, Ordering::Relaxed);
                let id = ObjectId::from_name("ns", &format!("n{n}"));
                let actor = ActorHandle {
                    sender: mpsc::channel(1).0,
                    control: Arc::new(control),
                    identity: Arc::new(Identity::new(namespace.clone(), id, None)),
                    sockets: Arc::new(Sockets::default()),
                };
                ((namespace.clone(), id), actor)
            })
            .collect()
    }

    fn last_used(actor: &ActorHandle) -> u64 {
        actor.control.last_used.load(Ordering::Relaxed)
    }

    #[test]
    fn a_small_table_gives_up_its_least_recently_used_idle_object() {
        let actors = table(10);
        actors[0].control.busy.store(true, Ordering::Relaxed);
        actors[1].control.active.store(false, Ordering::Relaxed);
        let key2 = actors.get_index(2).unwrap().0.clone();
        let picked = coldest_idle(&actors, &key2).unwrap();
        assert_eq!(last_used(picked), 3, "busy, hibernated and the asking object are skipped");
        let key3 = actors.get_index(3).unwrap().0.clone();
        assert_eq!(last_used(coldest_idle(&actors, &key3).unwrap()), 2);
    }

    #[test]
    fn a_large_table_gives_up_one_of_its_coldest_objects_and_finds_a_lone_idle_one() {
        let actors = table(1000);
        let nobody: ObjectKey = (Arc::from("ns"), ObjectId::from_name("ns", "nobody"));
        for _ in 0..100 {
            let picked = coldest_idle(&actors, &nobody).unwrap();
            // The coldest of 16 random ones: past 800 only if all 16 were (odds 0.2^16).
            assert!(last_used(picked) < 800, "picked an object last used at {}", last_used(picked));
        }
        for (_, actor) in actors.iter().filter(|(_, a)| last_used(a) != 567) {
            actor.control.busy.store(true, Ordering::Relaxed);
        }
        let picked = coldest_idle(&actors, &nobody).unwrap();
        assert_eq!(last_used(picked), 567, "a sample that misses the only idle object falls back to a scan");
    }
}
