//! Outbound HTTP from objects (`Fetch`, `wasi:http/outgoing-handler`), over the real binary,
//! against a small HTTP server on 127.0.0.1 run by the test.

use std::io::Write;
use std::net::{TcpListener, TcpStream};

use opendo_e2e::Server;
use opendo_test_support::PROBE;

/// A server on 127.0.0.1 answering `GET /ok` with `hello from outside`, `/big` with 2 MiB,
/// `/redirect?to=URL` with a 302 to URL, `/hang` never, anything else 404. Returns its port.
fn outside() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(mut stream: TcpStream) {
    let Some((line, _)) = opendo_e2e::read_request(&stream) else { return };
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, extra, body) = match target.split_once('?').map_or((target.as_str(), ""), |(p, q)| (p, q)) {
        ("/ok", _) => ("200 OK", String::new(), b"hello from outside".to_vec()),
        ("/big", _) => ("200 OK", String::new(), vec![b'x'; 2 << 20]),
        ("/hang", _) => {
            std::thread::sleep(std::time::Duration::from_secs(60));
            return;
        }
        ("/redirect", query) => {
            ("302 Found", format!("location: {}\r\n", query.strip_prefix("to=").unwrap_or("")), Vec::new())
        }
        _ => ("404 Not Found", String::new(), Vec::new()),
    };
    let head =
        format!("HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// A port nothing listens on (bound, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The probe as `open` (allowed to reach `allow`) and `closed` (no `outbound`), with `extra`
/// flags.
fn project(allow: &[String], extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(PROBE, dir.path().join("probe.wasm")).unwrap();
    let list: Vec<String> = allow.iter().map(|entry| format!("{entry:?}")).collect();
    let toml = format!(
        "[[namespace]]\nname = \"open\"\nmodule = \"probe.wasm\"\nmax-response-size = \"1MiB\"\noutbound = [{}]\n\n\
         [[namespace]]\nname = \"closed\"\nmodule = \"probe.wasm\"\n",
        list.join(", ")
    );
    std::fs::write(dir.path().join("opendo.toml"), toml).unwrap();
    let server = Server::start_project(dir.path(), extra);
    (dir, server)
}

fn fetch(server: &Server, object: &str, url: &str) -> (u16, String) {
    let answer = server.send("POST", &format!("/{object}/fetch"), url.as_bytes());
    (answer.status, answer.body)
}

/// `object` gets the allowed server's answers, its 404 included.
fn reaches_the_allowed_host(server: &Server, object: &str, port: u16) {
    assert_eq!(
        fetch(server, object, &format!("http://127.0.0.1:{port}/ok")),
        (200, "200 hello from outside".into())
    );
    assert_eq!(fetch(server, object, &format!("http://127.0.0.1:{port}/nope")).1, "404 ");
}

#[test]
fn an_object_reaches_only_the_hosts_its_namespace_allows() {
    let port = outside();
    let other = outside();
    let (_dir, server) = project(&[format!("127.0.0.1:{port}")], &[]);
    reaches_the_allowed_host(&server, "open/a", port);

    let (status, body) = fetch(&server, "open/a", &format!("http://127.0.0.1:{other}/ok"));
    assert_eq!(status, 502, "another port of the same host: {body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    let (status, body) = fetch(&server, "closed/a", &format!("http://127.0.0.1:{port}/ok"));
    assert_eq!(status, 502, "off by default: {body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert!(server.log().contains("not in the `outbound` list"), "{}", server.log());

    // A redirect is a new request, checked again.
    let (status, body) =
        fetch(&server, "open/a", &format!("http://127.0.0.1:{port}/redirect?to=http://127.0.0.1:{other}/ok"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    let (status, body) = fetch(&server, "open/a", &format!("http://127.0.0.1:{port}/redirect?to=/ok"));
    assert_eq!((status, body.as_str()), (200, "200 hello from outside"), "a redirect to an allowed place");

    // Past the namespace's response limit (1 MiB) the read fails.
    let (status, body) = fetch(&server, "open/a", &format!("http://127.0.0.1:{port}/big"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("size") || body.contains("Size"), "{body}");
}

#[test]
fn a_host_given_by_name_may_not_resolve_to_a_loopback_address_nor_reach_the_admin_listener() {
    let port = outside();
    let admin = free_port();
    let admin_listen = format!("127.0.0.1:{admin}");
    let allow = [format!("localhost:{port}"), format!("127.0.0.1:{admin}")];
    let (_dir, server) = project(&allow, &["--admin-listen", &admin_listen]);
    let (status, body) = fetch(&server, "open/a", &format!("http://localhost:{port}/ok"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("DestinationIpProhibited"), "localhost resolves to loopback: {body}");
    let (status, body) = fetch(&server, "open/a", &format!("http://127.0.0.1:{admin}/healthz"));
    assert_eq!(status, 502, "the admin listener, even when listed: {body}");
    assert!(body.contains("DestinationIpProhibited"), "{body}");
    assert_eq!(server.admin_send("GET", "/healthz").body, "ok\n", "the admin listener itself is up");
}

#[test]
fn a_response_that_does_not_come_times_out() {
    let port = outside();
    let (_dir, server) = project(&[format!("127.0.0.1:{port}")], &["--outbound-timeout", "1s"]);
    let (status, body) = fetch(&server, "open/a", &format!("http://127.0.0.1:{port}/hang"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("Timeout"), "{body}");
    // The object goes on.
    assert_eq!(fetch(&server, "open/a", &format!("http://127.0.0.1:{port}/ok")).0, 200);
}

#[test]
fn writes_before_a_request_leaves_are_kept_when_the_event_fails_after_it() {
    let port = outside();
    let (_dir, server) = project(&[format!("127.0.0.1:{port}")], &[]);
    let failed = server.send(
        "POST",
        "/open/a/fetch?write=1&then=panic",
        format!("http://127.0.0.1:{port}/ok").as_bytes(),
    );
    assert_eq!(failed.status, 500, "{failed:?}");
    assert_eq!(server.get("/open/a/kv/before-fetch").body, "true", "committed before the request left");
    // A refused request commits nothing of its own.
    let refused = server.send(
        "POST",
        "/closed/b/fetch?write=1&then=panic",
        format!("http://127.0.0.1:{port}/ok").as_bytes(),
    );
    assert_eq!(refused.status, 500);
    assert_eq!(server.get("/closed/b/kv/before-fetch").status, 404);
}

#[test]
fn a_bad_outbound_entry_stops_the_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(PROBE, dir.path().join("probe.wasm")).unwrap();
    let toml = "[[namespace]]\nname = \"p\"\nmodule = \"probe.wasm\"\noutbound = [\"https://example.com\"]\n";
    std::fs::write(dir.path().join("opendo.toml"), toml).unwrap();
    let (status, stderr) = opendo_e2e::run_project_expecting_refusal(dir.path());
    assert!(!status.success());
    assert!(stderr.contains("namespace `p`: `outbound`"), "{stderr}");
    assert!(stderr.contains("is not a host or host:port"), "{stderr}");
}

#[test]
fn a_javascript_object_fetches_from_an_allowed_host_only() {
    let port = outside();
    let other = outside();
    let dir = tempfile::tempdir().unwrap();
    let probe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/js/probe.js");
    let toml =
        format!("[[namespace]]\nname = \"probe\"\nmodule = {probe:?}\noutbound = [\"127.0.0.1:{port}\"]\n");
    std::fs::write(dir.path().join("opendo.toml"), toml).unwrap();
    let server = Server::start_project(dir.path(), &[]);
    reaches_the_allowed_host(&server, "probe/a", port);
    let (status, body) = fetch(&server, "probe/a", &format!("http://127.0.0.1:{other}/ok"));
    assert_eq!(status, 502, "{body}");
    assert!(body.starts_with("refused: "), "{body}");
    let log = server.log();
    assert!(log.contains(&format!("outbound request to `127.0.0.1:{other}` refused")), "logged: {log}");
}
