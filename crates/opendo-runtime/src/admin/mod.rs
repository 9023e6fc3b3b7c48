//! The admin API's calls: listing namespaces and objects, looking inside one, read-only SQL,
//! export and import, delete, and test controls. [`Admin`] runs them on a live runtime (each
//! object's call runs in its actor, between batches) or offline, on a data directory no server
//! holds.
//!
//! - `model.rs`: what the calls answer (the JSON of the admin HTTP API);
//! - `ops.rs`: what a call does to one object's database, in its actor or offline.

pub(crate) mod model;
pub(crate) mod ops;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::join_all;
use opendo_storage::layout::{self, DataDirLock, StoredObject};
use opendo_storage::{AlarmIndex, ObjectId, Settings, check_import};

use self::model::{
    AlarmOutcome, Done, KvPage, NamespaceInfo, ObjectDetail, ObjectPage, ObjectRef, ObjectRow, QueryRows,
    TableInfo,
};
use self::ops::{AdminOp, AdminReply, KvQuery, Place};
use crate::config::Config;
use crate::directory::ActorState;
use crate::dispatch::{Dispatch, Target};
use crate::error::{AdminError, Error};
use crate::mailbox::AlarmRun;
use crate::names::validate_object_name;
use crate::namespace::Namespace;

/// Object names a listing reads at once (each from its object's database, in its actor).
const NAMES_AT_ONCE: usize = 32;

/// Most objects one listing page holds.
pub const MAX_OBJECTS_PAGE: u32 = 1000;

/// Which objects a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectsQuery {
    /// Only objects whose recorded name begins with this.
    pub prefix: Option<String>,
    /// Objects after this id (the previous page's cursor).
    pub cursor: Option<String>,
    /// At most this many (1 to [`MAX_OBJECTS_PAGE`]; 100 if not given).
    pub limit: Option<u32>,
    /// On a cluster's node, only the objects it holds now (a cluster-wide listing merges every
    /// node's); everywhere else, ignored.
    pub held_only: bool,
}

/// Runs admin calls on a live runtime or on a data directory offline. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    /// Names read from object databases, by namespace and id (an id's name never changes).
    names: Mutex<HashMap<(String, ObjectId), Option<String>>>,
}

enum Backend {
    Live(Arc<Dispatch>),
    Offline(Box<Offline>),
}

/// A data directory whose lock this process holds, without a server.
struct Offline {
    config: Config,
    indexes: Mutex<HashMap<String, Arc<Mutex<AlarmIndex>>>>,
    _lock: DataDirLock,
}

/// A namespace as a call found it.
#[derive(Clone)]
enum Space {
    Live(Arc<Namespace>),
    Offline { name: String, index: Arc<Mutex<AlarmIndex>> },
}

impl Space {
    fn name(&self) -> &str {
        match self {
            Space::Live(namespace) => &namespace.name,
            Space::Offline { name, .. } => name,
        }
    }

    fn index(&self) -> &Mutex<AlarmIndex> {
        match self {
            Space::Live(namespace) => namespace.alarm_index(),
            Space::Offline { index, .. } => index,
        }
    }
}

/// An object a call is about: its namespace, id, and name if known.
struct Object {
    space: Space,
    id: ObjectId,
    name: Option<String>,
}

impl Admin {
    pub(crate) fn live(dispatch: Arc<Dispatch>) -> Self {
        Self::with(Backend::Live(dispatch))
    }

    /// Admin calls on the data directory of `config`, with no server: takes the directory's
    /// lock, so it fails if a server (or another offline tool) uses it. Calls that run the
    /// object's code or act on a live object ([`Admin::run_alarm`], [`Admin::hibernate`]) need a
    /// server and fail with [`AdminError::NeedsServer`].
    pub fn offline(config: Config) -> Result<Self, Error> {
        if !config.data_dir.is_dir() {
            return Err(Error::InvalidConfig(format!("no data directory at {}", config.data_dir.display())));
        }
        let lock = layout::lock_data_dir(&config.data_dir).map_err(|err| match err {
            opendo_storage::Error::Io { path, source } => Error::Io { path, source },
            in_use => Error::InvalidConfig(format!("{in_use}; or talk to it with --admin")),
        })?;
        Ok(Self::with(Backend::Offline(Box::new(Offline { config, indexes: Mutex::default(), _lock: lock }))))
    }

    fn with(backend: Backend) -> Self {
        Admin { inner: Arc::new(Inner { backend, names: Mutex::default() }) }
    }

    fn config(&self) -> &Config {
        match &self.inner.backend {
            Backend::Live(dispatch) => &dispatch.context.config,
            Backend::Offline(offline) => &offline.config,
        }
    }

    /// The largest import `namespace` accepts: its storage cap (the runtime's for a namespace it
    /// does not know).
    pub fn max_import_bytes(&self, namespace: &str) -> u64 {
        match self.space(namespace) {
            Ok(space) => self.storage_cap(&space),
            Err(_) => self.config().storage_cap,
        }
    }

    fn storage_cap(&self, space: &Space) -> u64 {
        match space {
            Space::Live(namespace) => namespace.limits.storage_cap,
            Space::Offline { .. } => self.config().storage_cap,
        }
    }

    /// The namespaces (loaded ones on a live runtime, stored ones offline) with object counts.
    pub async fn namespaces(&self) -> Result<Vec<NamespaceInfo>, AdminError> {
        let mut names: Vec<String> = match &self.inner.backend {
            Backend::Live(dispatch) => {
                dispatch.loaded_namespaces().iter().map(|ns| ns.name.to_string()).collect()
            }
            Backend::Offline(offline) => {
                let data_dir = offline.config.data_dir.clone();
                blocking(move || Ok(layout::stored_namespaces(&data_dir)?)).await?
            }
        };
        names.sort();
        let data_dir = self.config().data_dir.clone();
        blocking(move || {
            names
                .into_iter()
                .map(|name| {
                    let objects = layout::stored_objects(&data_dir, &name)?.len() as u64;
                    Ok(NamespaceInfo { name, objects })
                })
                .collect()
        })
        .await
    }

    /// A page of `namespace`'s objects, ordered by id.
    pub async fn objects(&self, namespace: &str, query: ObjectsQuery) -> Result<ObjectPage, AdminError> {
        let space = self.space(namespace)?;
        // An empty prefix is no filter (objects without a name are listed too).
        let prefix = query.prefix.filter(|prefix| !prefix.is_empty());
        let limit = query.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_OBJECTS_PAGE {
            return Err(AdminError::BadRequest(format!(
                "limit must be 1 to {MAX_OBJECTS_PAGE}, not {limit}"
            )));
        }
        let after = match &query.cursor {
            Some(cursor) => Some(ObjectId::parse(namespace, cursor).map_err(|_| {
                AdminError::BadRequest(format!("`{cursor}` is not a cursor of namespace `{namespace}`"))
            })?),
            None => None,
        };
        let data_dir = self.config().data_dir.clone();
        let name = namespace.to_string();
        let stored = blocking(move || Ok(layout::stored_objects(&data_dir, &name)?)).await?;
        let mut page = Vec::new();
        let mut more = false;
        let cluster = self.config().cluster.as_ref().filter(|_| query.held_only);
        let candidates: Vec<StoredObject> = stored
            .into_iter()
            .filter(|object| after.is_none_or(|after| object.id > after))
            .filter(|object| cluster.is_none_or(|member| member.0.holds(namespace, &object.id)))
            .collect();
        'pages: for chunk in candidates.chunks(NAMES_AT_ONCE) {
            // Names not yet known are read from the objects' databases, several at a time.
            let names = join_all(chunk.iter().map(|stored| self.name_of(&space, stored.id))).await;
            for (stored, name) in chunk.iter().zip(names) {
                let name = match name {
                    Ok(name) => name,
                    // Deleted since the folder was read.
                    Err(AdminError::UnknownObject(_)) => continue,
                    Err(err) => return Err(err),
                };
                if let Some(prefix) = &prefix
                    && !name.as_deref().is_some_and(|name| name.starts_with(prefix.as_str()))
                {
                    continue;
                }
                if page.len() == limit as usize {
                    more = true;
                    break 'pages;
                }
                page.push((stored.clone(), name));
            }
        }
        let cursor = more.then(|| page.last().map(|(stored, _)| stored.id.to_hex())).flatten();
        let ids: Vec<ObjectId> = page.iter().map(|(stored, _)| stored.id).collect();
        let alarms = self.indexed_alarms(&space, ids).await?;
        let objects = page
            .into_iter()
            .zip(alarms)
            .map(|((stored, name), alarm_ms)| self.row(&space, &stored, name, alarm_ms).0)
            .collect();
        Ok(ObjectPage { objects, cursor })
    }

    /// One object in detail.
    pub async fn object(&self, namespace: &str, object: &ObjectRef) -> Result<ObjectDetail, AdminError> {
        let object = self.resolve(namespace, object)?;
        self.detail(object).await
    }

    /// A page of the object's KV entries.
    pub async fn kv(
        &self,
        namespace: &str,
        object: &ObjectRef,
        query: KvQuery,
    ) -> Result<KvPage, AdminError> {
        match self.call(self.resolve(namespace, object)?, AdminOp::Kv(query)).await? {
            AdminReply::Kv(page) => Ok(page),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs one read-only SQL statement on the object: the guest's sandbox, writes refused,
    /// stopped at the CPU limit.
    pub async fn query(
        &self,
        namespace: &str,
        object: &ObjectRef,
        sql: String,
    ) -> Result<QueryRows, AdminError> {
        match self.call(self.resolve(namespace, object)?, AdminOp::Query(sql)).await? {
            AdminReply::Rows(rows) => Ok(rows),
            other => Err(unexpected(&other)),
        }
    }

    /// A consistent snapshot of the object's database (SQLite's file format), taken between
    /// batches.
    pub async fn export(&self, namespace: &str, object: &ObjectRef) -> Result<Vec<u8>, AdminError> {
        match self.call(self.resolve(namespace, object)?, AdminOp::Export).await? {
            AdminReply::Snapshot(bytes) => Ok(bytes),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates or replaces the object from `snapshot` (an export): checked first (SQLite's
    /// integrity check, the runtime's tables, the storage cap), so a refused import changes
    /// nothing. The object is hibernated while its database is replaced; its alarm index entry
    /// follows the imported alarm. Importing under another name or id makes a copy.
    pub async fn import(
        &self,
        namespace: &str,
        object: &ObjectRef,
        snapshot: Vec<u8>,
    ) -> Result<ObjectDetail, AdminError> {
        let target = self.resolve(namespace, object)?;
        let cap = self.storage_cap(&target.space);
        let name = target.name.clone();
        let import = blocking(move || Ok(check_import(&snapshot, cap, name.as_deref())?)).await?;
        let (space, id, name) = (target.space.clone(), target.id, target.name.clone());
        self.call(target, AdminOp::Import(import)).await?;
        self.forget_name(&space, id);
        self.detail(Object { space, id, name }).await
    }

    /// Deletes the object for good: its files and its alarm index entry; its WebSockets are
    /// closed with code 1001. An event that comes later starts a new, empty object.
    pub async fn delete(&self, namespace: &str, object: &ObjectRef) -> Result<Done, AdminError> {
        let target = self.resolve(namespace, object)?;
        let (space, id) = (target.space.clone(), target.id);
        let reply = self.call(target, AdminOp::Delete).await;
        self.forget_name(&space, id);
        match reply? {
            AdminReply::Done(existed) => Ok(Done { outcome: "deleted".into(), changed: existed }),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs the object's alarm now, whenever it is due (needs a server).
    pub async fn run_alarm(&self, namespace: &str, object: &ObjectRef) -> Result<AlarmOutcome, AdminError> {
        let target = self.resolve(namespace, object)?;
        let Backend::Live(dispatch) = &self.inner.backend else {
            return Err(needs_server("running an alarm"));
        };
        let Space::Live(ns) = target.space.clone() else { return Err(needs_server("running an alarm")) };
        // Fails for an object that does not exist, which an alarm event would create.
        self.call(Object { space: target.space, id: target.id, name: target.name.clone() }, AdminOp::Name)
            .await?;
        let outcome =
            dispatch.fire_alarm(&Target { namespace: ns, id: target.id, name: target.name }, true)?;
        let run = outcome
            .await
            .map_err(|_| AdminError::Internal("the object stopped before answering".into()))??;
        Ok(match run {
            AlarmRun::NotDue => AlarmOutcome::NotSet,
            AlarmRun::Ran => AlarmOutcome::Ran,
            AlarmRun::Retrying { .. } => AlarmOutcome::Retrying,
            AlarmRun::Dropped => AlarmOutcome::Dropped,
        })
    }

    /// Hibernates the object now: drops its instance and closes its database (needs a server).
    pub async fn hibernate(&self, namespace: &str, object: &ObjectRef) -> Result<Done, AdminError> {
        let target = self.resolve(namespace, object)?;
        if !matches!(self.inner.backend, Backend::Live(_)) {
            return Err(needs_server("hibernating an object"));
        }
        match self.call(target, AdminOp::Hibernate).await? {
            AdminReply::Done(was_active) => Ok(Done { outcome: "hibernated".into(), changed: was_active }),
            other => Err(unexpected(&other)),
        }
    }

    fn space(&self, namespace: &str) -> Result<Space, AdminError> {
        let unknown = || AdminError::UnknownNamespace(namespace.to_string());
        match &self.inner.backend {
            Backend::Live(dispatch) => dispatch.namespace(namespace).map(Space::Live).ok_or_else(unknown),
            Backend::Offline(offline) => {
                layout::validate_namespace(namespace).map_err(|_| unknown())?;
                let data_dir = &offline.config.data_dir;
                if !layout::namespace_dir(data_dir, namespace).is_dir() {
                    return Err(unknown());
                }
                let mut indexes = offline.indexes.lock().unwrap_or_else(PoisonError::into_inner);
                let index = match indexes.get(namespace) {
                    Some(index) => index.clone(),
                    None => {
                        let path = layout::alarm_index_path(data_dir, namespace);
                        let index = AlarmIndex::open(&path, offline.config.durability.for_index())?;
                        let index = Arc::new(Mutex::new(index));
                        indexes.insert(namespace.to_string(), index.clone());
                        index
                    }
                };
                Ok(Space::Offline { name: namespace.to_string(), index })
            }
        }
    }

    fn resolve(&self, namespace: &str, object: &ObjectRef) -> Result<Object, AdminError> {
        let space = self.space(namespace)?;
        let (id, name) = match object {
            ObjectRef::Name(name) => {
                validate_object_name(name)?;
                (ObjectId::from_name(namespace, name), Some(name.clone()))
            }
            ObjectRef::Id(id) => (ObjectId::parse(namespace, id)?, None),
        };
        Ok(Object { space, id, name })
    }

    /// Runs `op` on the object: in its actor on a live runtime, on a blocking thread offline.
    async fn call(&self, object: Object, op: AdminOp) -> Result<AdminReply, AdminError> {
        match &self.inner.backend {
            Backend::Live(dispatch) => {
                let Space::Live(namespace) = object.space else {
                    return Err(AdminError::Internal("an offline namespace on a live runtime".into()));
                };
                dispatch.admin(&Target { namespace, id: object.id, name: object.name }, op).await
            }
            Backend::Offline(offline) => {
                if matches!(op, AdminOp::Hibernate) {
                    return Err(needs_server("hibernating an object"));
                }
                let config = &offline.config;
                let path = layout::object_db_path(&config.data_dir, object.space.name(), &object.id);
                let settings = Settings {
                    durability: config.durability.for_objects(false),
                    storage_cap: config.storage_cap,
                    file_locks: false,
                };
                let cpu_limit = config.cpu_limit;
                blocking(move || {
                    let place = Place {
                        path: &path,
                        settings,
                        id: object.id,
                        name: object.name.as_deref(),
                        alarm_index: object.space.index(),
                        cpu_limit,
                    };
                    ops::run(&place, op, None)
                })
                .await
            }
        }
    }

    async fn detail(&self, object: Object) -> Result<ObjectDetail, AdminError> {
        let (space, id) = (object.space.clone(), object.id);
        let summary = match self.call(object, AdminOp::Summary).await? {
            AdminReply::Summary(summary) => summary,
            other => return Err(unexpected(&other)),
        };
        let stored = layout::stored_object(&self.config().data_dir, space.name(), &id)
            .unwrap_or(StoredObject { id, size_bytes: 0, modified_ms: 0 });
        let alarm_ms = summary.alarm.map(|alarm| alarm.time_ms);
        let (row, state) = self.row(&space, &stored, summary.name.clone(), alarm_ms);
        Ok(ObjectDetail {
            row,
            alarm_retry_count: summary.alarm.map(|alarm| alarm.retry_count),
            kv_keys: summary.kv_keys,
            tables: summary.tables.into_iter().map(|t| TableInfo { name: t.name, rows: t.rows }).collect(),
            websockets: state.map_or(0, |state| state.websockets),
        })
    }

    fn row(
        &self,
        space: &Space,
        stored: &StoredObject,
        name: Option<String>,
        alarm_ms: Option<i64>,
    ) -> (ObjectRow, Option<ActorState>) {
        let state = match &self.inner.backend {
            Backend::Live(dispatch) => dispatch.directory.state(&(Arc::from(space.name()), stored.id)),
            Backend::Offline(_) => None,
        };
        let last_event_ms = state.and_then(|state| state.last_event_ms).max(Some(stored.modified_ms));
        let row = ObjectRow {
            id: stored.id.to_hex(),
            name,
            size_bytes: stored.size_bytes,
            active: state.is_some_and(|state| state.active),
            alarm_ms,
            last_event_ms,
        };
        (row, state)
    }

    async fn name_of(&self, space: &Space, id: ObjectId) -> Result<Option<String>, AdminError> {
        let key = (space.name().to_string(), id);
        if let Some(name) = self.inner.names.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(name.clone());
        }
        let name = match self.call(Object { space: space.clone(), id, name: None }, AdminOp::Name).await? {
            AdminReply::Name(name) => name,
            other => return Err(unexpected(&other)),
        };
        self.inner.names.lock().unwrap_or_else(PoisonError::into_inner).insert(key, name.clone());
        Ok(name)
    }

    fn forget_name(&self, space: &Space, id: ObjectId) {
        self.inner
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(space.name().to_string(), id));
    }

    /// The alarm index's times for `ids` (the listing's alarm column; the detail reads the
    /// object's own).
    async fn indexed_alarms(
        &self,
        space: &Space,
        ids: Vec<ObjectId>,
    ) -> Result<Vec<Option<i64>>, AdminError> {
        let space = space.clone();
        blocking(move || {
            let index = space.index().lock().unwrap_or_else(PoisonError::into_inner);
            Ok(ids.iter().map(|id| index.get(id)).collect::<Result<_, _>>()?)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|err| AdminError::Internal(format!("admin call failed: {err}")))?
}

fn needs_server(what: &str) -> AdminError {
    AdminError::NeedsServer(format!("{what} needs a running server: use --admin URL"))
}

fn unexpected(reply: &AdminReply) -> AdminError {
    AdminError::Internal(format!("unexpected answer from the object: {reply:?}"))
}
