//! One event of a batch: its savepoint, its call into the guest, and what it leaves for the
//! output gate. (The alarm event is in `alarm.rs`.)

use std::time::Instant;

use opendo_storage::ObjectDb;

use super::instance::{Active, GuestCall, Returned};
use super::object::ObjectCtx;
use crate::bindings::WsMessage;
use crate::error::EventError;
use crate::host::EventInfo;
use crate::http::Request;
use crate::mailbox::{Answer, CallChain, SocketEvent};
use crate::sockets::{EventSockets, Outputs};

pub(super) async fn run_fetch(
    ctx: &ObjectCtx,
    active: &mut Active,
    request: Request,
    upgrade: bool,
    chain: CallChain,
    alone: bool,
) -> Result<(Result<Answer, EventError>, Outputs), opendo_storage::Error> {
    begin_event(ctx, active, alone, chain)?;
    active.store.data_mut().event_sockets.upgrade = upgrade;
    let mut result = active.fetch(ctx, request).await;
    let mut sockets = active.take_event_sockets();
    let undo = result.as_mut().is_ok_and(crate::http::take_rollback);
    let refused = finish_event(ctx, active, result.is_ok() && !undo, &mut sockets)?;
    if result.is_err() {
        active.reset();
    }
    if undo && let Ok(response) = result {
        // The object answered and asked for its writes (and the messages it sent) to be undone.
        sockets.discard(&ctx.sockets);
        return Ok((Ok(Answer { response, accepted: None }), Vec::new()));
    }
    let outcome = match (result, refused) {
        (Err(cause), _) => Err(EventError::Trapped(cause)),
        (Ok(_), Some(reason)) => Err(EventError::Refused(reason.to_string())),
        (Ok(response), None) => {
            // Only a 101 answer completes an upgrade; any other status discards the socket.
            let accepted = if response.status == 101 { sockets.accepted.take() } else { None };
            Ok(Answer { response, accepted })
        }
    };
    if outcome.is_err() {
        sockets.discard(&ctx.sockets);
        return Ok((outcome, Vec::new()));
    }
    if let Some(unused) = sockets.accepted.take() {
        ctx.sockets.remove(unused.socket);
    }
    Ok((outcome, sockets.outputs))
}

/// Starts an event (see `ObjectDb::begin_event`) with its CPU deadline, waited on by the
/// objects of `chain`; returns the database.
pub(super) fn begin_event<'a>(
    ctx: &ObjectCtx,
    active: &'a mut Active,
    alone: bool,
    chain: CallChain,
) -> Result<&'a mut ObjectDb, opendo_storage::Error> {
    active.store.data_mut().event = EventInfo::new(chain);
    let db = active.db()?;
    db.begin_event(alone)?;
    db.set_deadline(Some(Instant::now() + ctx.namespace.limits.cpu_limit));
    Ok(db)
}

/// Ends the event's savepoint (see `ObjectDb::finish_event`). If the database fails, the
/// event's socket outputs are undone before the error ends the batch.
fn finish_event(
    ctx: &ObjectCtx,
    active: &mut Active,
    keep: bool,
    sockets: &mut EventSockets,
) -> Result<Option<opendo_storage::Error>, opendo_storage::Error> {
    let finished = active.db().and_then(|db| db.finish_event(keep));
    if finished.is_err() {
        std::mem::take(sockets).discard(&ctx.sockets);
    }
    finished
}

/// Runs a guest handler that returns `result<_, string>` as one event: its writes and socket
/// outputs are kept only if it returns `ok`. Returns the failure, if any, for the log.
pub(super) async fn run_handler(
    ctx: &ObjectCtx,
    active: &mut Active,
    call: GuestCall,
) -> Result<(Option<String>, Outputs), opendo_storage::Error> {
    let result = active.call(ctx, call).await;
    let mut sockets = active.take_event_sockets();
    let failure = match &result {
        Ok(Returned::Handled(Ok(()))) => None,
        Ok(Returned::Handled(Err(message))) => Some(format!("the handler returned an error: {message}")),
        Ok(Returned::Response(_)) => Some("the handler answered like `fetch`".to_string()),
        Err(cause) => Some(format!("the handler trapped: {cause}")),
    };
    let refused = finish_event(ctx, active, failure.is_none(), &mut sockets)?;
    if result.is_err() {
        active.reset();
    }
    match failure.or(refused.map(|e| e.to_string())) {
        None => Ok((None, sockets.outputs)),
        Some(reason) => {
            sockets.discard(&ctx.sockets);
            Ok((Some(reason), Vec::new()))
        }
    }
}

/// Delivers a socket's message, close or error to the guest.
pub(super) async fn run_socket_event(
    ctx: &ObjectCtx,
    active: &mut Active,
    socket: u64,
    event: SocketEvent,
    alone: bool,
) -> Result<Outputs, opendo_storage::Error> {
    let ends = event.ends_socket();
    let result = call_socket_handler(ctx, active, socket, event, alone).await;
    if ends {
        // The object was told (or its storage failed trying): the tags and attachment go now.
        ctx.sockets.remove(socket);
    }
    result
}

async fn call_socket_handler(
    ctx: &ObjectCtx,
    active: &mut Active,
    socket: u64,
    event: SocketEvent,
    alone: bool,
) -> Result<Outputs, opendo_storage::Error> {
    use tokio_tungstenite::tungstenite::Message;
    begin_event(ctx, active, alone, CallChain::default())?;
    let (kind, call) = match event {
        SocketEvent::Message(Message::Text(text)) => {
            ("websocket-message", GuestCall::SocketMessage(socket, WsMessage::Text(text.to_string())))
        }
        SocketEvent::Message(message) => (
            "websocket-message",
            GuestCall::SocketMessage(socket, WsMessage::Binary(message.into_data().to_vec())),
        ),
        SocketEvent::Close { code, reason, was_clean } => {
            ("websocket-close", GuestCall::SocketClose { socket, code, reason, was_clean })
        }
        SocketEvent::Error(message) => ("websocket-error", GuestCall::SocketError(socket, message)),
    };
    let (failure, outputs) = run_handler(ctx, active, call).await?;
    if let Some(reason) = failure {
        tracing::warn!(
            namespace = %ctx.identity.namespace,
            object = %ctx.identity.id,
            socket,
            "{kind} rolled back: {reason}"
        );
    }
    Ok(outputs)
}
