//! Running one batch of events in one SQLite transaction, and committing it (`commit.rs`).

use std::time::Instant;

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::alarm::run_alarm;
use super::commit::{self, Durable};
use super::events::{run_fetch, run_socket_event};
use super::gate::{Done, Reply, storage_failure};
use super::instance::{Active, Closing};
use super::object::ObjectCtx;
use crate::error::EventError;
use crate::group_sync::Ticket;
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
pub(super) async fn run_batch(
    ctx: &Arc<ObjectCtx>,
    active: Option<Active>,
    slot: Option<OwnedSemaphorePermit>,
    batch: Vec<Envelope>,
) -> Ran {
    let started = Instant::now();
    let ran = run_events(ctx, active, slot, batch).await;
    ctx.context.stats.batch.record(started.elapsed());
    ran
}

async fn run_events(
    ctx: &Arc<ObjectCtx>,
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
    let outcome: Result<Option<Ticket>, Failure> = async {
        commit::begin(active.store.data_mut())?;
        for envelope in pending.by_ref() {
            let event_started = Instant::now();
            match envelope {
                Envelope::Fetch { request, upgrade, chain, reply } => {
                    let (outcome, outputs) =
                        run_fetch(ctx, &mut active, request, upgrade, chain, alone).await?;
                    done.push(Done { reply: Reply::Fetch(reply, outcome), outputs });
                }
                Envelope::Alarm { now, reply } => {
                    active.store.data_mut().batch.ran_alarm = true;
                    let (run, outputs) = run_alarm(ctx, &mut active, now, alone).await?;
                    done.push(Done { reply: Reply::Alarm(reply, run), outputs });
                }
                Envelope::Socket { socket, event } => {
                    let outputs = run_socket_event(ctx, &mut active, socket, event, alone).await?;
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
        // A cluster's node commits only while it holds the object's shard with a valid lease.
        if !ctx.context.holds(&ctx.identity.namespace, &ctx.identity.id) {
            return Err(Failure::Moved);
        }
        Ok(commit::commit(ctx, active.store.data_mut(), Durable::BeforeRelease)?)
    }
    .await;
    match outcome {
        Ok(flush_pending) => Ran { object: Some(active), done, flush_pending },
        Err(failure) => {
            let err = match failure {
                Failure::Storage(err) => {
                    tracing::error!(
                        namespace = %ctx.identity.namespace,
                        object = %ctx.identity.id,
                        "storage failed during an event batch; {} events rolled back: {err}",
                        done.len() + pending.len()
                    );
                    storage_failure()
                }
                Failure::Moved => {
                    tracing::warn!(
                        namespace = %ctx.identity.namespace,
                        object = %ctx.identity.id,
                        "this node lost the object's shard during a batch; {} events rolled back",
                        done.len() + pending.len()
                    );
                    EventError::Moved
                }
            };
            if let Ok(db) = active.db() {
                let _ = db.rollback_batch();
            }
            for event in done {
                event.fail(&ctx.sockets, err.clone());
            }
            for envelope in pending {
                envelope.fail(&ctx.sockets, err.clone());
            }
            active.close(ctx, Closing::Checkpointed);
            Ran::closed()
        }
    }
}

/// Why a batch was not kept.
enum Failure {
    Storage(opendo_storage::Error),
    /// On a cluster's node: the object's shard is no longer held (see `Ownership`).
    Moved,
}

impl From<opendo_storage::Error> for Failure {
    fn from(err: opendo_storage::Error) -> Self {
        Failure::Storage(err)
    }
}
