//! The CPU limit of an event: its run time, without its waits for calls to other objects.

use std::time::Duration;

use wasmtime::{Store, UpdateDeadline};

use super::errors::DeadlineExceeded;
use super::store::EventInfo;
use crate::engine::deadline_ticks;

/// Makes the guest of `store` trap once the running event's time, without its waits for calls
/// (`event` finds it in the store's data), passes `cpu_limit`: at each epoch deadline the time
/// left is worked out again.
pub(crate) fn limit_cpu<T: 'static>(store: &mut Store<T>, cpu_limit: Duration, event: fn(&T) -> &EventInfo) {
    store.epoch_deadline_callback(move |store| {
        match cpu_limit.checked_sub(event(store.data()).busy_time()) {
            Some(left) if !left.is_zero() => Ok(UpdateDeadline::Continue(deadline_ticks(left))),
            _ => Err(wasmtime::Error::new(DeadlineExceeded)),
        }
    });
}
