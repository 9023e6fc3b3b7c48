//! The link shortener example (`guest-examples/shortener`): a front and two namespaces, over the
//! real binary, with the HTTP contract of its README.

use opendo_e2e::Server;
use opendo_test_support::{EXAMPLE_SHORTENER_FRONT, EXAMPLE_SHORTENER_LIMITER, EXAMPLE_SHORTENER_LINK};

/// The example's project file, pointing at the built components.
fn shortener() -> (tempfile::TempDir, Server) {
    shortener_with("")
}

/// [`shortener`], with `front_extra` added to the `[front]` table.
fn shortener_with(front_extra: &str) -> (tempfile::TempDir, Server) {
    let dir = project(front_extra);
    let server = Server::start_project(dir.path(), &[]);
    (dir, server)
}

/// A folder with the example's project file (pointing at the built components), `front_extra`
/// added to its `[front]` table.
fn project(front_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[front]\nmodule = {EXAMPLE_SHORTENER_FRONT:?}\n{front_extra}\n\n\
         [[namespace]]\nname = \"limiter\"\nmodule = {EXAMPLE_SHORTENER_LIMITER:?}\n\n\
         [[namespace]]\nname = \"link\"\nmodule = {EXAMPLE_SHORTENER_LINK:?}\n"
    );
    std::fs::write(dir.path().join("opendo.toml"), toml).unwrap();
    dir
}

/// `method path` with `Authorization: Bearer {token}` (none if empty) and `body`: the status,
/// the head's lines and the body.
fn send(server: &Server, method: &str, path: &str, token: &str, body: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let auth = if token.is_empty() { String::new() } else { format!("Authorization: Bearer {token}\r\n") };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn links_are_created_followed_and_counted() {
    let (_dir, server) = shortener();
    let (status, _, body) = send(&server, "POST", "/links", "alice-token", "https://example.com/a?b=1");
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["short"], format!("/l/{id}"));

    for visit in 1..=3 {
        let (status, head, _) = send(&server, "GET", &format!("/l/{id}"), "", "");
        assert_eq!(status, 302, "visit {visit}");
        assert!(head.contains("location: https://example.com/a?b=1"), "{head}");
    }
    let (status, _, stats) = send(&server, "GET", &format!("/l/{id}/stats"), "", "");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats, serde_json::json!({"url": "https://example.com/a?b=1", "visits": 3}));

    // Another link is another object.
    let (_, _, other) = send(&server, "POST", "/links", "alice-token", "http://example.org");
    let other: serde_json::Value = serde_json::from_str(&other).unwrap();
    assert_ne!(other["id"], created["id"]);
}

#[test]
fn links_survive_a_restart() {
    let dir = project("");
    let server = Server::start_project(dir.path(), &[]);
    let (_, _, body) = send(&server, "POST", "/links", "keeper", "https://example.com/kept");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(send(&server, "GET", &format!("/l/{id}"), "", "").0, 302);
    server.kill();

    let server = Server::start_project(dir.path(), &[]);
    let (status, head, _) = send(&server, "GET", &format!("/l/{id}"), "", "");
    assert_eq!(status, 302);
    assert!(head.contains("location: https://example.com/kept"), "{head}");
    let (_, _, stats) = send(&server, "GET", &format!("/l/{id}/stats"), "", "");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stats).unwrap()["visits"],
        2,
        "both visits counted"
    );
}

#[test]
fn bad_requests_get_their_status() {
    let (_dir, server) = shortener();
    assert_eq!(send(&server, "POST", "/links", "", "https://example.com").0, 401, "no token");
    let long_token = "t".repeat(300);
    assert_eq!(send(&server, "POST", "/links", &long_token, "https://example.com").0, 401);
    for body in ["", "example.com", "ftp://example.com", "https://", "https://exa mple.com"] {
        assert_eq!(send(&server, "POST", "/links", "bob", body).0, 400, "{body:?}");
    }
    assert_eq!(send(&server, "GET", "/l/not-an-id", "", "").0, 400);
    // A well-formed id of a link never created; and one of another namespace.
    let never = opendo_storage::ObjectId::unique("link").to_hex();
    assert_eq!(send(&server, "GET", &format!("/l/{never}"), "", "").0, 404);
    assert_eq!(send(&server, "GET", &format!("/l/{never}/stats"), "", "").0, 404);
    let limiter_id = opendo_storage::ObjectId::unique("limiter").to_hex();
    assert_eq!(send(&server, "GET", &format!("/l/{limiter_id}"), "", "").0, 400);
    assert_eq!(send(&server, "GET", "/elsewhere", "", "").0, 404);
}

#[test]
fn a_token_makes_at_most_ten_links_a_minute() {
    let (_dir, server) = shortener();
    for n in 1..=10 {
        assert_eq!(send(&server, "POST", "/links", "busy", "https://example.com").0, 201, "link {n}");
    }
    let (status, head, body) = send(&server, "POST", "/links", "busy", "https://example.com");
    assert_eq!(status, 429, "{body}");
    assert!(head.contains("retry-after: "), "{head}");
    assert_eq!(
        send(&server, "POST", "/links", "calm", "https://example.com").0,
        201,
        "other tokens are free"
    );
}

#[test]
fn each_new_link_is_posted_to_the_webhook() {
    use std::io::Write;
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hook.local_addr().unwrap().port();
    let (received, events) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in hook.incoming().flatten() {
            let Some((line, body)) = opendo_e2e::read_request(&stream) else { continue };
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
            let _ = received.send((line, String::from_utf8_lossy(&body).into_owned()));
        }
    });
    let extra =
        format!("outbound = [\"127.0.0.1:{port}\"]\nenv = {{ WEBHOOK = \"http://127.0.0.1:{port}/links\" }}");
    let (_dir, server) = shortener_with(&extra);
    let (status, _, body) = send(&server, "POST", "/links", "hooked", "https://example.com/hooked");
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (line, event) =
        events.recv_timeout(std::time::Duration::from_secs(30)).expect("the webhook was called");
    assert!(line.starts_with("POST /links "), "{line}");
    let event: serde_json::Value = serde_json::from_str(&event).unwrap();
    assert_eq!(event["id"], created["id"]);
    assert_eq!(event["short"], created["short"]);
    assert_eq!(event["url"], "https://example.com/hooked");
}
