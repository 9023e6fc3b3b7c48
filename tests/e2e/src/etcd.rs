//! A real etcd server for cluster tests: Debian's `etcd-server` package, installed on first use
//! when missing and this user can (root, or sudo without a password), on free loopback ports,
//! with its data in a test's folder.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The etcd binary, installing Debian's `etcd-server` if there is none (once per test process).
fn etcd_binary() -> &'static str {
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        if Command::new("etcd").arg("--version").output().is_ok_and(|out| out.status.success()) {
            return Ok(());
        }
        let root = Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0"));
        let apt = |args: &[&str]| {
            let mut command = if root { Command::new("apt-get") } else { Command::new("sudo") };
            if !root {
                command.args(["-n", "apt-get"]);
            }
            command.args(args).env("DEBIAN_FRONTEND", "noninteractive").stdout(Stdio::null());
            command.status().is_ok_and(|status| status.success())
        };
        eprintln!("etcd not found: installing Debian's etcd-server with apt-get");
        if apt(&["install", "-y", "-qq", "--no-install-recommends", "etcd-server"])
            || (apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "--no-install-recommends", "etcd-server"]))
        {
            Ok(())
        } else {
            Err("etcd is not installed and apt-get could not install it: install etcd-server (Debian) or put etcd on PATH".into())
        }
    });
    match found {
        Ok(()) => "etcd",
        Err(message) => panic!("{message}"),
    }
}

/// A running etcd, by its client URL.
pub struct Etcd {
    child: Option<Child>,
    data_dir: PathBuf,
    log: PathBuf,
    client_port: u16,
    peer_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Etcd {
    /// Starts etcd with its data in `dir/etcd` and waits until it answers.
    pub fn start(dir: &Path) -> Etcd {
        let mut etcd = Etcd {
            child: None,
            data_dir: dir.join("etcd"),
            log: dir.join("etcd.log"),
            client_port: free_port(),
            peer_port: free_port(),
        };
        etcd.spawn();
        etcd
    }

    /// `etcd=URL`, as `opendo run --cluster` takes it.
    pub fn cluster_arg(&self) -> String {
        format!("etcd={}", self.url())
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::options().create(true).append(true).open(&self.log).expect("etcd log");
        let child = Command::new(etcd_binary())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--name", "test", "--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start etcd: {err}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(2))).build().into();
        while agent.post(format!("{client}/v3/kv/range")).send(r#"{"key":"AA=="}"#).is_err() {
            assert!(Instant::now() < deadline, "etcd did not answer within 30 s; its log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills etcd (SIGKILL): the nodes lose their placement store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
