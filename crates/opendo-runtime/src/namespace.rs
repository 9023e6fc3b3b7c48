//! A loaded namespace: its component, ready to instantiate, its objects' limits, its metrics and
//! its alarm index.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use opendo_storage::AlarmIndex;
use wasmtime::component::Linker;

use crate::component::{self, ObjectPre};
use crate::config::{GuestSettings, ObjectLimits, Outbound};
use crate::context::Context;
use crate::engine::deadline_ticks;
use crate::error::Error;
use crate::host::Host;
use crate::metrics::NamespaceStats;

/// One loaded Durable Object class: its component, ready to instantiate, and its alarm index.
pub(crate) struct Namespace {
    pub(crate) name: Arc<str>,
    pub(crate) pre: ObjectPre,
    pub(crate) stats: NamespaceStats,
    /// What each of its objects may use.
    pub(crate) limits: ObjectLimits,
    /// The hosts its objects may send HTTP requests to.
    pub(crate) outbound: Arc<Outbound>,
    /// The environment variables its objects see.
    pub(crate) env: Arc<[(String, String)]>,
    /// `limits.cpu_limit` in epoch ticks (see `engine.rs`).
    pub(crate) deadline_ticks: u64,
    alarms: Mutex<AlarmIndex>,
}

impl Namespace {
    /// Loads `module` with the engine of `linker`.
    pub(crate) fn load(
        linker: &Linker<Host>,
        context: &Context,
        name: &str,
        module: &Path,
        limits: ObjectLimits,
        guests: GuestSettings,
    ) -> Result<Self, Error> {
        let (data_dir, durability, stats) =
            (&context.config.data_dir, context.config.durability, &context.stats);
        opendo_storage::layout::validate_namespace(name).map_err(|e| Error::InvalidConfig(e.to_string()))?;
        let cache_dir = data_dir.join(".cache").join("components");
        let component = component::load(linker.engine(), module, &cache_dir)?;
        let pre = component::fit_world(linker, &component, module)?;
        let dir = opendo_storage::layout::namespace_dir(data_dir, name);
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let index_path = opendo_storage::layout::alarm_index_path(data_dir, name);
        let open = match context.config.cluster {
            Some(_) => AlarmIndex::open_shared,
            None => AlarmIndex::open,
        };
        let alarms = open(&index_path, durability.for_index()).map_err(|e| {
            Error::InvalidConfig(format!("cannot open the alarm index {}: {e}", index_path.display()))
        })?;
        Ok(Namespace {
            name: name.into(),
            pre,
            stats: stats.for_namespace(name),
            limits,
            outbound: Arc::new(guests.outbound),
            env: guests.env.into(),
            deadline_ticks: deadline_ticks(limits.cpu_limit),
            alarms: Mutex::new(alarms),
        })
    }

    /// The namespace's alarm index (one connection, shared by its objects).
    pub(crate) fn alarm_index(&self) -> &Mutex<AlarmIndex> {
        &self.alarms
    }

    /// Runs `f` on the namespace's alarm index (one connection, shared by its objects).
    pub(crate) fn with_alarm_index<T>(&self, f: impl FnOnce(&AlarmIndex) -> T) -> T {
        f(&self.alarms.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
