//! What a node knows of the cluster: the nodes and shard owners it last read from etcd, the
//! shards it holds, and until when its lease is surely valid. The runtime asks it, before opening
//! an object and before each commit, whether the node holds the object (`calls.rs` answers
//! [`opendo_runtime::Ownership`] with it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use opendo_storage::ObjectId;

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

/// Counters of a node's cluster work, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) forwards: AtomicU64,
    pub(crate) forward_failures: AtomicU64,
    pub(crate) shards_taken: AtomicU64,
    pub(crate) shards_given: AtomicU64,
    pub(crate) renewals: AtomicU64,
    pub(crate) renewal_failures: AtomicU64,
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
        if let Some(flag) = self.held.get(shard as usize) {
            flag.store(held, Ordering::SeqCst);
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
        table.set_held(shard, false);
        assert!(!table.holds("counter", &id));
        assert_eq!(table.place(shard), Place::Nowhere, "no owner known");
        let mut view = View { nodes: BTreeMap::new(), owners: vec![None; 8] };
        view.nodes.insert("b".into(), NodeAddresses { http: "127.0.0.1:9".into(), admin: None });
        view.owners[shard as usize] = Some(("b".into(), 7));
        table.set_view(view);
        assert_eq!(table.place(shard), Place::Node { id: "b".into(), address: "127.0.0.1:9".into() });
    }
}
