//! `opendo:durable-object/objects.fetch`: a call to another object. The request runs as an
//! ordinary event of the callee; the caller's fiber waits for it without holding a thread
//! (`actor/blocking.rs`).
//!
//! Before the request leaves, the caller's writes so far are committed and durable (the output
//! gate, `actor::commit_inside_event`). A call to an object already waiting in the chain would
//! wait forever (the callee's actor is busy with the event that waits), so it fails at once;
//! so does a chain deeper than [`MAX_CALL_DEPTH`]. Calls between chains that wait on each other
//! end at the call timeout.

use std::time::Instant;

use super::store::Host;
use crate::admin::model::ObjectRef;
use crate::bindings::opendo::durable_object::objects::{CallError, CallErrorCode, Target};
use crate::bindings::{GuestRequest, GuestResponse};
use crate::error::EventError;
use crate::host::StorageFailure;
use crate::http::Request;
use crate::mailbox::CallChain;

/// Most objects in one chain of calls, the first caller and the last callee included.
pub(crate) const MAX_CALL_DEPTH: usize = 16;

impl Host {
    pub(super) async fn call_object(
        &mut self,
        namespace: String,
        target: Target,
        request: GuestRequest,
    ) -> wasmtime::Result<Result<GuestResponse, CallError>> {
        let object = self.object.clone();
        let Some(dispatch) = object.dispatch.upgrade() else {
            return Ok(Err(call_error(CallErrorCode::Unavailable, "the server is shutting down")));
        };
        let target = match target {
            Target::Name(name) => ObjectRef::Name(name),
            Target::Id(id) => ObjectRef::Id(id),
        };
        let callee = match dispatch.target(&namespace, &target) {
            Ok(callee) => callee,
            Err(err) => return Ok(Err(call_error(CallErrorCode::InvalidArgument, err.to_string()))),
        };
        if !request.path.starts_with('/') {
            let message = format!("the request's path must start with `/`, not {:?}", request.path);
            return Ok(Err(call_error(CallErrorCode::InvalidArgument, message)));
        }
        let me = object.key();
        let callee_key = (callee.namespace.name.clone(), callee.id);
        let chain = self.event.chain.clone();
        if callee_key == me || chain.contains(&callee_key) {
            let message = format!(
                "object {} of `{}` is already waiting in this chain of calls; calling it would wait forever",
                callee.id, callee.namespace.name
            );
            return Ok(Err(call_error(CallErrorCode::Cycle, message)));
        }
        if chain.len() + 2 > MAX_CALL_DEPTH {
            let message = format!("a chain of calls may hold at most {MAX_CALL_DEPTH} objects");
            return Ok(Err(call_error(CallErrorCode::TooDeep, message)));
        }
        match crate::actor::commit_inside_event(&object, self) {
            Ok(()) => {}
            Err(err @ opendo_storage::Error::Transaction(_)) => {
                return Ok(Err(call_error(CallErrorCode::InTransaction, err.to_string())));
            }
            Err(err @ opendo_storage::Error::Sql { .. }) => {
                return Ok(Err(call_error(CallErrorCode::InvalidArgument, err.to_string())));
            }
            // The batch's commit failed: nothing the guest can handle.
            Err(err) => return Err(wasmtime::Error::new(StorageFailure(err.to_string()))),
        }
        let chain: CallChain = chain.iter().cloned().chain(std::iter::once(me)).collect();
        let GuestRequest { method, path, headers, body } = request;
        let request = Request { method, path, headers, body };
        let timeout = object.context.config.call_timeout;
        let waiting = Instant::now();
        let answered =
            tokio::time::timeout(timeout, dispatch.fetch_target(&callee, request, false, chain)).await;
        self.event.waited += waiting.elapsed();
        if let Some(db) = self.db.as_ref() {
            // The SQL deadline moves by the wait too.
            db.set_deadline(Some(self.event.started + self.event.waited + object.namespace.limits.cpu_limit));
        }
        Ok(match answered {
            Ok(Ok((answer, _))) => {
                let response = answer.response;
                Ok(GuestResponse { status: response.status, headers: response.headers, body: response.body })
            }
            Ok(Err(err)) => Err(callee_error(err)),
            Err(_) => Err(call_error(
                CallErrorCode::Timeout,
                format!(
                    "no answer from object {} of `{}` within {timeout:?}",
                    callee.id, callee.namespace.name
                ),
            )),
        })
    }
}

fn call_error(code: CallErrorCode, message: impl Into<String>) -> CallError {
    CallError { code, message: message.into() }
}

fn callee_error(err: EventError) -> CallError {
    let code = match &err {
        EventError::UnknownNamespace(_) | EventError::BadObjectName(_) => CallErrorCode::InvalidArgument,
        EventError::Trapped(_) | EventError::Refused(_) => CallErrorCode::CalleeFailed,
        EventError::Overloaded => CallErrorCode::Overloaded,
        EventError::ShuttingDown | EventError::Internal(_) => CallErrorCode::Unavailable,
    };
    call_error(code, err.to_string())
}
