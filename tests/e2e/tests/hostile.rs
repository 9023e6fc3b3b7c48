//! Hostile clients and a hostile guest against the real binary: clear 4xx or a closed connection,
//! and the server keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use opendo_e2e::Server;
use opendo_test_support::{EXAMPLE_COUNTER, HOSTILE};

fn healthy(server: &Server) {
    assert_eq!(server.post("/counter/healthy/increment").status, 200, "the server still serves others");
}

#[test]
fn oversized_and_malformed_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(EXAMPLE_COUNTER), &dir.path().join("data"), &[]);
    let huge_header = format!("GET /counter/a HTTP/1.1\r\nX-Big: {}", "v".repeat(512 * 1024));
    // Closing the connection (no answer) is acceptable too.
    let answer = server.raw(&huge_header, b"");
    assert!(
        answer.as_ref().is_none_or(|(status, _)| (400..500).contains(status)),
        "over-long header: {answer:?}"
    );
    let many_headers: String = (0..300).map(|i| format!("\r\nX-H{i}: v")).collect();
    let answer = server.raw(&format!("GET /counter/a HTTP/1.1{many_headers}"), b"");
    assert!(
        answer.as_ref().is_none_or(|(status, _)| (400..500).contains(status)),
        "too many headers: {answer:?}"
    );
    for bad in [
        "/counter/../x",
        "/counter/./x",
        "/counter/%00",
        "/counter/a%ZZ",
        &format!("/counter/{}", "n".repeat(300)),
    ] {
        let (status, body) = server.raw(&format!("GET {bad} HTTP/1.1"), b"").expect("an answer");
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert!(
        server.raw("GARBAGE\u{1}\u{2} HTTP/9", b"").is_none_or(|(status, _)| (400..500).contains(&status))
    );
    healthy(&server);
}

#[test]
fn slow_and_idle_clients_are_cut_off_without_stalling_others() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::start(Path::new(EXAMPLE_COUNTER), &dir.path().join("data"), &["--header-read-timeout", "1s"]);
    // Many connections that never send anything, and one that sends its headers a byte at a time.
    let idle: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    for byte in b"GET /counter/slow HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle().take(200) {
        healthy(&server);
        if slow.write_all(&[*byte]).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    if !cut_off {
        // The server may have answered 408 or closed; either way the connection is over.
        let mut rest = Vec::new();
        let ended = slow.read_to_end(&mut rest).is_ok();
        cut_off = ended;
    }
    assert!(cut_off, "a client dribbling its headers is cut off after the header timeout");
    assert!(started.elapsed() < Duration::from_secs(8));
    let mut closed = 0;
    for mut connection in idle {
        connection.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 64];
        if connection.read(&mut buf).is_ok() {
            closed += 1;
        }
    }
    assert_eq!(closed, 300, "idle connections are closed after the header timeout");
    healthy(&server);
}

#[test]
fn a_stdout_flood_is_rate_limited_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Path::new(HOSTILE), &dir.path().join("data"), &["--guest-log-rate", "10"]);
    assert_eq!(server.post("/hostile/chatty/flood?lines=5000").body, "flooded");
    let log = server.log();
    let logged = log.lines().filter(|line| line.contains("flood line")).count();
    assert!((1..=20).contains(&logged), "{logged} flood lines reached the log");
    assert!(log.contains("over its rate limit"), "the drop is reported once");
}
