//! The actor's loop: waits for events, runs them in batches, releases their outputs once
//! durable, hibernates when idle or evicted, and leaves the directory once hibernated with an
//! empty mailbox.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;

use super::admin::run_admin;
use super::batch::{Ran, run_batch};
use super::gate::storage_failure;
use super::instance::{Active, Closing};
use super::object::ObjectCtx;
use crate::blocking::on_blocking_pool;
use crate::mailbox::{AlarmRun, Envelope};

/// Most events committed together.
const MAX_BATCH: usize = 64;

/// The actor of one object, until the runtime shuts down or the object leaves the directory.
pub(crate) async fn run(ctx: ObjectCtx, mut mailbox: mpsc::Receiver<Envelope>) {
    let ctx = Arc::new(ctx);
    // Declared first, so it is dropped last: after the database closed, however the actor ends.
    let _ended = ctx.control.ended.clone().drop_guard();
    let key = ctx.key();
    let stats = &ctx.context.stats;
    let idle = ctx.context.config.idle_timeout;
    let mut active: Option<Active> = None;
    // An admin call taken out of the mailbox while gathering a batch: it runs after that batch.
    let mut held: Option<Envelope> = None;
    loop {
        let received = match held.take() {
            Some(envelope) => Ok(Some(envelope)),
            None => tokio::select! {
                received = tokio::time::timeout(idle, mailbox.recv()) => received.map_err(|_| false),
                () = ctx.control.evict.notified(), if active.is_some() => Err(true),
            },
        };
        let mut first = match received {
            Ok(Some(envelope)) => envelope,
            // Every sender is gone: the runtime is shutting down.
            Ok(None) => break,
            Err(evicted) => {
                if let Some(object) = active.take() {
                    let closing = if evicted { Closing::Evicted } else { Closing::Checkpointed };
                    close(&ctx, object, closing).await;
                    if evicted {
                        stats.evictions.inc();
                    } else {
                        stats.hibernations.inc();
                        // Memory of an object that went idle is not needed soon (an evicted one's
                        // is reused at once by the object that replaced it).
                        ctx.context.trimmer.return_freed_memory();
                    }
                }
                // With sockets open the actor stays: it holds them while the object hibernates.
                if ctx.sockets.is_empty() && ctx.directory.retire(&key, &ctx.control, &mailbox) {
                    return;
                }
                continue;
            }
        };
        if let Envelope::Admin { op, reply } = first {
            let admin_ctx = ctx.clone();
            let object = active.take();
            ctx.control.busy.store(true, Ordering::Relaxed);
            match tokio::task::spawn_blocking(move || run_admin(&admin_ctx, object, op)).await {
                Ok((object, outcome)) => {
                    active = object;
                    let _ = reply.send(outcome);
                }
                Err(err) => {
                    tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "admin call failed: {err}");
                }
            }
            ctx.control.active.store(active.is_some(), Ordering::Relaxed);
            ctx.control.busy.store(false, Ordering::Relaxed);
            // An actor started only for an admin call (a listing reads many names) leaves at
            // once rather than idling: nothing of the object is open.
            if active.is_none()
                && ctx.sockets.is_empty()
                && ctx.directory.retire(&key, &ctx.control, &mailbox)
            {
                return;
            }
            continue;
        }
        if let Envelope::Alarm { now: true, reply } = first {
            // An operator's "run it now" creates nothing: the object may be gone since it asked.
            if active.is_none() && !ctx.db_path.exists() {
                let _ = reply.send(Ok(AlarmRun::NotDue));
                continue;
            }
            first = Envelope::Alarm { now: true, reply };
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match mailbox.try_recv() {
                Ok(envelope) if envelope.is_admin() => {
                    held = Some(envelope);
                    break;
                }
                Ok(envelope) => batch.push(envelope),
                Err(_) => break,
            }
        }
        let waking = active.is_none().then(Instant::now);
        let slot = match active {
            Some(_) => None,
            None => Some(ctx.directory.take_active_slot(&key).await),
        };
        ctx.control.busy.store(true, Ordering::Relaxed);
        let batch_ctx = ctx.clone();
        let object = active.take();
        let batch_future = async move { run_batch(&batch_ctx, object, slot, batch).await };
        let Ran { object, done, flush_pending } = match on_blocking_pool(batch_future).await {
            Ok(ran) => ran,
            Err(err) => {
                // A panic in host code: the batch's callers see their reply channel closed.
                tracing::error!(namespace = %ctx.identity.namespace, object = %ctx.identity.id, "event batch failed: {err}");
                Ran::closed()
            }
        };
        active = object;
        // Awaited here, not on the blocking thread: that thread is free for another object's
        // batch meanwhile, and one flush wakes all the actors it covered at once.
        let durable = match (flush_pending, &ctx.context.group_sync) {
            (Some(ticket), Some(sync)) => sync.wait(ticket).await,
            _ => Ok(()),
        };
        match durable {
            // Released by the actor, not on the blocking thread: that thread then wakes only the
            // actor, and the callers' tasks are woken from inside the async runtime.
            Ok(()) => done.into_iter().for_each(|event| event.release(&ctx.sockets)),
            Err(err) => {
                tracing::error!(
                    namespace = %ctx.identity.namespace,
                    object = %ctx.identity.id,
                    "a committed batch could not be made durable; its {} events failed: {err}",
                    done.len()
                );
                for event in done {
                    event.fail(&ctx.sockets, storage_failure());
                }
                if let Some(object) = active.take() {
                    close(&ctx, object, Closing::Checkpointed).await;
                }
            }
        }
        if let (Some(started), Some(_)) = (waking, &active) {
            stats.wake.record(started.elapsed());
        }
        ctx.control.active.store(active.is_some(), Ordering::Relaxed);
        ctx.control.last_used.store(ctx.directory.uptime_nanos(), Ordering::Relaxed);
        ctx.control.busy.store(false, Ordering::Relaxed);
    }
    if let Some(object) = active.take() {
        close(&ctx, object, Closing::Checkpointed).await;
    }
}

async fn close(ctx: &Arc<ObjectCtx>, object: Active, closing: Closing) {
    ctx.control.active.store(false, Ordering::Relaxed);
    let ctx = ctx.clone();
    // Closing checkpoints and fsyncs: never on an async worker.
    let _ = tokio::task::spawn_blocking(move || object.close(&ctx, closing)).await;
}
