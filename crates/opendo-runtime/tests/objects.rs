//! The runtime with real guests (tests/guests) and real SQLite files.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{call, config, op, request, runtime_with, text};
use opendo_runtime::{Config, Durability, Error, EventError, Runtime, TrapCause};
use opendo_test_support::{PROBE, WRONG_WORLD};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_through_wasm() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    assert_eq!(text(&runtime, "a", "GET", "/kv/k", b"").await.0, 404);
    assert_eq!(text(&runtime, "a", "PUT", "/kv/k", b"hello").await.0, 204);
    assert_eq!(text(&runtime, "a", "GET", "/kv/k", b"").await, (200, "hello".into()));
    assert_eq!(text(&runtime, "b", "GET", "/kv/k", b"").await.0, 404, "objects have separate storage");

    let (status, _) =
        op(&runtime, "a", json!({"op": "put_many", "entries": [["p/1", "one"], ["p/2", "two"], ["q", "x"]]}))
            .await;
    assert_eq!(status, 200);
    let (_, listed) = op(&runtime, "a", json!({"op": "list", "prefix": "p/", "reverse": true})).await;
    assert_eq!(listed, json!([["p/2", "two"], ["p/1", "one"]]));
    let (_, listed) =
        op(&runtime, "a", json!({"op": "list", "start_after": "k", "end": "q", "limit": 1})).await;
    assert_eq!(listed, json!([["p/1", "one"]]));
    let (_, got) = op(&runtime, "a", json!({"op": "get_many", "keys": ["q", "k", "missing"]})).await;
    assert_eq!(got, json!([["k", "hello"], ["q", "x"]]));
    let (_, deleted) = op(&runtime, "a", json!({"op": "delete_many", "keys": ["q", "missing"]})).await;
    assert_eq!(deleted, json!(1));
    assert_eq!(text(&runtime, "a", "DELETE", "/kv/k", b"").await, (200, "true".into()));
    let (_, _) = op(&runtime, "a", json!({"op": "delete_all"})).await;
    let (_, listed) = op(&runtime, "a", json!({"op": "list"})).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_limits_are_errors_the_guest_sees() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    let long_key = "k".repeat(2049);
    let (status, body) = text(&runtime, "a", "PUT", &format!("/kv/{long_key}"), b"v").await;
    assert_eq!(status, 400);
    assert!(body.starts_with("LimitExceeded"), "{body}");
    let too_many: Vec<String> = (0..129).map(|i| format!("k{i}")).collect();
    let (status, body) = op(&runtime, "a", json!({"op": "get_many", "keys": too_many})).await;
    assert_eq!(status, 400, "{body}");
    // The event went on and the object is healthy.
    assert_eq!(text(&runtime, "a", "PUT", "/kv/fine", b"v").await.0, 204);
    assert_eq!(text(&runtime, "a", "GET", "/hits", b"").await.1, "4", "no reset happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_after_writes_leaves_nothing_and_resets_the_instance() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    assert_eq!(text(&runtime, "a", "PUT", "/kv/before", b"1").await.0, 204);
    let outcome = runtime.fetch("probe", "a", request("POST", "/write-then-panic/doomed", b"")).await;
    assert_eq!(outcome.unwrap_err(), EventError::Trapped(TrapCause::Panic));
    assert_eq!(
        text(&runtime, "a", "GET", "/kv/doomed", b"").await.0,
        404,
        "the panicking event's write is gone"
    );
    assert_eq!(text(&runtime, "a", "GET", "/kv/before", b"").await, (200, "1".into()), "earlier events kept");
    // A fresh instance served the two reads above: its counter started again.
    assert_eq!(text(&runtime, "a", "GET", "/hits", b"").await.1, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_marked_for_rollback_is_delivered_and_its_writes_undone() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    assert_eq!(text(&runtime, "a", "PUT", "/kv/before", b"1").await.0, 204);
    let answer = call(&runtime, "a", "POST", "/write-then-undo/undone", b"").await;
    assert_eq!((answer.status, answer.body.as_slice()), (409, b"undone".as_slice()));
    assert!(
        !answer.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case(opendo_runtime::ROLLBACK_HEADER)),
        "the runtime takes the header: {:?}",
        answer.headers
    );
    assert_eq!(text(&runtime, "a", "GET", "/kv/undone", b"").await.0, 404, "the event's write is undone");
    assert_eq!(text(&runtime, "a", "GET", "/kv/before", b"").await, (200, "1".into()), "earlier events kept");
    assert_eq!(text(&runtime, "a", "GET", "/hits", b"").await.1, "5", "no trap: the instance was kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_err_from_fetch_is_a_500_response_not_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    let (status, body) = text(&runtime, "a", "GET", "/error", b"").await;
    assert_eq!(status, 500);
    assert!(body.contains("the probe was asked to fail"), "{body}");
    assert_eq!(text(&runtime, "a", "GET", "/hits", b"").await.1, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_object_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    let requests = 40;
    let mut tasks = Vec::new();
    for _ in 0..requests {
        let runtime = runtime.clone();
        tasks.push(tokio::spawn(async move {
            runtime.fetch("probe", "one", request("POST", "/span", b"")).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status, 200);
    }
    let (_, spans) = op(&runtime, "one", json!({"op": "list", "prefix": "span:"})).await;
    let spans: Vec<(u128, u128)> = spans
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let enter = entry[0].as_str().unwrap().trim_start_matches("span:").parse().unwrap();
            let exit: String = serde_json::from_str(entry[1].as_str().unwrap()).unwrap();
            (enter, exit.parse().unwrap())
        })
        .collect();
    assert_eq!(spans.len(), requests);
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "event entered at {} before the previous one left at {}",
            pair[1].0,
            pair[0].1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_object_does_not_stall_another() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    // Activate both first so the comparison is about running, not loading.
    call(&runtime, "slow", "GET", "/hits", b"").await;
    call(&runtime, "fast", "GET", "/hits", b"").await;
    let slow = {
        let runtime = runtime.clone();
        tokio::spawn(
            async move { runtime.fetch("probe", "slow", request("POST", "/spin?ms=3000", b"")).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        assert_eq!(text(&runtime, "fast", "GET", "/hits", b"").await.0, 200);
    }
    assert!(!slow.is_finished(), "the other object answered while the slow one was still running");
    assert_eq!(slow.await.unwrap().unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_object_hibernates_and_wakes_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(Config { idle_timeout: Duration::from_millis(200), ..config(dir.path()) });
    assert_eq!(text(&runtime, "a", "PUT", "/kv/x", b"kept").await.0, 204);
    assert_eq!(runtime.active_objects(), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while runtime.active_objects() > 0 {
        assert!(Instant::now() < deadline, "the object never hibernated");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runtime.stats().hibernations(), 1);
    assert_eq!(text(&runtime, "a", "GET", "/kv/x", b"").await, (200, "kept".into()));
    assert_eq!(text(&runtime, "a", "GET", "/hits", b"").await.1, "2", "a new instance after the wake");
    assert_eq!(runtime.stats().activations(), 2);
    // Both activations are timed as wakes; nothing else is.
    let wakes = runtime.stats().wake().counts();
    assert_eq!(wakes.iter().sum::<u64>(), 2, "{wakes:?}");
    assert!(runtime.stats().wake().sum() > Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_survive_a_restart_and_the_compiled_component_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let idle_timeout = Duration::from_millis(50);
    let first = runtime_with(Config { durability: Durability::Full, idle_timeout, ..config(dir.path()) });
    assert_eq!(text(&first, "a", "PUT", "/kv/x", b"durable").await.0, 204);
    let refused = Runtime::new(config(dir.path())).err().map(|err| err.to_string());
    assert!(
        refused.as_deref().is_some_and(|err| err.contains("is in use by another opendo")),
        "one runtime per data directory: {refused:?}"
    );
    // A hibernation schedules a memory trim for later: it must not hold the data directory.
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.stats().hibernations() == 0 {
        assert!(Instant::now() < deadline, "the object hibernates");
        tokio::time::sleep(idle_timeout).await;
    }
    assert!(first.shutdown(Duration::from_secs(10)).await, "clean shutdown");
    assert_eq!(
        first.fetch("probe", "a", request("GET", "/kv/x", b"")).await.unwrap_err(),
        EventError::ShuttingDown
    );
    drop(first);

    let cached: Vec<_> = std::fs::read_dir(dir.path().join(".cache/components")).unwrap().collect();
    assert_eq!(cached.len(), 1, "one compiled artifact cached");

    let second = runtime_with(config(dir.path()));
    assert_eq!(text(&second, "a", "GET", "/kv/x", b"").await, (200, "durable".into()));
    let db = dir
        .path()
        .join("probe")
        .join(format!("{}.sqlite", opendo_storage::ObjectId::from_name("probe", "a")));
    assert!(db.is_file(), "one SQLite file per object at {{data-dir}}/{{namespace}}/{{id}}.sqlite");
    assert!(second.shutdown(Duration::from_secs(10)).await, "clean shutdown");
    drop(second);
    let db = opendo_storage::ObjectDb::open(&db, opendo_storage::Durability::Relaxed).unwrap();
    assert_eq!(db.name().unwrap().as_deref(), Some("a"), "the object keeps the name it was created under");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_of_a_module_replaces_its_compiled_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let module = dir.path().join("probe.wasm");
    std::fs::copy(PROBE, &module).unwrap();
    let cached = || {
        let mut names: Vec<String> = std::fs::read_dir(data.join(".cache/components"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let serve = |version: &str| {
        let runtime = Runtime::new(config(&data)).unwrap();
        runtime.load_namespace("probe", &module).unwrap();
        // Another module (another path) keeps its own entry.
        runtime.load_namespace("other", Path::new(PROBE)).unwrap();
        assert_eq!(cached().len(), 2, "one entry per module after loading {version}: {:?}", cached());
        runtime
    };
    let first = serve("the first version");
    assert_eq!(text(&first, "a", "PUT", "/kv/k", b"kept").await.0, 204);
    assert!(first.shutdown(Duration::from_secs(10)).await);
    drop(first);
    let before = cached();

    // A new version of the file: the same component with a custom section appended.
    let mut bytes = std::fs::read(&module).unwrap();
    bytes.extend_from_slice(&[0x00, 0x09, 0x07]);
    bytes.extend_from_slice(b"version2");
    std::fs::write(&module, bytes).unwrap();
    let second = serve("the second version");
    let after = cached();
    assert_eq!(before.iter().filter(|name| after.contains(name)).count(), 1, "{before:?} then {after:?}");
    assert_eq!(text(&second, "a", "GET", "/kv/k", b"").await, (200, "kept".into()));
    assert!(second.shutdown(Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_visible_to_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    let response = call(&runtime, "alice", "GET", "/whoami", b"").await;
    let who: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(who["name"], "alice");
    assert_eq!(who["namespace"], "probe");
    assert_eq!(who["id"], opendo_storage::ObjectId::from_name("probe", "alice").to_hex());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespaces_and_bad_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    let outcome = runtime.fetch("nope", "a", request("GET", "/", b"")).await;
    assert_eq!(outcome.unwrap_err(), EventError::UnknownNamespace("nope".into()));
    for bad in ["", "..", ".", "a\0b", "tab\there", &"n".repeat(257)] {
        let outcome = runtime.fetch("probe", bad, request("GET", "/", b"")).await;
        assert!(matches!(outcome, Err(EventError::BadObjectName(_))), "{bad:?}: {outcome:?}");
    }
    let longest = "n".repeat(256);
    assert_eq!(call(&runtime, &longest, "GET", "/hits", b"").await.status, 200);
    assert_eq!(
        call(&runtime, "../../etc/passwd", "GET", "/hits", b"").await.status,
        200,
        "names are not paths"
    );
}

#[tokio::test]
async fn modules_that_are_not_durable_objects_are_refused_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(config(dir.path())).unwrap();
    let refuse = |name: &str, path: &Path| match runtime.load_namespace(name, path) {
        Err(Error::InvalidModule(message)) => {
            assert!(!message.contains('\n'), "one line: {message}");
            message
        }
        other => panic!("expected InvalidModule, got {other:?}"),
    };
    let message = refuse("wrong", Path::new(WRONG_WORLD));
    assert!(message.contains("does not fit the `durable-object` world"), "{message}");
    assert!(message.contains("opendo:durable-object/handler@0.1.0"), "{message}");

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    assert!(refuse("core", &core).contains("core WebAssembly module, not a component"));

    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, b"just some text").unwrap();
    assert!(refuse("text", &text).contains("not a WebAssembly file"));

    let missing = dir.path().join("missing.wasm");
    assert!(matches!(runtime.load_namespace("missing", &missing), Err(Error::Io { .. })));
    assert!(matches!(runtime.load_namespace("bad/name", Path::new(PROBE)), Err(Error::InvalidConfig(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_past_the_cpu_limit_traps_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(Config { cpu_limit: Duration::from_millis(200), ..config(dir.path()) });
    assert_eq!(text(&runtime, "a", "PUT", "/kv/before", b"1").await.0, 204);
    let outcome = runtime.fetch("probe", "a", request("POST", "/spin?ms=60000", b"")).await;
    assert_eq!(outcome.unwrap_err(), EventError::Trapped(TrapCause::CpuLimit));
    assert_eq!(text(&runtime, "a", "GET", "/kv/before", b"").await, (200, "1".into()));
    assert_eq!(text(&runtime, "a", "POST", "/spin?ms=10", b"").await.1, "done", "the object works again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_memory_past_the_limit_traps() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(Config { memory_limit: 16 << 20, ..config(dir.path()) });
    assert_eq!(text(&runtime, "a", "POST", "/grow?mb=4", b"").await, (200, (4usize << 20).to_string()));
    let outcome = runtime.fetch("probe", "a", request("POST", "/grow?mb=64", b"")).await;
    assert_eq!(outcome.unwrap_err(), EventError::Trapped(TrapCause::MemoryLimit));
    assert_eq!(text(&runtime, "a", "GET", "/hits", b"").await.1, "1", "a fresh instance after the trap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_refused_as_overload() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(Config { max_queued_events: 1, ..config(dir.path()) });
    call(&runtime, "busy", "GET", "/hits", b"").await;
    let running = {
        let runtime = runtime.clone();
        tokio::spawn(
            async move { runtime.fetch("probe", "busy", request("POST", "/spin?ms=1500", b"")).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.fetch("probe", "busy", request("GET", "/hits", b"")).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = runtime.fetch("probe", "busy", request("GET", "/hits", b"")).await;
    assert_eq!(refused.unwrap_err(), EventError::Overloaded);
    assert_eq!(call(&runtime, "other", "GET", "/hits", b"").await.status, 200, "other objects unaffected");
    assert_eq!(running.await.unwrap().unwrap().status, 200);
    assert_eq!(queued.await.unwrap().unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_active_keeps_the_live_objects_under_the_cap_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(Config { max_active: 10, ..config(dir.path()) });
    let mut most_active = 0;
    for round in 0..2 {
        let mut tasks = Vec::new();
        for i in 0..100 {
            let shared = runtime.clone();
            tasks.push(tokio::spawn(async move {
                let path = format!("/kv/value{round}");
                shared
                    .fetch("probe", &format!("obj{i}"), request("PUT", &path, format!("{i}").as_bytes()))
                    .await
            }));
            most_active = most_active.max(runtime.active_objects());
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().status, 204);
            most_active = most_active.max(runtime.active_objects());
        }
    }
    assert!(most_active <= 10, "at most 10 objects live at once, saw {most_active}");
    for i in 0..100 {
        assert_eq!(text(&runtime, &format!("obj{i}"), "GET", "/kv/value0", b"").await, (200, i.to_string()));
        assert_eq!(text(&runtime, &format!("obj{i}"), "GET", "/kv/value1", b"").await, (200, i.to_string()));
        assert!(runtime.active_objects() <= 10);
    }
    assert!(runtime.stats().evictions() >= 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_object_keeps_its_wal_until_it_hibernates() {
    let dir = tempfile::tempdir().unwrap();
    let idle_timeout = Duration::from_millis(300);
    let runtime = runtime_with(Config {
        max_active: 1,
        idle_timeout,
        durability: Durability::Full,
        ..config(dir.path())
    });
    let wal_len = |name: &str| {
        let db = opendo_storage::layout::object_db_path(
            dir.path(),
            "probe",
            &opendo_storage::ObjectId::from_name("probe", name),
        );
        std::fs::metadata(format!("{}-wal", db.display())).unwrap().len()
    };
    let all_hibernated = || async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while runtime.active_objects() > 0 {
            assert!(Instant::now() < deadline, "objects never hibernated");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(text(&runtime, "a", "PUT", "/kv/x", b"kept").await.0, 204);
    // The only slot goes to "b": "a" is evicted, and closes without a checkpoint.
    assert_eq!(text(&runtime, "b", "PUT", "/kv/y", b"other").await.0, 204);
    assert_eq!(runtime.stats().evictions(), 1);
    assert!(wal_len("a") > 0, "the evicted object's WAL keeps its frames");

    all_hibernated().await;
    assert_eq!(text(&runtime, "a", "GET", "/kv/x", b"").await, (200, "kept".into()));
    // Hibernating when idle checkpoints it.
    all_hibernated().await;
    assert_eq!(wal_len("a"), 0, "a hibernated object's WAL is emptied");
    assert_eq!(wal_len("b"), 0);
    assert_eq!(text(&runtime, "a", "GET", "/kv/x", b"").await, (200, "kept".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_events_share_one_commit_and_a_trap_rolls_back_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    call(&runtime, "g", "GET", "/hits", b"").await;
    let commits_before = runtime.stats().commits();
    // Hold the object busy so the next events queue up and run as one batch.
    let busy = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.fetch("probe", "g", request("POST", "/spin?ms=800", b"")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let queued: Vec<_> = [("PUT", "/kv/one"), ("POST", "/write-then-panic/two"), ("PUT", "/kv/three")]
        .into_iter()
        .map(|(method, path)| {
            let runtime = runtime.clone();
            tokio::spawn(async move { runtime.fetch("probe", "g", request(method, path, b"v")).await })
        })
        .collect();
    assert_eq!(busy.await.unwrap().unwrap().status, 200);
    let mut outcomes = Vec::new();
    for task in queued {
        outcomes.push(task.await.unwrap().map(|response| response.status));
    }
    assert_eq!(outcomes, vec![Ok(204), Err(EventError::Trapped(TrapCause::Panic)), Ok(204)]);
    let commits = runtime.stats().commits() - commits_before;
    assert_eq!(commits, 2, "the busy event, then one commit for the three queued events");
    assert_eq!(text(&runtime, "g", "GET", "/kv/one", b"").await.0, 200);
    assert_eq!(text(&runtime, "g", "GET", "/kv/two", b"").await.0, 404, "the trapped event left nothing");
    assert_eq!(text(&runtime, "g", "GET", "/kv/three", b"").await.0, 200);
}
