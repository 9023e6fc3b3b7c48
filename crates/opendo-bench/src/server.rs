//! Starting and stopping the servers under test.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A server process, killed when dropped.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// open-do's admin listener (metrics).
    pub admin: Option<SocketAddr>,
    child: Child,
}

pub fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl Server {
    /// `opendo run <module>` with full durability (fsync before every answer), and `extra`
    /// arguments (a cluster node's).
    pub fn opendo(
        binary: &Path,
        module: &Path,
        data: &Path,
        idle_timeout: &str,
        extra: &[String],
    ) -> anyhow::Result<Server> {
        let addr = free_port()?;
        let admin = free_port()?;
        let child = Command::new(binary)
            .arg("run")
            .arg(module)
            .args(["--namespace", "bench", "--durability", "full", "--idle-timeout", idle_timeout])
            .args(extra)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Server::ready(Server { name: "open-do", addr, admin: Some(admin), child }, "/bench/ready/hello")
    }

    /// `workerd serve` with the bench config (workerd fsyncs every write before answering).
    pub fn workerd(binary: &Path, config_dir: &Path, data: &Path) -> anyhow::Result<Server> {
        let addr = free_port()?;
        std::fs::create_dir_all(data)?;
        // workerd runs in its config folder: make the paths absolute first.
        let binary = binary.canonicalize().with_context(|| format!("finding {}", binary.display()))?;
        let data = data.canonicalize()?;
        let child = Command::new(&binary)
            .current_dir(config_dir)
            .args(["serve", "config.capnp", "--socket-addr"])
            .arg(format!("http={addr}"))
            .arg("--directory-path")
            .arg(format!("objects={}", data.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Server::ready(Server { name: "workerd", addr, admin: None, child }, "/ready")
    }

    fn ready(mut server: Server, path: &str) -> anyhow::Result<Server> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        while Instant::now() < deadline {
            if let Some(status) = server.child.try_wait()? {
                bail!("{} exited during start: {status}", server.name);
            }
            if runtime.block_on(crate::load::once(server.addr, path)).is_ok() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{} did not answer {path} within 60 s", server.name)
    }

    /// open-do's count of active objects (not hibernated); `None` for workerd.
    pub async fn active_objects(&self) -> anyhow::Result<Option<u64>> {
        Ok(self.metrics().await?.as_deref().and_then(|text| metric_value(text, "opendo_active_objects")))
    }

    /// open-do's wake histogram: cumulative counts per bucket upper bound (seconds); empty for
    /// workerd.
    pub async fn wake_histogram(&self) -> anyhow::Result<Vec<(f64, u64)>> {
        Ok(self.metrics().await?.as_deref().map(wake_histogram).unwrap_or_default())
    }

    /// open-do's metrics page from its admin listener; `None` for workerd, which has none.
    pub async fn metrics(&self) -> anyhow::Result<Option<String>> {
        let Some(admin) = self.admin else { return Ok(None) };
        Ok(Some(crate::load::get(admin, "/metrics").await?.0))
    }

    /// Resident memory of the process, in bytes (from /proc).
    pub fn rss_bytes(&self) -> Option<u64> {
        self.proc_kib("status", "VmRSS:")
    }

    /// Proportional set size of the process, in bytes: resident memory with each page shared
    /// with other mappings or processes counted once in all (RSS counts it in every mapping,
    /// such as each Wasm instance's copy-on-write view of its module's data image).
    pub fn pss_bytes(&self) -> Option<u64> {
        self.proc_kib("smaps_rollup", "Pss:")
    }

    /// The value in KiB of the line starting with `field` in `/proc/{pid}/{file}`, in bytes.
    fn proc_kib(&self, file: &str, field: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/{file}", self.child.id())).ok()?;
        let line = text.lines().find(|l| l.starts_with(field))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of an unlabelled metric in a metrics page.
pub fn metric_value(metrics: &str, metric: &str) -> Option<u64> {
    metrics.lines().find_map(|line| line.strip_prefix(metric)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The buckets of `opendo_wake_seconds` in a metrics page: (upper bound in seconds, cumulative
/// count).
fn wake_histogram(metrics: &str) -> Vec<(f64, u64)> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("opendo_wake_seconds_bucket{le=\"")?;
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" { f64::INFINITY } else { bound.parse().ok()? };
            Some((bound, count.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# HELP opendo_active_objects Objects with a live instance and open database.
# TYPE opendo_active_objects gauge
opendo_active_objects 8842
# TYPE opendo_activations_total counter
opendo_activations_total 12000
opendo_wake_seconds_bucket{le=\"0.0005\"} 130
opendo_wake_seconds_bucket{le=\"+Inf\"} 200
opendo_wake_seconds_sum 0.1
";

    #[test]
    fn a_metric_is_read_from_its_own_line_only() {
        assert_eq!(metric_value(METRICS, "opendo_active_objects"), Some(8842));
        assert_eq!(metric_value("opendo_activations_total 3\n", "opendo_active_objects"), None);
        assert_eq!(metric_value(METRICS, "opendo_activations"), None);
        assert_eq!(metric_value(METRICS, "opendo_activations_total"), Some(12000));
    }

    #[test]
    fn the_wake_buckets_are_read_with_their_bounds() {
        assert_eq!(wake_histogram(METRICS), vec![(0.0005, 130), (f64::INFINITY, 200)]);
    }
}
