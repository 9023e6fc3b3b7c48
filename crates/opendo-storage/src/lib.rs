//! One Durable Object's storage: a SQLite database file per object.
//!
//! This crate knows nothing about Wasm. It owns:
//! - [`ObjectId`]: the 64-hex-character id of an object, derived from `(namespace, name)` or random,
//!   with check bytes so an id of another namespace or a typo is rejected cheaply;
//! - [`layout`]: where files live (`{data-dir}/{namespace}/{id}.sqlite`), which namespace names
//!   are valid, and the data directory's lock (one process at a time). Object names never become
//!   paths: only ids do;
//! - `files`: how a new object's files are created (from a prebuilt image) and made durable;
//! - [`ObjectDb`]: one open object database (WAL, exclusive locking, no file locks), its KV store, guest SQL in
//!   the [`sandbox`], guest transactions (nested savepoints), and the event transaction boundaries
//!   the runtime drives (a batch transaction, one savepoint per event when it holds several).
//!
//! - [`AlarmIndex`]: a namespace's alarms, mirrored from the object databases (see `alarm.rs`
//!   for the crash-ordering argument).
//!
//! Internal tables use the reserved prefix `_opendo_`.

mod alarm;
mod db;
mod error;
mod files;
mod id;
mod kv;
pub mod layout;
pub mod sandbox;
mod sql;
mod txn;

pub use alarm::{Alarm, AlarmIndex, IndexEntry};
pub use db::{DEFAULT_STORAGE_CAP, Durability, KEPT_WAL_LIMIT, ObjectDb, Settings};
pub use error::{Error, Result};
pub use id::ObjectId;
pub use kv::{Entry, ListOptions, MAX_BATCH, MAX_ENTRY_BYTES, MAX_KEY_BYTES, MAX_RESULT_BYTES};
pub use sql::{MAX_SQL_RESULT_BYTES, SqlResult, SqlValue};
pub use txn::TransactionId;
