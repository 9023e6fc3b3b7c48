//! The chat-room example over the real binary, with real WebSocket clients.

use std::path::Path;
use std::time::{Duration, Instant};

use opendo_e2e::{Server, WsClient};
use serde_json::{Value, json};

/// Each test runs against the Rust chat room and the JavaScript one: the same contract.
macro_rules! for_both_rooms {
    ($($name:ident),* $(,)?) => {
        mod rust {
            $(#[test]
            fn $name() {
                super::$name(std::path::Path::new(opendo_test_support::EXAMPLE_CHAT_ROOM));
            })*
        }
        mod javascript {
            $(#[test]
            fn $name() {
                let room = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../guest-examples/js/chat-room/chat-room.js");
                super::$name(&room);
            })*
        }
    };
}

for_both_rooms!(
    two_clients_talk_and_the_room_hibernates_between_messages,
    auto_response_and_protocol_pings_never_wake_the_room,
    newcomers_get_the_last_100_messages_oldest_first_even_after_a_restart,
    an_oversize_message_closes_only_its_socket_with_1009,
    bad_upgrades_are_refused_with_http_errors,
);

fn start(module: &Path, dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--namespace", "chat-room", "--admin-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Server::start(module, &dir.join("data"), &args)
}

fn recv(client: &mut WsClient) -> Value {
    let text = client.recv_text();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn chat(from: &str, text: &str) -> Value {
    json!({"from": from, "text": text})
}

/// Joins `room` as `name` and reads what a newcomer receives: the history, then its own join.
fn join(server: &Server, room: &str, name: &str) -> (WsClient, Vec<Value>) {
    let mut client = server.websocket(&format!("/chat-room/{room}/ws?name={name}"));
    let mut history = Vec::new();
    loop {
        let message = recv(&mut client);
        if message == json!({"joined": name}) {
            return (client, history);
        }
        history.push(message);
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn two_clients_talk_and_the_room_hibernates_between_messages(module: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(module, dir.path(), &["--idle-timeout", "300ms"]);
    let (mut alice, history) = join(&server, "lobby", "alice");
    assert!(history.is_empty());
    let (mut bob, history) = join(&server, "lobby", "bob");
    assert!(history.is_empty());
    assert_eq!(recv(&mut alice), json!({"joined": "bob"}));

    alice.send_text("hello bob");
    assert_eq!(recv(&mut alice), chat("alice", "hello bob"));
    assert_eq!(recv(&mut bob), chat("alice", "hello bob"));

    // Both stay connected while the room hibernates (instance and database dropped).
    wait_until("the room hibernated", || {
        server.metric("opendo_hibernations_total") >= 1 && server.metric("opendo_active_objects") == 0
    });
    assert_eq!(server.metric("opendo_websockets"), 2);
    let activations = server.metric("opendo_activations_total");

    // The next message wakes it: the sender's name comes from its socket's attachment.
    bob.send_text("still here");
    assert_eq!(recv(&mut alice), chat("bob", "still here"));
    assert_eq!(recv(&mut bob), chat("bob", "still here"));
    assert_eq!(server.metric("opendo_activations_total"), activations + 1);
    // Listing by tag after the wake finds both sockets with their attachments.
    assert_eq!(server.get("/chat-room/lobby/members").body, r#"["alice","bob"]"#);

    // A clean close reaches the room, which tells the others.
    bob.close(1000, "bye");
    assert_eq!(recv(&mut alice), json!({"left": "bob"}));
    assert_eq!(server.get("/chat-room/lobby/members").body, r#"["alice"]"#);

    // So does a dropped connection (no close frame).
    let (carol, _) = join(&server, "lobby", "carol");
    assert_eq!(recv(&mut alice), json!({"joined": "carol"}));
    carol.drop_connection();
    assert_eq!(recv(&mut alice), json!({"left": "carol"}));

    // Rooms are separate objects.
    let (mut dave, history) = join(&server, "elsewhere", "dave");
    assert!(history.is_empty());
    dave.send_text("anyone?");
    assert_eq!(recv(&mut dave), chat("dave", "anyone?"));
    alice.send_text("only lobby hears this");
    assert_eq!(recv(&mut alice), chat("alice", "only lobby hears this"));
}

fn auto_response_and_protocol_pings_never_wake_the_room(module: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(module, dir.path(), &["--idle-timeout", "200ms"]);
    let (mut alice, _) = join(&server, "lobby", "alice");
    wait_until("the room hibernated", || server.metric("opendo_active_objects") == 0);
    let activations = server.metric("opendo_activations_total");

    for _ in 0..5 {
        alice.send_text("ping");
        assert_eq!(alice.recv_text(), "pong");
        alice.ping();
    }
    assert_eq!(server.metric("opendo_websocket_auto_responses_total"), 5);
    assert_eq!(server.metric("opendo_activations_total"), activations, "a ping woke the room");
    assert_eq!(server.metric("opendo_active_objects"), 0);

    // Anything else does wake it, and "ping" was never stored as a chat message.
    alice.send_text("ping!");
    assert_eq!(recv(&mut alice), chat("alice", "ping!"));
    assert_eq!(server.metric("opendo_activations_total"), activations + 1);
    let (_bob, history) = join(&server, "lobby", "bob");
    assert_eq!(history, vec![chat("alice", "ping!")]);
}

fn newcomers_get_the_last_100_messages_oldest_first_even_after_a_restart(module: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(module, dir.path(), &[]);
    let (mut alice, _) = join(&server, "lobby", "alice");
    for n in 0..105 {
        alice.send_text(&format!("message {n}"));
        assert_eq!(recv(&mut alice), chat("alice", &format!("message {n}")));
    }
    assert_eq!(server.terminate().code(), Some(0));
    let (code, _) = alice.expect_close();
    assert_eq!(code, 1001, "clients are told the server is going away");

    let server = start(module, dir.path(), &[]);
    let (_bob, history) = join(&server, "lobby", "bob");
    let expected: Vec<Value> = (5..105).map(|n| chat("alice", &format!("message {n}"))).collect();
    assert_eq!(history, expected);
}

fn an_oversize_message_closes_only_its_socket_with_1009(module: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(module, dir.path(), &["--max-websocket-message-size", "64KiB"]);
    let (mut alice, _) = join(&server, "lobby", "alice");
    let (mut mallory, _) = join(&server, "lobby", "mallory");
    assert_eq!(recv(&mut alice), json!({"joined": "mallory"}));

    mallory.send_binary(vec![0; 65 * 1024]);
    let (code, _) = mallory.expect_close();
    assert_eq!(code, 1009);
    // The room learned of it (websocket-error) and told the others.
    assert_eq!(recv(&mut alice), json!({"left": "mallory"}));
    alice.send_text("still serving");
    assert_eq!(recv(&mut alice), chat("alice", "still serving"));
    assert_eq!(server.metric("opendo_traps_total"), 0);
}

fn bad_upgrades_are_refused_with_http_errors(module: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(module, dir.path(), &[]);
    // Not an upgrade: the room answers 426.
    assert_eq!(server.get("/chat-room/lobby/ws?name=alice").status, 426);
    // The room refuses a missing name before accepting.
    let refused = WsClient::try_connect(server.addr, "/chat-room/lobby/ws").err();
    assert_eq!(refused.as_deref(), Some("HTTP 400"));
    // A malformed handshake never reaches the object.
    let (status, body) = server
        .raw("GET /chat-room/lobby/ws?name=x HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade", b"")
        .expect("an answer");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Sec-WebSocket-Version"), "{body}");
    // The page is served for browsers.
    let page = server.get("/chat-room/lobby/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("new WebSocket("));
}
