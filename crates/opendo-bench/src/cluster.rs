//! Three open-do nodes and one etcd on this machine, sharing one data directory: what a request
//! costs when it reaches a node that does not own its object and is forwarded to the one that
//! does. All nodes share this machine's cores, so this measures forwarding, not scale.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::server::{Server, free_port, metric_value};

/// The shard count of the nodes (`opendo run --shards`'s default).
const SHARDS: u64 = 64;

/// The nodes and their etcd; all are killed when dropped (the nodes first).
pub struct Cluster {
    pub nodes: Vec<Server>,
    etcd: Child,
}

impl Cluster {
    /// Starts etcd (`etcd_binary`) with its data in `data/etcd`, then `nodes` nodes with their
    /// objects in `data/objects`, and waits until every shard has an owner and every node holds
    /// some.
    pub async fn start(
        etcd_binary: &Path,
        opendo: &Path,
        module: &Path,
        data: &Path,
        nodes: usize,
    ) -> anyhow::Result<Cluster> {
        let client = free_port()?;
        let peer = free_port()?;
        let client_url = format!("http://{client}");
        let peer_url = format!("http://{peer}");
        let etcd = Command::new(etcd_binary)
            .arg("--data-dir")
            .arg(data.join("etcd"))
            .args(["--name", "bench", "--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url, "--listen-peer-urls", &peer_url])
            .args([
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("bench={peer_url}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", etcd_binary.display()))?;
        let mut cluster = Cluster { nodes: Vec::new(), etcd };
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::load::get(client, "/health").await.is_err() {
            if Instant::now() > deadline {
                bail!("etcd did not answer /health within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let objects = data.join("objects");
        for n in 1..=nodes {
            let extra = [
                "--cluster".to_string(),
                format!("etcd={client_url}"),
                "--node-id".to_string(),
                format!("n{n}"),
            ];
            // `Server::opendo` blocks while it waits for the node to answer.
            let (opendo, module, objects) = (opendo.to_owned(), module.to_owned(), objects.clone());
            let node = tokio::task::spawn_blocking(move || {
                Server::opendo(&opendo, &module, &objects, "10s", &extra)
            })
            .await??;
            cluster.nodes.push(node);
        }
        cluster.balanced().await?;
        Ok(cluster)
    }

    /// Where the nodes serve HTTP.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|node| node.addr).collect()
    }

    /// Waits until the nodes' shards held add up to every shard, and every node holds some.
    async fn balanced(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let held = self.each("opendo_cluster_shards_held").await?;
            if held.iter().sum::<u64>() == SHARDS && held.iter().all(|&shards| shards > 0) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the nodes did not share the {SHARDS} shards within 60 s (they hold {held:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Requests forwarded by all nodes so far.
    pub async fn forwards(&self) -> anyhow::Result<u64> {
        Ok(self.each("opendo_cluster_forwards_total").await?.iter().sum())
    }

    /// One metric's value on each node (0 where it is missing).
    async fn each(&self, metric: &str) -> anyhow::Result<Vec<u64>> {
        let mut values = Vec::new();
        for node in &self.nodes {
            let text = node.metrics().await?.unwrap_or_default();
            values.push(metric_value(&text, metric).unwrap_or(0));
        }
        Ok(values)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}
