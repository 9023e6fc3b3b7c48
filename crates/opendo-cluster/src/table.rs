//! What a node knows of the cluster: the nodes and shard owners it last read from etcd, the
//! shards it holds, and until when its lease is surely valid. The runtime asks it, before opening
//! an object and before each commit, whether the node holds the object (`calls.rs` answers
//! [`opendo_runtime::Ownership`] with it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use opendo_storage::ObjectId;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::shards::shard_of;

/// The cluster as last read from etcd.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    /// Live nodes by id.
    pub(crate) nodes: BTreeMap<String, NodeAddresses>,
    /// Each shard's owner, with its fencing token (the revision that created its key).
    pub(crate) owners: Vec<Option<(String, i64)>>,
}

/// Where a node serves, as it registered (the value of its key in etcd, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeAddresses {
    /// Its data listener (`host:port`).
    pub http: String,
    /// Its admin listener, if it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
}

/// Where an object lives right now, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// On this node.
    Here,
    /// On another node, serving HTTP at `address`.
    Node { id: String, address: String },
    /// Its shard has no owner right now (moving, or its owner just died).
    Nowhere,
}

/// Longest a request or call waits for its object's shard to get an owner (a dead node's lease
/// to expire, a leaving node to hand over) before it fails.
pub const MOVE_WAIT: Duration = Duration::from_secs(15);

/// Counters of a node's cluster work, for `/metrics` (written by `prometheus-client`, as the
/// runtime's are).
pub(crate) struct Counters {
    pub(crate) forwards: Counter,
    pub(crate) forward_failures: Counter,
    pub(crate) shards_taken: Counter,
    pub(crate) shards_given: Counter,
    pub(crate) renewals: Counter,
    pub(crate) renewal_failures: Counter,
    pub(crate) shards_held: Gauge,
    registry: Registry,
}

impl Default for Counters {
    fn default() -> Self {
        let mut counters = Counters {
            forwards: Counter::default(),
            forward_failures: Counter::default(),
            shards_taken: Counter::default(),
            shards_given: Counter::default(),
            renewals: Counter::default(),
            renewal_failures: Counter::default(),
            shards_held: Gauge::default(),
            registry: Registry::default(),
        };
        let registry = &mut counters.registry;
        let each: [(&str, &str, &Counter); 6] = [
            (
                "opendo_cluster_forwards",
                "Requests and calls forwarded to the node that owns their object",
                &counters.forwards,
            ),
            (
                "opendo_cluster_forward_failures",
                "Forwarded requests that got no answer",
                &counters.forward_failures,
            ),
            ("opendo_cluster_shards_taken", "Shards this node took ownership of", &counters.shards_taken),
            ("opendo_cluster_shards_given", "Shards this node handed over", &counters.shards_given),
            ("opendo_cluster_lease_renewals", "Successful renewals of this node's lease", &counters.renewals),
            (
                "opendo_cluster_lease_renewal_failures",
                "Failed renewals of this node's lease",
                &counters.renewal_failures,
            ),
        ];
        for (name, help, counter) in each {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "opendo_cluster_shards_held",
            "Shards this node holds now",
            counters.shards_held.clone(),
        );
        counters
    }
}

impl Counters {
    /// The counters as OpenMetrics lines, without the final `# EOF`.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode_registry(&mut text, &self.registry) {
            tracing::error!("encoding the cluster's metrics: {err}");
        }
        text
    }
}

pub(crate) struct Table {
    pub(crate) node_id: String,
    pub(crate) shards: u32,
    /// How long before its lease could expire a node stops holding its shards.
    margin: Duration,
    held: Vec<AtomicBool>,
    lease_until: Mutex<Option<Instant>>,
    view: RwLock<View>,
    pub(crate) counters: Counters,
}

impl Table {
    pub(crate) fn new(node_id: String, shards: u32, margin: Duration) -> Self {
        Table {
            node_id,
            shards,
            margin,
            held: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            lease_until: Mutex::new(None),
            view: RwLock::new(View { nodes: BTreeMap::new(), owners: vec![None; shards as usize] }),
            counters: Counters::default(),
        }
    }

    pub(crate) fn shard(&self, namespace: &str, id: &ObjectId) -> u32 {
        shard_of(namespace, &id.to_hex(), self.shards)
    }

    /// Whether the lease is valid for longer than the safety margin.
    pub(crate) fn lease_valid(&self) -> bool {
        let until = *self.lease_until.lock().unwrap_or_else(PoisonError::into_inner);
        until.is_some_and(|until| Instant::now() + self.margin < until)
    }

    /// The lease is valid until `until` (a renewal sent at `until - ttl` succeeded), or gone.
    pub(crate) fn set_lease_until(&self, until: Option<Instant>) {
        *self.lease_until.lock().unwrap_or_else(PoisonError::into_inner) = until;
    }

    pub(crate) fn is_held(&self, shard: u32) -> bool {
        self.held.get(shard as usize).is_some_and(|held| held.load(Ordering::SeqCst))
    }

    pub(crate) fn set_held(&self, shard: u32, held: bool) {
        if let Some(flag) = self.held.get(shard as usize)
            && flag.swap(held, Ordering::SeqCst) != held
        {
            self.counters.shards_held.inc_by(if held { 1 } else { -1 });
        }
    }

    pub(crate) fn held_shards(&self) -> Vec<u32> {
        (0..self.shards).filter(|&shard| self.is_held(shard)).collect()
    }

    pub(crate) fn view(&self) -> View {
        self.view.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The admin listener of node `node`, if it is live and serves one.
    pub(crate) fn admin_of(&self, node: &str) -> Option<String> {
        self.view.read().unwrap_or_else(PoisonError::into_inner).nodes.get(node)?.admin.clone()
    }

    pub(crate) fn set_view(&self, view: View) {
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = view;
    }

    /// Where the object's shard lives.
    pub(crate) fn place(&self, shard: u32) -> Place {
        if self.is_held(shard) && self.lease_valid() {
            return Place::Here;
        }
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        match view.owners.get(shard as usize).cloned().flatten() {
            Some((owner, _)) if owner != self.node_id => match view.nodes.get(&owner) {
                Some(node) => Place::Node { id: owner, address: node.http.clone() },
                None => Place::Nowhere,
            },
            _ => Place::Nowhere,
        }
    }

    /// Whether this node holds the object now, with its lease valid past the margin.
    pub(crate) fn holds(&self, namespace: &str, id: &ObjectId) -> bool {
        self.is_held(self.shard(namespace, id)) && self.lease_valid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_holds_an_object_only_with_its_shard_and_a_lease_valid_past_the_margin() {
        let table = Table::new("a".into(), 8, Duration::from_secs(1));
        let id = ObjectId::from_name("counter", "alice");
        let shard = table.shard("counter", &id);
        assert!(!table.holds("counter", &id), "nothing is held before joining");
        table.set_held(shard, true);
        assert!(!table.holds("counter", &id), "a shard without a lease is not held");
        table.set_lease_until(Some(Instant::now() + Duration::from_secs(5)));
        assert!(table.holds("counter", &id));
        assert_eq!(table.place(shard), Place::Here);
        table.set_lease_until(Some(Instant::now() + Duration::from_millis(500)));
        assert!(!table.holds("counter", &id), "a lease within the margin of expiry fences the node");
        table.set_lease_until(Some(Instant::now() + Duration::from_secs(5)));
        assert_eq!(table.counters.shards_held.get(), 1);
        table.set_held(shard, true);
        assert_eq!(table.counters.shards_held.get(), 1, "held once, counted once");
        table.set_held(shard, false);
        assert_eq!(table.counters.shards_held.get(), 0);
        assert!(table.counters.encode().contains("opendo_cluster_shards_held 0"));
        assert!(!table.holds("counter", &id));
        assert_eq!(table.place(shard), Place::Nowhere, "no owner known");
        let mut view = View { nodes: BTreeMap::new(), owners: vec![None; 8] };
        view.nodes.insert("b".into(), NodeAddresses { http: "127.0.0.1:9".into(), admin: None });
        view.owners[shard as usize] = Some(("b".into(), 7));
        table.set_view(view);
        assert_eq!(table.place(shard), Place::Node { id: "b".into(), address: "127.0.0.1:9".into() });
    }
}
