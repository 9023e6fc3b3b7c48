//! Giving memory freed by hibernated objects back to the operating system.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Trims the allocator's free memory at most once per [`MemoryTrimmer::EVERY`].
#[derive(Debug)]
pub(crate) struct MemoryTrimmer {
    started: Instant,
    /// When the last trim ran, in nanoseconds since `started`.
    last_trim: AtomicU64,
    /// A trim is due (see [`MemoryTrimmer::return_freed_memory`]).
    trim_scheduled: AtomicBool,
}

impl MemoryTrimmer {
    const EVERY: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Arc<Self> {
        Arc::new(MemoryTrimmer {
            started: Instant::now(),
            last_trim: AtomicU64::new(0),
            trim_scheduled: AtomicBool::new(false),
        })
    }

    /// Gives memory freed by hibernated objects back to the operating system: glibc otherwise
    /// keeps it, and a server whose objects all hibernated would stay as large as at its peak.
    /// Trimming walks the heap under the allocator's lock, so it runs at most once every 5
    /// seconds; hibernations meanwhile are covered by one trim at the end of that window, so the
    /// last objects to hibernate are not left out. Must be called inside a tokio runtime.
    pub(crate) fn return_freed_memory(self: &Arc<Self>) {
        if self.trim_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let since_last =
            Duration::from_nanos(self.uptime_nanos().saturating_sub(self.last_trim.load(Ordering::Relaxed)));
        let wait = Self::EVERY.saturating_sub(since_last);
        // Weak: a pending trim must not keep a stopped runtime alive.
        let trimmer = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(trimmer) = trimmer.upgrade() else { return };
            // Cleared first: memory freed from now on needs the next trim.
            trimmer.trim_scheduled.store(false, Ordering::Release);
            trimmer.last_trim.store(trimmer.uptime_nanos(), Ordering::Relaxed);
            drop(trimmer);
            let _ = tokio::task::spawn_blocking(|| {
                #[cfg(all(target_os = "linux", target_env = "gnu"))]
                // SAFETY: malloc_trim only releases free heap pages; it is safe to call at any time.
                unsafe {
                    libc::malloc_trim(0);
                }
            })
            .await;
        });
    }

    fn uptime_nanos(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn hibernations_within_the_trim_window_get_one_trim_at_its_end() {
        let trimmer = MemoryTrimmer::new();
        // Just started: the window since the (notional) last trim is still open.
        trimmer.return_freed_memory();
        trimmer.return_freed_memory();
        assert!(trimmer.trim_scheduled.load(Ordering::Acquire), "a trim waits for the end of the window");
        assert_eq!(trimmer.last_trim.load(Ordering::Relaxed), 0, "not trimmed yet");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!trimmer.trim_scheduled.load(Ordering::Acquire), "the trim ran");
        assert!(trimmer.last_trim.load(Ordering::Relaxed) > 0);
        // Memory freed after that trim is covered by the next one.
        trimmer.return_freed_memory();
        assert!(trimmer.trim_scheduled.load(Ordering::Acquire));
    }
}
