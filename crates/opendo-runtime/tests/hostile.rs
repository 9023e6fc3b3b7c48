//! Hostile guests: each misbehaviour fails its own event with a clear cause, leaves no write
//! behind, and never stops another object from being served.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{config, request, text};
use opendo_runtime::{Config, EventError, Runtime, TrapCause};
use opendo_test_support::{HOSTILE, PROBE};
use serde_json::Value;

fn runtime(config: Config) -> Runtime {
    let runtime = Runtime::new(config).unwrap();
    runtime.load_namespace("hostile", Path::new(HOSTILE)).unwrap();
    runtime.load_namespace("probe", Path::new(PROBE)).unwrap();
    runtime
}

fn limited(dir: &Path) -> Config {
    Config {
        cpu_limit: Duration::from_millis(1500),
        memory_limit: 64 << 20,
        max_response_bytes: 4 << 20,
        ..config(dir)
    }
}

/// Runs `route` on a hostile object while a healthy object keeps being served (at least
/// `served_while_running` answers sent while the hostile event still ran; a fast misbehaviour may
/// be over before the first), and returns the hostile event's outcome.
async fn misbehave(
    runtime: &Runtime,
    route: &str,
    served_while_running: usize,
) -> Result<opendo_runtime::Response, EventError> {
    let hostile = {
        let runtime = runtime.clone();
        let route = route.to_string();
        tokio::spawn(async move { runtime.fetch("hostile", "h", request("POST", &route, b"")).await })
    };
    let mut answered_while_running = 0;
    loop {
        let running = !hostile.is_finished();
        assert_eq!(text(runtime, "healthy", "GET", "/hits", b"").await.0, 200, "during {route}");
        if !running {
            break;
        }
        answered_while_running += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        answered_while_running >= served_while_running,
        "the healthy object answered {answered_while_running} times while {route} ran"
    );
    hostile.await.unwrap()
}

async fn written(runtime: &Runtime, route: &str) -> String {
    let response =
        runtime.fetch("hostile", "h", request("GET", &format!("/written/{route}"), b"")).await.unwrap();
    String::from_utf8(response.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misbehaviour_fails_alone_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(limited(dir.path()));
    // With how many healthy answers while it runs: the loop runs until its 1.5 s CPU limit.
    let cases: [(&str, &[TrapCause], usize); 5] = [
        ("loop", &[TrapCause::CpuLimit], 5),
        ("memory-bomb", &[TrapCause::MemoryLimit], 0),
        // Rust guests keep part of their stack in linear memory: whichever stack runs out first.
        ("recurse", &[TrapCause::StackOverflow, TrapCause::Other], 0),
        ("panic", &[TrapCause::Panic], 0),
        ("huge-response?mb=8", &[TrapCause::ResponseTooLarge], 0),
    ];
    for (route, causes, served) in cases {
        let outcome = misbehave(&runtime, &format!("/{route}"), served).await;
        match outcome {
            Err(EventError::Trapped(cause)) => assert!(causes.contains(&cause), "{route}: {cause:?}"),
            other => panic!("{route}: expected a trap, got {other:?}"),
        }
        let key = route.split('?').next().unwrap();
        assert_eq!(written(&runtime, key).await, "false", "{route} left its write behind");
    }
    // A response under the limit is fine.
    let fine = runtime.fetch("hostile", "h", request("POST", "/huge-response?mb=1", b"")).await.unwrap();
    assert_eq!(fine.body.len(), 1 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cannot_reach_files_environment_or_network() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(config(dir.path()));
    let response = runtime.fetch("hostile", "h", request("GET", "/escape", b"")).await.unwrap();
    let attempts: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        attempts,
        serde_json::json!({
            "read_file": false, "write_file": false, "list_dir": false,
            "env_vars": 0, "env_path": false, "socket": false, "resolve": false
        })
    );
    assert!(!Path::new("/tmp/opendo-hostile-escape").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_flood_is_rate_limited_and_does_not_stall_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime(Config { log_writes_per_second: 10, ..config(dir.path()) });
    let outcome = misbehave(&runtime, "/flood?lines=20000", 0).await.unwrap();
    assert_eq!(outcome.body, b"flooded");
}
