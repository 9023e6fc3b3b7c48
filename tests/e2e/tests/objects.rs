//! Seeing and managing objects through the real binary: the admin API (`/v1/...` on the admin
//! listener) and `opendo objects`, against a server and offline on its data directory.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opendo_e2e::{Server, opendo_bin};
use opendo_storage::{Durability, ObjectDb};
use opendo_test_support::{EXAMPLE_CHAT_ROOM, EXAMPLE_COUNTER, PROBE};
use serde_json::{Value, json};

const TOKEN: &str = "admin-test-token";

/// A server of `module` with the admin API on, its data in `dir/data`.
fn start(module: &str, dir: &Path, extra: &[&str]) -> Server {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut args = vec!["--admin-listen", "127.0.0.1:0", "--admin-token-file", token_file.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(Path::new(module), &dir.join("data"), &args)
}

/// An admin API call with the right token; returns the status and the JSON body.
fn call(server: &Server, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let (status, bytes) = server.admin_request(method, path, Some(TOKEN), body);
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)));
    (status, value)
}

fn ok(server: &Server, method: &str, path: &str, body: &[u8]) -> Value {
    let (status, value) = call(server, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {value}");
    value
}

fn refused(server: &Server, method: &str, path: &str, body: &[u8], expected: u16) -> String {
    let (status, value) = call(server, method, path, body);
    assert_eq!(status, expected, "{method} {path}: {value}");
    value["error"].as_str().unwrap_or_else(|| panic!("no error message in {value}")).to_string()
}

const PROBE_OBJECTS: &str = "/v1/namespaces/probe/objects";

#[test]
fn the_admin_api_answers_only_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let without =
        Server::start(Path::new(PROBE), &dir.path().join("one"), &["--admin-listen", "127.0.0.1:0"]);
    let (status, body) = without.admin_request("GET", "/v1/namespaces", Some(TOKEN), b"");
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("--admin-token-file"), "says how to turn it on");
    assert_eq!(without.admin_send("GET", "/healthz").status, 200, "health needs no token");
    assert_eq!(without.admin_send("GET", "/metrics").status, 200, "nor do metrics");

    let server = start(PROBE, dir.path(), &[]);
    for token in [None, Some("admin-test-toke"), Some("admin-test-tokenn"), Some("")] {
        let (status, _) = server.admin_request("GET", "/v1/namespaces", token, b"");
        assert_eq!(status, 401, "token {token:?}");
    }
    assert_eq!(ok(&server, "GET", "/v1/namespaces", b""), json!([{"name": "probe", "objects": 0}]));
    assert!(server.log().contains("missing or wrong token"), "refused calls are logged");
    assert_eq!(server.get("/v1/namespaces").status, 404, "never on the data port");
}

#[test]
fn objects_are_listed_inspected_and_browsed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(PROBE, dir.path(), &[]);
    for name in ["alice", "alina", "bob", "a/b c"] {
        let path = format!("/probe/{}/kv/who", name.replace('/', "%2F").replace(' ', "%20"));
        assert_eq!(server.send("PUT", &path, name.as_bytes()).status, 204);
    }
    assert_eq!(server.send("PUT", "/probe/alice/kv/bytes", &[0xff, 0x00, 0x01]).status, 204);
    for n in 0..5 {
        assert_eq!(server.send("PUT", &format!("/probe/alice/kv/item:{n}"), b"x").status, 204);
    }
    let sql = json!({"query": "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('a'), ('b')"});
    assert_eq!(server.send("POST", "/probe/alice/sql", sql.to_string().as_bytes()).status, 200);
    assert_eq!(ok(&server, "GET", "/v1/namespaces", b""), json!([{"name": "probe", "objects": 4}]));

    // Listing, by id, with names; a prefix; pages.
    let all = ok(&server, "GET", PROBE_OBJECTS, b"");
    let objects = all["objects"].as_array().unwrap();
    let ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ordered by id");
    let names: HashSet<&str> = objects.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, HashSet::from(["alice", "alina", "bob", "a/b c"]));
    assert!(objects.iter().all(|o| o["active"] == json!(true) && o["size_bytes"].as_u64() > Some(0)));
    assert_eq!(all["cursor"], Value::Null);
    let ali = ok(&server, "GET", &format!("{PROBE_OBJECTS}?prefix=ali"), b"");
    let mut found: Vec<&str> =
        ali["objects"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    found.sort();
    assert_eq!(found, ["alice", "alina"]);
    let empty = ok(&server, "GET", &format!("{PROBE_OBJECTS}?prefix="), b"");
    assert_eq!(empty["objects"].as_array().unwrap().len(), 4, "an empty prefix filters nothing");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = ok(&server, "GET", &format!("{PROBE_OBJECTS}?limit=3{cursor}"), b"");
        paged.extend(
            page["objects"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()),
        );
        match page["cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, ids, "pages cover every object once");

    // Bad input.
    assert!(refused(&server, "GET", &format!("{PROBE_OBJECTS}?limit=0"), b"", 400).contains("limit"));
    assert!(refused(&server, "GET", &format!("{PROBE_OBJECTS}?limit=ten"), b"", 400).contains("query"));
    assert!(refused(&server, "GET", &format!("{PROBE_OBJECTS}?cursor=nope"), b"", 400).contains("cursor"));
    assert!(refused(&server, "GET", &format!("{PROBE_OBJECTS}?colour=red"), b"", 400).contains("colour"));
    assert!(refused(&server, "GET", "/v1/namespaces/nope/objects", b"", 404).contains("nope"));
    assert!(refused(&server, "GET", &format!("{PROBE_OBJECTS}/name/carol"), b"", 404).contains("carol"));
    refused(&server, "GET", &format!("{PROBE_OBJECTS}/id/{}", "0".repeat(64)), b"", 400);
    refused(&server, "POST", &format!("{PROBE_OBJECTS}/name/alice"), b"", 405);
    refused(&server, "GET", "/v1/elsewhere", b"", 404);
    assert_eq!(ok(&server, "GET", "/v1/namespaces", b"")[0]["objects"], json!(4), "looking created nothing");

    // One object, by name and by id.
    let alice = ok(&server, "GET", &format!("{PROBE_OBJECTS}/name/alice"), b"");
    assert_eq!(alice["name"], json!("alice"));
    assert_eq!(alice["kv_keys"], json!(7));
    assert_eq!(alice["tables"], json!([{"name": "notes", "rows": 2}]));
    assert_eq!(alice["websockets"], json!(0));
    let by_id = ok(&server, "GET", &format!("{PROBE_OBJECTS}/id/{}", alice["id"].as_str().unwrap()), b"");
    assert_eq!(by_id["name"], json!("alice"));
    let odd = ok(&server, "GET", &format!("{PROBE_OBJECTS}/name/a%2Fb%20c"), b"");
    assert_eq!(odd["name"], json!("a/b c"));

    // KV: text and base64, a prefix, pages.
    let kv = ok(&server, "GET", &format!("{PROBE_OBJECTS}/name/alice/kv?limit=2"), b"");
    assert_eq!(
        kv["entries"],
        json!([
            {"key": "bytes", "value": "/wAB", "encoding": "base64", "size_bytes": 3},
            {"key": "item:0", "value": "x", "encoding": "utf8", "size_bytes": 1},
        ])
    );
    assert_eq!(kv["cursor"], json!("item:0"));
    let rest =
        ok(&server, "GET", &format!("{PROBE_OBJECTS}/name/alice/kv?prefix=item:&start_after=item:0"), b"");
    let keys: Vec<&str> =
        rest["entries"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["item:1", "item:2", "item:3", "item:4"]);
    assert_eq!(rest["cursor"], Value::Null);
    refused(&server, "GET", &format!("{PROBE_OBJECTS}/name/alice/kv?limit=1001"), b"", 400);
}

#[test]
fn sql_through_the_admin_api_only_reads() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(PROBE, dir.path(), &["--cpu-limit", "1s"]);
    let sql = json!({"query": "CREATE TABLE t (x, y BLOB); INSERT INTO t VALUES (1, x'00ff'), (2.5, NULL)"});
    assert_eq!(server.send("POST", "/probe/a/sql", sql.to_string().as_bytes()).status, 200);
    let query = |sql: &str| json!({ "sql": sql }).to_string().into_bytes();
    let path = format!("{PROBE_OBJECTS}/name/a/sql");
    let rows = ok(&server, "POST", &path, &query("SELECT x, y FROM t ORDER BY x"));
    assert_eq!(rows["columns"], json!(["x", "y"]));
    assert_eq!(rows["rows"], json!([[1, {"base64": "AP8="}], [2.5, null]]));
    for writing in [
        "DELETE FROM t",
        "UPDATE t SET x = 3",
        "DROP TABLE t",
        "CREATE TABLE u (z)",
        "SELECT 1; DELETE FROM t",
        "PRAGMA foreign_keys = OFF",
        "SELECT * FROM _opendo_kv",
        "ATTACH 'x.db' AS x",
    ] {
        let message = refused(&server, "POST", &path, &query(writing), 400);
        assert!(message.contains("not authorized") || message.contains("reserved"), "{writing}: {message}");
    }
    assert!(refused(&server, "POST", &path, &query("SELEC 1"), 400).contains("syntax"));
    refused(&server, "POST", &path, b"{\"query\": 1}", 400);
    let endless = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n";
    assert!(refused(&server, "POST", &path, &query(endless), 400).contains("CPU time limit"));
    let after = ok(&server, "POST", &path, &query("SELECT count(*) FROM t"));
    assert_eq!(after["rows"], json!([[2]]), "nothing was written");
}

/// Increments counter `name` until `stop`; returns the values it was answered.
fn hammer(server: &Server, name: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u64>> {
    let client = server.client();
    let path = format!("/counter/{name}/increment");
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let answer = client.post(&path);
            assert_eq!(answer.status, 200, "{}", answer.body);
            seen.push(answer.body.parse().unwrap());
        }
        seen
    })
}

/// The counter value stored in an exported snapshot.
fn counter_in(snapshot: &[u8], dir: &Path) -> u64 {
    let path = dir.join(format!("export-{}.sqlite", rand_suffix()));
    std::fs::write(&path, snapshot).unwrap();
    let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    assert_eq!(db.integrity_check().unwrap(), "ok");
    let value = db.get("count").unwrap().expect("a count");
    String::from_utf8(value).unwrap().parse().unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn an_export_under_load_holds_an_acknowledged_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(EXAMPLE_COUNTER, dir.path(), &[]);
    assert_eq!(server.post("/counter/hot/increment").body, "1");
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4).map(|_| hammer(&server, "hot", stop.clone())).collect();
    let mut exported = Vec::new();
    for _ in 0..10 {
        let (status, snapshot) =
            server.admin_request("GET", "/v1/namespaces/counter/objects/name/hot/export", Some(TOKEN), b"");
        assert_eq!(status, 200);
        exported.push(counter_in(&snapshot, dir.path()));
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged: HashSet<u64> = HashSet::from([1]);
    for writer in writers {
        acknowledged.extend(writer.join().unwrap());
    }
    assert!(acknowledged.len() > 20, "the load ran: {} increments", acknowledged.len());
    for value in &exported {
        assert!(acknowledged.contains(value), "exported {value}, never acknowledged");
    }
    assert!(exported.windows(2).all(|w| w[0] <= w[1]), "exports follow the counter: {exported:?}");
}

#[test]
fn imports_copy_and_replace_objects_and_bad_ones_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(PROBE, dir.path(), &["--storage-cap", "200KiB"]);
    assert_eq!(server.send("PUT", "/probe/alice/kv/k", b"from alice").status, 204);
    assert_eq!(server.send("PUT", "/probe/bob/kv/k", b"from bob").status, 204);
    let at = server.send("POST", "/probe/alice/alarm/set?in=3600000", b"").body;
    let (status, snapshot) =
        server.admin_request("GET", &format!("{PROBE_OBJECTS}/name/alice/export"), Some(TOKEN), b"");
    assert_eq!(status, 200);
    assert!(snapshot.starts_with(b"SQLite format 3\0"));

    // A copy under another name: its data, its alarm, its own name.
    let carol = ok(&server, "PUT", &format!("{PROBE_OBJECTS}/name/carol/import"), &snapshot);
    assert_eq!(carol["name"], json!("carol"));
    assert_eq!(carol["alarm_ms"].to_string(), at);
    assert_eq!(server.get("/probe/carol/kv/k").body, "from alice");
    let listed = ok(&server, "GET", &format!("{PROBE_OBJECTS}?prefix=carol"), b"");
    assert_eq!(listed["objects"][0]["alarm_ms"].to_string(), at, "the alarm index has the copy's alarm");

    // Bad imports over bob: refused, bob unchanged.
    let bob_import = format!("{PROBE_OBJECTS}/name/bob/import");
    assert!(refused(&server, "PUT", &bob_import, b"not a database", 400).contains("not a SQLite database"));
    let torn = &snapshot[..snapshot.len() / 2];
    let message = refused(&server, "PUT", &bob_import, torn, 400);
    assert!(
        message.contains("damaged") || message.contains("integrity") || message.contains("readable"),
        "{message}"
    );
    let plain = dir.path().join("plain.sqlite");
    let conn = ObjectDb::open(&plain, Durability::Relaxed).unwrap();
    drop(conn);
    let mut foreign = std::fs::read(&plain).unwrap();
    // The runtime's tables renamed away: a SQLite file, but not an object.
    for window in 0..foreign.len().saturating_sub(8) {
        if &foreign[window..window + 8] == b"_opendo_" {
            foreign[window..window + 8].copy_from_slice(b"_other__");
        }
    }
    let message = refused(&server, "PUT", &bob_import, &foreign, 400);
    assert!(message.contains("lacks the runtime's tables") || message.contains("damaged"), "{message}");
    let big = vec![b'x'; 300 * 1024];
    assert!(refused(&server, "PUT", &bob_import, &big, 400).contains("larger than the limit"));
    assert_eq!(server.get("/probe/bob/kv/k").body, "from bob", "refused imports changed nothing");

    // A replacement: bob becomes a copy of alice, alarm and all.
    let bob = ok(&server, "PUT", &bob_import, &snapshot);
    assert_eq!((bob["name"].clone(), bob["alarm_ms"].to_string()), (json!("bob"), at));
    assert_eq!(server.get("/probe/bob/kv/k").body, "from alice");
    let audit = server.log();
    assert!(audit.contains("opendo::audit") && audit.contains("action=\"import\""), "imports are logged");
}

#[test]
fn a_delete_under_load_leaves_a_whole_object_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(EXAMPLE_COUNTER, dir.path(), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = hammer(&server, "hot", stop.clone());
    let count = || server.get("/counter/hot/").body.parse::<u64>().unwrap();
    let wait_for = |least: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while count() < least {
            assert!(std::time::Instant::now() < deadline, "the writer made no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for(5);
    let done = ok(&server, "DELETE", "/v1/namespaces/counter/objects/name/hot", b"");
    assert_eq!(done, json!({"outcome": "deleted", "changed": true}));
    wait_for(5);
    stop.store(true, Ordering::Relaxed);
    let seen = writer.join().unwrap();
    // Each answer is one more than the last, except once: the first increment after the delete,
    // which found a new, empty object.
    let restarts = seen.windows(2).filter(|w| w[1] != w[0] + 1).collect::<Vec<_>>();
    assert_eq!(restarts.len(), 1, "one restart: {restarts:?}");
    assert_eq!(restarts[0][1], 1, "the counter started over");
    assert_eq!(server.get("/counter/hot/").body, seen.last().unwrap().to_string());
    let again = ok(&server, "DELETE", "/v1/namespaces/counter/objects/name/hot", b"");
    assert_eq!(again["changed"], json!(true));
    let none = ok(&server, "DELETE", "/v1/namespaces/counter/objects/name/hot", b"");
    assert_eq!(none["changed"], json!(false), "nothing left to delete");
    assert_eq!(ok(&server, "GET", "/v1/namespaces/counter/objects", b"")["objects"], json!([]));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("data/counter"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.starts_with("_alarms"))
        .collect();
    assert_eq!(files, Vec::<String>::new(), "no file of the object is left");
}

#[test]
fn deleting_an_object_closes_its_websockets_with_1001() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(EXAMPLE_CHAT_ROOM, dir.path(), &["--namespace", "chat"]);
    let mut socket = server.websocket("/chat/lobby/ws?name=ada");
    assert!(socket.recv_text().contains("ada"), "joined");
    let lobby = ok(&server, "GET", "/v1/namespaces/chat/objects/name/lobby", b"");
    assert_eq!(lobby["websockets"], json!(1));
    ok(&server, "DELETE", "/v1/namespaces/chat/objects/name/lobby", b"");
    assert_eq!(socket.expect_close().0, 1001);
}

#[test]
fn alarms_run_now_and_objects_hibernate_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(PROBE, dir.path(), &[]);
    let object = format!("{PROBE_OBJECTS}/name/sleepy");
    assert_eq!(server.send("PUT", "/probe/sleepy/kv/k", b"v").status, 204);
    assert_eq!(ok(&server, "POST", &format!("{object}/run-alarm"), b""), json!("not-set"));
    server.send("POST", "/probe/sleepy/alarm/set?in=3600000", b"");
    assert_eq!(ok(&server, "POST", &format!("{object}/run-alarm"), b""), json!("ran"));
    let runs: Value = serde_json::from_str(&server.get("/probe/sleepy/alarm/runs").body).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "the handler ran once: {runs}");
    assert_eq!(ok(&server, "GET", &object, b"")["alarm_ms"], Value::Null);
    refused(&server, "POST", &format!("{PROBE_OBJECTS}/name/nobody/run-alarm"), b"", 404);

    let hibernations = server.metric("opendo_hibernations_total");
    assert_eq!(
        ok(&server, "POST", &format!("{object}/hibernate"), b""),
        json!({"outcome": "hibernated", "changed": true})
    );
    assert_eq!(
        ok(&server, "GET", &format!("{PROBE_OBJECTS}?prefix=sleepy"), b"")["objects"][0]["active"],
        json!(false)
    );
    assert_eq!(ok(&server, "POST", &format!("{object}/hibernate"), b"")["changed"], json!(false));
    assert_eq!(server.metric("opendo_hibernations_total"), hibernations + 1);
    assert_eq!(server.get("/probe/sleepy/kv/k").body, "v", "it wakes on the next request");
}

/// `opendo objects {args}`: exit success, stdout, stderr.
fn objects_cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output =
        Command::new(opendo_bin()).arg("objects").args(args).envs(env.iter().copied()).output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

#[test]
fn the_cli_works_against_a_server_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(EXAMPLE_COUNTER, dir.path(), &[]);
    for name in ["north", "south"] {
        assert_eq!(server.post(&format!("/counter/{name}/increment")).status, 200);
    }
    let admin = format!("http://{}", server.admin.unwrap());
    let token_file = dir.path().join("token");
    let remote = ["--admin", admin.as_str(), "--token-file", token_file.to_str().unwrap()];
    let with = |args: &[&str]| objects_cli(&[&remote[..], args].concat(), &[]);

    let (ok, table, _) = with(&["list", "counter"]);
    assert!(ok && table.contains("north") && table.contains("south") && table.starts_with("ID"), "{table}");
    let (ok, json, _) = with(&["show", "counter", "north", "--json"]);
    assert!(ok);
    let north: Value = serde_json::from_str(&json).unwrap();
    assert_eq!((north["name"].clone(), north["kv_keys"].clone()), (json!("north"), json!(1)));
    let (ok, kv, _) = with(&["kv", "counter", "north"]);
    assert!(ok && kv.contains("count") && kv.contains('1'), "{kv}");
    let export = dir.path().join("north.sqlite");
    assert!(with(&["export", "counter", "north", "-o", export.to_str().unwrap()]).0);
    let (ok, _, err) = with(&["delete", "counter", "north"]);
    assert!(!ok && err.contains("--yes"), "a delete asks for --yes: {err}");
    let (ok, _, err) = objects_cli(&["--admin", &admin, "list", "counter"], &[]);
    assert!(!ok && err.contains("token"), "{err}");
    let (ok, table, _) = objects_cli(&["--admin", &admin, "namespaces"], &[("OPENDO_ADMIN_TOKEN", TOKEN)]);
    assert!(
        ok && table.contains("counter") && table.contains('2'),
        "the token from the environment: {table}"
    );
    let (ok, _, err) = with(&["show", "counter", "west"]);
    assert!(!ok && err.contains("west") && err.contains("404"), "{err}");

    // Offline: refused while the server holds the data directory, then allowed.
    let data_dir = dir.path().join("data");
    let offline = ["--data-dir", data_dir.to_str().unwrap()];
    let (ok, _, err) = objects_cli(&[&offline[..], &["list", "counter"]].concat(), &[]);
    assert!(!ok && err.contains("in use") && err.contains("--admin"), "{err}");
    assert!(server.terminate().success());
    let (ok, _, err) =
        objects_cli(&[&offline[..], &["import", "counter", "east", export.to_str().unwrap()]].concat(), &[]);
    assert!(ok, "{err}");
    let (ok, json, err) = objects_cli(&[&offline[..], &["list", "counter", "--json"]].concat(), &[]);
    assert!(ok, "{err}");
    let page: Value = serde_json::from_str(&json).unwrap();
    let mut names: Vec<&str> =
        page["objects"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["east", "north", "south"]);
    let (ok, _, err) = objects_cli(&[&offline[..], &["hibernate", "counter", "east"]].concat(), &[]);
    assert!(!ok && err.contains("needs a running server"), "{err}");
    let (ok, rows, err) =
        objects_cli(&[&offline[..], &["sql", "counter", "east", "SELECT 40 + 2 AS answer"]].concat(), &[]);
    assert!(ok && rows.contains("answer") && rows.contains("42"), "{rows}{err}");
    assert!(objects_cli(&[&offline[..], &["delete", "counter", "south", "--yes"]].concat(), &[]).0);

    // The server sees what was done offline.
    let server = start(EXAMPLE_COUNTER, dir.path(), &[]);
    assert_eq!(server.get("/counter/east/").body, "1", "the import holds north's count");
    assert_eq!(server.get("/counter/south/").body, "0", "south was deleted");
}

#[test]
fn pages_and_name_searches_cover_many_objects_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(PROBE, dir.path(), &["--idle-timeout", "200ms"]);
    for n in 0..70 {
        assert_eq!(server.send("PUT", &format!("/probe/p{n}/kv/k"), b"v").status, 204);
    }
    // Hibernated: listing reads their names from their databases.
    std::thread::sleep(Duration::from_millis(600));
    let walk = |query: &str, limit: u32| {
        let mut names = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = ok(&server, "GET", &format!("{PROBE_OBJECTS}?limit={limit}{query}{cursor}"), b"");
            let objects = page["objects"].as_array().unwrap();
            assert!(objects.len() <= limit as usize);
            names.extend(objects.iter().map(|o| o["name"].as_str().unwrap().to_string()));
            match page["cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        names.sort();
        names
    };
    let mut all: Vec<String> = (0..70).map(|n| format!("p{n}")).collect();
    all.sort();
    assert_eq!(walk("", 25), all);
    let mut ones: Vec<String> = all.iter().filter(|name| name.starts_with("p1")).cloned().collect();
    ones.sort();
    assert_eq!(ones.len(), 11);
    assert_eq!(walk("&prefix=p1", 4), ones);
}
