//! The alarm event, and what happens when its handler fails: retries with backoff, then the
//! alarm is dropped (spec §6).

use std::time::Duration;

use opendo_storage::Alarm;

use super::events::{begin_event, run_handler};
use super::instance::{Active, GuestCall};
use super::object::ObjectCtx;
use crate::bindings::AlarmInfo;
use crate::mailbox::{AlarmRun, CallChain};
use crate::sockets::Outputs;

/// Failed alarm runs retried before the alarm is dropped.
const MAX_ALARM_RETRIES: u32 = 6;

/// Runs the object's alarm if it is due (with `now_asked`, whenever it is due): clears it, calls
/// the handler, and on failure sets it again for a retry (or drops it after
/// [`MAX_ALARM_RETRIES`]).
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

/// The next retry of `alarm`, which failed (or may yet: see `commit::commit_inside_event`).
pub(super) fn retry_alarm(ctx: &ObjectCtx, alarm: Alarm) -> Alarm {
    let retry_count = alarm.retry_count + 1;
    let delay = retry_delay(ctx.context.config.alarm_retry_base, retry_count);
    let now = ctx.context.config.clock.now_ms();
    Alarm { time_ms: now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)), retry_count }
}

/// `base * 2^(retry - 1)`, plus up to 25% jitter.
fn retry_delay(base: Duration, retry_count: u32) -> Duration {
    let delay = base.saturating_mul(1 << retry_count.saturating_sub(1).min(20));
    delay.mul_f64(1.0 + rand::random::<f64>() * 0.25)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_at_most_a_quarter_of_jitter() {
        for (retry, base_ms) in [(1, 2000), (2, 4000), (3, 8000), (6, 64000)] {
            let delay = retry_delay(Duration::from_secs(2), retry).as_millis();
            assert!(delay >= base_ms && delay <= base_ms * 5 / 4, "retry {retry}: {delay} ms");
        }
    }
}
