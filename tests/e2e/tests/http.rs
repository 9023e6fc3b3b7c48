//! Runtime errors as HTTP, over the real binary.

use std::path::Path;

use opendo_e2e::Server;
use opendo_test_support::{EXAMPLE_COUNTER, PROBE};

#[test]
fn routing_errors_have_their_status_and_a_plain_message() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(Path::new(EXAMPLE_COUNTER), &dir.path().join("data"), &["--max-body-size", "1KiB"]);

    let unknown = server.get("/nope/alice");
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("unknown namespace `nope`"), "{unknown:?}");
    assert_eq!(server.get("/").status, 404);
    assert_eq!(server.get("/counter").status, 400);

    let long_name = "n".repeat(257);
    assert_eq!(server.get(&format!("/counter/{long_name}")).status, 400);
    assert_eq!(server.get(&format!("/counter/{}", "n".repeat(256))).status, 200);
    for bad in ["%zz", "abc%4", "%FF%FE", "a%00b", "%2E%2E", "%2E", "tab%09"] {
        let (status, body) = server.raw(&format!("GET /counter/{bad}/x HTTP/1.1"), b"").expect("an answer");
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // An encoded slash is part of the name, not a path separator.
    assert_eq!(server.post("/counter/a%2Fb/increment").body, "1");
    assert_eq!(server.get("/counter/a%2Fb").body, "1");
    assert_eq!(server.get("/counter/a").body, "0");

    let big = vec![b'x'; 2048];
    let too_large = server.send("POST", "/counter/alice/increment", &big);
    assert_eq!(too_large.status, 413);
    assert!(too_large.body.contains("1024 bytes"), "{too_large:?}");
    assert_eq!(server.get("/counter/alice").body, "0", "the refused request reached no object");
}

#[test]
fn a_trapped_event_is_a_500_naming_the_cause_and_leaves_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(PROBE), &dir.path().join("data"), &[]);
    let trapped = server.post("/probe/p/write-then-panic/doomed");
    assert_eq!(trapped.status, 500);
    assert!(trapped.body.contains("panic"), "{trapped:?}");
    assert_eq!(server.get("/probe/p/kv/doomed").status, 404);
    assert_eq!(server.send("PUT", "/probe/p/kv/after", b"ok").status, 204);
    assert_eq!(server.get("/probe/p/kv/after").body, "ok");
    assert!(server.log().contains("cause=panic"), "the log names the cause:\n{}", server.log());
}

#[test]
fn guest_output_reaches_the_log_tagged_with_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(PROBE), &dir.path().join("data"), &[]);
    assert_eq!(server.post("/probe/talker/print").body, "printed");
    let id = serde_like_id(&server.get("/probe/talker/whoami").body);
    let log = server.log();
    let line =
        log.lines().find(|l| l.contains("probe says hello on stdout")).expect("stdout line in the log");
    assert!(line.contains(&id), "tagged with the object id: {line}");
    assert!(log.contains("probe says hello on stderr"));
}

fn serde_like_id(whoami: &str) -> String {
    let start = whoami.find("\"id\":\"").expect("id field") + 6;
    whoami[start..start + 64].to_string()
}

#[test]
fn the_admin_listener_serves_health_and_metrics_apart_from_the_data_port() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        Path::new(EXAMPLE_COUNTER),
        &dir.path().join("data"),
        &["--admin-listen", "127.0.0.1:0"],
    );
    assert_ne!(server.admin, Some(server.addr));
    assert_eq!(server.admin_send("GET", "/healthz").body, "ok\n");
    assert_eq!(server.metric("opendo_activations_total"), 0);
    assert_eq!(server.post("/counter/alice/increment").body, "1");
    assert_eq!(server.metric("opendo_activations_total"), 1);
    assert_eq!(server.metric("opendo_active_objects"), 1);
    assert!(server.metric("opendo_commits_total") >= 1);
    assert_eq!(server.metric("opendo_batch_seconds_count"), 1);
    // Neither path exists on the data port, and the admin listener only reads.
    for path in ["/metrics", "/healthz"] {
        let data_port = server.get(path);
        assert!(data_port.status == 400 && !data_port.body.contains("opendo_"), "{path}: {data_port:?}");
    }
    assert_eq!(server.admin_send("POST", "/metrics").status, 405);
    assert_eq!(server.admin_send("GET", "/objects").status, 404);
}

#[test]
fn an_object_is_reached_by_id_at_a_path_no_name_can_take() {
    use opendo_storage::ObjectId;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(PROBE), &dir.path().join("data"), &["--idle-timeout", "300ms"]);
    assert_eq!(server.send("PUT", "/probe/alice/kv/k", b"by name").status, 204);
    let alice = ObjectId::from_name("probe", "alice").to_hex();
    assert_eq!(server.get(&format!("/_id/probe/{alice}/kv/k")).body, "by name", "the same object");
    // Hibernated, then woken by id: it still knows the name it was created under.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let who: serde_json::Value =
        serde_json::from_str(&server.get(&format!("/_id/probe/{alice}/whoami")).body).unwrap();
    assert_eq!(who["name"], serde_json::json!("alice"));

    // An object made by id has no name.
    let fresh = ObjectId::unique("probe").to_hex();
    assert_eq!(server.send("PUT", &format!("/_id/probe/{fresh}/kv/k"), b"by id").status, 204);
    assert_eq!(server.get(&format!("/_id/probe/{fresh}/kv/k")).body, "by id");
    let who: serde_json::Value =
        serde_json::from_str(&server.get(&format!("/_id/probe/{fresh}/whoami")).body).unwrap();
    assert_eq!(who["name"], serde_json::Value::Null);
    // `_id` as an object name is a name like any other.
    assert_eq!(server.send("PUT", "/probe/_id/kv/k", b"named _id").status, 204);
    assert_eq!(server.get("/probe/_id/kv/k").body, "named _id");

    let typo = mistyped(&fresh);
    let elsewhere = ObjectId::from_name("other", "alice").to_hex();
    for bad in [typo.as_str(), elsewhere.as_str(), "alice", &fresh.to_uppercase()] {
        let answer = server.get(&format!("/_id/probe/{bad}/kv/k"));
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert!(answer.body.contains("is not an object id of namespace `probe`"), "{answer:?}");
    }
    assert_eq!(server.get(&format!("/_id/nope/{alice}/kv/k")).status, 404);
    let no_id = server.get("/_id/probe");
    assert_eq!(no_id.status, 404);
    assert!(no_id.body.contains("/_id/{namespace}/{id}/"), "{no_id:?}");
}

#[test]
fn objects_make_ids_that_reach_objects() {
    use opendo_storage::ObjectId;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(PROBE), &dir.path().join("data"), &[]);
    let made = |query: &str| {
        let answer = server.get(&format!("/probe/maker/ids/{query}"));
        (answer.status, answer.body)
    };
    let (status, body) = made("name?ns=probe&name=alice");
    assert_eq!(status, 200, "{body}");
    let alice = ObjectId::from_name("probe", "alice").to_hex();
    assert_eq!(body, format!("{alice} /_id/probe/{alice}"), "the runtime's id of the name");

    // A unique id is new each time, checks, and reaches an object of its own.
    let (_, first) = made("unique?ns=probe");
    let (_, second) = made("unique?ns=probe");
    let (id, path) = first.split_once(' ').unwrap();
    assert_ne!(first, second);
    assert!(ObjectId::parse("probe", id).is_ok(), "{id}");
    assert_eq!(made(&format!("check?ns=probe&id={id}")), (200, first.clone()));
    assert_eq!(server.send("PUT", &format!("{path}/kv/k"), b"mine").status, 204);
    assert_eq!(server.get(&format!("{path}/kv/k")).body, "mine");

    // Refused: an id of another namespace, a typo, a malformed id, a namespace not served, a
    // name that is no object name.
    let typo = mistyped(id);
    let elsewhere = ObjectId::from_name("counter", "alice").to_hex();
    for query in [
        format!("check?ns=probe&id={elsewhere}"),
        format!("check?ns=probe&id={typo}"),
        "check?ns=probe&id=xyz".to_string(),
        "unique?ns=counter".to_string(),
        "name?ns=counter&name=alice".to_string(),
        "name?ns=probe&name=".to_string(),
    ] {
        let (status, body) = made(&query);
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.starts_with("InvalidArgument: "), "{query}: {body}");
    }
    assert!(made("unique?ns=counter").1.contains("runs no namespace `counter`"));
}

/// `id` with its last character changed (a typo the check bytes must catch).
fn mistyped(id: &str) -> String {
    let last = if id.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &id[..id.len() - 1])
}
