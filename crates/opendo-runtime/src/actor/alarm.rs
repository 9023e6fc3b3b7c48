//! The alarm event, and what happens when its handler fails: retries with backoff, then the
//! alarm is dropped (spec §6).

use super::events::{begin_event, run_handler};
use super::instance::{Active, GuestCall};
use super::object::ObjectCtx;
use super::retry::{MAX_ALARM_RETRIES, retry_alarm};
use crate::bindings::AlarmInfo;
use crate::mailbox::{AlarmRun, CallChain};
use crate::sockets::Outputs;

/// Runs the object's alarm if it is due (with `now_asked`, whenever it is due): clears it, calls
/// the handler, and on failure sets it again for a retry (or drops it after
/// `MAX_ALARM_RETRIES`).
pub(super) async fn run_alarm(
    ctx: &ObjectCtx,
    active: &mut Active,
    now_asked: bool,
    alone: bool,
) -> Result<(AlarmRun, Outputs), opendo_storage::Error> {
    let now = ctx.context.config.clock.now_ms();
    let Some(alarm) = active.db()?.get_alarm()? else { return Ok((AlarmRun::NotDue, Vec::new())) };
    if alarm.time_ms > now && !now_asked {
        return Ok((AlarmRun::NotDue, Vec::new()));
    }
    // Inside the handler `get-alarm` is none unless the handler sets a new alarm.
    begin_event(ctx, active, alone, CallChain::default())?.delete_alarm()?;
    active.store.data_mut().event.alarm = Some(alarm);
    let info = AlarmInfo { retry_count: alarm.retry_count, is_retry: alarm.retry_count > 0 };
    let stats = &ctx.context.stats;
    stats.alarm_runs.inc();
    let (failure, outputs) = run_handler(ctx, active, GuestCall::Alarm(info)).await?;
    let Some(reason) = failure else { return Ok((AlarmRun::Ran, outputs)) };
    let retry_count = alarm.retry_count + 1;
    if retry_count > MAX_ALARM_RETRIES {
        active.db()?.delete_alarm()?;
        stats.alarms_dropped.inc();
        tracing::error!(
            namespace = %ctx.identity.namespace,
            object = %ctx.identity.id,
            "alarm dropped after {MAX_ALARM_RETRIES} retries; last failure: {reason}"
        );
        return Ok((AlarmRun::Dropped, Vec::new()));
    }
    let retry = retry_alarm(ctx, alarm);
    active.db()?.put_alarm(retry)?;
    stats.alarm_retries.inc();
    tracing::warn!(
        namespace = %ctx.identity.namespace,
        object = %ctx.identity.id,
        retry_count,
        "alarm failed, retrying in {} ms: {reason}",
        retry.time_ms.saturating_sub(now)
    );
    Ok((AlarmRun::Retrying { retry_count }, Vec::new()))
}
