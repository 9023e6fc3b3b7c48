//! A node's membership: registering under a lease, renewing it, taking and handing over shards,
//! fencing itself when the lease cannot be renewed, and leaving.
//!
//! etcd keys (all under [`PREFIX`]):
//! ```text
//! /opendo/config/shards      the cluster's shard count, written by the first node
//! /opendo/config/secret      a random key the nodes prove to each other that a request was
//!                            forwarded by a node (it skips the front), written by the first node
//! /opendo/nodes/{node-id}    where the node serves ({"http": ADDR, "admin": ADDR}), bound to its lease
//! /opendo/shards/{shard}     the owner's node id, bound to the owner's lease
//! ```
//! A shard key is created only if absent (a transaction), so a shard has one owner at a time;
//! the revision that created it is the owner's fencing token. When a node dies its lease expires
//! and etcd deletes its keys; the node each free shard's rendezvous hash picks then creates it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opendo_runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::etcd::Etcd;
use crate::shards::{desired_owner, shard_of};
use crate::table::{NodeAddresses, Table, View};

pub(crate) const PREFIX: &str = "/opendo/";
const SHARDS_KEY: &str = "/opendo/config/shards";
const SECRET_KEY: &str = "/opendo/config/secret";
const NODES: &str = "/opendo/nodes/";
const SHARDS: &str = "/opendo/shards/";

/// How often a node reads the cluster's keys and acts on them: with the lease's TTL, it bounds
/// how long a dead node's shards stay without an owner.
pub(crate) const POLL: Duration = Duration::from_millis(250);

fn node_key(node: &str) -> String {
    format!("{NODES}{node}")
}

fn shard_key(shard: u32) -> String {
    format!("{SHARDS}{shard}")
}

pub(crate) struct Member {
    pub(crate) etcd: Etcd,
    pub(crate) table: Arc<Table>,
    /// The value of the node's key: its addresses, as JSON.
    pub(crate) addresses: String,
    pub(crate) ttl: Duration,
    /// The current lease (0: none).
    pub(crate) lease: std::sync::atomic::AtomicI64,
}

impl Member {
    fn lease(&self) -> i64 {
        self.lease.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The cluster's secret between nodes, made by the first node that asks.
    pub(crate) async fn secret(&self) -> Result<String, Error> {
        let mine: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        if self.etcd.create(SECRET_KEY, &mine, 0).await?.is_some() {
            return Ok(mine);
        }
        let stored = self.etcd.prefix(SECRET_KEY).await?;
        stored
            .into_iter()
            .find(|kv| kv.key == SECRET_KEY)
            .map(|kv| kv.value)
            .ok_or_else(|| Error::Etcd(format!("{SECRET_KEY} vanished while it was read")))
    }

    /// Checks the cluster's shard count (setting it if this is the first node), takes a lease and
    /// registers the node. Fails if a live node has the same id.
    pub(crate) async fn register(&self) -> Result<(), Error> {
        let shards = self.table.shards.to_string();
        if self.etcd.create(SHARDS_KEY, &shards, 0).await?.is_none() {
            let existing = self.etcd.prefix(SHARDS_KEY).await?;
            let theirs = existing.first().map(|kv| kv.value.clone()).unwrap_or_default();
            if theirs != shards {
                return Err(Error::InvalidConfig(format!(
                    "this cluster has {theirs} shards and this node was started with --shards {shards}: every node must use the same count"
                )));
            }
        }
        let sent = Instant::now();
        let lease = self.etcd.grant(self.ttl).await?;
        if self.etcd.create(&node_key(&self.table.node_id), &self.addresses, lease).await?.is_none() {
            let _ = self.etcd.revoke(lease).await;
            return Err(Error::InvalidConfig(format!(
                "node id `{}` is in use by a live node: give each node its own --node-id",
                self.table.node_id
            )));
        }
        self.lease.store(lease, std::sync::atomic::Ordering::SeqCst);
        self.table.set_lease_until(Some(sent + self.ttl));
        Ok(())
    }

    /// Renews the lease every third of its TTL until `stop`. The lease counts as valid until the
    /// TTL after the renewal was *sent*, never later than etcd's own view. A lease etcd no longer
    /// knows (it expired while the node could not reach etcd) is replaced by a new registration.
    pub(crate) async fn keep_alive(&self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.ttl / 3) => {}
            }
            let lease = self.lease();
            let sent = Instant::now();
            let counters = &self.table.counters;
            match self.etcd.keep_alive(lease).await {
                Ok(left) if !left.is_zero() => {
                    self.table.set_lease_until(Some(sent + left));
                    counters.renewals.inc();
                }
                Ok(_) => {
                    tracing::warn!(node = %self.table.node_id, "the node's lease expired: registering again");
                    // Its shard keys went with the lease: the node lets go of every shard (the
                    // placement loop closes their objects) before it may take any again.
                    self.table.set_lease_until(None);
                    while !self.table.held_shards().is_empty() {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(POLL) => {}
                        }
                    }
                    if let Err(err) = self.register().await {
                        tracing::warn!(node = %self.table.node_id, "registering again failed: {err}");
                    }
                }
                Err(err) => {
                    counters.renewal_failures.inc();
                    tracing::warn!(node = %self.table.node_id, "renewing the node's lease failed: {err}");
                }
            }
        }
    }

    /// Reads the cluster every [`POLL`] and moves shards until `stop`.
    pub(crate) async fn place(&self, runtime: &Runtime, stop: CancellationToken) {
        loop {
            if let Err(err) = self.place_once(runtime).await {
                tracing::warn!(node = %self.table.node_id, "reading the cluster failed: {err}");
                // Without etcd the node goes on serving what it holds until its lease is close to
                // expiry, then lets go (`place_once` runs that part without etcd).
                self.fence_if_expiring(runtime).await;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// A node whose lease is within the margin of expiry holds nothing: it closes those objects.
    async fn fence_if_expiring(&self, runtime: &Runtime) {
        if self.table.lease_valid() {
            return;
        }
        let held = self.table.held_shards();
        if held.is_empty() {
            return;
        }
        tracing::warn!(node = %self.table.node_id, shards = held.len(), "the lease cannot be renewed in time: letting go of every shard");
        self.release(runtime, &held).await;
    }

    async fn place_once(&self, runtime: &Runtime) -> Result<(), Error> {
        self.fence_if_expiring(runtime).await;
        let mut view = self.read().await?;
        self.table.set_view(view.clone());
        let me = self.table.node_id.as_str();
        let registered = view.nodes.contains_key(me) && self.table.lease_valid();
        let live = view.nodes.keys().map(String::as_str);
        let live: Vec<&str> = live.collect();
        let mut leaving = Vec::new();
        let mut taking = Vec::new();
        for shard in 0..self.table.shards {
            let owner = view.owners[shard as usize].as_ref().map(|(node, _)| node.as_str());
            let desired = desired_owner(shard, live.iter().copied());
            let held = self.table.is_held(shard);
            match (held, owner) {
                // Taken by another node after this one's lease lapsed.
                (true, owner) if owner != Some(me) => leaving.push((shard, false)),
                (true, _) if desired.is_some_and(|desired| desired != me) => leaving.push((shard, true)),
                (false, None) if registered && desired == Some(me) => taking.push(shard),
                // Still written as this node's after a hand-over that could not delete it.
                (false, Some(owner)) if owner == me && desired != Some(me) => leaving.push((shard, true)),
                (false, Some(owner)) if owner == me && registered => {
                    self.table.set_held(shard, true);
                    runtime.ownership_changed();
                }
                _ => {}
            }
        }
        if !leaving.is_empty() {
            let shards: Vec<u32> = leaving.iter().map(|(shard, _)| *shard).collect();
            self.release(runtime, &shards).await;
            for (shard, ours) in leaving {
                if ours {
                    self.etcd.delete_if(&shard_key(shard), me).await?;
                    view.owners[shard as usize] = None;
                    self.table.counters.shards_given.inc();
                }
            }
        }
        let lease = self.lease();
        for shard in taking {
            if let Some(revision) = self.etcd.create(&shard_key(shard), me, lease).await? {
                self.table.set_held(shard, true);
                view.owners[shard as usize] = Some((me.to_string(), revision));
                self.table.counters.shards_taken.inc();
                tracing::info!(node = me, shard, "took the shard");
            }
        }
        // What this poll changed, so that the status shows it before the next read.
        self.table.set_view(view);
        if !self.table.held_shards().is_empty() {
            runtime.ownership_changed();
        }
        Ok(())
    }

    /// Stops holding `shards` and closes their objects (after the events they have queued).
    pub(crate) async fn release(&self, runtime: &Runtime, shards: &[u32]) {
        for &shard in shards {
            self.table.set_held(shard, false);
        }
        let count = self.table.shards;
        let closed =
            runtime.release(|namespace, id| shards.contains(&shard_of(namespace, &id.to_hex(), count))).await;
        tracing::info!(node = %self.table.node_id, ?shards, objects = closed, "let go of shards");
    }

    /// The cluster's nodes and shard owners.
    async fn read(&self) -> Result<View, Error> {
        let mut view = View { nodes: BTreeMap::new(), owners: vec![None; self.table.shards as usize] };
        for kv in self.etcd.prefix(PREFIX).await? {
            if let Some(node) = kv.key.strip_prefix(NODES) {
                match serde_json::from_str::<NodeAddresses>(&kv.value) {
                    Ok(addresses) => {
                        view.nodes.insert(node.to_string(), addresses);
                    }
                    Err(err) => {
                        tracing::warn!(node, "a node registered an unreadable address ({err}): ignored")
                    }
                }
            } else if let Some(shard) = kv.key.strip_prefix(SHARDS)
                && let Some(slot) = shard.parse::<usize>().ok().and_then(|shard| view.owners.get_mut(shard))
            {
                *slot = Some((kv.value, kv.create_revision));
            }
        }
        Ok(view)
    }

    /// Hands every shard over and ends the lease: the node's key goes first, so that the others
    /// stop counting it, then each shard's objects close and its key goes.
    pub(crate) async fn leave(&self, runtime: &Runtime) -> Result<(), Error> {
        let me = self.table.node_id.clone();
        self.etcd.delete_if(&node_key(&me), &self.addresses).await?;
        let held = self.table.held_shards();
        self.release(runtime, &held).await;
        for shard in held {
            self.etcd.delete_if(&shard_key(shard), &me).await?;
            self.table.counters.shards_given.inc();
        }
        self.table.set_lease_until(None);
        self.etcd.revoke(self.lease()).await
    }
}
