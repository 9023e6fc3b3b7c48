//! The [`Runtime`] facade: setting up the engine, the linker and the data directory, loading
//! namespaces, delivering requests, shutting down.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::StoreContextMut;
use wasmtime::component::{HasSelf, Linker, Resource};

use crate::admin::Admin;
use crate::admin::model::ObjectRef;
use crate::bindings::DurableObject;
use crate::bindings::front::Front as FrontWorld;
use crate::config::{Config, Durability, GuestSettings, ObjectLimits};
use crate::connection::AcceptedWebSocket;
use crate::context::Context;
use crate::dispatch::Dispatch;
use crate::engine::{EpochTicker, new_engine};
use crate::error::{Error, EventError};
use crate::front::Front;
use crate::group_sync::GroupSync;
use crate::host::{FrontHost, Host, HostLimits, SendsHttp};
use crate::http::{Request, Response};
use crate::mailbox::CallChain;
use crate::metrics::Stats;
use crate::namespace::Namespace;
use crate::trim::MemoryTrimmer;

/// Runs the objects of one or more namespaces.
///
/// Cheap to clone; all clones share the same objects.
#[derive(Clone)]
pub struct Runtime {
    dispatch: Arc<Dispatch>,
    admin: Admin,
    linker: Arc<Linker<Host>>,
    front_linker: Arc<Linker<FrontHost>>,
    /// The project's front, once loaded.
    front: Arc<OnceLock<Arc<Front>>>,
    scheduler: Arc<std::sync::Once>,
    _ticker: Arc<EpochTicker>,
}

impl Runtime {
    /// A runtime with no namespace yet. Creates the data directory.
    pub fn new(config: Config) -> Result<Self, Error> {
        Self::with_group_sync(config, GroupSync::new)
    }

    /// [`Runtime::new`], with the group sync (used in [`Durability::Full`] on Linux) made by
    /// `group_sync` from the data directory: tests give it a flush they control.
    fn with_group_sync(
        config: Config,
        group_sync: impl FnOnce(&Path) -> std::io::Result<GroupSync>,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(&config.data_dir).map_err(Error::io(&config.data_dir))?;
        let lock = match config.cluster {
            Some(_) => opendo_storage::layout::lock_data_dir_shared,
            None => opendo_storage::layout::lock_data_dir,
        };
        let data_dir_lock = lock(&config.data_dir).map_err(|err| match err {
            opendo_storage::Error::Io { path, source } => Error::Io { path, source },
            in_use => Error::InvalidConfig(in_use.to_string()),
        })?;
        // This process's objects trust that an empty WAL file is empty on disk too
        // (`opendo_storage::ObjectDb::open`); a previous process may have stopped before syncing
        // one it had just emptied.
        crate::group_sync::flush_filesystem(&config.data_dir).map_err(Error::io(&config.data_dir))?;
        let engine = new_engine(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        DurableObject::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        add_outbound_http(&mut linker)?;
        let mut front_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut front_linker)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        FrontWorld::add_to_linker::<FrontHost, HasSelf<FrontHost>>(&mut front_linker, |host| host)
            .map_err(|e| Error::Engine(format!("{e:#}")))?;
        add_outbound_http(&mut front_linker)?;
        let ticker = EpochTicker::start(engine.clone())?;
        let group_sync = match config.durability {
            Durability::Full if cfg!(target_os = "linux") => {
                Some(group_sync(&config.data_dir).map_err(Error::io(&config.data_dir))?)
            }
            _ => None,
        };
        let context = Context {
            host_limits: Arc::new(HostLimits::new(&config)),
            config,
            engine,
            stats: Stats::default(),
            alarm_wakeup: tokio::sync::Notify::new(),
            group_sync,
            trimmer: MemoryTrimmer::new(),
            admin_address: Arc::default(),
            _data_dir_lock: data_dir_lock,
        };
        let context = Arc::new(context);
        let dispatch = Arc::new_cyclic(|me| Dispatch::new(context, me.clone()));
        Ok(Runtime {
            admin: Admin::live(dispatch.clone()),
            dispatch,
            linker: Arc::new(linker),
            front_linker: Arc::new(front_linker),
            front: Arc::default(),
            scheduler: Arc::new(std::sync::Once::new()),
            _ticker: Arc::new(ticker),
        })
    }

    /// Loads the component at `module` as namespace `name`, its objects under the limits of the
    /// runtime's [`Config`]. Fails with one message naming what is wrong if the file is not a
    /// component of the `durable-object` world.
    ///
    /// Must be called inside a tokio runtime: the first namespace starts the alarm scheduler.
    pub fn load_namespace(&self, name: &str, module: &Path) -> Result<(), Error> {
        self.load_namespace_with_limits(name, module, self.dispatch.context.config.object_limits())
    }

    /// [`Runtime::load_namespace`], with the namespace's objects under `limits`.
    pub fn load_namespace_with_limits(
        &self,
        name: &str,
        module: &Path,
        limits: ObjectLimits,
    ) -> Result<(), Error> {
        self.load_namespace_with(name, module, limits, GuestSettings::default())
    }

    /// [`Runtime::load_namespace_with_limits`], with what its objects get besides: the hosts
    /// they may send HTTP requests to (`wasi:http/outgoing-handler`; none by default) and their
    /// environment variables.
    pub fn load_namespace_with(
        &self,
        name: &str,
        module: &Path,
        limits: ObjectLimits,
        guests: GuestSettings,
    ) -> Result<(), Error> {
        guests.check()?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidConfig("load_namespace must be called inside a tokio runtime".into())
        })?;
        let context = &self.dispatch.context;
        let namespace = Namespace::load(&self.linker, context, name, module, limits, guests)?;
        self.dispatch.add_namespace(namespace)?;
        self.scheduler.call_once(|| {
            // Tracked, so that `shutdown` returns only once it let go of the runtime (and with
            // it of the data directory's lock).
            let dispatch = self.dispatch.clone();
            self.dispatch.tracker.spawn_on(crate::scheduler::run(dispatch), &handle);
        });
        context.alarm_wakeup.notify_one();
        Ok(())
    }

    /// Loads the component at `module` as the front: from now on [`Runtime::fetch_front`] serves
    /// requests with it, each on an instance of its own under `limits` (their storage cap means
    /// nothing to a front), with `guests`' hosts and environment variables. Fails if it is not a component of the `front` world, or a front is
    /// loaded already.
    pub fn load_front(
        &self,
        module: &Path,
        limits: ObjectLimits,
        guests: GuestSettings,
    ) -> Result<(), Error> {
        guests.check()?;
        let front = Front::load(module, &self.front_linker, limits, guests, &self.dispatch)?;
        self.front.set(Arc::new(front)).map_err(|_| Error::InvalidConfig("a front is loaded already".into()))
    }

    /// Tells the runtime where its admin listener listens: outbound requests of guests never
    /// reach it, whatever their allowlist says.
    pub fn set_admin_address(&self, address: std::net::SocketAddr) {
        let _ = self.dispatch.context.admin_address.set(address);
    }

    /// Whether a front is loaded.
    pub fn has_front(&self) -> bool {
        self.front.get().is_some()
    }

    /// Runs `request` (its whole path and query) through the front and returns its response.
    /// Fails with [`EventError::Internal`] if no front is loaded.
    pub async fn fetch_front(&self, request: Request) -> Result<Response, EventError> {
        Ok(self.front_answer(request, false).await?.0)
    }

    /// Like [`Runtime::fetch_front`], for a WebSocket upgrade request: the front passes it on to
    /// an object with a stub, which may accept the socket. The socket comes back only if the
    /// front answered 101 (with the object's answer, or its own).
    pub async fn fetch_front_upgrade(
        &self,
        request: Request,
    ) -> Result<(Response, Option<AcceptedWebSocket>), EventError> {
        self.front_answer(request, true).await
    }

    async fn front_answer(
        &self,
        request: Request,
        upgrade: bool,
    ) -> Result<(Response, Option<AcceptedWebSocket>), EventError> {
        match self.front.get() {
            Some(front) => front.fetch(request, upgrade).await,
            None => Err(EventError::Internal("no front is loaded".into())),
        }
    }

    /// Delivers an HTTP request to the object called `object_name` in `namespace` and waits for
    /// its response, which is released only after the event's writes are durable.
    pub async fn fetch(
        &self,
        namespace: &str,
        object_name: &str,
        request: Request,
    ) -> Result<Response, EventError> {
        self.fetch_object(namespace, &ObjectRef::Name(object_name.to_string()), request).await
    }

    /// Like [`Runtime::fetch`], to an object named by name or by id. An object reached by id has
    /// no name unless it was created under one.
    pub async fn fetch_object(
        &self,
        namespace: &str,
        object: &ObjectRef,
        request: Request,
    ) -> Result<Response, EventError> {
        let (answer, _, _) =
            self.dispatch.fetch(namespace, object, request, false, CallChain::default()).await?;
        Ok(answer.response)
    }

    /// Like [`Runtime::fetch_object`], for a call that another node of a cluster passed on:
    /// `chain` holds the objects waiting for it there, as (namespace, id), so that the callee's
    /// own calls back into the chain fail at once, and the chain's length limit holds across
    /// nodes.
    pub async fn fetch_in_chain(
        &self,
        namespace: &str,
        object: &ObjectRef,
        request: Request,
        chain: Vec<(String, opendo_storage::ObjectId)>,
    ) -> Result<Response, EventError> {
        let chain: CallChain =
            chain.into_iter().map(|(namespace, id)| (Arc::<str>::from(namespace), id)).collect();
        let (answer, _, _) = self.dispatch.fetch(namespace, object, request, false, chain).await?;
        Ok(answer.response)
    }

    /// Like [`Runtime::fetch`], for a WebSocket upgrade request: the object may accept the socket
    /// and answer 101. The socket comes back only with a 101 response.
    pub async fn fetch_upgrade(
        &self,
        namespace: &str,
        object: &ObjectRef,
        request: Request,
    ) -> Result<(Response, Option<AcceptedWebSocket>), EventError> {
        let (answer, target, sockets) =
            self.dispatch.fetch(namespace, object, request, true, CallChain::default()).await?;
        let accepted = answer
            .accepted
            .map(|accepted| AcceptedWebSocket::new(self.dispatch.clone(), target, sockets, accepted));
        Ok((answer.response, accepted))
    }

    /// On a cluster's node, when shards leave it: closes the objects for which
    /// `leaving(namespace, id)` is true (their WebSockets with code 1012), after the events they
    /// have queued, and returns once every one of them has closed its database, with how many
    /// there were. New events for them are refused ([`EventError::Moved`]) as soon as the
    /// cluster's [`Ownership`](crate::Ownership) no longer holds them.
    pub async fn release(&self, leaving: impl Fn(&str, &opendo_storage::ObjectId) -> bool) -> usize {
        let ended = self.dispatch.directory.release(|(namespace, id)| leaving(namespace, id));
        let count = ended.len();
        for actor in ended {
            actor.cancelled().await;
        }
        count
    }

    /// On a cluster's node, when shards arrive: the alarm scheduler looks at once for their due
    /// alarms.
    pub fn ownership_changed(&self) {
        self.dispatch.context.alarm_wakeup.notify_one();
    }

    /// Admin calls on this runtime's objects: listing, inspecting, export and import, delete.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Counters about the runtime's objects.
    pub fn stats(&self) -> &Stats {
        &self.dispatch.context.stats
    }

    /// Objects that are active right now.
    pub fn active_objects(&self) -> usize {
        self.stats().active()
    }

    /// Stops taking events, closes every WebSocket with code 1001, lets queued and running events
    /// finish and commit, and closes every object's database. Returns `false` if that took longer
    /// than `grace` (the remaining events are abandoned uncommitted: none of them was answered).
    pub async fn shutdown(&self, grace: Duration) -> bool {
        let dispatch = &self.dispatch;
        dispatch.directory.close();
        dispatch.shutdown.cancel();
        dispatch.context.alarm_wakeup.notify_one();
        dispatch.tracker.close();
        tokio::time::timeout(grace, dispatch.tracker.wait()).await.is_ok()
    }
}

/// `wasi:http` for guests: its types from `wasmtime-wasi-http`, and `outgoing-handler.handle`
/// with the checks of `host/outbound.rs` first (the allowlist and, for objects, the output gate).
fn add_outbound_http<T: SendsHttp>(linker: &mut Linker<T>) -> Result<(), Error> {
    use wasmtime_wasi_http::p2::bindings::{LinkOptions, http};
    use wasmtime_wasi_http::p2::types::HostOutgoingRequest;
    let engine = |e: wasmtime::Error| Error::Engine(format!("{e:#}"));
    http::types::add_to_linker::<T, wasmtime_wasi_http::WasiHttp>(
        linker,
        &LinkOptions::default().into(),
        T::http,
    )
    .map_err(engine)?;
    type Args = (Resource<HostOutgoingRequest>, Option<Resource<wasmtime_wasi_http::RequestOptions>>);
    linker
        .instance(OUTGOING_HANDLER)
        .and_then(|mut instance| {
            instance.func_wrap("handle", |mut store: StoreContextMut<'_, T>, (request, options): Args| {
                crate::host::outbound_handle(store.data_mut(), request, options).map(|handled| (handled,))
            })
        })
        .map_err(engine)
}

/// The `wasi:http` version `wasmtime-wasi-http` provides (guests of any 0.2 version link to it).
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

#[cfg(test)]
mod tests {
    use super::*;

    fn put_request(body: &[u8]) -> Request {
        Request { method: "PUT".into(), path: "/kv/k".into(), headers: Vec::new(), body: body.to_vec() }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_objects_first_commit_through_the_library_api_is_durable_before_its_reply() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config { data_dir: dir.path().into(), durability: Durability::Full, ..Config::default() };
        let runtime = Runtime::new(config).unwrap();
        runtime.load_namespace("probe", Path::new(opendo_test_support::PROBE)).unwrap();
        let reply = runtime.fetch("probe", "new", put_request(b"1")).await.unwrap();
        assert_eq!(reply.status, 204);
        // The database did not sync its first commit itself: the shared flush did.
        let sync = runtime.dispatch.context.group_sync.as_ref().expect("full durability flushes new objects");
        assert_eq!(sync.issued(), 1, "the first commit asked for a flush");
        assert_eq!(sync.durable(), 1, "and was answered once that flush had ended");
    }

    /// Object `b` commits while the flush that object `a`'s commit led is running: `b`'s answer
    /// waits for the next flush, whose outcome it carries.
    async fn answered_after_the_next_flush(failing: Option<u64>) -> Result<Response, EventError> {
        use crate::group_sync::gate::{Gate, TIMEOUT};
        let dir = tempfile::tempdir().unwrap();
        let (gate, flush) = Gate::new(failing);
        let config =
            Config { data_dir: dir.path().into(), durability: Durability::Full, ..Config::default() };
        let runtime = Runtime::with_group_sync(config, |_| GroupSync::with_flush(flush)).unwrap();
        runtime.load_namespace("probe", Path::new(opendo_test_support::PROBE)).unwrap();
        let put = |object: &'static str| {
            let runtime = runtime.clone();
            tokio::spawn(async move { runtime.fetch("probe", object, put_request(b"v")).await })
        };
        let sync = runtime.dispatch.context.group_sync.as_ref().unwrap();
        let a = put("a");
        tokio::task::block_in_place(|| gate.entered(1));
        let b = put("b");
        tokio::task::block_in_place(|| sync.wait_until_issued(2));
        gate.release();
        let a = tokio::time::timeout(TIMEOUT, a).await.unwrap().unwrap().unwrap();
        assert_eq!(a.status, 204, "the commit that led the first flush");
        tokio::task::block_in_place(|| gate.entered(2));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!b.is_finished(), "answered before the flush that covers its commit ended");
        gate.release();
        tokio::time::timeout(TIMEOUT, b).await.unwrap().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_made_during_a_flush_is_answered_after_the_next_flush() {
        assert_eq!(answered_after_the_next_flush(None).await.unwrap().status, 204);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_whose_flush_fails_is_answered_with_an_error() {
        let outcome = answered_after_the_next_flush(Some(2)).await;
        assert!(matches!(outcome, Err(EventError::Internal(_))), "{outcome:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_a_new_objects_first_commit_waits_for_a_shared_flush() {
        use crate::group_sync::gate::{Gate, TIMEOUT};
        let dir = tempfile::tempdir().unwrap();
        let (gate, flush) = Gate::new(None);
        let config = Config {
            data_dir: dir.path().into(),
            durability: Durability::Full,
            idle_timeout: Duration::from_secs(1),
            ..Config::default()
        };
        let runtime = Runtime::with_group_sync(config, |_| GroupSync::with_flush(flush)).unwrap();
        runtime.load_namespace("probe", Path::new(opendo_test_support::PROBE)).unwrap();
        let put = |body: &[u8]| {
            let runtime = runtime.clone();
            let request = put_request(body);
            tokio::spawn(async move { runtime.fetch("probe", "a", request).await })
        };
        let sync = runtime.dispatch.context.group_sync.as_ref().unwrap();
        // The new object's first commit (with its new files) waits for a flush of the filesystem.
        let first = put(b"1");
        tokio::task::block_in_place(|| gate.entered(1));
        gate.release();
        assert_eq!(tokio::time::timeout(TIMEOUT, first).await.unwrap().unwrap().unwrap().status, 204);
        // Later ones are synced by the object's own database: no flush is asked for (one would
        // be held by the gate until the test's timeout).
        for body in [b"2", b"3"] {
            let later = tokio::time::timeout(TIMEOUT, put(body)).await.unwrap().unwrap().unwrap();
            assert_eq!(later.status, 204);
        }
        assert_eq!(sync.issued(), 1, "tickets handed out");
        // Hibernation syncs the checkpoint itself too.
        tokio::time::timeout(TIMEOUT, async {
            while runtime.stats().hibernations() == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
        // And so does the wake's first commit.
        let woken = tokio::time::timeout(TIMEOUT, put(b"4")).await.unwrap().unwrap().unwrap();
        assert_eq!(woken.status, 204);
        assert_eq!(sync.issued(), 1, "tickets handed out");
        let got = runtime
            .fetch(
                "probe",
                "a",
                Request { method: "GET".into(), path: "/kv/k".into(), headers: Vec::new(), body: Vec::new() },
            )
            .await
            .unwrap();
        assert_eq!(got.body, b"4");
    }
}
