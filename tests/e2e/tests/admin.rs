//! The admin listener: its pages, and the connection handling it shares with the data listener.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use opendo_e2e::Server;
use opendo_test_support::EXAMPLE_COUNTER;

/// Connects to `address` and sends nothing; returns whether the server closed the connection
/// (rather than the wait of 20 s running out).
fn closed_when_silent(address: SocketAddr) -> bool {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0))
}

#[test]
fn both_listeners_drop_a_client_that_sends_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        Path::new(EXAMPLE_COUNTER),
        &dir.path().join("data"),
        &["--admin-listen", "127.0.0.1:0", "--header-read-timeout", "1s"],
    );
    assert!(closed_when_silent(server.admin.unwrap()), "the admin listener kept a silent client");
    assert!(closed_when_silent(server.addr), "the data listener kept a silent client");
    assert_eq!(server.admin_send("GET", "/healthz").body, "ok\n");
}

#[test]
fn the_admin_listener_serves_its_pages_and_stops_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        Path::new(EXAMPLE_COUNTER),
        &dir.path().join("data"),
        &["--admin-listen", "127.0.0.1:0"],
    );
    assert_eq!(server.post("/counter/a/increment").body, "1");
    let metrics = server.admin_send("GET", "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("# TYPE opendo_activations counter"), "{}", metrics.body);
    assert_eq!(server.metric("opendo_activations_total"), 1);
    assert_eq!(server.metric("opendo_commits_total"), 1);
    // Per namespace: the increment read the count and wrote it back, in one event.
    assert_eq!(server.metric("opendo_rows_read_total{namespace=\"counter\"}"), 1);
    assert_eq!(server.metric("opendo_rows_written_total{namespace=\"counter\"}"), 1);
    assert_eq!(server.metric("opendo_event_seconds_count{namespace=\"counter\"}"), 1);
    assert_eq!(server.admin_send("POST", "/metrics").status, 405);
    assert_eq!(server.admin_send("GET", "/nothing").status, 404);

    // A client holding a keep-alive connection to the admin listener does not keep the server
    // from stopping.
    let admin = server.admin.unwrap();
    let mut idle = TcpStream::connect(admin).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n").unwrap();
    let mut answer = [0u8; 512];
    assert!(idle.read(&mut answer).unwrap() > 0);
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(TcpStream::connect(admin).is_err(), "the admin listener outlived the server");
}
