//! WebSocket semantics over the real binary, with the probe object recording what it sees.

use std::path::Path;
use std::time::{Duration, Instant};

use opendo_e2e::{Server, WsClient};
use opendo_test_support::PROBE;
use serde_json::Value;

fn start(dir: &Path, extra: &[&str]) -> Server {
    Server::start(Path::new(PROBE), &dir.join("data"), extra)
}

/// Connects to the probe object `object` with `query` and reads its welcome.
fn connect(server: &Server, object: &str, query: &str) -> WsClient {
    let mut client = server.websocket(&format!("/probe/{object}/ws{query}"));
    assert_eq!(client.recv_text(), "welcome");
    client
}

fn json(server: &Server, path: &str) -> Value {
    let answer = server.get(path);
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", answer.body))
}

fn ids(server: &Server, query: &str) -> Vec<u64> {
    serde_json::from_value(json(server, &format!("/probe/o/ws/list{query}"))).unwrap()
}

fn events(server: &Server) -> Vec<String> {
    serde_json::from_value(json(server, "/probe/o/ws/events")).unwrap()
}

/// Waits until the recorded events include one starting with `prefix`; returns it.
fn wait_for_event(server: &Server, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(event) = events(server).into_iter().find(|e| e.starts_with(prefix)) {
            return event;
        }
        assert!(Instant::now() < deadline, "no event {prefix}...: {:?}", events(server));
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ask(client: &mut WsClient, command: &str) -> String {
    client.send_text(command);
    client.recv_text()
}

#[test]
fn tags_attachments_and_listing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let mut red = connect(&server, "o", "?tags=red,blue");
    let mut blue = connect(&server, "o", "?tags=blue");
    let all = ids(&server, "");
    assert_eq!(all.len(), 2);
    assert_eq!(ids(&server, "?tag=red"), vec![all[0]]);
    assert_eq!(ids(&server, "?tag=blue"), all);
    assert_eq!(ids(&server, "?tag=green"), Vec::<u64>::new());
    assert_eq!(ask(&mut red, "tags"), r#"["red","blue"]"#);

    // 16 KiB attachments: the JSON string adds two quote bytes.
    assert_eq!(ask(&mut red, "attachment"), "None");
    assert_eq!(ask(&mut red, "attach:16382"), "ok");
    assert_eq!(ask(&mut red, "attach:16383"), "refused:LimitExceeded");
    assert_eq!(ask(&mut red, "attachment"), "Some(16382)");
    assert_eq!(ask(&mut blue, "attachment"), "None");

    red.send_text("broadcast:blue:hello blues");
    assert_eq!(red.recv_text(), "hello blues");
    assert_eq!(blue.recv_text(), "hello blues");
    blue.send_binary(vec![1, 2, 3]);
    assert_eq!(blue.next_message().into_data().to_vec(), vec![1, 2, 3]);
}

#[test]
fn accept_is_only_for_upgrades_and_checks_its_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--max-websockets-per-object", "2"]);
    assert_eq!(server.post("/probe/o/ws/accept").body, "refused:InvalidArgument");
    let tags = (0..11).map(|n| n.to_string()).collect::<Vec<_>>().join(",");
    let refused = |query: &str| WsClient::try_connect(server.addr, &format!("/probe/o/ws{query}")).err();
    assert_eq!(refused(&format!("?tags={tags}")).as_deref(), Some("HTTP 400"));
    assert_eq!(refused(&format!("?tags={}", "t".repeat(257))).as_deref(), Some("HTTP 400"));
    // 101 without accepting is the object's bug: 500. Accepting without 101 discards the socket.
    assert_eq!(
        WsClient::try_connect(server.addr, "/probe/o/ws/no-accept").err().as_deref(),
        Some("HTTP 500")
    );
    assert_eq!(refused("?status=200").as_deref(), Some("HTTP 200"));
    assert_eq!(ids(&server, ""), Vec::<u64>::new());

    let mut first = connect(&server, "o", "?tags=t");
    assert_eq!(ask(&mut first, "accept"), "refused:InvalidArgument");
    let _second = connect(&server, "o", "");
    assert_eq!(refused("").as_deref(), Some("HTTP 400"), "a third socket is over the limit");
    // Another object has its own limit.
    let _elsewhere = connect(&server, "other", "");
}

#[test]
fn outputs_of_a_failed_event_are_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    // A socket accepted by an event that then traps never connects.
    assert_eq!(
        WsClient::try_connect(server.addr, "/probe/o/ws?then=panic").err().as_deref(),
        Some("HTTP 500")
    );
    assert_eq!(ids(&server, ""), Vec::<u64>::new());

    let mut client = connect(&server, "o", "");
    client.send_text("send-then-panic:lost in a panic");
    assert_eq!(ask(&mut client, "echo:after the panic"), "after the panic");
    client.send_text("send-then-err:lost in an error");
    assert_eq!(ask(&mut client, "echo:after the error"), "after the error");
    // Their writes were rolled back too; the socket stayed open through both.
    let recorded = events(&server);
    assert!(recorded.iter().all(|e| !e.contains("lost in")), "{recorded:?}");
    assert!(recorded.iter().any(|e| e.ends_with(":echo:after the error")), "{recorded:?}");
    assert_eq!(ids(&server, "").len(), 1);
}

#[test]
fn close_and_error_events_reach_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--max-websocket-message-size", "1KiB"]);

    let mut polite = connect(&server, "o", "");
    assert_eq!(ask(&mut polite, "attach:10"), "ok");
    let polite_id = ids(&server, "")[0];
    polite.close(4001, "done here");
    // The attachment is still readable inside the close handler.
    let event = wait_for_event(&server, &format!("close:{polite_id}:"));
    assert_eq!(event, format!("close:{polite_id}:4001:done here:true:Some(10)"));

    let rude = connect(&server, "o", "");
    let rude_id = ids(&server, "")[0];
    rude.drop_connection();
    assert_eq!(
        wait_for_event(&server, &format!("close:{rude_id}:")),
        format!("close:{rude_id}:1006::false:None")
    );

    let mut big = connect(&server, "o", "");
    let big_id = ids(&server, "")[0];
    assert_eq!(ask(&mut big, "big:1025"), "refused:LimitExceeded", "sends are bounded too");
    big.send_binary(vec![0; 1025]);
    assert_eq!(big.expect_close().0, 1009);
    let event = wait_for_event(&server, &format!("error:{big_id}:"));
    assert!(event.contains("larger than the limit of 1024 bytes"), "{event}");
    assert_eq!(ids(&server, ""), Vec::<u64>::new());
    assert!(!events(&server).iter().any(|e| e.starts_with(&format!("close:{big_id}:"))));

    // The object closes a socket: the client gets its code; no close event follows.
    let mut closed = connect(&server, "o", "");
    let closed_id = ids(&server, "")[0];
    assert_eq!(ask(&mut closed, "close:1001:protocol codes are not ours"), "refused:InvalidArgument");
    closed.send_text("close:4000:bye");
    assert_eq!(closed.expect_close(), (4000, "bye".to_string()));
    assert_eq!(ids(&server, ""), Vec::<u64>::new());
    let mut after = connect(&server, "o", "");
    assert_eq!(ask(&mut after, "echo:still serving"), "still serving");
    assert!(!events(&server).iter().any(|e| e.starts_with(&format!("close:{closed_id}:"))));
}

#[test]
fn auto_response_is_answered_and_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let mut client = connect(&server, "o", "");
    assert_eq!(ask(&mut client, "auto-stamp"), "null");
    assert_eq!(ask(&mut client, "auto:marco:polo"), "ok");
    let before =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert_eq!(ask(&mut client, "marco"), "polo");
    let stamp: i64 = ask(&mut client, "auto-stamp").parse().unwrap();
    assert!(stamp >= before && stamp < before + 10_000, "{stamp} vs {before}");
    // The object never saw "marco".
    assert!(!events(&server).iter().any(|e| e.ends_with(":marco")));
}

#[test]
fn a_fast_client_is_slowed_down_not_dropped_and_a_slow_one_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--max-websocket-message-size", "1KiB", "--max-queued-events", "16"]);
    let mut client = connect(&server, "o", "");
    // Far more messages than the object's queue holds, sent without reading: all arrive, in order.
    for n in 0..300 {
        client.send_text(&format!("echo:{n}"));
    }
    for n in 0..300 {
        assert_eq!(client.recv_text(), n.to_string());
    }
    // What waits unsent for one socket is bounded (twice the message limit).
    client.send_text("flood:5");
    assert_eq!(wait_for_event(&server, "flood:"), "flood:2");
    for _ in 0..2 {
        assert_eq!(client.next_message().into_data().len(), 1000);
    }
    assert_eq!(ask(&mut client, "echo:still open"), "still open");
}
