//! What an actor knows of its object and of the runtime it runs in.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use crate::context::Context;
use crate::directory::{ActorControl, Directory};
use crate::dispatch::Dispatch;
use crate::host::LogBudget;
use crate::identity::{Identity, ObjectKey};
use crate::namespace::Namespace;
use crate::sockets::Sockets;

/// What an actor needs to know, shared with its blocking batches.
pub(crate) struct ObjectCtx {
    pub(crate) context: Arc<Context>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) namespace: Arc<Namespace>,
    pub(crate) identity: Arc<Identity>,
    /// How much guest output may still reach the log; kept across resets of the instance.
    pub(crate) log_budget: Arc<Mutex<LogBudget>>,
    pub(crate) db_path: PathBuf,
    pub(crate) control: Arc<ActorControl>,
    /// The object's WebSockets; they outlive its instance (see `sockets.rs`).
    pub(crate) sockets: Arc<Sockets>,
    /// Where its calls to other objects go (weak: the dispatch holds the actors).
    pub(crate) dispatch: Weak<Dispatch>,
}

impl ObjectCtx {
    /// The object's key in the directory.
    pub(crate) fn key(&self) -> ObjectKey {
        (self.identity.namespace.clone(), self.identity.id)
    }
}
