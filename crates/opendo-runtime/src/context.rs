//! What every actor of a runtime shares: settings, the engine, counters, and the flush that
//! makes new objects durable.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use opendo_storage::layout::DataDirLock;
use tokio::sync::Notify;
use wasmtime::Engine;

use crate::config::Config;
use crate::group_sync::GroupSync;
use crate::host::HostLimits;
use crate::metrics::Stats;
use crate::trim::MemoryTrimmer;

/// The state shared by a runtime's actors, its scheduler and its facade.
pub(crate) struct Context {
    pub(crate) config: Config,
    pub(crate) engine: Engine,
    pub(crate) stats: Stats,
    pub(crate) host_limits: Arc<HostLimits>,
    /// Woken when an alarm may have become due sooner, or the runtime is closing.
    pub(crate) alarm_wakeup: Notify,
    /// With full durability on Linux: makes new objects' first commits durable in shared
    /// flushes (see `group_sync.rs`).
    pub(crate) group_sync: Option<GroupSync>,
    pub(crate) trimmer: Arc<MemoryTrimmer>,
    /// The admin listener's address, once it listens: outbound requests never reach it.
    pub(crate) admin_address: Arc<OnceLock<SocketAddr>>,
    /// Keeps other processes out of the data directory while any actor runs.
    pub(crate) _data_dir_lock: DataDirLock,
}

impl Context {
    /// The storage mode of the runtime's object databases.
    pub(crate) fn object_durability(&self) -> opendo_storage::Durability {
        self.config.durability.for_objects(self.group_sync.is_some())
    }

    /// How this runtime opens object databases: with file locks on a cluster's shared directory.
    pub(crate) fn object_settings(&self, storage_cap: u64) -> opendo_storage::Settings {
        opendo_storage::Settings {
            durability: self.object_durability(),
            storage_cap,
            file_locks: self.config.cluster.is_some(),
        }
    }

    /// Whether this runtime may run the object now: always, unless it is a node of a cluster
    /// that does not hold the object's shard.
    pub(crate) fn holds(&self, namespace: &str, id: &opendo_storage::ObjectId) -> bool {
        self.config.cluster.as_ref().is_none_or(|member| member.0.holds(namespace, id))
    }
}
