use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When an alarm should fire. Unlike workers-rs, a bare integer is an absolute time.
///
/// - `i64`: milliseconds since the Unix epoch.
/// - [`SystemTime`]: that instant (rounded down to the millisecond).
/// - [`Duration`]: that long from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledTime(i64);

impl ScheduledTime {
    /// Milliseconds since the Unix epoch.
    pub fn epoch_ms(self) -> i64 {
        self.0
    }
}

fn epoch_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

impl From<i64> for ScheduledTime {
    fn from(epoch_ms: i64) -> Self {
        ScheduledTime(epoch_ms)
    }
}

impl From<SystemTime> for ScheduledTime {
    fn from(time: SystemTime) -> Self {
        ScheduledTime(epoch_ms(time))
    }
}

impl From<Duration> for ScheduledTime {
    fn from(from_now: Duration) -> Self {
        ScheduledTime(
            epoch_ms(SystemTime::now())
                .saturating_add(i64::try_from(from_now.as_millis()).unwrap_or(i64::MAX)),
        )
    }
}

/// Why [`DurableObject::alarm`](crate::DurableObject::alarm) is being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmInfo {
    /// How many earlier runs of this alarm failed (0 on the first run).
    pub retry_count: u32,
    /// Whether this run is a retry.
    pub is_retry: bool,
}
