//! The alarm scheduler: one task per runtime that sleeps until the earliest alarm of any
//! namespace's index, then asks each due object to run its alarm (waking it if hibernated).
//!
//! The scheduler only finds candidates: the object compares with its own database (the truth),
//! runs the handler if the alarm is really due, schedules retries, and corrects the index. An
//! object is asked again only after its previous alarm event finished.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use opendo_storage::ObjectId;
use tokio::sync::mpsc;

use crate::dispatch::{Dispatch, Target};
use crate::error::EventError;

/// Longest sleep between looks at the indexes, so a clock that jumps is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Most due alarms fired per namespace per look.
const MAX_DUE_PER_LOOK: usize = 256;

pub(crate) async fn run(dispatch: Arc<Dispatch>) {
    let context = &dispatch.context;
    let (finished, mut finished_rx) = mpsc::unbounded_channel::<(Arc<str>, ObjectId)>();
    let mut in_flight: HashSet<(Arc<str>, ObjectId)> = HashSet::new();
    loop {
        if dispatch.directory.is_closing() {
            return;
        }
        let now = context.config.clock.now_ms();
        let mut sleep = MAX_SLEEP;
        for namespace in dispatch.loaded_namespaces() {
            let looked = namespace.with_alarm_index(|index| {
                Ok::<_, opendo_storage::Error>((
                    index.due(&namespace.name, now, MAX_DUE_PER_LOOK)?,
                    index.next_time_after(now)?,
                ))
            });
            let (due, next) = match looked {
                Ok(looked) => looked,
                Err(err) => {
                    tracing::error!(namespace = %namespace.name, "reading the alarm index: {err}");
                    continue;
                }
            };
            // On a cluster's node, the index (shared by the nodes) lists other nodes' objects too.
            let full_page = due.len() == MAX_DUE_PER_LOOK;
            let due: Vec<_> =
                due.into_iter().filter(|entry| context.holds(&namespace.name, &entry.id)).collect();
            if full_page && !due.is_empty() {
                sleep = Duration::ZERO;
            } else if full_page {
                // A page of other nodes' alarms: they fire them; look again shortly.
                sleep = sleep.min(Duration::from_millis(100));
            }
            if let Some(next) = next {
                sleep = sleep.min(Duration::from_millis(u64::try_from(next - now).unwrap_or(0)));
            }
            for entry in due {
                let key = (namespace.name.clone(), entry.id);
                if in_flight.contains(&key) {
                    continue;
                }
                let target = Target { namespace: namespace.clone(), id: entry.id, name: entry.name };
                match dispatch.fire_alarm(&target, false) {
                    Ok(outcome) => {
                        in_flight.insert(key.clone());
                        let finished = finished.clone();
                        tokio::spawn(async move {
                            if let Ok(Err(err)) = outcome.await {
                                tracing::warn!(namespace = %key.0, object = %key.1, "alarm event failed: {err}");
                            }
                            let _ = finished.send(key);
                        });
                    }
                    Err(EventError::ShuttingDown) => return,
                    Err(err) => {
                        // Overloaded, for instance: try again shortly.
                        tracing::warn!(namespace = %namespace.name, object = %entry.id, "cannot deliver an alarm yet: {err}");
                        sleep = sleep.min(Duration::from_millis(100));
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = context.alarm_wakeup.notified() => {}
            Some(key) = finished_rx.recv() => {
                in_flight.remove(&key);
            }
        }
        while let Ok(key) = finished_rx.try_recv() {
            in_flight.remove(&key);
        }
    }
}
