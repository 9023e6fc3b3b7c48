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
//! filesystem that began after the commit (`sync.rs`), which also makes the new files and their
//! directory entries durable. The batch's thread runs that flush itself if none is running;
//! otherwise the actor awaits a later one without holding a thread.
//!
//! # CPU and memory limits
//! One thread advances the engine's epoch every 10 ms; each call into a guest gets a deadline of
//! `cpu_limit` worth of ticks. Linear memory is capped per instance by a resource limiter.

mod bindings;
mod clock;
mod component;
mod config;
mod engine;
mod error;
mod host;
mod namespace;
mod object;
mod runtime;
mod scheduler;
mod sync;
mod websocket;

pub use bindings::{Request, Response};
pub use clock::Clock;
pub use config::{Config, Durability, FILES_PER_ACTIVE_OBJECT, default_max_active};
pub use error::{Error, EventError, TrapCause};
pub use runtime::{
    AcceptedWebSocket, HISTOGRAM_BOUNDS, Histogram, MAX_OBJECT_NAME_BYTES, Runtime, Stats,
    validate_object_name,
};
