//! Calls between objects (`Stub::fetch_with_request`), over the real binary with the probe
//! guest: chains, refused cycles and depths, callee failures, timeouts, the output gate, and
//! many waiting callers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use opendo_e2e::Server;
use opendo_test_support::PROBE;

fn probe(dir: &tempfile::TempDir, extra: &[&str]) -> Server {
    Server::start(Path::new(PROBE), &dir.path().join("data"), extra)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {body}"))
}

#[test]
fn a_chain_of_calls_reaches_each_object_by_name_and_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = probe(&dir, &[]);
    // a calls b, which calls c: c answers who it is, through both.
    let answer = server.get("/probe/a/to/probe/b/to/probe/c/whoami");
    assert_eq!(answer.status, 200, "{answer:?}");
    let whoami = json(&answer.body);
    assert_eq!(whoami["name"], "c", "a callee reached by name learns its name");
    let c_id = whoami["id"].as_str().unwrap().to_string();

    // The callee's writes are its own: b stored the value, not a.
    assert_eq!(server.send("PUT", "/probe/a/to/probe/b/kv/k", b"from a").status, 204);
    assert_eq!(server.get("/probe/b/kv/k").body, "from a");
    assert_eq!(server.get("/probe/a/kv/k").status, 404);

    // By id: the same object as by name.
    assert_eq!(server.get(&format!("/probe/a/to-id/probe/{c_id}/whoami")).body, answer.body);
    let unique = server.get("/probe/a/ids/unique?ns=probe").body;
    let unique = unique.split(' ').next().unwrap();
    let fresh = json(&server.get(&format!("/probe/a/to-id/probe/{unique}/whoami")).body);
    assert_eq!(fresh["id"], unique);
    assert_eq!(fresh["name"], serde_json::Value::Null, "an object made by id has no name");

    // A bad id or namespace is refused before anything is sent.
    let last = if c_id.ends_with('0') { '1' } else { '0' };
    let mistyped = format!("{}{last}", &c_id[..63]);
    let refused = server.get(&format!("/probe/a/to-id/probe/{mistyped}/whoami"));
    assert_eq!(refused.status, 400, "{refused:?}");
    let unknown = server.get("/probe/a/to/nowhere/x/whoami");
    assert_eq!(unknown.status, 400, "{unknown:?}");
    assert!(unknown.body.contains("no namespace `nowhere`"), "{unknown:?}");
}

#[test]
fn a_call_back_into_the_chain_fails_at_once_instead_of_waiting_forever() {
    let dir = tempfile::tempdir().unwrap();
    // A deadlock would hold the request until the call timeout, far past the client's.
    let server = probe(&dir, &["--call-timeout", "10min", "--admin-listen", "127.0.0.1:0"]);
    let back = server.get("/probe/a/to/probe/b/to/probe/a/whoami");
    assert_eq!(back.status, 502, "{back:?}");
    assert!(back.body.contains("call error Cycle"), "{back:?}");
    let to_itself = server.get("/probe/a/to/probe/a/whoami");
    assert!(to_itself.body.contains("call error Cycle"), "{to_itself:?}");
    // Both objects are free again.
    assert_eq!(server.get("/probe/a/whoami").status, 200);
    assert_eq!(server.get("/probe/b/whoami").status, 200);
    // a called b and b called a; then a called itself: three calls, two refused.
    assert_eq!(server.metric("opendo_calls_total{namespace=\"probe\"}"), 3);
    assert_eq!(server.metric("opendo_call_errors_total{namespace=\"probe\"}"), 2);
}

#[test]
fn a_chain_holds_at_most_sixteen_objects() {
    let dir = tempfile::tempdir().unwrap();
    let server = probe(&dir, &[]);
    let chain = |objects: usize| {
        let hops: String = (1..objects).map(|i| format!("/to/probe/o{i}")).collect();
        server.get(&format!("/probe/o0{hops}/whoami"))
    };
    let sixteen = chain(16);
    assert_eq!(sixteen.status, 200, "{sixteen:?}");
    assert_eq!(json(&sixteen.body)["name"], "o15");
    let seventeen = chain(17);
    assert_eq!(seventeen.status, 502, "{seventeen:?}");
    assert!(seventeen.body.contains("call error TooDeep"), "{seventeen:?}");
}

#[test]
fn a_callee_that_traps_is_an_error_the_caller_handles() {
    let dir = tempfile::tempdir().unwrap();
    let server = probe(&dir, &[]);
    let failed = server.post("/probe/a/to/probe/b/write-then-panic/doomed");
    assert_eq!(failed.status, 502, "the caller answered, it did not trap: {failed:?}");
    assert!(failed.body.contains("call error CalleeFailed"), "{failed:?}");
    assert!(failed.body.contains("panic"), "the error names the cause: {failed:?}");
    assert_eq!(server.get("/probe/b/kv/doomed").status, 404, "the callee's writes rolled back");
}

#[test]
fn a_call_past_the_timeout_fails_and_the_caller_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = probe(&dir, &["--call-timeout", "300ms"]);
    let timed_out = server.post("/probe/a/to/probe/slow/sleep?ms=3000");
    assert_eq!(timed_out.status, 502, "{timed_out:?}");
    assert!(timed_out.body.contains("call error Timeout"), "{timed_out:?}");
    assert!(timed_out.body.contains("300ms"), "the error names the timeout: {timed_out:?}");
    // The callee still ran the request, after the caller stopped waiting.
    assert_eq!(server.post("/probe/slow/sleep?ms=0").body, "2");
}

#[test]
fn a_call_to_an_overloaded_object_is_an_error_the_caller_handles() {
    let dir = tempfile::tempdir().unwrap();
    let server = probe(&dir, &["--max-queued-events", "1"]);
    std::thread::scope(|scope| {
        // `busy` sleeps on one request while a second waits in its one-place queue.
        let sleeping = scope.spawn(|| server.post("/probe/busy/sleep?ms=5000"));
        wait_for_log(&server, "probe sleeps 5000 ms");
        let queued = scope.spawn(|| server.post("/probe/busy/sleep?ms=0"));
        // Time for the second request to reach the queue (the first sleeps 5 s).
        std::thread::sleep(Duration::from_secs(1));
        let refused = server.post("/probe/a/to/probe/busy/sleep?ms=0");
        assert_eq!(refused.status, 502, "{refused:?}");
        assert!(refused.body.contains("call error Overloaded"), "{refused:?}");
        assert_eq!(sleeping.join().unwrap().body, "1");
        assert_eq!(queued.join().unwrap().body, "2", "the queued request ran, the refused call did not");
    });
}

#[test]
fn a_call_inside_a_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = probe(&dir, &[]);
    let refused = server.post("/probe/a/call-in-transaction");
    assert_eq!(refused.status, 502, "{refused:?}");
    assert!(refused.body.contains("call error InTransaction"), "{refused:?}");
}

#[test]
fn writes_before_a_call_survive_a_trap_after_it_and_later_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = probe(&dir, &[]);
    let trapped = server.post("/probe/a/write-call?callee=b&then=panic");
    assert_eq!(trapped.status, 500, "{trapped:?}");
    // The callee saw the call, so the caller's state it followed is kept.
    assert_eq!(server.get("/probe/b/kv/seen").body, "yes");
    assert_eq!(server.get("/probe/a/kv/before-call").body, "true", "written before the call: kept");
    assert_eq!(server.get("/probe/a/kv/after-call").status, 404, "written after it: rolled back");
    // Without the trap, both stay.
    assert_eq!(server.post("/probe/c/write-call?callee=b").body, "204");
    assert_eq!(server.get("/probe/c/kv/after-call").body, "204");
}

#[test]
fn writes_before_a_call_survive_a_kill_during_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(Path::new(PROBE), &data, &[]);
    let client = server.client();
    // `a` writes, then calls `sleeper`, which sleeps; the server is killed meanwhile.
    let caller = std::thread::spawn(move || {
        client.try_send("POST", "/probe/a/write-call?callee=sleeper&sleep=60000", b"")
    });
    // The callee's event starts only once the caller's writes are durable.
    wait_for_log(&server, "probe sleeps 60000 ms");
    server.kill();
    assert_eq!(caller.join().unwrap(), None, "the caller never got an answer");

    let server = Server::start(Path::new(PROBE), &data, &[]);
    assert_eq!(server.get("/probe/a/kv/before-call").body, "true");
    assert_eq!(server.get("/probe/a/kv/after-call").status, 404);
    assert_eq!(server.get("/probe/sleeper/kv/sleeps").status, 404, "the callee's event never committed");
}

#[test]
fn an_alarm_killed_during_its_call_runs_again_and_socket_handlers_call_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(Path::new(PROBE), &data, &[]);
    assert_eq!(server.send("PUT", "/probe/al/alarm/mode", b"call-sleeper-first").status, 204);
    assert_eq!(server.post("/probe/al/alarm/set?in=0").status, 200);
    // The alarm's call commits the alarm's state before it leaves; the kill comes during it.
    wait_for_log(&server, "probe sleeps 60000 ms");
    server.kill();

    let server = Server::start(Path::new(PROBE), &data, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let runs = json(&server.get("/probe/al/alarm/runs").body);
        if runs.as_array().is_some_and(|runs| !runs.is_empty()) {
            break runs;
        }
        assert!(Instant::now() < deadline, "the alarm did not run again:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(runs[0]["retry_count"], 1, "the killed run counts as a failed one: {runs}");
    assert_eq!(server.get("/probe/witness/kv/from-alarm").body, "yes", "the retry's call went through");

    let mut socket = server.websocket("/probe/room/ws");
    assert_eq!(socket.recv_text(), "welcome");
    socket.send_text("call:witness");
    assert_eq!(json(&socket.recv_text())["name"], "witness");
}

/// Waits until the server's log holds `text` `times` times.
fn wait_for_log_lines(server: &Server, text: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.log().matches(text).count() < times {
        assert!(Instant::now() < deadline, "`{text}` is not {times} times in the log:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_log(server: &Server, text: &str) {
    wait_for_log_lines(server, text, 1);
}

#[test]
fn a_thousand_callers_waiting_on_one_slow_object_do_not_stall_the_others() {
    const CALLERS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let server = probe(&dir, &[]);
    let answered = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let client = server.client();
            let answered = answered.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    // Each caller waits for its turn at `slow`, which sleeps 10 ms per call.
                    let answer = client.post(&format!("/probe/caller-{i}/to/probe/slow/sleep?ms=10"));
                    answered.fetch_add(1, Ordering::SeqCst);
                    answer
                })
                .expect("a caller thread")
        })
        .collect();
    // Every caller has made its call (each logs before it calls) ...
    wait_for_log_lines(&server, "probe calls /to/probe/slow", CALLERS);
    // ... and other objects still answer at once, while most callers still wait (the slow
    // object needs 1000 x 10 ms).
    for j in 0..20 {
        let path = format!("/probe/other-{j}/kv/k");
        assert_eq!(server.send("PUT", &path, j.to_string().as_bytes()).status, 204);
        assert_eq!(server.get(&path).body, j.to_string());
    }
    let waiting = CALLERS - answered.load(Ordering::SeqCst);
    assert!(waiting > 0, "every caller had its answer before the other objects answered");
    // Every call ran exactly once.
    let mut counts: Vec<u64> = callers
        .into_iter()
        .map(|caller| {
            let answer = caller.join().expect("caller thread");
            assert_eq!(answer.status, 200, "{answer:?}");
            answer.body.parse().expect("a count")
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=CALLERS as u64).collect::<Vec<_>>());
}
