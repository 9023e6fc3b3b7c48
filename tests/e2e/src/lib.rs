//! Harness for end-to-end tests: starts the real `opendo` binary on port 0, talks HTTP and
//! WebSocket to it, reads its admin metrics, stops it with a signal or kills it.
//!
//! The binary is `target/{profile}/opendo` next to the test executable (cargo builds it for the
//! `opendo-cli` tests of the same `cargo test --workspace` run), or the path in `OPENDO_BIN`.
//! `cargo test -p opendo-e2e` alone does not rebuild it: run `cargo build -p opendo-cli` first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod etcd;
mod websocket;

pub use etcd::Etcd;
pub use websocket::WsClient;

/// Path of the `opendo` binary under test.
pub fn opendo_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("OPENDO_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/{profile}/deps/<test>");
    let bin = profile_dir.join(format!("opendo{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p opendo-cli` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// The folder every test's `opendo` builds JavaScript objects in: the toolchain is installed and
/// each object componentized once for the whole test run (`target/{profile}/opendo-cache`).
pub fn js_cache_dir() -> PathBuf {
    opendo_bin().parent().expect("target/{profile}").join("opendo-cache")
}

/// `opendo`, with the shared cache of JavaScript builds.
fn opendo_command() -> Command {
    let mut command = Command::new(opendo_bin());
    command.env("OPENDO_CACHE_DIR", js_cache_dir());
    command
}

/// A running `opendo run` process.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The admin listener's address, when started with `--admin-listen 127.0.0.1:0`.
    pub admin: Option<SocketAddr>,
    stderr_path: PathBuf,
    client: Client,
}

/// An HTTP client for one server; cheap to clone into other threads.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    agent: ureq::Agent,
}

/// An HTTP answer: status and body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
}

impl Server {
    /// Starts `opendo run <module> --listen 127.0.0.1:0 --data-dir <data_dir> <extra...>` and waits
    /// until it listens. Its log goes to `<data_dir>/../opendo-<n>.log`.
    pub fn start(module: &Path, data_dir: &Path, extra: &[&str]) -> Server {
        let (mut command, stderr_path) = opendo_run(module, data_dir);
        command.args(extra);
        Server::listening(command, stderr_path, extra)
    }

    /// Starts `opendo run --listen 127.0.0.1:0 --data-dir <dir>/data <extra...>` in `dir`, which
    /// serves the project file `dir/opendo.toml`, and waits until it listens.
    pub fn start_project(dir: &Path, extra: &[&str]) -> Server {
        Server::start_project_on(dir, &dir.join("data"), extra)
    }

    /// Like [`Server::start_project`], with `data_dir` as its data directory (the nodes of a
    /// cluster share one).
    pub fn start_project_on(dir: &Path, data_dir: &Path, extra: &[&str]) -> Server {
        let (mut command, stderr_path) = opendo_run_project(dir, data_dir);
        command.args(extra);
        Server::listening(command, stderr_path, extra)
    }

    /// Like [`Server::start`], from a shell that first lowers the soft open-file limit to
    /// `soft_limit` (as a login shell may leave it). The shell `exec`s the server, which keeps
    /// its process id.
    pub fn start_with_soft_file_limit(
        module: &Path,
        data_dir: &Path,
        soft_limit: u64,
        extra: &[&str],
    ) -> Server {
        let (opendo, stderr_path) = opendo_run(module, data_dir);
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -Sn {soft_limit} && exec \"$0\" \"$@\""))
            .arg(opendo.get_program())
            .args(opendo.get_args())
            .args(extra)
            .stderr(std::fs::File::options().append(true).open(&stderr_path).expect("open log file"));
        Server::listening(command, stderr_path, extra)
    }

    /// Spawns `command` (an `opendo run` with `extra` among its arguments) and waits until it
    /// listens.
    fn listening(mut command: Command, stderr_path: PathBuf, extra: &[&str]) -> Server {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("spawn opendo");
        let stdout = child.stdout.take().expect("piped stdout");
        let (found, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                for (prefix, admin) in [("Listening on http://", false), ("Admin on http://", true)] {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        let addr = rest.split_whitespace().next().unwrap_or_default().to_string();
                        let _ = found.send((admin, addr));
                    }
                }
            }
        });
        let wants_admin = extra.contains(&"--admin-listen");
        let (mut addr, mut admin) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(120);
        while addr.is_none() || (wants_admin && admin.is_none()) {
            let Ok((is_admin, found)) =
                lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("opendo did not start listening; its log:\n{log}");
            };
            let found: SocketAddr = found.parse().expect("address in the Listening line");
            if is_admin { admin = Some(found) } else { addr = Some(found) }
        }
        let addr = addr.expect("the loop waits for it");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Server { child, addr, admin, stderr_path, client: Client { addr, agent } }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The value of a Prometheus metric on the admin listener (start with
    /// `--admin-listen 127.0.0.1:0`).
    pub fn metric(&self, name: &str) -> u64 {
        let text = self.admin_send("GET", "/metrics").body;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
    }

    /// Sends a request to the admin listener (start with `--admin-listen 127.0.0.1:0`).
    pub fn admin_send(&self, method: &str, path: &str) -> Answer {
        let admin = self.admin.expect("server started without --admin-listen");
        Client { addr: admin, agent: self.client.agent.clone() }.send(method, path, b"")
    }

    /// Sends a request to the admin API with `token` as bearer token (if any); returns the status
    /// and the body's bytes.
    pub fn admin_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let admin = self.admin.expect("server started without --admin-listen");
        let mut request = http::Request::builder().method(method).uri(format!("http://{admin}{path}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let sent = match method {
            "GET" | "DELETE" => self.client.agent.run(request.body(()).expect("a request")),
            _ => self.client.agent.run(request.body(body.to_vec()).expect("a request")),
        };
        let mut response = sent.unwrap_or_else(|err| panic!("{method} {path}: {err}"));
        let bytes = response.body_mut().with_config().limit(u64::MAX).read_to_vec().expect("the body");
        (response.status().as_u16(), bytes)
    }

    /// Opens a WebSocket to `path` on this server (which must answer 101).
    pub fn websocket(&self, path: &str) -> WsClient {
        WsClient::connect(self.addr, path)
    }

    /// A client for this server that can outlive a borrow of it.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn send(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        self.client.send(method, path, body)
    }

    pub fn get(&self, path: &str) -> Answer {
        self.client.get(path)
    }

    pub fn post(&self, path: &str) -> Answer {
        self.client.post(path)
    }

    /// The full URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        self.client.url(path)
    }

    /// Sends `head` (request line and headers, without the blank line) and `body` as raw bytes,
    /// for requests a well-behaved client refuses to make. Returns the status code, or `None`
    /// if the server closed the connection without answering.
    pub fn raw(&self, head: &str, body: &[u8]) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let request = format!("{head}\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
        stream.write_all(request.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Some((status, body))
    }

    /// Sends SIGINT and waits for the process to exit.
    pub fn interrupt(mut self) -> ExitStatus {
        self.signal("INT");
        self.wait(Duration::from_secs(60))
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(Duration::from_secs(60))
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn signal(&mut self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for opendo") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("opendo did not exit within {limit:?}; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Client {
    /// The full URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request with an optional body; panics if there is no answer.
    pub fn send(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        let url = self.url(path);
        self.try_send(method, path, body).unwrap_or_else(|| panic!("{method} {url}: no answer"))
    }

    /// Sends a request; `None` if the connection failed (for example, the server was killed).
    pub fn try_send(&self, method: &str, path: &str, body: &[u8]) -> Option<Answer> {
        let url = self.url(path);
        let result = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            "POST" => self.agent.post(&url).send(body),
            "PUT" => self.agent.put(&url).send(body),
            "PATCH" => self.agent.patch(&url).send(body),
            other => panic!("method {other} not supported by the harness"),
        };
        let mut response = result.ok()?;
        let retry_after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(String::from);
        let body = response.body_mut().read_to_string().ok()?;
        Some(Answer { status: response.status().as_u16(), body, retry_after })
    }

    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, b"")
    }

    pub fn post(&self, path: &str) -> Answer {
        self.send("POST", path, b"")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `opendo run <module> --listen 127.0.0.1:0 --data-dir <data_dir>`, its stderr going to a new
/// log file next to the data dir (returned).
fn opendo_run(module: &Path, data_dir: &Path) -> (Command, PathBuf) {
    let stderr_path = log_path(data_dir);
    let stderr = std::fs::File::create(&stderr_path).expect("create log file");
    let mut command = opendo_command();
    command
        .arg("run")
        .arg(module)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stderr(stderr);
    (command, stderr_path)
}

/// `opendo run --listen 127.0.0.1:0 --data-dir <data_dir>` in `dir` (no MODULE: the project
/// file there), its stderr going to a new log file beside `data_dir` (returned).
fn opendo_run_project(dir: &Path, data_dir: &Path) -> (Command, PathBuf) {
    let stderr_path = log_path(data_dir);
    let stderr = std::fs::File::create(&stderr_path).expect("create log file");
    let mut command = opendo_command();
    command
        .current_dir(dir)
        .arg("run")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stderr(stderr);
    (command, stderr_path)
}

/// Runs `opendo run --listen 127.0.0.1:0 ...` in `dir` (its project file) expecting it to refuse
/// to start. Returns the exit status and what it printed on stderr.
pub fn run_project_expecting_refusal(dir: &Path) -> (ExitStatus, String) {
    let (mut command, stderr_path) = opendo_run_project(dir, &dir.join("data"));
    let status = command.stdin(Stdio::null()).stdout(Stdio::null()).status().expect("run opendo");
    (status, std::fs::read_to_string(&stderr_path).unwrap_or_default())
}

fn log_path(data_dir: &Path) -> PathBuf {
    let parent = data_dir.parent().unwrap_or(data_dir);
    (0..).map(|n| parent.join(format!("opendo-{n}.log"))).find(|p| !p.exists()).expect("a free log name")
}

/// Runs `opendo run <module> --listen 127.0.0.1:0 ... <extra...>` expecting it to refuse to
/// start. Returns the exit status and what it printed on stderr.
pub fn run_expecting_refusal(module: &Path, data_dir: &Path, extra: &[&str]) -> (ExitStatus, String) {
    let (mut command, stderr_path) = opendo_run(module, data_dir);
    let mut child =
        command.args(extra).stdin(Stdio::null()).stdout(Stdio::null()).spawn().expect("run opendo");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for opendo") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("opendo started instead of refusing {}", module.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&stderr_path).unwrap_or_default())
}

/// Opens every object database in `namespace_dir` (not the namespace's `_alarms.sqlite` index)
/// and asserts that SQLite's integrity check passes; returns how many there were.
pub fn check_object_files(namespace_dir: &Path) -> usize {
    use opendo_storage::{Durability, ObjectDb};
    let mut checked = 0;
    for entry in std::fs::read_dir(namespace_dir).expect("the namespace's folder") {
        let path = entry.expect("a folder entry").path();
        let is_object = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('_'));
        if is_object && path.extension().is_some_and(|e| e == "sqlite") {
            let db = ObjectDb::open(&path, Durability::Full).expect("open an object database");
            assert_eq!(db.integrity_check().expect("integrity_check"), "ok", "{}", path.display());
            db.close().expect("close it");
            checked += 1;
        }
    }
    checked
}

/// Reads one HTTP/1.1 request from `stream` (for small servers a test runs, such as the targets
/// of outbound requests): its request line (`POST /links HTTP/1.1`) and its body, by its
/// `Content-Length`. `None` if the client sent nothing.
pub fn read_request(stream: &TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((line.trim_end().to_string(), body))
}
