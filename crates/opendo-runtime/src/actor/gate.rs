//! The output gate: what an event produced (its reply, its socket outputs), held until the batch
//! it ran in is durable, then released, or failed if the batch could not be kept.

use tokio::sync::oneshot;

use crate::error::EventError;
use crate::mailbox::{AlarmRun, Answer};
use crate::sockets::{EventSockets, Outputs, Sockets};

/// An event that ran, with its outcome and socket outputs held until the batch commits.
pub(super) struct Done {
    pub(super) reply: Reply,
    pub(super) outputs: Outputs,
}

/// Where an event's outcome goes, with the outcome.
pub(super) enum Reply {
    Fetch(oneshot::Sender<Result<Answer, EventError>>, Result<Answer, EventError>),
    Alarm(oneshot::Sender<Result<AlarmRun, EventError>>, AlarmRun),
    /// A socket event: nobody waits for it.
    None,
}

impl Done {
    /// The batch is durable: the outputs go to their sockets, the outcome to its caller.
    pub(super) fn release(self, sockets: &Sockets) {
        sockets.release(self.outputs);
        match self.reply {
            Reply::Fetch(reply, outcome) => {
                if let Err(Ok(Answer { accepted: Some(accepted), .. })) = reply.send(outcome) {
                    // The client left before the answer: the socket will never connect.
                    sockets.remove(accepted.socket);
                }
            }
            Reply::Alarm(reply, run) => drop(reply.send(Ok(run))),
            Reply::None => {}
        }
    }

    /// The batch could not be kept: the caller gets `err`, and the outputs never leave.
    pub(super) fn fail(self, sockets: &Sockets, err: EventError) {
        let accepted = match self.reply {
            Reply::Fetch(reply, outcome) => {
                drop(reply.send(Err(err)));
                outcome.ok().and_then(|answer| answer.accepted)
            }
            Reply::Alarm(reply, _) => {
                drop(reply.send(Err(err)));
                None
            }
            Reply::None => None,
        };
        EventSockets { upgrade: false, accepted, outputs: self.outputs }.discard(sockets);
    }
}

/// What a caller is told when the object's storage failed under its event.
pub(super) fn storage_failure() -> EventError {
    EventError::Internal("the object's storage failed; the server log has the cause".into())
}
