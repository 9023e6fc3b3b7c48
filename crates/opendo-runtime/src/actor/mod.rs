//! One object's actor: a tokio task owning the object's instance and database, draining its
//! mailbox one batch at a time.
//!
//! A batch is every event queued when the actor looks (up to `MAX_BATCH`). It runs on tokio's
//! blocking pool (`crate::blocking`), giving its thread back while a guest waits for another object: one SQLite
//! transaction, one savepoint per event (none for an event alone in its
//! batch), one commit. Then the actor releases the replies and socket outputs (the output gate).
//! A trapped event rolls back its own writes only, and resets the instance.
//!
//! - `object.rs`: what an actor knows of its object and its runtime ([`ObjectCtx`]);
//! - `instance.rs`: the active object (store, instance, database), calls into the guest under
//!   the event's limits, and what a trap was caused by;
//! - `events.rs`: one event of each kind (fetch, socket event) as a savepoint of the batch;
//! - `alarm.rs`: the alarm event; `retry.rs`: when a failed one runs again;
//! - `batch.rs`: running a batch's events in one transaction;
//! - `commit.rs`: beginning and committing that transaction, at the batch's end or inside an
//!   event before a call leaves it, with the alarm index and the group sync;
//! - `gate.rs`: the outcomes held until the batch is durable (the output gate);
//! - `admin.rs`: admin calls, run between batches;
//! - `run.rs`: the actor's loop: batches, hibernation, eviction, leaving the directory.

mod admin;
mod alarm;
mod batch;
mod commit;
mod events;
mod gate;
mod instance;
mod object;
mod retry;
mod run;

pub(crate) use commit::{BatchState, commit_inside_event};
pub(crate) use object::ObjectCtx;
pub(crate) use run::run;
