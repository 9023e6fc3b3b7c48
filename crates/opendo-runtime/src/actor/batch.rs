//! Running one batch of events and committing it: one SQLite transaction, the alarm index kept
//! in step with the object's alarm, and the group sync for a new object's first commit.

use std::time::Instant;

use opendo_storage::Alarm;
use tokio::sync::OwnedSemaphorePermit;

use super::alarm::run_alarm;
use super::events::{run_fetch, run_socket_event};
use super::gate::{Done, Reply, storage_failure};
use super::instance::{Active, Closing};
use super::object::ObjectCtx;
use crate::error::EventError;
use crate::group_sync::{Flushed, Ticket};
use crate::mailbox::Envelope;

/// What a batch leaves to the actor.
pub(super) struct Ran {
    /// `None` if the object had to close.
    pub(super) object: Option<Active>,
    /// Events whose replies and socket outputs may be released once the batch is durable. Events
    /// that failed with the batch were answered already.
    pub(super) done: Vec<Done>,
    /// The batch committed under group sync while another flush ran: durable once a later
    /// flush covers this ticket.
    pub(super) flush_pending: Option<Ticket>,
}

impl Ran {
    pub(super) fn closed() -> Self {
        Ran { object: None, done: Vec::new(), flush_pending: None }
    }
}

/// Runs a batch and commits it, opening the object first if it is not active (with `slot`).
pub(super) fn run_batch(
    ctx: &ObjectCtx,
    active: Option<Active>,
    slot: Option<OwnedSemaphorePermit>,
    batch: Vec<Envelope>,
) -> Ran {
    let started = Instant::now();
    let ran = run_events(ctx, active, slot, batch);
    ctx.context.stats.batch.record(started.elapsed());
    ran
}

fn run_events(
    ctx: &ObjectCtx,
    active: Option<Active>,
    slot: Option<OwnedSemaphorePermit>,
    batch: Vec<Envelope>,
) -> Ran {
    let opened = match (active, slot) {
        (Some(active), _) => Ok(active),
        (None, Some(slot)) => Active::open(ctx, slot),
        (None, None) => Err(EventError::Internal("no active slot for the object".into())),
    };
    let mut active = match opened {
        Ok(active) => active,
        Err(err) => {
            for envelope in batch {
                envelope.fail(&ctx.sockets, err.clone());
            }
            return Ran::closed();
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    let alone = batch.len() == 1;
    let mut pending = batch.into_iter();
    let outcome = (|| -> Result<Option<Ticket>, opendo_storage::Error> {
        active.db()?.begin_batch()?;
        let alarm_before = match active.committed_alarm {
            Some(alarm) => alarm,
            None => active.db()?.get_alarm()?,
        };
        let alarm_writes = active.db()?.alarm_writes();
        let mut ran_alarm = false;
        for envelope in pending.by_ref() {
            let event_started = Instant::now();
            match envelope {
                Envelope::Fetch { request, upgrade, reply } => {
                    let (outcome, outputs) = run_fetch(ctx, &mut active, request, upgrade, alone)?;
                    done.push(Done { reply: Reply::Fetch(reply, outcome), outputs });
                }
                Envelope::Alarm { now, reply } => {
                    ran_alarm = true;
                    let (run, outputs) = run_alarm(ctx, &mut active, now, alone)?;
                    done.push(Done { reply: Reply::Alarm(reply, run), outputs });
                }
                Envelope::Socket { socket, event } => {
                    let outputs = run_socket_event(ctx, &mut active, socket, event, alone)?;
                    done.push(Done { reply: Reply::None, outputs });
                }
                // The actor runs them between batches (`run.rs`).
                admin @ Envelope::Admin { .. } => {
                    admin.fail(&ctx.sockets, EventError::Internal("an admin call reached a batch".into()));
                    continue;
                }
            }
            ctx.namespace.stats.events.record(event_started.elapsed());
        }
        let rows = active.db()?.take_row_counts();
        ctx.namespace.stats.rows_read.inc_by(rows.read);
        ctx.namespace.stats.rows_written.inc_by(rows.written);
        let alarm_after = match active.db()?.alarm_writes() == alarm_writes {
            true => alarm_before,
            false => active.db()?.get_alarm()?,
        };
        let moved = alarm_before.map(|a| a.time_ms) != alarm_after.map(|a| a.time_ms);
        if let (true, Some(alarm)) = (moved, alarm_after) {
            // Before the commit, so the index never misses an alarm the database holds.
            ctx.namespace.with_alarm_index(|index| {
                index.lower(&ctx.identity.id, ctx.identity.name(), alarm.time_ms)
            })?;
        }
        let must_flush = active.db()?.commit_batch()?;
        let flush_pending = match (must_flush, &ctx.context.group_sync) {
            (true, Some(sync)) => {
                // The alarm index may follow the object's alarm only once the commit is durable.
                let flushed =
                    if moved || ran_alarm { Flushed::Now(sync.wait_durable()) } else { sync.flush() };
                match flushed {
                    Flushed::Now(outcome) => {
                        outcome.map_err(|source| opendo_storage::Error::Io {
                            path: ctx.context.config.data_dir.clone(),
                            source,
                        })?;
                        None
                    }
                    Flushed::Later(ticket) => Some(ticket),
                }
            }
            // Only `Relaxed` leaves commits unsynced without a group sync, and it may.
            _ => None,
        };
        active.committed_alarm = Some(alarm_after);
        ctx.context.stats.commits.inc();
        if moved || ran_alarm {
            sync_alarm_index(ctx, alarm_after);
        }
        Ok(flush_pending)
    })();
    match outcome {
        Ok(flush_pending) => Ran { object: Some(active), done, flush_pending },
        Err(err) => {
            tracing::error!(
                namespace = %ctx.identity.namespace,
                object = %ctx.identity.id,
                "storage failed during an event batch; {} events rolled back: {err}",
                done.len() + pending.len()
            );
            if let Ok(db) = active.db() {
                let _ = db.rollback_batch();
            }
            for event in done {
                event.fail(&ctx.sockets, storage_failure());
            }
            for envelope in pending {
                envelope.fail(&ctx.sockets, storage_failure());
            }
            active.close(ctx, Closing::Checkpointed);
            Ran::closed()
        }
    }
}

/// After a commit: makes the index entry exact (or removes it) and wakes the scheduler. A failure
/// here leaves an early or stale entry, which the scheduler corrects later.
fn sync_alarm_index(ctx: &ObjectCtx, alarm: Option<Alarm>) {
    let synced = ctx.namespace.with_alarm_index(|index| match alarm {
        Some(alarm) => index.set(&ctx.identity.id, ctx.identity.name(), alarm.time_ms),
        None => index.remove(&ctx.identity.id),
    });
    if let Err(err) = synced {
        tracing::warn!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "updating the alarm index: {err}");
    }
    ctx.context.alarm_wakeup.notify_one();
}
