//! Several `opendo` nodes serving one project: etcd decides which node owns which object, any
//! node accepts a request and forwards it to the owner, and a dead node's objects move to the
//! others.
//!
//! # Placement
//! Objects map to a fixed number of shards (a hash of namespace and id, `shards.rs`). Each shard
//! is owned by one node, through an etcd key bound to that node's lease (`member.rs`); the
//! revision that created the key is the owner's fencing token. Nodes pick the owner of a free
//! shard by rendezvous hashing over the live nodes, so a joining node takes about 1/n of the
//! shards and a leaving one gives only its own.
//!
//! # Two nodes never write one object
//! All nodes share one data directory. A node opens an object only while it holds the object's
//! shard with a lease valid for longer than a safety margin, and checks that again before each
//! batch commits ([`opendo_runtime::Ownership`], answered by `table.rs`). A node that cannot renew
//! its lease stops holding its shards before the lease can expire, and closes their objects.
//! Besides, each object's file is locked (POSIX locks) from open to close: a new owner cannot open
//! an object an old owner still has open, whatever the clocks say.
//!
//! # Modules
//! | module | its job |
//! |---|---|
//! | `error` | [`Error`] |
//! | `etcd` | the etcd calls, through etcd's JSON gateway |
//! | `shards` | an object's shard; the owner a shard should have |
//! | `table` | what the node knows: nodes, owners, its shards and lease; [`Place`] |
//! | `forward` | sending a request to the owner |
//! | `calls` | calls from this node's objects to objects of other nodes ([`opendo_runtime::Ownership`]) |
//! | `member` | registering, renewing the lease, taking and handing over shards, leaving |

mod calls;
mod error;
mod etcd;
mod forward;
mod member;
mod shards;
mod table;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use opendo_runtime::{ClusterMember, ObjectRef, Runtime};
use opendo_storage::ObjectId;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::Error;
pub use forward::{Answer, CALL_CHAIN, CLUSTER_KEY, FORWARDED_BY, ForwardError, MISDIRECTED, Outgoing};
pub use shards::{desired_owner, shard_of};
pub use table::{MOVE_WAIT, Place};

use crate::calls::NodeOwnership;
use crate::etcd::Etcd;
use crate::forward::Forwarder;
use crate::member::Member;
pub use crate::table::NodeAddresses;
use crate::table::Table;

/// How a node joins its cluster.
#[derive(Debug, Clone)]
pub struct Settings {
    /// etcd's client URLs (`http://host:port`).
    pub etcd: Vec<String>,
    /// This node's id, unique among the live nodes.
    pub node_id: String,
    /// Where the other nodes reach this node's HTTP listener (`host:port`).
    pub advertise: String,
    /// Where the other nodes reach this node's admin listener, if it serves one: admin calls on
    /// an object made on another node are passed on to it.
    pub advertise_admin: Option<String>,
    /// The cluster's shard count: the same on every node.
    pub shards: u32,
    /// The lease's time to live: a dead node's shards move after at most this long (plus a
    /// poll of the others).
    pub lease_ttl: Duration,
}

impl Settings {
    /// Default shard count.
    pub const DEFAULT_SHARDS: u32 = 64;
    /// Default lease TTL.
    pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);

    /// How long before its lease could expire a node stops holding shards: two fifths of the
    /// TTL, so that a node renewing every third of it never reaches the margin while etcd
    /// answers.
    fn margin(&self) -> Duration {
        self.lease_ttl * 2 / 5
    }

    fn check(&self) -> Result<(), Error> {
        if self.etcd.is_empty() {
            return Err(Error::InvalidConfig("--cluster needs at least one etcd URL".into()));
        }
        if let Some(bad) = self.etcd.iter().find(|url| !url.starts_with("http://")) {
            return Err(Error::InvalidConfig(format!("etcd URL `{bad}` must start with http://")));
        }
        let id_ok = !self.node_id.is_empty()
            && self.node_id.len() <= 64
            && self.node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !id_ok {
            return Err(Error::InvalidConfig(format!(
                "invalid node id `{}`: use 1 to 64 characters of a-z, A-Z, 0-9, `-`, `_` and `.`",
                self.node_id
            )));
        }
        if self.shards == 0 || self.shards > 65_536 {
            return Err(Error::InvalidConfig("--shards must be between 1 and 65536".into()));
        }
        if self.lease_ttl < Duration::from_secs(2) {
            return Err(Error::InvalidConfig("--lease-ttl must be at least 2s".into()));
        }
        Ok(())
    }
}

/// This node's part in a cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    member: Member,
    forwarder: Forwarder,
    stop: CancellationToken,
    tasks: TaskTracker,
    /// Set once the placement loop runs, so that `leave` hands over only once.
    runtime: Mutex<Option<Runtime>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node_id()).finish()
    }
}

impl Cluster {
    /// Registers this node with the cluster's etcd (checking its shard count and that no live
    /// node has this id) and starts renewing its lease. The node holds no shard until
    /// [`Cluster::start`].
    pub async fn join(settings: Settings) -> Result<Cluster, Error> {
        settings.check()?;
        let table = Arc::new(Table::new(settings.node_id.clone(), settings.shards, settings.margin()));
        let member = Member {
            etcd: Etcd::new(settings.etcd.clone()),
            table,
            addresses: serde_json::to_string(&NodeAddresses {
                http: settings.advertise.clone(),
                admin: settings.advertise_admin.clone(),
            })
            .map_err(|err| Error::InvalidConfig(err.to_string()))?,
            ttl: settings.lease_ttl,
            lease: AtomicI64::new(0),
        };
        let secret = member.secret().await?;
        let secret = http::HeaderValue::from_str(&secret)
            .map_err(|_| Error::Etcd("the cluster's secret in etcd is not a header value".into()))?;
        member.register().await?;
        let cluster = Cluster {
            inner: Arc::new(Inner {
                member,
                forwarder: Forwarder::new(settings.node_id.clone(), secret),
                stop: CancellationToken::new(),
                tasks: TaskTracker::new(),
                runtime: Mutex::new(None),
            }),
        };
        let (inner, stop) = (cluster.inner.clone(), cluster.inner.stop.clone());
        cluster.inner.tasks.spawn(async move { inner.member.keep_alive(stop).await });
        Ok(cluster)
    }

    /// What the runtime's [`Config::cluster`](opendo_runtime::Config::cluster) must be set to.
    pub fn member(&self) -> ClusterMember {
        ClusterMember(Arc::new(NodeOwnership {
            table: self.inner.member.table.clone(),
            forwarder: self.inner.forwarder.clone(),
        }))
    }

    /// Starts taking shards and serving their objects with `runtime` (made with
    /// [`Cluster::member`]).
    pub async fn start(&self, runtime: Runtime) {
        *self.inner.runtime.lock().await = Some(runtime.clone());
        let (inner, stop) = (self.inner.clone(), self.inner.stop.clone());
        self.inner.tasks.spawn(async move { inner.member.place(&runtime, stop).await });
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.member.table.node_id
    }

    /// Whether `headers` are those of a request another node of this cluster forwarded (with the
    /// cluster's secret): it goes to its object, never through the front, and never on again.
    pub fn is_forwarded(&self, headers: &http::HeaderMap) -> bool {
        self.inner.forwarder.is_forwarded(headers)
    }

    /// The chain of objects waiting for a call another node passed on (its [`CALL_CHAIN`]
    /// header); `None` for a request that is not such a call, or whose header is malformed.
    pub fn call_chain(&self, headers: &http::HeaderMap) -> Option<Vec<(String, ObjectId)>> {
        if !self.is_forwarded(headers) {
            return None;
        }
        crate::calls::parse_chain(headers.get(CALL_CHAIN)?.to_str().ok()?)
    }

    /// Where `object` of `namespace` lives now; `None` if the object's name or id is not valid
    /// (the runtime answers that).
    pub fn place(&self, namespace: &str, object: &ObjectRef) -> Option<Place> {
        let id = match object {
            ObjectRef::Name(name) => ObjectId::from_name(namespace, name),
            ObjectRef::Id(id) => ObjectId::parse(namespace, id).ok()?,
        };
        let table = &self.inner.member.table;
        Some(table.place(table.shard(namespace, &id)))
    }

    /// The other live nodes that serve an admin listener: (node id, admin address).
    pub fn other_admins(&self) -> Vec<(String, String)> {
        let table = &self.inner.member.table;
        table
            .view()
            .nodes
            .into_iter()
            .filter(|(id, _)| *id != table.node_id)
            .filter_map(|(id, addresses)| Some((id, addresses.admin?)))
            .collect()
    }

    /// The admin listener of live node `node`, if it serves one.
    pub fn admin_address(&self, node: &str) -> Option<String> {
        self.inner.member.table.admin_of(node)
    }

    /// Sends `outgoing` to node `node` at `address`.
    pub async fn forward(
        &self,
        node: &str,
        address: &str,
        outgoing: Outgoing,
    ) -> Result<Answer, ForwardError> {
        self.counted(self.inner.forwarder.send(node, address, outgoing).await)
    }

    /// Sends a WebSocket upgrade request to node `node` at `address`; with its 101 comes the
    /// upgraded connection to the owner, which the caller joins to the client's.
    pub async fn forward_websocket(
        &self,
        node: &str,
        address: &str,
        outgoing: Outgoing,
    ) -> Result<(Answer, Option<hyper::upgrade::Upgraded>), ForwardError> {
        self.counted(self.inner.forwarder.tunnel(node, address, outgoing).await)
    }

    /// Counts a forward, and whether it got an answer.
    fn counted<T>(&self, answer: Result<T, ForwardError>) -> Result<T, ForwardError> {
        let counters = &self.inner.member.table.counters;
        counters.forwards.inc();
        if answer.is_err() {
            counters.forward_failures.inc();
        }
        answer
    }

    /// Hands this node's shards over to the others (after closing their objects) and ends its
    /// lease. Requests for them meanwhile are forwarded to the new owners.
    pub async fn leave(&self) -> Result<(), Error> {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        match self.inner.runtime.lock().await.take() {
            Some(runtime) => self.inner.member.leave(&runtime).await,
            None => {
                self.inner.member.table.set_lease_until(None);
                self.inner.member.etcd.revoke(self.inner.member.lease.load(Ordering::SeqCst)).await
            }
        }
    }

    /// The cluster as this node last read it.
    pub fn status(&self) -> Status {
        let table = &self.inner.member.table;
        let view = table.view();
        Status {
            node_id: table.node_id.clone(),
            nodes: view.nodes.into_iter().map(|(id, addresses)| NodeStatus { id, addresses }).collect(),
            shards: view
                .owners
                .into_iter()
                .enumerate()
                .map(|(shard, owner)| ShardStatus {
                    shard: u32::try_from(shard).unwrap_or(u32::MAX),
                    owner: owner.as_ref().map(|(node, _)| node.clone()),
                    fencing_token: owner.map(|(_, revision)| revision),
                })
                .collect(),
            held: table.held_shards(),
        }
    }

    /// The node's cluster counters, as OpenMetrics lines (without the final `# EOF`).
    pub fn metrics_text(&self) -> String {
        self.inner.member.table.counters.encode()
    }
}

/// The cluster as one node sees it (the admin API's `/v1/cluster`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub node_id: String,
    pub nodes: Vec<NodeStatus>,
    pub shards: Vec<ShardStatus>,
    /// The shards this node holds now.
    pub held: Vec<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeStatus {
    pub id: String,
    #[serde(flatten)]
    pub addresses: NodeAddresses,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ShardStatus {
    pub shard: u32,
    pub owner: Option<String>,
    /// The etcd revision that created the owner's key.
    pub fencing_token: Option<i64>,
}
