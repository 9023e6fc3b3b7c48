//! Alarms through a real guest: scheduling, hibernation, retries, restarts.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::{config, request, runtime_with, text};
use opendo_runtime::{Config, EventError, Runtime, TrapCause};
use serde_json::{Value, json};

fn fast(dir: &std::path::Path) -> Config {
    Config { alarm_retry_base: Duration::from_millis(20), ..config(dir) }
}

async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn runs(runtime: &Runtime, object: &str) -> Vec<Value> {
    let (_, body) = text(runtime, object, "GET", "/alarm/runs", b"").await;
    serde_json::from_str(&body).unwrap()
}

async fn alarm(runtime: &Runtime, object: &str) -> Value {
    serde_json::from_str(&text(runtime, object, "GET", "/alarm", b"").await.1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_fires_on_a_hibernated_object() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(Config { idle_timeout: Duration::from_millis(100), ..fast(dir.path()) });
    assert_eq!(text(&runtime, "sleeper", "POST", "/alarm/set?in=1500", b"").await.0, 200);
    // The count goes up once the database is closed, just after the object stops counting as active.
    eventually("the object hibernates before its alarm", || async {
        runtime.active_objects() == 0 && runtime.stats().hibernations() >= 1
    })
    .await;
    assert_eq!(runtime.stats().activations(), 1, "the alarm has not run yet");
    eventually("the alarm ran", || async { runtime.stats().activations() >= 2 }).await;
    eventually("the run is recorded", || async { runs(&runtime, "sleeper").await.len() == 1 }).await;
    let run = &runs(&runtime, "sleeper").await[0];
    assert_eq!(run["retry_count"], 0);
    assert_eq!(run["is_retry"], false);
    assert_eq!(run["alarm_inside"], Value::Null, "get-alarm inside the handler is none");
    assert_eq!(alarm(&runtime, "sleeper").await, Value::Null, "a run alarm is cleared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_replace_delete_and_past_times() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(fast(dir.path()));
    let far = 4_000_000_000_000i64;
    text(&runtime, "a", "POST", &format!("/alarm/set?at={far}"), b"").await;
    text(&runtime, "a", "POST", &format!("/alarm/set?at={}", far + 1), b"").await;
    assert_eq!(alarm(&runtime, "a").await, json!(far + 1), "setting replaces");
    assert_eq!(text(&runtime, "a", "DELETE", "/alarm", b"").await.0, 204);
    assert_eq!(alarm(&runtime, "a").await, Value::Null);

    text(&runtime, "past", "POST", "/alarm/set?at=1", b"").await;
    eventually("a time in the past fires at once", || async { runs(&runtime, "past").await.len() == 1 })
        .await;

    // A deleted alarm never fires.
    text(&runtime, "deleted", "POST", "/alarm/set?in=200", b"").await;
    text(&runtime, "deleted", "DELETE", "/alarm", b"").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(runs(&runtime, "deleted").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_are_retried_with_their_count() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(fast(dir.path()));
    text(&runtime, "flaky", "PUT", "/alarm/mode", b"trap-twice").await;
    text(&runtime, "flaky", "POST", "/alarm/set?in=0", b"").await;
    eventually("the third run succeeds", || async { runs(&runtime, "flaky").await.len() == 1 }).await;
    assert_eq!(runtime.stats().alarm_retries(), 2);
    let run = &runs(&runtime, "flaky").await[0];
    assert_eq!((run["retry_count"].clone(), run["is_retry"].clone()), (json!(2), json!(true)));
    assert_eq!(alarm(&runtime, "flaky").await, Value::Null);

    text(&runtime, "erring", "PUT", "/alarm/mode", b"err-once").await;
    text(&runtime, "erring", "POST", "/alarm/set?in=0", b"").await;
    eventually("an Err is retried too", || async { runs(&runtime, "erring").await.len() == 1 }).await;
    assert_eq!(runs(&runtime, "erring").await[0]["retry_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_that_always_fails_is_dropped_after_six_retries() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(fast(dir.path()));
    text(&runtime, "doomed", "PUT", "/alarm/mode", b"always-trap").await;
    text(&runtime, "doomed", "POST", "/alarm/set?in=0", b"").await;
    // The first run and six retries all fail; then the alarm is deleted.
    eventually("the alarm is dropped", || async { alarm(&runtime, "doomed").await == Value::Null }).await;
    assert!(runs(&runtime, "doomed").await.is_empty(), "no run succeeded");
    let stats = runtime.stats();
    assert_eq!(stats.alarm_runs(), 7, "the first run and six retries");
    assert_eq!(stats.alarm_retries(), 6);
    assert_eq!(stats.alarms_dropped(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alarm(&runtime, "doomed").await, Value::Null, "and stays dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_can_set_the_next_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(fast(dir.path()));
    text(&runtime, "ticker", "PUT", "/alarm/mode", b"rearm-once").await;
    text(&runtime, "ticker", "POST", "/alarm/set?in=0", b"").await;
    eventually("two runs", || async { runs(&runtime, "ticker").await.len() == 2 }).await;
    for run in runs(&runtime, "ticker").await {
        assert_eq!(run["alarm_inside"], Value::Null);
        assert_eq!(run["retry_count"], 0);
    }
    assert_eq!(alarm(&runtime, "ticker").await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_set_by_a_trapped_event_is_not_set() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(fast(dir.path()));
    let outcome = runtime.fetch("probe", "a", request("POST", "/alarm/set-then-panic?in=0", b"")).await;
    assert_eq!(outcome.unwrap_err(), EventError::Trapped(TrapCause::Panic));
    assert_eq!(alarm(&runtime, "a").await, Value::Null);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(runs(&runtime, "a").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_due_while_stopped_fire_after_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = runtime_with(fast(dir.path()));
    text(&first, "late", "POST", "/alarm/set?in=400", b"").await;
    assert!(first.shutdown(Duration::from_secs(10)).await);
    drop(first);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = runtime_with(fast(dir.path()));
    eventually("the missed alarm fires after start", || async { runs(&second, "late").await.len() == 1 })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs(&second, "late").await.len(), 1, "once");
}
