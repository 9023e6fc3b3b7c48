use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When an alarm should fire: made by a constructor that says which it is, or from a
/// [`SystemTime`] (that instant) or a [`Duration`] (that long from now). There is no conversion
/// from a bare integer, which workers-rs reads as an offset from now: a call that compiles here
/// means the same there, or does not compile:
///
/// ```compile_fail
/// # fn set(storage: &opendo_sdk::Storage) -> opendo_sdk::Result<()> {
/// storage.set_alarm(60_000_i64) // an absolute time, or a minute from now?
/// # }
/// ```
///
/// ```
/// # use std::time::Duration;
/// # use opendo_sdk::ScheduledTime;
/// # fn set(storage: &opendo_sdk::Storage) -> opendo_sdk::Result<()> {
/// storage.set_alarm(Duration::from_secs(60))?; // a minute from now
/// storage.set_alarm(ScheduledTime::at_epoch_ms(1_767_225_600_000)) // 2026-01-01T00:00:00Z
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledTime(i64);

impl ScheduledTime {
    /// At `epoch_ms` milliseconds since the Unix epoch.
    pub fn at_epoch_ms(epoch_ms: i64) -> Self {
        ScheduledTime(epoch_ms)
    }

    /// At `time` (rounded down to the millisecond).
    pub fn at(time: SystemTime) -> Self {
        ScheduledTime(epoch_ms(time))
    }

    /// `from_now` after now.
    pub fn after(from_now: Duration) -> Self {
        let offset = i64::try_from(from_now.as_millis()).unwrap_or(i64::MAX);
        ScheduledTime(epoch_ms(SystemTime::now()).saturating_add(offset))
    }

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

impl From<SystemTime> for ScheduledTime {
    fn from(time: SystemTime) -> Self {
        ScheduledTime::at(time)
    }
}

impl From<Duration> for ScheduledTime {
    fn from(from_now: Duration) -> Self {
        ScheduledTime::after(from_now)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_constructor_says_what_its_number_means() {
        assert_eq!(ScheduledTime::at_epoch_ms(5).epoch_ms(), 5);
        assert_eq!(ScheduledTime::from(UNIX_EPOCH + Duration::from_millis(7)), ScheduledTime::at_epoch_ms(7));
        let before = epoch_ms(SystemTime::now());
        let later = ScheduledTime::from(Duration::from_secs(60)).epoch_ms();
        let after = epoch_ms(SystemTime::now());
        assert!((before + 60_000..=after + 60_000).contains(&later), "{before} {later} {after}");
    }
}
