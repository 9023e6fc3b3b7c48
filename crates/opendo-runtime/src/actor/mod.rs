//! One object's actor: a tokio task owning the object's instance and database, draining its
//! mailbox one batch at a time.
//!
//! A batch is every event queued when the actor looks (up to `MAX_BATCH`). It runs on tokio's
//! blocking pool: one SQLite transaction, one savepoint per event (none for an event alone in its
//! batch), one commit. Then the actor releases the replies and socket outputs (the output gate).
//! A trapped event rolls back its own writes only, and resets the instance.
//!
//! - `object.rs`: what an actor knows of its object and its runtime ([`ObjectCtx`]);
//! - `instance.rs`: the active object (store, instance, database), calls into the guest under
//!   the event's limits, and what a trap was caused by;
//! - `events.rs`: one event of each kind (fetch, socket event) as a savepoint of the batch;
//! - `alarm.rs`: the alarm event and its retry policy;
//! - `batch.rs`: running a batch and committing it, with the alarm index and the group sync;
//! - `gate.rs`: the outcomes held until the batch is durable (the output gate);
//! - `admin.rs`: admin calls, run between batches;
//! - `run.rs`: the actor's loop: batches, hibernation, eviction, leaving the directory.

mod admin;
mod alarm;
mod batch;
mod events;
mod gate;
mod instance;
mod object;
mod run;

pub(crate) use object::ObjectCtx;
pub(crate) use run::run;
