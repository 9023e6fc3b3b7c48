//! A project with a front (`[front]` in `opendo.toml`): every request goes to the front, which
//! authenticates it and reaches the probe objects through stubs with its own URL layout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opendo_e2e::{Server, run_project_expecting_refusal};
use opendo_test_support::{EXAMPLE_CHAT_ROOM, FRONT, PROBE};

/// A project folder with the probe as namespace `probe`, the test front, and `front_table`
/// at the top of its `opendo.toml`.
fn project(front_table: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(PROBE, dir.path().join("probe.wasm")).unwrap();
    std::fs::copy(FRONT, dir.path().join("front.wasm")).unwrap();
    let toml = format!("{front_table}\n\n[[namespace]]\nname = \"probe\"\nmodule = \"probe.wasm\"\n");
    std::fs::write(dir.path().join("opendo.toml"), toml).unwrap();
    dir
}

/// `method path` with the front's token (and a body), as (status, body).
fn authorized(server: &Server, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nAuthorization: Bearer let-me-in\r\nContent-Length: {}",
        body.len()
    );
    server.raw(&head, body).expect("an answer")
}

#[test]
fn the_front_authenticates_and_routes_every_request_through_stubs() {
    let dir = project("[front]\nmodule = \"front.wasm\"");
    let server = Server::start_project(dir.path(), &["--admin-listen", "127.0.0.1:0"]);
    assert_eq!(server.get("/public").body, "hello");
    let refused = server.get("/notes/alice");
    assert_eq!((refused.status, refused.body.as_str()), (401, "who are you?"));
    // The objects' own URLs go to the front too, which does not know them.
    assert_eq!(authorized(&server, "GET", "/probe/alice/kv/note", b"").0, 404);

    assert_eq!(authorized(&server, "PUT", "/notes/alice", b"hi").0, 204);
    assert_eq!(authorized(&server, "GET", "/notes/alice", b""), (200, "hi".to_string()));
    assert_eq!(authorized(&server, "GET", "/notes/bob", b"").0, 404, "the probe's 404 passes through");
    assert_eq!(authorized(&server, "GET", "/echo?x=1&y", b"").1, "/echo?x=1&y", "the whole path and query");

    let (_, whoami) = authorized(&server, "GET", "/to/alice/whoami", b"");
    let whoami: serde_json::Value = serde_json::from_str(&whoami).unwrap();
    let id = whoami["id"].as_str().unwrap();
    let (status, by_id) = authorized(&server, "GET", &format!("/by-id/{id}/whoami"), b"");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&by_id).unwrap()["name"], "alice");
    assert_eq!(authorized(&server, "GET", "/by-id/not-an-id/whoami", b"").0, 400);

    // A trap answers 500 and the next request gets a fresh instance.
    let (status, body) = authorized(&server, "GET", "/panic", b"");
    assert_eq!(status, 500);
    assert!(body.contains("panic"), "{body}");
    assert_eq!(authorized(&server, "GET", "/notes/alice", b""), (200, "hi".to_string()));
    assert!(server.log().contains("front loaded in"), "{}", server.log());
    assert_eq!(server.metric("opendo_front_requests_total"), 12, "every request above");
    assert_eq!(server.metric("opendo_calls_total{namespace=\"_front\"}"), 6, "the routes that call");
}

#[test]
fn a_websocket_through_the_front_reaches_the_object_that_accepted_it() {
    let dir = project("[front]\nmodule = \"front.wasm\"");
    let server =
        Server::start_project(dir.path(), &["--idle-timeout", "1s", "--admin-listen", "127.0.0.1:0"]);
    let mut socket = server.websocket("/socket/room?token=let-me-in");
    assert_eq!(socket.recv_text(), "welcome", "the probe accepted it");
    socket.send_text("echo:through the front");
    assert_eq!(socket.recv_text(), "through the front");
    // The object hibernates with the socket open; a message wakes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.metric("opendo_hibernations_total") == 0 {
        assert!(Instant::now() < deadline, "the object never hibernated");
        std::thread::sleep(Duration::from_millis(100));
    }
    socket.send_text("echo:after a nap");
    assert_eq!(socket.recv_text(), "after a nap");
    // An upgrade the front refuses is an ordinary answer.
    let refused = opendo_e2e::WsClient::try_connect(server.addr, "/socket/room");
    assert!(refused.is_err_and(|err| err.contains("401")), "the front's 401 refuses the upgrade");
}

#[test]
fn the_chat_room_works_behind_the_front() {
    let dir = project("[front]\nmodule = \"front.wasm\"");
    std::fs::copy(EXAMPLE_CHAT_ROOM, dir.path().join("chat.wasm")).unwrap();
    let toml = std::fs::read_to_string(dir.path().join("opendo.toml")).unwrap();
    let toml = format!("{toml}\n[[namespace]]\nname = \"chat-room\"\nmodule = \"chat.wasm\"\n");
    std::fs::write(dir.path().join("opendo.toml"), toml).unwrap();
    let server = Server::start_project(dir.path(), &[]);
    let json = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap();
    let mut ann = server.websocket("/chat/lobby?token=let-me-in&name=ann");
    assert_eq!(json(ann.recv_text()), serde_json::json!({"joined": "ann"}));
    let mut bo = server.websocket("/chat/lobby?token=let-me-in&name=bo");
    assert_eq!(json(bo.recv_text()), serde_json::json!({"joined": "bo"}));
    assert_eq!(json(ann.recv_text()), serde_json::json!({"joined": "bo"}));
    ann.send_text("hi through the front");
    let said = serde_json::json!({"from": "ann", "text": "hi through the front"});
    assert_eq!(json(ann.recv_text()), said);
    assert_eq!(json(bo.recv_text()), said);
}

#[test]
fn requests_through_the_front_run_at_once_and_a_callee_trap_is_an_error_it_sees() {
    let dir = project("[front]\nmodule = \"front.wasm\"");
    let server = Server::start_project(dir.path(), &[]);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let waiting = scope.spawn(|| {
            let answer = authorized(&server, "POST", "/to/sleeper/sleep?ms=3000", b"");
            done.store(true, Ordering::SeqCst);
            answer
        });
        // While one request waits in the front on a slow object, another goes through.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.log().contains("probe sleeps 3000 ms") {
            assert!(Instant::now() < deadline, "the slow call never started:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(authorized(&server, "PUT", "/notes/alice", b"meanwhile").0, 204);
        assert!(!done.load(Ordering::SeqCst), "the second request waited for the first");
        assert_eq!(waiting.join().unwrap(), (200, "1".to_string()));
    });
    let (status, body) = authorized(&server, "POST", "/to/b/write-then-panic/doomed", b"");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("call error CalleeFailed"), "{body}");
}

#[test]
fn a_front_table_with_a_mistake_stops_the_start_with_one_line() {
    for (table, expected) in [
        ("[front]\nmodule = \"missing.wasm\"", "[front]: `module`"),
        ("[front]\nmodule = \"front.wasm\"\nstorage-cap = \"1MiB\"", "unknown field `storage-cap`"),
        ("[front]\nmodule = \"probe.wasm\"", "does not fit the `front` world"),
        ("front = \"front.wasm\"", "write it as a `[front]` table"),
        ("[front]\nmodule = \"front.wasm\"\nenv = { \"A=B\" = \"x\" }", "cannot be an environment variable"),
        ("[front]\nmodule = \"front.wasm\"\noutbound = [\"a b\"]", "`outbound`: `a b` is not a host"),
    ] {
        let dir = project(table);
        let (status, stderr) = run_project_expecting_refusal(dir.path());
        assert!(!status.success(), "{table}: started");
        assert!(stderr.contains(expected), "{table}: {stderr}");
        assert!(stderr.contains("opendo.toml"), "{table}: the message names the file: {stderr}");
    }
}
