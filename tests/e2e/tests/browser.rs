//! Pages in a real browser: two headless Chromium tabs join a chat room and talk; the admin
//! listener's inspector lists, opens, queries and deletes objects.
//!
//! Needs Chromium (`/usr/bin/chromium`, or the path in `CHROMIUM`), so it does not run with
//! `cargo test --workspace`: `just browser-check` and CI run it, installing Chromium if missing.
//! The browser is driven over the Chrome DevTools Protocol with the same WebSocket client the
//! other tests use.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opendo_e2e::Server;
use opendo_test_support::{EXAMPLE_CHAT_ROOM, EXAMPLE_TODO};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// A headless Chromium with its DevTools endpoint.
struct Browser {
    child: Child,
    devtools: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(&binary)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            .args(["--no-first-run", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} ({e}): install Chromium or set CHROMIUM"));
        let stderr = child.stderr.take().unwrap();
        let (found, endpoint) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ws://") {
                    let _ = found.send(url.split('/').next().unwrap_or_default().to_string());
                }
            }
        });
        let devtools = endpoint.recv_timeout(Duration::from_secs(60)).expect("Chromium's DevTools endpoint");
        Browser { child, devtools, _profile: profile }
    }

    /// Opens `url` in a new tab and waits until `ready` (a JS expression) is true.
    fn open(&self, url: &str, ready: &str) -> Tab {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut response =
            agent.put(format!("http://{}/json/new?{url}", self.devtools)).send_empty().expect("open a tab");
        let target: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        let debugger = target["webSocketDebuggerUrl"].as_str().expect("the tab's debugger URL").to_string();
        let host = debugger.trim_start_matches("ws://").split('/').next().unwrap().to_string();
        let stream = TcpStream::connect(&host).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let (socket, _) = tungstenite::client(debugger.as_str(), stream).expect("attach to the tab");
        let mut tab = Tab { socket, next_id: 0 };
        tab.wait(&format!("document.readyState === 'complete' && {ready}"));
        tab
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab, driven with `Runtime.evaluate`.
struct Tab {
    socket: WebSocket<TcpStream>,
    next_id: u64,
}

impl Tab {
    /// Calls a DevTools method and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let call = json!({"id": id, "method": method, "params": params});
        self.socket.send(Message::text(call.to_string())).unwrap();
        loop {
            let Message::Text(text) = self.socket.read().expect("a DevTools answer") else { continue };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                return answer["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}));
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Polls `condition` (a JS expression) until it is true.
    fn wait(&mut self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval(condition) != json!(true) {
            let log = self.eval("document.getElementById('log') && document.getElementById('log').innerText");
            assert!(Instant::now() < deadline, "never true: {condition}; the log shows: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn join(&mut self, name: &str) {
        self.eval(&format!(
            "document.getElementById('name').value = {name:?}; document.querySelector('#join button').click()"
        ));
        self.wait(&format!("document.getElementById('status').textContent === 'Connected as {name}'"));
    }

    fn say(&mut self, text: &str) {
        self.eval(&format!(
            "document.getElementById('text').value = {text:?}; document.querySelector('#send button').click()"
        ));
    }

    fn shows(&mut self, line: &str) {
        self.wait(&format!("document.getElementById('log').innerText.split('\\n').includes({line:?})"));
    }
}

#[test]
#[ignore = "needs Chromium: run with `just browser-check` (CI does)"]
fn two_browser_tabs_chat_through_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        Path::new(EXAMPLE_CHAT_ROOM),
        &dir.path().join("data"),
        &["--namespace", "chat-room", "--idle-timeout", "500ms"],
    );
    let page = server.url("/chat-room/lobby/");
    let browser = Browser::launch();
    let ready = "!!document.getElementById('name')";
    let mut ada = browser.open(&page, ready);
    let mut bo = browser.open(&page, ready);
    assert_eq!(ada.eval("document.getElementById('room').textContent"), json!("lobby"));

    ada.join("ada");
    ada.shows("ada joined");
    bo.join("bo");
    ada.shows("bo joined");
    ada.say("hello from tab one");
    bo.shows("ada: hello from tab one");
    ada.shows("ada: hello from tab one");
    // Let the room hibernate with both tabs connected; the next message wakes it.
    std::thread::sleep(Duration::from_secs(1));
    bo.say("and back from tab two");
    ada.shows("bo: and back from tab two");
    // Closing a tab's socket is announced to the other.
    bo.eval("window.close()");
    drop(bo);
    ada.shows("bo left");
}

#[test]
#[ignore = "needs Chromium: run with `just browser-check` (CI does)"]
fn the_inspector_lists_opens_queries_and_deletes_objects() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "inspector-token\n").unwrap();
    let server = Server::start(
        Path::new(EXAMPLE_TODO),
        &dir.path().join("data"),
        &["--admin-listen", "127.0.0.1:0", "--admin-token-file", token_file.to_str().unwrap()],
    );
    for (list, title) in [("alice", "milk"), ("bob", "eggs"), ("alina", "tea")] {
        assert_eq!(server.send("POST", &format!("/todo/{list}/todos"), title.as_bytes()).status, 201);
    }
    let browser = Browser::launch();
    let admin = format!("http://{}/", server.admin.unwrap());
    let mut tab = browser.open(&admin, "!!document.getElementById('token')");
    tab.wait("document.getElementById('log').textContent.includes('missing or wrong admin token')");

    tab.eval("document.getElementById('token').value = 'inspector-token'; document.querySelector('#token-form button').click()");
    tab.wait("document.getElementById('namespace-rows').innerText.includes('todo\t3')");
    tab.eval("location.hash = '#/ns/todo'");
    tab.wait("document.getElementById('object-rows').children.length === 3");
    tab.eval("document.getElementById('search').value = 'ali'; document.querySelector('#search-form button').click()");
    tab.wait("document.getElementById('object-rows').children.length === 2");
    let names =
        tab.eval("[...document.querySelectorAll('#object-rows a')].map(a => a.textContent).sort().join(',')");
    assert_eq!(names, json!("alice,alina"));

    tab.eval("[...document.querySelectorAll('#object-rows a')].find(a => a.textContent === 'alice').click()");
    tab.wait("document.getElementById('detail').innerText.includes('alice')");
    tab.wait("document.getElementById('table-rows').innerText.includes('todos\t1')");
    tab.eval("document.querySelector('#table-rows a').click()");
    tab.wait("document.getElementById('sql-result').innerText.includes('milk')");
    tab.eval("document.getElementById('sql').value = 'DELETE FROM todos'; document.getElementById('run-sql').click()");
    tab.wait("document.getElementById('log').textContent.includes('only statements that read')");

    let shot = tab.call("Page.captureScreenshot", json!({"format": "png"}));
    let png = BASE64.decode(shot["data"].as_str().expect("a screenshot")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a PNG image of the page");
    // Kept for a look: target/tmp/inspector.png.
    std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspector.png"), &png).unwrap();

    tab.eval("window.confirm = () => true; document.getElementById('delete').click()");
    // Back at the listing, still searching `ali`.
    tab.wait(
        "location.hash === '#/ns/todo' && document.getElementById('object-rows').innerText.includes('alina')",
    );
    assert_eq!(tab.eval("document.getElementById('object-rows').children.length"), json!(1));
    assert_eq!(server.get("/todo/alice/todos").body, "[]", "alice's list was deleted");
    assert!(server.get("/todo/bob/todos").body.contains("eggs"), "the others are untouched");
}
