//! What the host gives a guest: the `durable-object` imports (one file per WIT interface),
//! WASI (clocks, random, stdout/stderr into the log; no files, environment or sockets), and the
//! memory limiter.
//!
//! - `store.rs`: the data of an object's wasmtime `Store` ([`Host`]), the limits it enforces;
//! - `front.rs`: the data of a front instance's `Store` ([`FrontHost`]): ids and calls, no storage;
//! - `cpu.rs`: the CPU limit, which does not count waits for calls;
//! - `errors.rs`: traps versus guest-visible errors, decided for every import in one place;
//! - `log.rs`: guest stdout and stderr into the runtime's log, rate-limited;
//! - `kv.rs`, `sql.rs`, `transaction.rs`, `alarms.rs`, `state.rs`, `objects.rs`, `websockets.rs`: one file
//!   per WIT interface;
//! - `calls.rs`: `objects.fetch`, a call to another object (the output gate, the chain of
//!   waiting objects, the timeout).

mod alarms;
mod calls;
mod cpu;
mod errors;
mod front;
mod kv;
mod log;
mod objects;
mod outbound;
mod sql;
mod state;
mod store;
mod transaction;
mod websockets;

pub(crate) use calls::UpgradedSocket;
pub(crate) use cpu::limit_cpu;
pub(crate) use errors::{StorageFailure, trap_cause};
pub(crate) use front::{FRONT_LOG_NAMESPACE, FrontHost};
pub(crate) use log::LogBudget;
pub(crate) use outbound::{OutboundHooks, SendsHttp, handle as outbound_handle};
pub(crate) use store::{EventInfo, Host, HostLimits};
