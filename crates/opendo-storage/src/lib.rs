//! One Durable Object's storage: a SQLite database file per object.
//!
//! This crate knows nothing about Wasm. It owns:
//! - [`ObjectId`]: the 64-hex-character id of an object, derived from `(namespace, name)` or random,
//!   with check bytes so an id of another namespace or a typo is rejected cheaply;
//! - [`layout`]: where files live (`{data-dir}/{namespace}/{id}.sqlite`), which namespace names
//!   are valid, and the data directory's lock (one process at a time). Object names never become
//!   paths: only ids do;
//! - [`ObjectDb`]: one open object database (WAL, exclusive locking, no file locks), its KV store,
//!   guest SQL in the [`sandbox`], guest transactions (nested savepoints), and the event
//!   transaction boundaries the runtime drives (a batch transaction, one savepoint per event when
//!   it holds several);
//! - [`AlarmIndex`]: a namespace's alarms, mirrored from the object databases (see `alarm.rs`
//!   for the crash-ordering argument).
//!
//! Internal tables use the reserved prefix `_opendo_`.
//!
//! # Modules
//! Each uses only those before it:
//!
//! | module | its job |
//! |---|---|
//! | `error` | [`Error`] |
//! | `id` | [`ObjectId`] |
//! | `layout` | paths, namespace names, the data directory's lock |
//! | `schema` | the runtime's tables |
//! | `statements` | running the runtime's own statements |
//! | `ffi` | every call into SQLite's C API that rusqlite does not wrap (all the `unsafe`) |
//! | `sandbox` | the authorizer, deadline and limits of guest SQL |
//! | `files` | creating an object's files from a prebuilt image; syncing folders |
//! | `wal` | [`Durability`] and when the WAL is synced |
//! | `cap` | the storage cap |
//! | `txn` | guest transactions (nested savepoints) |
//! | `db` | the [`ObjectDb`] facade: opening, closing, and its parts |
//! | `meta` | what the database records about its object: the name it was created under |
//! | `batch` | the batch and event transactions the runtime drives |
//! | `alarm` | the object's alarm and the namespace's [`AlarmIndex`] |
//! | `kv` | the KV store (its `delete_all` also counts as a write of the alarm) |
//! | `sql` | guest SQL |
//! | `inspect` | what the admin API reads and does: summary, read-only SQL, snapshot, import, delete |

mod alarm;
mod batch;
mod cap;
mod db;
mod error;
mod ffi;
mod files;
mod id;
mod inspect;
mod kv;
pub mod layout;
mod meta;
pub mod sandbox;
mod schema;
mod sql;
mod statements;
mod txn;
mod wal;

pub use alarm::{Alarm, AlarmIndex, IndexEntry};
pub use db::{DEFAULT_STORAGE_CAP, KEPT_WAL_LIMIT, ObjectDb, RowCounts, Settings};
pub use error::{Error, Result};
pub use id::ObjectId;
pub use inspect::{Import, Summary, TableRows, check_import, delete_database, replace_database};
pub use kv::{Entry, ListOptions, MAX_BATCH, MAX_ENTRY_BYTES, MAX_KEY_BYTES, MAX_RESULT_BYTES};
pub use sql::{MAX_SQL_RESULT_BYTES, SqlResult, SqlValue};
pub use txn::TransactionId;
pub use wal::Durability;
