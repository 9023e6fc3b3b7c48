//! What the host gives a guest: the `durable-object` imports (one file per WIT interface),
//! WASI (clocks, random, stdout/stderr into the log; no files, environment or sockets), and the
//! memory limiter.
//!
//! - `store.rs`: the data of an object's wasmtime `Store` ([`Host`]), the limits it enforces;
//! - `errors.rs`: traps versus guest-visible errors, decided for every import in one place;
//! - `log.rs`: guest stdout and stderr into the runtime's log, rate-limited;
//! - `kv.rs`, `sql.rs`, `transaction.rs`, `alarms.rs`, `state.rs`, `objects.rs`, `websockets.rs`: one file
//!   per WIT interface;
//! - `calls.rs`: `objects.fetch`, a call to another object (the output gate, the chain of
//!   waiting objects, the timeout).

mod alarms;
mod calls;
mod errors;
mod kv;
mod log;
mod objects;
mod sql;
mod state;
mod store;
mod transaction;
mod websockets;

pub(crate) use errors::{DeadlineExceeded, StorageFailure};
pub(crate) use log::LogBudget;
pub(crate) use store::{EventInfo, Host, HostLimits};
