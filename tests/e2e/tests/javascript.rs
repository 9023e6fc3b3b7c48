//! JavaScript and TypeScript objects over the real binary: `opendo run file.js` bundles and
//! componentizes them (Node.js and npm), and the SDK gives them Cloudflare's API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use opendo_e2e::{Server, run_expecting_refusal};
use serde_json::{Value, json};

fn guest(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/js").join(file)
}

fn json_of(answer: &opendo_e2e::Answer) -> Value {
    assert_eq!(answer.status, 200, "{answer:?}");
    serde_json::from_str(&answer.body).unwrap_or_else(|err| panic!("{err}: {}", answer.body))
}

#[test]
fn stored_values_come_back_as_they_went_in_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&guest("probe.js"), &data, &[]);
    assert_eq!(json_of(&server.post("/probe/v/put-values")), json!({"stored": 15}));
    let expected = json_of(&server.get("/probe/v/expected-values"));
    assert_eq!(expected["map"], json!({"Map": [["k", 1], [2, "v"]]}), "the probe describes what it stores");
    server.terminate();

    // A new process, so the values are read from the database, not from memory.
    let server = Server::start(&guest("probe.js"), &data, &[]);
    let found = json_of(&server.get("/probe/v/get-values"));
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&found[key], value, "the value under {key:?}");
    }
}

#[test]
fn kv_methods_follow_cloudflares_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&guest("probe.js"), &dir.path().join("data"), &[]);
    let kv = json_of(&server.post("/probe/kv/kv"));
    assert_eq!(kv["all"], json!(["a", "b", "c", "d", "d/x", "e"]));
    assert_eq!(kv["start"], json!(["b", "c", "d", "d/x", "e"]), "start is inclusive");
    assert_eq!(kv["startAfter"], json!(["c", "d", "d/x", "e"]), "startAfter is exclusive");
    assert_eq!(kv["end"], json!(["b", "c"]), "end is exclusive");
    assert_eq!(kv["prefix"], json!(["d", "d/x"]));
    assert_eq!(kv["reverse"], json!(["e", "d/x"]), "reverse with a limit takes the last keys");
    assert_eq!(kv["reverseBounded"], json!(["d/x", "d", "c", "b"]), "bounds keep their meaning in reverse");
    assert_eq!(kv["values"], json!([4, 5]), "list's map holds the values");
    assert_eq!(kv["getMissing"], "undefined");
    assert_eq!(kv["getMany"], json!({"a": 1, "c": 3}), "get of an array leaves missing keys out");
    assert_eq!(
        (&kv["deleteOne"], &kv["deleteOneAgain"], &kv["deleteMany"]),
        (&json!(true), &json!(false), &json!(2))
    );
    for what in ["tooManyGet", "tooManyDelete", "tooManyPut"] {
        assert!(kv[what].as_str().unwrap().contains("at most 128 keys"), "{what}: {}", kv[what]);
    }
    assert_eq!(kv["left"], json!(["d", "d/x", "e"]));

    let sync = json_of(&server.post("/probe/sync/kv-sync"));
    assert_eq!(sync["get"], json!({"n": 1}), "ctx.storage.kv.get");
    assert_eq!(sync["missing"], "undefined");
    assert_eq!(
        sync["list"],
        json!([["s/a", {"n": 1}], ["s/b", [2]], ["s/c", "three"]]),
        "list is an iterable of entries"
    );
    assert_eq!(sync["reverse"], json!([["s/c", "three"]]));
    assert_eq!(sync["sameKeys"], "three", "the async API sees the same keys");
    assert_eq!(sync["deleted"], json!([true, false]));
    assert!(
        sync["putUndefined"].as_str().unwrap().starts_with("threw: put: the value is undefined"),
        "{}",
        sync["putUndefined"]
    );
    assert!(sync["many"].as_str().unwrap().starts_with("threw: a key must be a string"), "{}", sync["many"]);
    assert!(
        sync["unawaited"].as_str().unwrap().starts_with("threw: put: the value is undefined"),
        "a failed put inside transactionSync undoes it: {}",
        sync["unawaited"]
    );
    assert_eq!(sync["left"], json!(["s/a", "s/c"]), "and nothing of that transaction stayed");

    let deleted = json_of(&server.post("/probe/gone/delete-all"));
    assert_eq!(
        deleted,
        json!({"before": true, "after": null, "left": []}),
        "deleteAll removes the alarm too"
    );
}

#[test]
fn a_throw_or_a_rejected_promise_rolls_the_event_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&guest("probe.js"), &dir.path().join("data"), &[]);
    for route in ["throw", "reject"] {
        let answer = server.post(&format!("/probe/r/{route}"));
        assert_eq!(answer.status, 500, "{route}: {answer:?}");
        assert_eq!(server.get("/probe/r/get?key=doomed").body, "null", "{route}: its put rolled back");
    }
    let log = server.log();
    assert!(
        log.contains("thrown on purpose") && log.contains("rejected on purpose"),
        "the errors are logged: {log}"
    );
}

#[test]
fn an_event_waits_for_block_concurrency_while_and_wait_until_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&guest("probe.js"), &data, &[]);
    assert_eq!(
        server.get("/probe/w/built").body,
        "built",
        "the constructor's blockConcurrencyWhile ran first"
    );
    assert_eq!(server.post("/probe/w/wait-until").body, "handed over");
    server.terminate();
    // Read by a new process: work left pending would otherwise run in the object's next event.
    let server = Server::start(&guest("probe.js"), &data, &[]);
    assert_eq!(
        server.get("/probe/w/get?key=waited").body,
        r#""done""#,
        "the event lasted until its waitUntil work was done"
    );
}

#[test]
fn every_kind_of_response_body_reaches_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&guest("probe.js"), &dir.path().join("data"), &[]);
    for (kind, body) in [
        ("text", "text héllo"),
        ("bytes", "bytes"),
        ("buffer", "buffer"),
        ("view", "in a view"),
        ("stream", "stream"),
        ("json", r#"{"json":true}"#),
        ("json-type", "application/json application/x+json"),
        ("json-undefined", "TypeError: Response.json: the data cannot be serialized as JSON"),
        ("mutated", "kept"),
        ("clone", "cloned"),
        ("clone-keeps", "202 1 copied"),
        (
            "clone-stream",
            "TypeError: Response.clone: only a response whose body is a string or bytes can be cloned in open-do",
        ),
        ("engine", "made by the engine"),
        (
            "clone-engine",
            "TypeError: Response.clone: a response made by the engine (a fetch() answer) cannot be cloned in open-do: read its body once and make new Responses of the bytes",
        ),
        ("none", ""),
    ] {
        let answer = server.get(&format!("/probe/b/body?kind={kind}"));
        assert_eq!((answer.status, answer.body.as_str()), (201, body), "{kind}");
    }
    // A response whose body was read cannot be answered, as on the Web.
    let answer = server.get("/probe/b/body?kind=used");
    assert_eq!(answer.status, 500, "{answer:?}");
}

#[test]
fn transactions_and_sql_cursors_behave_as_at_cloudflare() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&guest("probe.js"), &dir.path().join("data"), &[]);
    let txn = json_of(&server.post("/probe/t/transaction"));
    assert_eq!(txn["caught"], "undo", "transactionSync rethrows");
    assert_eq!(txn["kept"], "returned", "transactionSync returns the callback's value");
    assert_eq!(txn["rejected"], "async undo");
    assert_eq!(txn["rows"], json!([{"v": 2}]), "the throwing transaction's insert is undone, table and all");
    assert_eq!(txn["keys"], json!(["committed"]), "rollback() and a rejection undo the async transaction");

    let sql = json_of(&server.post("/probe/s/sql"));
    assert_eq!(sql["written"], 2);
    assert_eq!(sql["columns"], json!(["id", "name", "price"]));
    assert!(
        sql["read"].as_u64().unwrap() >= 2,
        "rowsRead counts at least the rows returned: {}",
        sql["read"]
    );
    assert_eq!(sql["first"], json!({"id": 1, "name": "pen", "price": 1.5}));
    assert_eq!(sql["rest"], json!([{"id": 2, "name": "ink", "price": 3}]), "toArray takes the rows left");
    assert_eq!(sql["raw"], json!([["pen"], ["ink"]]));
    assert_eq!(sql["iterated"], json!(["pen", "ink"]));
    assert_eq!(sql["blob"], json!([1, 2]), "a blob comes back as an ArrayBuffer");
    assert!(sql["oneOfTwo"].as_str().unwrap().contains("got 2 results"), "{}", sql["oneOfTwo"]);
    assert_eq!(sql["all"], json!([{"name": "ink"}]), "prepare().bind().all()");
    assert_eq!(sql["first2"], "ink");
    assert!(sql["error"].as_str().unwrap().starts_with("sql-error: no such column"), "{}", sql["error"]);
    assert!(sql["sandbox"].as_str().unwrap().starts_with("not-authorized"), "{}", sql["sandbox"]);
    assert_eq!(sql["size"], true);
}

#[test]
fn an_alarm_runs_the_alarm_handler_and_env_reaches_other_objects_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    let project = format!(
        "[[namespace]]\nname = \"probe\"\nmodule = {:?}\nenv = {{ GREETING = \"hello\", probe = \"hidden\" }}\n",
        guest("probe.js")
    );
    std::fs::write(dir.path().join("opendo.toml"), project).unwrap();
    let server = Server::start_project(dir.path(), &[]);
    assert_eq!(server.post("/probe/a/alarm?in=50").body, "set");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.get("/probe/a/get?key=alarm-runs").body != "1" {
        assert!(Instant::now() < deadline, "the alarm did not run: {}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        json_of(&server.get("/probe/a/get?key=alarm-info")),
        json!({"retryCount": 0, "isRetry": false})
    );

    let called = json_of(&server.post("/probe/a/call?name=other"));
    let direct = json_of(&server.get("/probe/other/whoami"));
    assert_eq!(called, direct, "env.PROBE.getByName(\"other\") reached the object called other");
    assert_eq!(called["name"], "other");

    let env = |name: &str| json_of(&server.get(&format!("/probe/a/env?name={name}")));
    assert_eq!(env("GREETING"), json!({"type": "string", "value": "hello", "has": true}), "a variable");
    assert_eq!(env("NOPE"), json!({"type": "undefined", "value": null, "has": false}));
    assert_eq!(env("probe")["type"], "object", "a namespace wins over a variable of its exact name");
    assert_eq!(env("PROBE")["type"], "object", "a namespace by its upper-case name");
}

#[test]
fn a_stub_calls_the_methods_of_the_objects_class() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&guest("probe.js"), &dir.path().join("data"), &[]);
    let rpc = json_of(&server.post("/probe/caller/rpc?name=callee"));
    assert_eq!(
        rpc["greeting"],
        json!({"hello": "ann", "at": 0, "tags": ["x", "y"]}),
        "arguments and result in the value encoding (Date, Set)"
    );
    assert_eq!(rpc["counted"], json!([1, 2]));
    assert_eq!(
        rpc["failed"],
        json!({"name": "RangeError", "message": "failed after writing rpc-doomed", "remote": true}),
        "the method's exception reaches the caller"
    );
    assert!(
        rpc["missing"]["message"].as_str().unwrap().contains("has no method nope()"),
        "{}",
        rpc["missing"]
    );
    for what in ["handler", "inherited"] {
        assert_eq!(rpc[what]["name"], "TypeError", "{what}: only the class's own methods: {}", rpc[what]);
    }
    assert_eq!(
        server.get("/probe/callee/get?key=rpc-doomed").body,
        "null",
        "the failed method's write is undone"
    );
    assert_eq!(server.get("/probe/callee/get?key=rpc-count").body, "2");

    // A client cannot call a method: the server drops the header, the object sees a plain request.
    let answer = server.raw("POST /probe/callee/ HTTP/1.1\r\nopendo-rpc: count\r\nContent-Length: 2", b"[]");
    assert_eq!(answer.map(|(status, _)| status), Some(404), "routed as a plain request");
    assert_eq!(server.get("/probe/callee/get?key=rpc-count").body, "2");
}

#[test]
fn a_workers_file_serves_as_front_and_objects_unchanged() {
    // workerd's benchmark file: a Durable Object class and the Worker in front of it.
    let worker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/workerd/worker.js");
    let dir = tempfile::tempdir().unwrap();
    let project =
        format!("[front]\nmodule = {worker:?}\n\n[[namespace]]\nname = \"bench\"\nmodule = {worker:?}\n");
    std::fs::write(dir.path().join("opendo.toml"), project).unwrap();
    let server = Server::start_project(dir.path(), &[]);
    assert_eq!(server.get("/ready").body, "ready", "the Worker answers");
    assert_eq!(server.get("/bench/a/incr").body, "1");
    assert_eq!(server.get("/bench/a/incr").body, "2", "env.BENCH reaches one object by its name");
    assert_eq!(server.get("/bench/b/incr").body, "1");
    assert_eq!(server.get("/bench/a/hello").body, "hello");
    assert_eq!(server.get("/elsewhere").status, 404, "the Worker's own 404");
    server.terminate();

    // A module without a Worker cannot be a front.
    let project = format!(
        "[front]\nmodule = {:?}\n\n[[namespace]]\nname = \"bench\"\nmodule = {worker:?}\n",
        guest("probe.js")
    );
    std::fs::write(dir.path().join("opendo.toml"), project).unwrap();
    let (status, log) = opendo_e2e::run_project_expecting_refusal(dir.path());
    assert!(!status.success());
    assert!(log.contains("a JavaScript front needs a Worker"), "{log}");
}

#[test]
fn a_fronts_request_lasts_until_the_work_it_handed_to_wait_until_is_done() {
    let module = guest("tally.js");
    let dir = tempfile::tempdir().unwrap();
    let project =
        format!("[front]\nmodule = {module:?}\n\n[[namespace]]\nname = \"tally\"\nmodule = {module:?}\n");
    std::fs::write(dir.path().join("opendo.toml"), project).unwrap();
    let server = Server::start_project(dir.path(), &[]);
    assert_eq!(server.get("/count").body, "0");
    assert_eq!(server.get("/later").body, "handed over");
    // The work ran after a timer, after the Worker had returned its response.
    assert_eq!(server.get("/count").body, "1", "the response came only once the work was done");
}

#[test]
fn a_javascript_front_class_passes_a_websocket_upgrade_on_to_the_chat_room() {
    let dir = tempfile::tempdir().unwrap();
    let room = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-examples/js/chat-room/chat-room.js");
    std::fs::write(
        dir.path().join("front.js"),
        r#"import { WorkerEntrypoint } from "cloudflare:workers";

// The class form of a Worker (the object form is tested with bench/workerd/worker.js).
export default class extends WorkerEntrypoint {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname !== "/ws") return new Response("no such page", { status: 404 });
    return this.env["chat-room"].getByName(url.searchParams.get("room")).fetch(request);
  }
}
"#,
    )
    .unwrap();
    let project =
        format!("[front]\nmodule = \"front.js\"\n\n[[namespace]]\nname = \"chat-room\"\nmodule = {room:?}\n");
    std::fs::write(dir.path().join("opendo.toml"), project).unwrap();
    let server = Server::start_project(dir.path(), &[]);
    let text =
        |socket: &mut opendo_e2e::WsClient| -> Value { serde_json::from_str(&socket.recv_text()).unwrap() };
    let mut ann = server.websocket("/ws?room=lobby&name=ann");
    assert_eq!(text(&mut ann), json!({"joined": "ann"}));
    let mut bo = server.websocket("/ws?room=lobby&name=bo");
    assert_eq!(text(&mut bo), json!({"joined": "bo"}));
    assert_eq!(text(&mut ann), json!({"joined": "bo"}));
    ann.send_text("hi through a JavaScript front");
    let said = json!({"from": "ann", "text": "hi through a JavaScript front"});
    assert_eq!(text(&mut ann), said);
    assert_eq!(text(&mut bo), said);
    assert_eq!(server.get("/elsewhere").status, 404);
}

#[test]
fn a_rust_object_reads_the_json_a_javascript_object_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&guest("probe.js"), &data, &["--namespace", "shared"]);
    assert_eq!(server.post("/shared/one/put-json").body, "ok");
    server.terminate();
    // The same namespace and object name, so the same database, now served by a Rust object.
    let server = Server::start(Path::new(opendo_test_support::PROBE), &data, &["--namespace", "shared"]);
    let read = json_of(&server.get("/shared/one/json?key=shared"));
    assert_eq!(read, json!({"a": 1, "b": [true, "x"], "c": null, "d": "é"}));
}

#[test]
fn a_typescript_object_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&guest("notes.ts"), &dir.path().join("data"), &[]);
    for text in ["first", "second"] {
        assert_eq!(server.send("POST", "/notes/mine/", text.as_bytes()).status, 204);
    }
    assert_eq!(json_of(&server.get("/notes/mine/")), json!(["second", "first"]));
}

#[test]
fn an_edited_object_is_rebuilt_and_replaces_its_compiled_code() {
    let dir = tempfile::tempdir().unwrap();
    let (source, data) = (dir.path().join("notes.ts"), dir.path().join("data"));
    let original = std::fs::read_to_string(guest("notes.ts")).unwrap();
    std::fs::write(&source, &original).unwrap();
    let server = Server::start(&source, &data, &[]);
    assert_eq!(server.send("POST", "/notes/mine/", b"first").status, 204);
    assert_eq!(json_of(&server.get("/notes/mine/")), json!(["first"]));
    server.terminate();

    let edited = original.replace("(note: Note) => note.text)", "(note: Note) => note.text.toUpperCase())");
    assert_ne!(edited, original, "the edit applies");
    std::fs::write(&source, edited).unwrap();
    let server = Server::start(&source, &data, &[]);
    assert_eq!(
        json_of(&server.get("/notes/mine/")),
        json!(["FIRST"]),
        "the new version runs, on the old data"
    );
    let compiled: Vec<_> = std::fs::read_dir(data.join(".cache/components"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".cwasm"))
        .collect();
    assert_eq!(compiled.len(), 1, "the old version's compiled code is gone: {compiled:?}");
}

#[test]
fn bad_javascript_and_a_missing_node_are_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.js");
    std::fs::write(&broken, "export const broken = ;\n").unwrap();
    let (status, log) = run_expecting_refusal(&broken, &dir.path().join("data"), &[]);
    assert!(!status.success());
    assert!(log.contains("broken.js:1") && log.contains("bundling"), "esbuild's error names the line: {log}");

    // A PATH without node or npm.
    let empty = dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let mut command = std::process::Command::new(opendo_e2e::opendo_bin());
    let output = command
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .arg(guest("probe.js"))
        .env("PATH", &empty)
        .env("OPENDO_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs Node.js") && stderr.contains("npm"), "{stderr}");
}
