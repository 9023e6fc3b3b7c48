//! The open-do runtime: runs Durable Object components (WIT world `durable-object`).
//!
//! # How objects map to threads
//! Each active object is an actor: a tokio task (a few hundred bytes while idle) owning the
//! object's wasmtime `Store` and its SQLite connection, with a bounded mailbox. 10,000 active
//! objects are 10,000 tasks, not threads. When events arrive, the actor hands its store and
//! connection to tokio's blocking pool for one *batch* (every event queued at that moment, up to
//! 64): guest code and SQLite run there synchronously, so no async worker ever blocks on guest
//! execution or on an fsync, and only objects that are running an event occupy a thread (the
//! pool grows to 512 threads by default). Within an object events never overlap: the actor
//! starts the next batch only after the previous one has committed.
//!
//! A guest that calls another object (`objects.fetch`) runs its handlers on a fiber, and the
//! batch is a future polled on the blocking pool (`blocking`): while the guest waits for the
//! callee, its fiber is suspended and the thread goes back to the pool. Before the call leaves,
//! the caller's writes so far are committed and made durable (`actor/commit.rs`).
//!
//! # Events and the output gate
//! A batch is one SQLite transaction; each event inside it is a savepoint (an event alone in its
//! batch needs none: the transaction bounds it). After the last event, the batch commits (durably
//! in [`Durability::Full`]: see below) and only then are the responses released. A trapped event
//! (panic, CPU or memory limit) rolls back its own writes, its instance is thrown away, and its
//! caller gets [`EventError::Trapped`]; the other events of the batch are unaffected.
//!
//! # Hibernation
//! An actor that receives no event for `idle_timeout` drops its instance, closes its database
//! (checkpointing the WAL) and, if no event arrived meanwhile, leaves the runtime's table and
//! ends. The next event starts a new actor. Because the old actor closes before it leaves, a new
//! one never opens a database that is still open.
//!
//! # Durability
//! In [`Durability::Full`] each commit fsyncs the object's WAL on the batch's thread; the kernel
//! merges the device flushes of objects syncing at the same time. On Linux a new object's first
//! commit does not fsync: its replies wait for a shared `syncfs` of the data directory's
//! filesystem that began after the commit (`group_sync.rs`), which also makes the new files and
//! their directory entries durable. The batch's thread runs that flush itself if none is running;
//! otherwise the actor awaits a later one without holding a thread.
//!
//! # CPU and memory limits
//! One thread advances the engine's epoch every 10 ms; each call into a guest gets a deadline of
//! its namespace's `cpu_limit` worth of ticks. Linear memory is capped per instance, at its
//! namespace's `memory_limit`, by a resource limiter ([`ObjectLimits`]).
//!
//! # On a cluster's node
//! With [`Config::cluster`] set, the runtime shares its data directory with other nodes (a shared
//! lock on it, and each object's file locked while open) and runs only the objects its
//! [`Ownership`] holds: an event for another object, or a batch that finds its object's shard
//! gone before it commits, fails with [`EventError::Moved`] having kept nothing, and a call to
//! such an object goes to the node that holds it ([`Ownership::call_elsewhere`]).
//! [`Runtime::release`] closes the objects of shards that leave; the scheduler runs the alarms of
//! held objects only. `opendo-cluster` is the one implementation.
//!
//! # Modules
//! Each module has one job, and a module only uses modules listed before it (a test,
//! `tests/e2e/tests/module_graph.rs`, fails on an import that closes a circle):
//!
//! | module | its job |
//! |---|---|
//! | `clock` | the time alarms are scheduled by |
//! | `error` | the errors of the API, and how a host call fails (`HostError`) |
//! | `http` | the runtime's own [`Request`] and [`Response`] |
//! | `config` | [`Config`], [`Durability`] and their defaults; what a cluster's node asks of its cluster ([`Ownership`]) |
//! | `metrics` | [`Stats`], and their OpenMetrics text |
//! | `names` | which object names are acceptable |
//! | `identity` | who an object is (namespace, id, name) |
//! | `bindings` | the `bindgen!`s of the `durable-object` world (handlers called directly, or on a fiber) and of the `front` world |
//! | `blocking` | polling guest code's future on the blocking pool, giving the thread back while it waits |
//! | `engine` | the wasmtime engine and the epoch thread behind the CPU limit |
//! | `group_sync` | shared `syncfs` rounds that make new objects' first commits durable |
//! | `trim` | giving memory freed by hibernated objects back to the system |
//! | `sockets` | an object's WebSockets as the object sees them; outputs held for the gate |
//! | `admin/model`, `admin/ops` | what admin calls answer; what one does to an object's database |
//! | `host/` | the guest's imports: one file per WIT interface, calls to objects (`host/calls.rs`), the store's data and limits (objects' and the front's), and `host/errors.rs`, the one place that decides trap or guest-visible error |
//! | `component` | loading a component: header checks, compiled cache, fitting the world |
//! | `namespace` | a loaded namespace: its component and its alarm index |
//! | `mailbox` | the events sent to an actor, with where their outcomes go |
//! | `context` | what every actor shares: settings, engine, counters, group sync |
//! | `directory` | which objects have an actor, the `max_active` slots, eviction |
//! | `actor/` | one object's actor: its instance, its events, batch commit, output gate, loop |
//! | `dispatch` | getting an event to its object's actor, starting one if needed |
//! | `front` | the project's front: a pool of stateless instances that serve requests |
//! | `connection` | one task per WebSocket connection, and [`AcceptedWebSocket`] |
//! | `scheduler` | the alarm scheduler |
//! | `admin` | [`Admin`]: the admin calls, on a live runtime or offline |
//! | `runtime` | the [`Runtime`] facade |

mod actor;
mod admin;
mod bindings;
mod blocking;
mod clock;
mod component;
mod config;
mod connection;
mod context;
mod directory;
mod dispatch;
mod engine;
mod error;
mod front;
mod group_sync;
mod host;
mod http;
mod identity;
mod mailbox;
mod metrics;
mod names;
mod namespace;
mod runtime;
mod scheduler;
mod sockets;
mod trim;

pub use admin::model::{
    AlarmOutcome, Cell, Done, KvEntry, KvPage, NamespaceInfo, ObjectDetail, ObjectPage, ObjectRef, ObjectRow,
    QueryRows, TableInfo, ValueEncoding,
};
pub use admin::ops::{KvQuery, MAX_KV_PAGE};
pub use admin::{Admin, MAX_OBJECTS_PAGE, ObjectsQuery};
pub use clock::Clock;
pub use config::{
    ClusterMember, Config, Durability, Elsewhere, FILES_PER_ACTIVE_OBJECT, GuestSettings, ObjectLimits,
    Outbound, Ownership, default_max_active,
};
pub use connection::AcceptedWebSocket;
pub use error::{AdminError, ERROR_HEADER, Error, EventError, TrapCause};
pub use http::{ROLLBACK_HEADER, RPC_HEADER, Request, Response};
pub use metrics::{HISTOGRAM_BOUNDS, Histogram, METRICS_CONTENT_TYPE, Stats};
pub use names::{MAX_OBJECT_NAME_BYTES, validate_object_name};
pub use opendo_storage::ObjectId;
pub use runtime::Runtime;
