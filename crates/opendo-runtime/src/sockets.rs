//! Hibernatable WebSockets: the runtime owns every connection, the object only sees events.
//!
//! Each object's actor has one [`Sockets`] table, shared with its host state (the guest's
//! `websockets` calls) and with the connection tasks (`connection.rs`). The table lives as long as
//! the actor, and an actor with open sockets never leaves the runtime's table: when it hibernates
//! it drops its instance and database only, so sockets, tags and attachments are there when the
//! next message wakes it.
//!
//! Outputs follow the output gate: a guest's sends and closes are collected during the event
//! ([`EventSockets`]) and handed to the connections only after the event's batch commits.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::error::Refusal;

/// Most tags per socket.
pub const MAX_TAGS: usize = 10;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 256;
/// Largest attachment, in bytes.
pub const MAX_ATTACHMENT_BYTES: usize = 16 * 1024;
/// Longest auto-response request or response text, in bytes.
pub const MAX_AUTO_RESPONSE_BYTES: usize = 2048;
/// Longest close reason, in bytes (a close frame's payload is at most 125 bytes).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// What a connection task is asked to write.
#[derive(Debug)]
pub(crate) enum Outbound {
    Message(Message),
    Close { code: u16, reason: String },
}

/// Socket outputs of an event, in call order: each with the socket it goes to.
pub(crate) type Outputs = Vec<(u64, Outbound)>;

/// A guest's pair of texts answered by the runtime without waking the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AutoResponse {
    pub(crate) request: String,
    pub(crate) response: String,
}

/// One open socket as the object sees it.
#[derive(Debug)]
struct Socket {
    tags: Vec<String>,
    attachment: Option<Vec<u8>>,
    outbound: mpsc::UnboundedSender<Outbound>,
    /// Bytes handed to the connection (or reserved by the running event) and not yet written.
    backlog: Arc<AtomicUsize>,
    auto_response_at: Option<i64>,
    /// Closed by the client or failed: no longer listed or writable, but its tags and attachment
    /// stay readable until the object has handled the close or error event.
    closed: bool,
}

/// An object's open sockets and its auto-response pair.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    open: BTreeMap<u64, Socket>,
    auto_response: Option<AutoResponse>,
}

/// The connection side of a socket the guest accepted: what the connection task reads from.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) socket: u64,
    pub(crate) outbound: mpsc::UnboundedReceiver<Outbound>,
    pub(crate) backlog: Arc<AtomicUsize>,
}

impl Sockets {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table().open.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.table().open.len()
    }

    /// Adds a socket with `tags` (already checked) under the number `socket`.
    pub(crate) fn open(&self, socket: u64, tags: Vec<String>) -> Accepted {
        let (sender, outbound) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        self.table().open.insert(
            socket,
            Socket {
                tags,
                attachment: None,
                outbound: sender,
                backlog: backlog.clone(),
                auto_response_at: None,
                closed: false,
            },
        );
        Accepted { socket, outbound, backlog }
    }

    /// Closes every socket with `code` and `reason`: each leaves the table, and its connection
    /// finishes the close handshake without telling the object.
    pub(crate) fn close_all(&self, code: u16, reason: &str) {
        let mut table = self.table();
        for (_, socket) in std::mem::take(&mut table.open) {
            let _ = socket.outbound.send(Outbound::Close { code, reason: reason.to_string() });
        }
    }

    /// Removes a socket.
    pub(crate) fn remove(&self, socket: u64) {
        self.table().open.remove(&socket);
    }

    /// Marks a socket closed by its client (see [`Socket::closed`]); returns whether it was open,
    /// that is whether the object is still to be told.
    pub(crate) fn mark_closed(&self, socket: u64) -> bool {
        match self.table().open.get_mut(&socket) {
            Some(entry) if !entry.closed => {
                entry.closed = true;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn is_open(&self, socket: u64) -> bool {
        self.table().open.get(&socket).is_some_and(|s| !s.closed)
    }

    pub(crate) fn list(&self, tag: Option<&str>) -> Vec<u64> {
        let table = self.table();
        table
            .open
            .iter()
            .filter(|(_, s)| !s.closed && tag.is_none_or(|tag| s.tags.iter().any(|t| t == tag)))
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn tags(&self, socket: u64) -> Option<Vec<String>> {
        self.table().open.get(&socket).map(|s| s.tags.clone())
    }

    pub(crate) fn attachment(&self, socket: u64) -> Option<Vec<u8>> {
        self.table().open.get(&socket).and_then(|s| s.attachment.clone())
    }

    pub(crate) fn set_attachment(&self, socket: u64, attachment: Option<Vec<u8>>) -> Result<(), Refusal> {
        if let Some(bytes) = &attachment
            && bytes.len() > MAX_ATTACHMENT_BYTES
        {
            return Err(Refusal::LimitExceeded(format!(
                "attachment of {} bytes is larger than the limit of {MAX_ATTACHMENT_BYTES} bytes",
                bytes.len()
            )));
        }
        let mut table = self.table();
        let entry = table.open.get_mut(&socket).filter(|s| !s.closed).ok_or_else(|| not_open(socket))?;
        entry.attachment = attachment;
        Ok(())
    }

    pub(crate) fn auto_response(&self) -> Option<AutoResponse> {
        self.table().auto_response.clone()
    }

    pub(crate) fn set_auto_response(&self, pair: Option<AutoResponse>) {
        self.table().auto_response = pair;
    }

    pub(crate) fn auto_response_at(&self, socket: u64) -> Option<i64> {
        self.table().open.get(&socket).and_then(|s| s.auto_response_at)
    }

    /// If `text` is the auto-response request, the response to send (and the socket's
    /// auto-response time is set to `now_ms`).
    pub(crate) fn answer(&self, socket: u64, text: &str, now_ms: i64) -> Option<String> {
        let mut table = self.table();
        let response = match &table.auto_response {
            Some(pair) if pair.request == text => pair.response.clone(),
            _ => return None,
        };
        if let Some(entry) = table.open.get_mut(&socket) {
            entry.auto_response_at = Some(now_ms);
        }
        Some(response)
    }

    /// Reserves room in a socket's backlog for an outgoing message of `len` bytes, refusing it
    /// if the socket is not open or its backlog would pass `limit`.
    pub(crate) fn reserve(&self, socket: u64, len: usize, limit: usize) -> Result<(), Refusal> {
        let table = self.table();
        let entry = table.open.get(&socket).filter(|s| !s.closed).ok_or_else(|| not_open(socket))?;
        let queued = entry.backlog.fetch_add(len, Ordering::Relaxed);
        if queued.saturating_add(len) > limit {
            entry.backlog.fetch_sub(len, Ordering::Relaxed);
            return Err(Refusal::LimitExceeded(format!(
                "socket {socket} has {queued} bytes waiting to be sent (limit {limit}): the client is not reading"
            )));
        }
        Ok(())
    }

    /// Gives back a reservation made by [`Sockets::reserve`] for an output that will not be sent.
    fn unreserve(&self, socket: u64, len: usize) {
        if let Some(entry) = self.table().open.get(&socket) {
            entry.backlog.fetch_sub(len, Ordering::Relaxed);
        }
    }

    /// Hands committed outputs to their connections, in order. A close removes the socket.
    pub(crate) fn release(&self, outputs: Outputs) {
        let mut table = self.table();
        for (socket, output) in outputs {
            let closing = matches!(output, Outbound::Close { .. });
            let Some(entry) = table.open.get(&socket).filter(|s| !s.closed) else { continue };
            // A connection that already ended drops what is sent to it.
            let _ = entry.outbound.send(output);
            if closing {
                table.open.remove(&socket);
            }
        }
    }
}

fn not_open(socket: u64) -> Refusal {
    Refusal::InvalidArgument(format!("socket {socket} is not open"))
}

/// What one event did to sockets, held until the event's outcome is known.
#[derive(Debug, Default)]
pub(crate) struct EventSockets {
    /// Whether the running event is a `fetch` of a WebSocket upgrade request.
    pub(crate) upgrade: bool,
    /// The socket the guest accepted for that request.
    pub(crate) accepted: Option<Accepted>,
    /// Sends and closes, in call order.
    pub(crate) outputs: Outputs,
}

impl EventSockets {
    /// Undoes what a failed event did: its accepted socket never connects and its outputs are
    /// dropped.
    pub(crate) fn discard(self, sockets: &Sockets) {
        if let Some(accepted) = self.accepted {
            sockets.remove(accepted.socket);
        }
        for (socket, output) in self.outputs {
            if let Outbound::Message(message) = output {
                sockets.unreserve(socket, message.len());
            }
        }
    }
}

/// Checks the tags of a socket being accepted.
pub(crate) fn check_tags(tags: &[String]) -> Result<(), Refusal> {
    if tags.len() > MAX_TAGS {
        return Err(Refusal::LimitExceeded(format!(
            "{} tags given; a socket has at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for tag in tags {
        let chars = tag.chars().count();
        if chars == 0 || chars > MAX_TAG_CHARS {
            return Err(Refusal::InvalidArgument(format!(
                "a tag has {chars} characters; tags have 1 to {MAX_TAG_CHARS}"
            )));
        }
    }
    Ok(())
}

/// Checks a close code and reason a guest wants to send.
pub(crate) fn check_close(code: u16, reason: &str) -> Result<(), Refusal> {
    if code != 1000 && !(3000..=4999).contains(&code) {
        return Err(Refusal::InvalidArgument(format!(
            "close code {code} may not be sent; use 1000 or 3000 to 4999"
        )));
    }
    if reason.len() > MAX_CLOSE_REASON_BYTES {
        return Err(Refusal::InvalidArgument(format!(
            "close reason of {} bytes is longer than {MAX_CLOSE_REASON_BYTES} bytes",
            reason.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_for_count_and_length() {
        assert!(check_tags(&vec!["a".to_string(); 10]).is_ok());
        assert!(matches!(check_tags(&vec!["a".to_string(); 11]), Err(Refusal::LimitExceeded(_))));
        assert!(check_tags(&["é".repeat(256)]).is_ok());
        assert!(matches!(check_tags(&["é".repeat(257)]), Err(Refusal::InvalidArgument(_))));
        assert!(matches!(check_tags(&[String::new()]), Err(Refusal::InvalidArgument(_))));
    }

    #[test]
    fn close_codes_reserved_for_the_protocol_are_refused() {
        assert!(check_close(1000, "bye").is_ok());
        assert!(check_close(4000, "").is_ok());
        for code in [0, 999, 1001, 1005, 1006, 1015, 2999, 5000] {
            assert!(check_close(code, "").is_err(), "{code}");
        }
        assert!(check_close(1000, &"x".repeat(124)).is_err());
    }

    #[test]
    fn backlog_is_bounded_and_given_back_by_a_failed_event() {
        let sockets = Sockets::default();
        let accepted = sockets.open(7, vec!["room".into()]);
        sockets.reserve(7, 60, 100).expect("first message fits");
        assert!(matches!(sockets.reserve(7, 60, 100), Err(Refusal::LimitExceeded(_))));
        let event = EventSockets {
            outputs: vec![(7, Outbound::Message(Message::text("x".repeat(60))))],
            ..EventSockets::default()
        };
        event.discard(&sockets);
        assert_eq!(accepted.backlog.load(Ordering::Relaxed), 0);
        assert!(matches!(sockets.reserve(8, 1, 100), Err(Refusal::InvalidArgument(_))));
    }

    #[test]
    fn a_released_close_removes_the_socket_after_its_messages() {
        let sockets = Sockets::default();
        let mut accepted = sockets.open(1, vec![]);
        sockets.release(vec![
            (1, Outbound::Message(Message::text("last words"))),
            (1, Outbound::Close { code: 1000, reason: "bye".into() }),
            (1, Outbound::Message(Message::text("never sent"))),
        ]);
        assert!(!sockets.is_open(1));
        assert!(matches!(accepted.outbound.try_recv(), Ok(Outbound::Message(_))));
        assert!(matches!(accepted.outbound.try_recv(), Ok(Outbound::Close { code: 1000, .. })));
        assert!(accepted.outbound.try_recv().is_err());
    }

    #[test]
    fn auto_response_answers_only_the_exact_request_and_stamps_the_socket() {
        let sockets = Sockets::default();
        let _accepted = sockets.open(1, vec![]);
        sockets.set_auto_response(Some(AutoResponse { request: "ping".into(), response: "pong".into() }));
        assert_eq!(sockets.answer(1, "ping ", 5), None);
        assert_eq!(sockets.auto_response_at(1), None);
        assert_eq!(sockets.answer(1, "ping", 5).as_deref(), Some("pong"));
        assert_eq!(sockets.auto_response_at(1), Some(5));
    }
}
