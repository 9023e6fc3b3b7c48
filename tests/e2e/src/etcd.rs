//! A real etcd server for cluster tests: Debian's `etcd-server` package (`.ci/run` installs it),
//! on free loopback ports, with its data in a test's folder.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--name", "test", "--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start etcd ({err}): install it with `apt-get install etcd-server` (.ci/run does)")
            });
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
