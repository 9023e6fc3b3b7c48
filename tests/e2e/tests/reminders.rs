//! The reminders example over the real binary: alarms across hibernation and `kill -9`.

use std::path::Path;
use std::time::{Duration, Instant};

use opendo_e2e::Server;
use opendo_test_support::EXAMPLE_REMINDERS;

fn wait_for(server: &Server, path: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = server.get(path).body;
        if body == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{path} never became {expected}; last: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reminders_fire_in_order_while_the_object_hibernates() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(Path::new(EXAMPLE_REMINDERS), &dir.path().join("data"), &["--idle-timeout", "200ms"]);
    assert_eq!(server.send("POST", "/reminders/me/remind?in_ms=900", b"second").status, 200);
    assert_eq!(server.send("POST", "/reminders/me/remind?in_ms=300", b"first").status, 200);
    assert_eq!(server.send("POST", "/reminders/me/remind?in_ms=60000", b"much later").status, 200);
    assert_eq!(server.send("POST", "/reminders/me/remind", b"no time").status, 400);
    assert_eq!(server.get("/reminders/me/pending").body, r#"["first","second","much later"]"#);
    wait_for(&server, "/reminders/me/fired", r#"["first","second"]"#);
    assert_eq!(server.get("/reminders/me/pending").body, r#"["much later"]"#);
}

#[test]
fn an_alarm_due_while_the_server_was_killed_fires_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(Path::new(EXAMPLE_REMINDERS), &data, &[]);
    let due: i64 = server.send("POST", "/reminders/me/remind?in_ms=2000", b"wake up").body.parse().unwrap();
    server.kill();
    let now =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    while now() < due + 300 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let server = Server::start(Path::new(EXAMPLE_REMINDERS), &data, &[]);
    wait_for(&server, "/reminders/me/fired", r#"["wake up"]"#);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.get("/reminders/me/fired").body, r#"["wake up"]"#, "fired once");
    assert_eq!(server.get("/reminders/me/pending").body, "[]");
}
