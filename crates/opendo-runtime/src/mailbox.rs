//! What is sent to an object's actor: the events, each with where its outcome goes, and admin
//! calls. Produced by `dispatch.rs` (requests, alarms, admin calls) and `connection.rs` (socket
//! events); consumed by `actor/`.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::admin::ops::{AdminOp, AdminReply};
use crate::error::{AdminError, EventError};
use crate::http::{Request, Response};
use crate::identity::ObjectKey;
use crate::sockets::{Accepted, Sockets};

/// One event waiting in a mailbox, with where its outcome goes.
pub(crate) enum Envelope {
    Fetch {
        request: Request,
        /// Whether the request asks for a WebSocket upgrade (the guest may accept it).
        upgrade: bool,
        /// The objects waiting for the answer through calls; empty for a request from outside.
        chain: CallChain,
        reply: oneshot::Sender<Result<Answer, EventError>>,
    },
    /// The scheduler found the object's alarm (possibly) due; or, `now`, an operator asks it to
    /// run whenever it is due.
    Alarm { now: bool, reply: oneshot::Sender<Result<AlarmRun, EventError>> },
    /// Something happened on one of the object's sockets. Nobody waits for the outcome.
    Socket { socket: u64, event: SocketEvent },
    /// An admin call, run between batches.
    Admin { op: AdminOp, reply: oneshot::Sender<Result<AdminReply, AdminError>> },
}

/// The objects waiting, through calls between objects, for an event's answer: outermost first.
/// A call to one of them would wait forever, so it is refused (`host/calls.rs`).
pub(crate) type CallChain = Arc<[ObjectKey]>;

/// An object's answer to a request: its response and, for an accepted upgrade, the socket.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) response: Response,
    pub(crate) accepted: Option<Accepted>,
}

/// What a connection reports to its object.
#[derive(Debug)]
pub(crate) enum SocketEvent {
    Message(tokio_tungstenite::tungstenite::Message),
    Close { code: u16, reason: String, was_clean: bool },
    Error(String),
}

impl SocketEvent {
    /// A close without a close frame (the connection dropped).
    pub(crate) fn dropped() -> Self {
        SocketEvent::Close { code: 1006, reason: String::new(), was_clean: false }
    }

    /// Whether this is the socket's last event (after it, the socket leaves the table).
    pub(crate) fn ends_socket(&self) -> bool {
        matches!(self, SocketEvent::Close { .. } | SocketEvent::Error(_))
    }
}

impl Envelope {
    pub(crate) fn is_admin(&self) -> bool {
        matches!(self, Envelope::Admin { .. })
    }
}

/// What an alarm event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AlarmRun {
    /// No alarm was due (the index entry was early or stale).
    NotDue,
    /// The handler ran and succeeded.
    Ran,
    /// The handler failed; the alarm is set again for retry number `retry_count`.
    Retrying { retry_count: u32 },
    /// The handler failed after every retry; the alarm was deleted.
    Dropped,
}

impl Envelope {
    /// Answers the event with `err` without running it.
    pub(crate) fn fail(self, sockets: &Sockets, err: EventError) {
        match self {
            Envelope::Fetch { reply, .. } => drop(reply.send(Err(err))),
            Envelope::Alarm { reply, .. } => drop(reply.send(Err(err))),
            Envelope::Admin { reply, .. } => drop(reply.send(Err(err.into()))),
            Envelope::Socket { socket, event } => {
                if event.ends_socket() {
                    sockets.remove(socket);
                }
            }
        }
    }
}
