//! `opendo:durable-object/websockets`: the object's sockets, as seen from inside an event.

use std::sync::atomic::Ordering;

use tokio_tungstenite::tungstenite::Message;

use super::Host;
use crate::bindings::opendo::durable_object::websockets::{self, AutoResponse as WitAutoResponse};
use crate::bindings::{ErrorCode, GuestError, WsMessage};
use crate::websocket::{self as ws, AutoResponse, Outbound, Refusal};

type GuestResult<T> = wasmtime::Result<Result<T, GuestError>>;

fn refused<T>(refusal: Refusal) -> GuestResult<T> {
    let (code, message) = match refusal {
        Refusal::InvalidArgument(message) => (ErrorCode::InvalidArgument, message),
        Refusal::LimitExceeded(message) => (ErrorCode::LimitExceeded, message),
    };
    Ok(Err(GuestError { code, message, sqlite_code: None }))
}

impl websockets::Host for Host {
    fn accept(&mut self, tags: Vec<String>) -> GuestResult<u64> {
        if !self.event_sockets.upgrade {
            return refused(Refusal::InvalidArgument(
                "accept is only possible while handling a WebSocket upgrade request".into(),
            ));
        }
        if self.event_sockets.accepted.is_some() {
            return refused(Refusal::InvalidArgument("this request's WebSocket is already accepted".into()));
        }
        if let Err(refusal) = ws::check_tags(&tags) {
            return refused(refusal);
        }
        let limit = self.shared.config.max_websockets_per_object;
        if self.sockets.len() >= limit {
            return refused(Refusal::LimitExceeded(format!("the object already has {limit} open sockets")));
        }
        let socket = self.shared.next_socket.fetch_add(1, Ordering::Relaxed);
        self.event_sockets.accepted = Some(self.sockets.open(socket, tags));
        Ok(Ok(socket))
    }

    fn send(&mut self, socket: u64, message: WsMessage) -> GuestResult<()> {
        let message = match message {
            WsMessage::Text(text) => Message::text(text),
            WsMessage::Binary(bytes) => Message::binary(bytes),
        };
        let max = self.shared.config.max_websocket_message_bytes;
        if message.len() > max {
            return refused(Refusal::LimitExceeded(format!(
                "message of {} bytes is larger than the limit of {max} bytes",
                message.len()
            )));
        }
        // A client that reads nothing may keep at most two full-size messages waiting.
        if let Err(refusal) = self.sockets.reserve(socket, message.len(), max.saturating_mul(2)) {
            return refused(refusal);
        }
        self.event_sockets.outputs.push((socket, Outbound::Message(message)));
        Ok(Ok(()))
    }

    fn close(&mut self, socket: u64, code: u16, reason: String) -> GuestResult<()> {
        if let Err(refusal) = ws::check_close(code, &reason) {
            return refused(refusal);
        }
        if !self.sockets.is_open(socket) {
            return refused(Refusal::InvalidArgument(format!("socket {socket} is not open")));
        }
        self.event_sockets.outputs.push((socket, Outbound::Close { code, reason }));
        Ok(Ok(()))
    }

    fn list_sockets(&mut self, tag: Option<String>) -> wasmtime::Result<Vec<u64>> {
        Ok(self.sockets.list(tag.as_deref()))
    }

    fn tags(&mut self, socket: u64) -> wasmtime::Result<Option<Vec<String>>> {
        Ok(self.sockets.tags(socket))
    }

    fn get_attachment(&mut self, socket: u64) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.sockets.attachment(socket))
    }

    fn set_attachment(&mut self, socket: u64, attachment: Option<Vec<u8>>) -> GuestResult<()> {
        match self.sockets.set_attachment(socket, attachment) {
            Ok(()) => Ok(Ok(())),
            Err(refusal) => refused(refusal),
        }
    }

    fn set_auto_response(&mut self, pair: Option<WitAutoResponse>) -> GuestResult<()> {
        if let Some(pair) = &pair {
            let longest = pair.request.len().max(pair.response.len());
            if longest > ws::MAX_AUTO_RESPONSE_BYTES {
                return refused(Refusal::LimitExceeded(format!(
                    "auto-response text of {longest} bytes is longer than {} bytes",
                    ws::MAX_AUTO_RESPONSE_BYTES
                )));
            }
        }
        self.sockets
            .set_auto_response(pair.map(|p| AutoResponse { request: p.request, response: p.response }));
        Ok(Ok(()))
    }

    fn get_auto_response(&mut self) -> wasmtime::Result<Option<WitAutoResponse>> {
        Ok(self.sockets.auto_response().map(|p| WitAutoResponse { request: p.request, response: p.response }))
    }

    fn auto_response_timestamp(&mut self, socket: u64) -> wasmtime::Result<Option<i64>> {
        Ok(self.sockets.auto_response_at(socket))
    }
}
