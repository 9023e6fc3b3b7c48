//! `opendo:durable-object/websockets`: the object's sockets, as seen from inside an event.

use std::sync::atomic::Ordering;

use tokio_tungstenite::tungstenite::Message;

use super::store::Host;
use crate::bindings::WsMessage;
use crate::bindings::opendo::durable_object::websockets::{self, AutoResponse as WitAutoResponse};
use crate::error::{HostError, Refusal};
use crate::sockets::{self as ws, AutoResponse, Outbound};

impl websockets::Host for Host {
    fn accept(&mut self, tags: Vec<String>) -> Result<u64, HostError> {
        if !self.event_sockets.upgrade {
            let message = "accept is only possible while handling a WebSocket upgrade request";
            return Err(Refusal::InvalidArgument(message.into()).into());
        }
        if self.event_sockets.accepted.is_some() {
            let message = "this request's WebSocket is already accepted";
            return Err(Refusal::InvalidArgument(message.into()).into());
        }
        ws::check_tags(&tags)?;
        let limit = self.limits.max_websockets_per_object;
        if self.sockets.len() >= limit {
            let message = format!("the object already has {limit} open sockets");
            return Err(Refusal::LimitExceeded(message).into());
        }
        let socket = self.limits.next_socket.fetch_add(1, Ordering::Relaxed);
        self.event_sockets.accepted = Some(self.sockets.open(socket, tags));
        Ok(socket)
    }

    fn send(&mut self, socket: u64, message: WsMessage) -> Result<(), HostError> {
        let message = match message {
            WsMessage::Text(text) => Message::text(text),
            WsMessage::Binary(bytes) => Message::binary(bytes),
        };
        let max = self.limits.max_websocket_message_bytes;
        if message.len() > max {
            let message =
                format!("message of {} bytes is larger than the limit of {max} bytes", message.len());
            return Err(Refusal::LimitExceeded(message).into());
        }
        // A client that reads nothing may keep at most two full-size messages waiting.
        self.sockets.reserve(socket, message.len(), max.saturating_mul(2))?;
        self.event_sockets.outputs.push((socket, Outbound::Message(message)));
        Ok(())
    }

    fn close(&mut self, socket: u64, code: u16, reason: String) -> Result<(), HostError> {
        ws::check_close(code, &reason)?;
        if !self.sockets.is_open(socket) {
            return Err(Refusal::InvalidArgument(format!("socket {socket} is not open")).into());
        }
        self.event_sockets.outputs.push((socket, Outbound::Close { code, reason }));
        Ok(())
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

    fn set_attachment(&mut self, socket: u64, attachment: Option<Vec<u8>>) -> Result<(), HostError> {
        Ok(self.sockets.set_attachment(socket, attachment)?)
    }

    fn set_auto_response(&mut self, pair: Option<WitAutoResponse>) -> Result<(), HostError> {
        if let Some(pair) = &pair {
            let longest = pair.request.len().max(pair.response.len());
            if longest > ws::MAX_AUTO_RESPONSE_BYTES {
                let message = format!(
                    "auto-response text of {longest} bytes is longer than {} bytes",
                    ws::MAX_AUTO_RESPONSE_BYTES
                );
                return Err(Refusal::LimitExceeded(message).into());
            }
        }
        self.sockets
            .set_auto_response(pair.map(|p| AutoResponse { request: p.request, response: p.response }));
        Ok(())
    }

    fn get_auto_response(&mut self) -> wasmtime::Result<Option<WitAutoResponse>> {
        Ok(self.sockets.auto_response().map(|p| WitAutoResponse { request: p.request, response: p.response }))
    }

    fn auto_response_timestamp(&mut self, socket: u64) -> wasmtime::Result<Option<i64>> {
        Ok(self.sockets.auto_response_at(socket))
    }
}
