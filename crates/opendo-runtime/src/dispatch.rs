//! Getting an event to its object: finding the namespace, checking the name, and sending the
//! event to the object's actor (starting one if it has none).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use opendo_storage::ObjectId;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actor::{self, ObjectCtx};
use crate::admin::model::ObjectRef;
use crate::admin::ops::{AdminOp, AdminReply};
use crate::context::Context;
use crate::directory::{ActorControl, ActorHandle, Directory};
use crate::error::{AdminError, Error, EventError};
use crate::host::LogBudget;
use crate::http::Request;
use crate::identity::Identity;
use crate::mailbox::{AlarmRun, Answer, CallChain, Envelope, SocketEvent};
use crate::names::validate_object_name;
use crate::namespace::Namespace;
use crate::sockets::Sockets;

/// Routes events to objects.
pub(crate) struct Dispatch {
    pub(crate) context: Arc<Context>,
    pub(crate) directory: Arc<Directory>,
    namespaces: RwLock<HashMap<String, Arc<Namespace>>>,
    /// Every task of the runtime (actors, connections, the scheduler), waited for at shutdown.
    pub(crate) tracker: TaskTracker,
    /// Cancelled when the runtime shuts down: connections close with 1001.
    pub(crate) shutdown: CancellationToken,
    /// Itself, for the actors it starts (their calls to other objects go through it).
    me: Weak<Dispatch>,
}

/// An object as addressed by events from outside its actor.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) namespace: Arc<Namespace>,
    pub(crate) id: ObjectId,
    pub(crate) name: Option<String>,
}

impl Dispatch {
    pub(crate) fn new(context: Arc<Context>, me: Weak<Dispatch>) -> Self {
        Dispatch {
            me,
            directory: Arc::new(Directory::new(context.config.max_active)),
            context,
            namespaces: RwLock::default(),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        }
    }

    pub(crate) fn add_namespace(&self, namespace: Namespace) -> Result<(), Error> {
        let mut namespaces = self.namespaces.write().unwrap_or_else(PoisonError::into_inner);
        let name = namespace.name.to_string();
        if namespaces.contains_key(&name) {
            return Err(Error::InvalidConfig(format!("namespace `{name}` is loaded twice")));
        }
        self.context.host_limits.serve(&name);
        namespaces.insert(name, Arc::new(namespace));
        Ok(())
    }

    pub(crate) fn loaded_namespaces(&self) -> Vec<Arc<Namespace>> {
        self.namespaces.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    pub(crate) fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces.read().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    /// Delivers a request to `object` in `namespace` and waits for its answer, released only after
    /// the event's writes are durable. `chain`: the objects waiting for it through calls.
    pub(crate) async fn fetch(
        &self,
        namespace: &str,
        object: &ObjectRef,
        request: Request,
        upgrade: bool,
        chain: CallChain,
    ) -> Result<(Answer, Target, Arc<Sockets>), EventError> {
        let target = self.target(namespace, object)?;
        let (answer, sockets) = self.fetch_target(&target, request, upgrade, chain).await?;
        Ok((answer, target, sockets))
    }

    /// The object `object` of `namespace`, its name or id checked.
    pub(crate) fn target(&self, namespace: &str, object: &ObjectRef) -> Result<Target, EventError> {
        let namespace =
            self.namespace(namespace).ok_or_else(|| EventError::UnknownNamespace(namespace.to_string()))?;
        Ok(match object {
            ObjectRef::Name(name) => {
                validate_object_name(name)?;
                Target { id: ObjectId::from_name(&namespace.name, name), namespace, name: Some(name.clone()) }
            }
            ObjectRef::Id(id) => {
                let id = ObjectId::parse(&namespace.name, id)
                    .map_err(|err| EventError::BadObjectName(err.to_string()))?;
                Target { id, namespace, name: None }
            }
        })
    }

    /// [`Dispatch::fetch`] to a target already checked.
    pub(crate) async fn fetch_target(
        &self,
        target: &Target,
        request: Request,
        upgrade: bool,
        chain: CallChain,
    ) -> Result<(Answer, Arc<Sockets>), EventError> {
        let (reply, outcome) = oneshot::channel();
        let sockets = self.send(target, Envelope::Fetch { request, upgrade, chain, reply })?;
        let answer = outcome
            .await
            .map_err(|_| EventError::Internal("the object stopped before answering".into()))??;
        Ok((answer, sockets))
    }

    /// Asks the object to run its alarm if due (with `now`, whenever it is due).
    pub(crate) fn fire_alarm(
        &self,
        target: &Target,
        now: bool,
    ) -> Result<oneshot::Receiver<Result<AlarmRun, EventError>>, EventError> {
        let (reply, outcome) = oneshot::channel();
        self.send(target, Envelope::Alarm { now, reply })?;
        Ok(outcome)
    }

    /// Runs an admin call in the object's actor, between its batches.
    pub(crate) async fn admin(&self, target: &Target, op: AdminOp) -> Result<AdminReply, AdminError> {
        let (reply, outcome) = oneshot::channel();
        self.send(target, Envelope::Admin { op, reply })?;
        outcome.await.map_err(|_| AdminError::Internal("the object stopped before answering".into()))?
    }

    /// Queues a socket's event for its object, waiting while the object's mailbox is full (so a
    /// fast client is slowed down, not refused). Dropped if the runtime is shutting down.
    pub(crate) async fn deliver_socket_event(&self, target: &Target, socket: u64, event: SocketEvent) {
        if !self.context.holds(&target.namespace.name, &target.id) {
            // The object moved to another node; its sockets were closed when it left.
            return;
        }
        let key = (target.namespace.name.clone(), target.id);
        let Some(sender) = self.directory.sender(key, || self.start_actor(target)) else { return };
        // A connection waiting here must not hold the actor (and so shutdown) open.
        tokio::select! {
            _ = sender.send(Envelope::Socket { socket, event }) => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    /// Sends `envelope` to the object's actor; returns its sockets.
    fn send(&self, target: &Target, envelope: Envelope) -> Result<Arc<Sockets>, EventError> {
        if !self.context.holds(&target.namespace.name, &target.id) {
            return Err(EventError::Moved);
        }
        let key = (target.namespace.name.clone(), target.id);
        self.directory.send(key, target.name.as_deref(), envelope, || self.start_actor(target))
    }

    fn start_actor(&self, target: &Target) -> ActorHandle {
        let config = &self.context.config;
        let (sender, mailbox) = mpsc::channel(config.max_queued_events.max(1));
        let control = Arc::new(ActorControl::default());
        let sockets = Arc::new(Sockets::default());
        let namespace = &target.namespace;
        let identity = Arc::new(Identity::new(namespace.name.clone(), target.id, target.name.clone()));
        let ctx = ObjectCtx {
            context: self.context.clone(),
            directory: self.directory.clone(),
            namespace: namespace.clone(),
            identity: identity.clone(),
            log_budget: Arc::new(Mutex::new(LogBudget::new(config.log_writes_per_second))),
            db_path: opendo_storage::layout::object_db_path(&config.data_dir, &namespace.name, &target.id),
            control: control.clone(),
            sockets: sockets.clone(),
            dispatch: self.me.clone(),
        };
        self.tracker.spawn(actor::run(ctx, mailbox));
        ActorHandle { sender, control, identity, sockets }
    }
}
