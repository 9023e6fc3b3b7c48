//! `opendo:durable-object/objects.fetch`: a call to another object. The request runs as an
//! ordinary event of the callee; the caller's fiber waits for it without holding a thread
//! (`actor/blocking.rs`).
//!
//! Before the request leaves, the caller's writes so far are committed and durable (the output
//! gate, `actor::commit_inside_event`). A call to an object already waiting in the chain would
//! wait forever (the callee's actor is busy with the event that waits), so it fails at once;
//! so does a chain deeper than [`MAX_CALL_DEPTH`]. Calls between chains that wait on each other
//! end at the call timeout.

use std::sync::Arc;
use std::time::Instant;

use super::store::{EventInfo, Host};
use crate::admin::model::ObjectRef;
use crate::bindings::opendo::durable_object::objects::{self, CallError, CallErrorCode};
use crate::bindings::{GuestRequest, GuestResponse};
use crate::dispatch::{Dispatch, Target};
use crate::error::EventError;
use crate::host::StorageFailure;
use crate::http::Request;
use crate::identity::ObjectKey;
use crate::mailbox::{Answer, CallChain};
use crate::sockets::{Accepted, Sockets};

/// Most objects in one chain of calls, the first caller and the last callee included.
pub(crate) const MAX_CALL_DEPTH: usize = 16;

impl Host {
    pub(super) async fn call_object(
        &mut self,
        namespace: String,
        target: objects::Target,
        request: GuestRequest,
    ) -> wasmtime::Result<Result<GuestResponse, CallError>> {
        let object = self.object.clone();
        let Some(dispatch) = object.dispatch.upgrade() else {
            return Ok(Err(call_error(CallErrorCode::Unavailable, "the server is shutting down")));
        };
        let stats = &object.namespace.stats;
        stats.calls.inc();
        let prepared =
            Call::prepare(&dispatch, &self.event.chain, Some(object.key()), &namespace, target, request);
        let call = match prepared {
            Ok(call) => call,
            Err(err) => {
                stats.call_errors.inc();
                return Ok(Err(err));
            }
        };
        match crate::actor::commit_inside_event(&object, self) {
            Ok(()) => {}
            Err(err @ opendo_storage::Error::Transaction(_)) => {
                stats.call_errors.inc();
                return Ok(Err(call_error(CallErrorCode::InTransaction, err.to_string())));
            }
            Err(err @ opendo_storage::Error::Sql { .. }) => {
                stats.call_errors.inc();
                return Ok(Err(call_error(CallErrorCode::InvalidArgument, err.to_string())));
            }
            // The batch's commit failed: nothing the guest can handle.
            Err(err) => return Err(wasmtime::Error::new(StorageFailure(err.to_string()))),
        }
        let answered = call.send(&dispatch, &mut self.event).await.map(|answered| answered.response);
        if answered.is_err() {
            stats.call_errors.inc();
        }
        if let Some(db) = self.db.as_ref() {
            // The SQL deadline moves by the wait too.
            db.set_deadline(Some(self.event.started + self.event.waited + object.namespace.limits.cpu_limit));
        }
        Ok(answered)
    }
}

/// A call checked and ready to leave.
pub(crate) struct Call {
    callee: Target,
    /// The chain the callee's event is waited on by.
    chain: CallChain,
    request: Request,
    /// Sent as a WebSocket upgrade: the callee may accept a socket (a front passing on a
    /// client's upgrade).
    pub(crate) upgrade: bool,
}

/// What a call brought back.
pub(crate) struct Answered {
    pub(crate) response: GuestResponse,
    /// The socket the callee accepted, for a call sent as an upgrade.
    pub(crate) socket: Option<UpgradedSocket>,
}

/// A socket an object accepted through a call, until the client's connection is handed to it.
pub(crate) struct UpgradedSocket {
    pub(crate) target: Target,
    pub(crate) sockets: Arc<Sockets>,
    pub(crate) accepted: Accepted,
}

impl Call {
    /// Checks a call made by `caller` (none for a front) from an event waited on by `chain`.
    /// Nothing is sent yet.
    pub(crate) fn prepare(
        dispatch: &Dispatch,
        chain: &CallChain,
        caller: Option<ObjectKey>,
        namespace: &str,
        target: objects::Target,
        request: GuestRequest,
    ) -> Result<Call, CallError> {
        let target = match target {
            objects::Target::Name(name) => ObjectRef::Name(name),
            objects::Target::Id(id) => ObjectRef::Id(id),
        };
        let callee = dispatch
            .target(namespace, &target)
            .map_err(|err| call_error(CallErrorCode::InvalidArgument, err.to_string()))?;
        if !request.path.starts_with('/') {
            let message = format!("the request's path must start with `/`, not {:?}", request.path);
            return Err(call_error(CallErrorCode::InvalidArgument, message));
        }
        let callee_key = (callee.namespace.name.clone(), callee.id);
        if caller.as_ref() == Some(&callee_key) || chain.contains(&callee_key) {
            let message = format!(
                "object {} of `{}` is already waiting in this chain of calls; calling it would wait forever",
                callee.id, callee.namespace.name
            );
            return Err(call_error(CallErrorCode::Cycle, message));
        }
        let waiting: Vec<ObjectKey> = chain.iter().cloned().chain(caller).collect();
        if waiting.len() + 1 > MAX_CALL_DEPTH {
            let message = format!("a chain of calls may hold at most {MAX_CALL_DEPTH} objects");
            return Err(call_error(CallErrorCode::TooDeep, message));
        }
        let GuestRequest { method, path, headers, body } = request;
        Ok(Call {
            callee,
            chain: waiting.into(),
            request: Request { method, path, headers, body },
            upgrade: false,
        })
    }

    /// Sends the call and waits for the answer (at most the call timeout), adding the wait to
    /// `event`'s.
    pub(crate) async fn send(
        self,
        dispatch: &Dispatch,
        event: &mut EventInfo,
    ) -> Result<Answered, CallError> {
        let Call { callee, chain, request, upgrade } = self;
        let timeout = dispatch.context.config.call_timeout;
        let waiting = Instant::now();
        let answered =
            tokio::time::timeout(timeout, deliver(dispatch, &callee, request, upgrade, chain)).await;
        event.waited += waiting.elapsed();
        match answered {
            Ok(Ok((answer, sockets))) => {
                let response = answer.response;
                let socket = answer.accepted.map(|accepted| UpgradedSocket {
                    target: callee.clone(),
                    sockets,
                    accepted,
                });
                let response =
                    GuestResponse { status: response.status, headers: response.headers, body: response.body };
                Ok(Answered { response, socket })
            }
            Ok(Err(err)) => Err(callee_error(err)),
            Err(_) => Err(call_error(
                CallErrorCode::Timeout,
                format!(
                    "no answer from object {} of `{}` within {timeout:?}",
                    callee.id, callee.namespace.name
                ),
            )),
        }
    }
}

/// Delivers a call to its callee: here, or on the cluster's node that holds it (a WebSocket
/// upgrade only here), trying again while the callee moves between nodes.
async fn deliver(
    dispatch: &Dispatch,
    callee: &Target,
    request: Request,
    upgrade: bool,
    chain: CallChain,
) -> Result<(Answer, Arc<Sockets>), EventError> {
    let Some(cluster) = dispatch.context.config.cluster.as_ref().filter(|_| !upgrade) else {
        return dispatch.fetch_target(callee, request, upgrade, chain).await;
    };
    loop {
        match dispatch.fetch_target(callee, request.clone(), false, chain.clone()).await {
            Err(EventError::Moved) => {}
            answered => return answered,
        }
        let name = callee.name.as_deref();
        match cluster
            .0
            .call_elsewhere(&callee.namespace.name, &callee.id, name, request.clone(), &chain)
            .await
        {
            Ok(response) => return Ok((Answer { response, accepted: None }, Arc::new(Sockets::default()))),
            // Here after all: again.
            Err(EventError::Moved) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Err(err) => return Err(err),
        }
    }
}

pub(super) fn call_error(code: CallErrorCode, message: impl Into<String>) -> CallError {
    CallError { code, message: message.into() }
}

fn callee_error(err: EventError) -> CallError {
    let code = match &err {
        EventError::UnknownNamespace(_) | EventError::BadObjectName(_) => CallErrorCode::InvalidArgument,
        EventError::Trapped(_) | EventError::Refused(_) => CallErrorCode::CalleeFailed,
        EventError::Overloaded => CallErrorCode::Overloaded,
        EventError::ShuttingDown | EventError::Moved | EventError::Internal(_) => CallErrorCode::Unavailable,
    };
    call_error(code, err.to_string())
}
