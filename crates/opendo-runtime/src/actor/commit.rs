//! Beginning and committing a batch's transaction, with the alarm index kept in step with the
//! object's alarm and the group sync for a new object's first commit. A batch commits once at
//! its end, and also inside an event before a call leaves it (the output gate for calls).

use opendo_storage::{Alarm, ObjectDb};

use super::object::ObjectCtx;
use super::retry::retry_alarm;
use crate::group_sync::{Flushed, Ticket};
use crate::host::Host;

/// What committing the open batch needs to know of it, kept in the object's store (a call
/// commits from inside an event).
#[derive(Debug, Default)]
pub(crate) struct BatchState {
    /// The alarm as of the last commit, once read (saves reading it around every batch).
    committed_alarm: Option<Option<Alarm>>,
    /// The alarm when the transaction began.
    alarm_before: Option<Alarm>,
    /// `ObjectDb::alarm_writes` when the transaction began: unchanged means the alarm is too.
    alarm_writes: u64,
    /// An alarm event ran in the transaction.
    pub(crate) ran_alarm: bool,
}

/// When a commit must be durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durable {
    /// Before `commit` returns.
    Now,
    /// Before the batch's outputs are released: `commit` may leave a group-sync ticket to wait
    /// for off the blocking thread.
    BeforeRelease,
}

/// Begins the batch's transaction.
pub(crate) fn begin(host: &mut Host) -> Result<(), opendo_storage::Error> {
    let Host { db, batch, .. } = host;
    let db = open(db)?;
    db.begin_batch()?;
    batch.alarm_before = match batch.committed_alarm {
        Some(alarm) => alarm,
        None => db.get_alarm()?,
    };
    batch.alarm_writes = db.alarm_writes();
    batch.ran_alarm = false;
    Ok(())
}

/// Commits the batch's transaction; returns the group-sync ticket the batch's outputs must wait
/// for, if any.
pub(crate) fn commit(
    ctx: &ObjectCtx,
    host: &mut Host,
    durable: Durable,
) -> Result<Option<Ticket>, opendo_storage::Error> {
    let Host { db, batch, .. } = host;
    let db = open(db)?;
    let rows = db.take_row_counts();
    ctx.namespace.stats.rows_read.inc_by(rows.read);
    ctx.namespace.stats.rows_written.inc_by(rows.written);
    let alarm_after = match db.alarm_writes() == batch.alarm_writes {
        true => batch.alarm_before,
        false => db.get_alarm()?,
    };
    let moved = batch.alarm_before.map(|a| a.time_ms) != alarm_after.map(|a| a.time_ms);
    if let (true, Some(alarm)) = (moved, alarm_after) {
        // Before the commit, so the index never misses an alarm the database holds.
        ctx.namespace
            .with_alarm_index(|index| index.lower(&ctx.identity.id, ctx.identity.name(), alarm.time_ms))?;
    }
    let must_flush = db.commit_batch()?;
    let sync_index = moved || batch.ran_alarm;
    let flush_pending = match (must_flush, &ctx.context.group_sync) {
        (true, Some(sync)) => {
            // The alarm index may follow the object's alarm only once the commit is durable.
            let flushed = if sync_index || durable == Durable::Now {
                Flushed::Now(sync.wait_durable())
            } else {
                sync.flush()
            };
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
    batch.committed_alarm = Some(alarm_after);
    ctx.context.stats.commits.inc();
    if sync_index {
        sync_alarm_index(ctx, alarm_after);
    }
    Ok(flush_pending)
}

/// The output gate for a call: commits the batch, with the running event's writes so far, and
/// makes it durable; the event goes on in a new transaction, as if alone in it.
///
/// An alarm event's alarm was cleared for its handler; committed so, a crash during the call
/// would lose it. So it is committed set for a retry, and cleared again for the rest of the
/// handler: at least once holds.
///
/// Fails, changing nothing, with the guest's error ([`ObjectDb::end_event_early`]): a
/// transaction open, or deferred foreign-key violations.
pub(crate) fn commit_inside_event(ctx: &ObjectCtx, host: &mut Host) -> Result<(), opendo_storage::Error> {
    let running_alarm = host.event.alarm;
    let db = open(&mut host.db)?;
    db.end_event_early()?;
    let in_flight = match running_alarm {
        Some(alarm) if db.get_alarm()?.is_none() => {
            db.put_alarm(retry_alarm(ctx, alarm))?;
            true
        }
        _ => false,
    };
    if !ctx.context.holds(&ctx.identity.namespace, &ctx.identity.id) {
        return Err(opendo_storage::Error::InUse("this node no longer holds the object's shard".into()));
    }
    commit(ctx, host, Durable::Now)?;
    begin(host)?;
    if in_flight {
        open(&mut host.db)?.delete_alarm()?;
    }
    Ok(())
}

fn open(db: &mut Option<ObjectDb>) -> Result<&mut ObjectDb, opendo_storage::Error> {
    db.as_mut().ok_or_else(|| opendo_storage::Error::Corrupt("object database is not open".into()))
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
