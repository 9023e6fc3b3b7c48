//! When a failed alarm runs again (spec §6): after 2, 4, 8, ... seconds (plus jitter), at most
//! [`MAX_ALARM_RETRIES`] times.

use std::time::Duration;

use opendo_storage::Alarm;

use super::object::ObjectCtx;

/// Failed alarm runs retried before the alarm is dropped.
pub(super) const MAX_ALARM_RETRIES: u32 = 6;

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
