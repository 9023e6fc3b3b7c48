use std::cell::Cell;
use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::opendo::durable_object::websockets as wit;
use crate::{Error, Response, Result};

/// A WebSocket connected to this object (or, before it is accepted, one end of a
/// [`WebSocketPair`]).
///
/// The runtime owns the connection: the object may hibernate while clients stay connected, and
/// a `WebSocket` received in a handler after waking names the same socket as before. Two values
/// are equal when they name the same socket.
#[derive(Debug, Clone)]
pub struct WebSocket {
    socket: Rc<Cell<Option<u64>>>,
}

impl PartialEq for WebSocket {
    fn eq(&self, other: &Self) -> bool {
        match (self.socket.get(), other.socket.get()) {
            (Some(a), Some(b)) => a == b,
            _ => Rc::ptr_eq(&self.socket, &other.socket),
        }
    }
}

impl Eq for WebSocket {}

impl WebSocket {
    pub(crate) fn from_id(socket: u64) -> Self {
        WebSocket { socket: Rc::new(Cell::new(Some(socket))) }
    }

    /// The socket's number, unique within the object while the runtime runs; `None` before the
    /// socket is accepted.
    pub fn id(&self) -> Option<u64> {
        self.socket.get()
    }

    fn accepted(&self) -> Result<u64> {
        self.socket.get().ok_or_else(|| Error::Message("the WebSocket is not accepted yet".into()))
    }

    /// Sends a text message. Like a response, it leaves only once the event's writes commit.
    pub fn send_text(&self, text: &str) -> Result<()> {
        Ok(wit::send(self.accepted()?, &wit::Message::Text(text.to_string()))?)
    }

    /// Sends a binary message. Like a response, it leaves only once the event's writes commit.
    pub fn send_binary(&self, bytes: &[u8]) -> Result<()> {
        Ok(wit::send(self.accepted()?, &wit::Message::Binary(bytes.to_vec()))?)
    }

    /// Sends `value` as a JSON text message.
    pub fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.send_text(&serde_json::to_string(value)?)
    }

    /// Closes the socket with `code` (1000, or 3000 to 4999) and a reason of at most 123 bytes.
    /// No `websocket_close` event follows for a socket the object closed.
    pub fn close(&self, code: u16, reason: &str) -> Result<()> {
        Ok(wit::close(self.accepted()?, code, reason)?)
    }

    /// Keeps `value` (as JSON, at most 16 KiB) with the socket; it survives hibernation.
    pub fn serialize_attachment<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value)?;
        Ok(wit::set_attachment(self.accepted()?, Some(&bytes))?)
    }

    /// The value kept with [`WebSocket::serialize_attachment`], if any.
    pub fn deserialize_attachment<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        match wit::get_attachment(self.accepted()?) {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }
}

/// The two ends of a WebSocket being accepted: accept `server` with
/// [`State::accept_websocket`](crate::State::accept_websocket) and answer the upgrade request
/// with [`Response::from_websocket`]`(client)`.
///
/// ```no_run
/// # use opendo_sdk::{Request, Response, Result, State, WebSocketPair};
/// fn upgrade(state: &State, req: &Request) -> Result<Response> {
///     if !req.is_websocket_upgrade() {
///         return Response::error("expected a WebSocket upgrade", 426);
///     }
///     let pair = WebSocketPair::new();
///     state.accept_websocket(&pair.server, &["lobby"])?;
///     Response::from_websocket(pair.client)
/// }
/// ```
#[derive(Debug)]
pub struct WebSocketPair {
    /// The end handed back to the client in the 101 response.
    pub client: WebSocket,
    /// The end the object accepts and keeps.
    pub server: WebSocket,
}

impl WebSocketPair {
    /// A new, not yet accepted pair.
    #[allow(clippy::new_without_default)] // a pair is made for one upgrade, as in workers-rs
    pub fn new() -> Self {
        let socket = Rc::new(Cell::new(None));
        WebSocketPair { client: WebSocket { socket: socket.clone() }, server: WebSocket { socket } }
    }
}

impl Response {
    /// The 101 answer completing a WebSocket upgrade whose server end was accepted.
    pub fn from_websocket(client: WebSocket) -> Result<Response> {
        client.accepted()?;
        Ok(Response::switching_protocols())
    }
}

pub(crate) fn accept(ws: &WebSocket, tags: &[&str]) -> Result<()> {
    if ws.socket.get().is_some() {
        return Err(Error::Message("the WebSocket is already accepted".into()));
    }
    let tags: Vec<String> = tags.iter().map(|tag| tag.to_string()).collect();
    ws.socket.set(Some(wit::accept(&tags)?));
    Ok(())
}

pub(crate) fn list(tag: Option<&str>) -> Vec<WebSocket> {
    wit::list_sockets(tag).into_iter().map(WebSocket::from_id).collect()
}

pub(crate) fn tags(ws: &WebSocket) -> Vec<String> {
    ws.socket.get().and_then(wit::tags).unwrap_or_default()
}

/// A message a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebSocketIncomingMessage {
    /// A text message.
    String(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl WebSocketIncomingMessage {
    pub(crate) fn from_wit(message: wit::Message) -> Self {
        match message {
            wit::Message::Text(text) => WebSocketIncomingMessage::String(text),
            wit::Message::Binary(bytes) => WebSocketIncomingMessage::Binary(bytes),
        }
    }
}

/// A request text the runtime answers by itself, without waking the object (a keep-alive
/// "ping" from the application, not a protocol ping, which never wakes the object either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketRequestResponsePair {
    request: String,
    response: String,
}

impl WebSocketRequestResponsePair {
    /// Answer the text `request`, received exactly, with `response` (each at most 2,048 bytes,
    /// checked when the pair is set).
    pub fn new(request: impl Into<String>, response: impl Into<String>) -> Self {
        WebSocketRequestResponsePair { request: request.into(), response: response.into() }
    }

    /// The request text.
    pub fn request(&self) -> &str {
        &self.request
    }

    /// The response text.
    pub fn response(&self) -> &str {
        &self.response
    }
}

pub(crate) fn set_auto_response(pair: Option<&WebSocketRequestResponsePair>) -> Result<()> {
    let pair = pair.map(|p| wit::AutoResponse { request: p.request.clone(), response: p.response.clone() });
    Ok(wit::set_auto_response(pair.as_ref())?)
}

pub(crate) fn auto_response() -> Option<WebSocketRequestResponsePair> {
    wit::get_auto_response()
        .map(|p| WebSocketRequestResponsePair { request: p.request, response: p.response })
}

pub(crate) fn auto_response_timestamp(ws: &WebSocket) -> Option<i64> {
    ws.socket.get().and_then(wit::auto_response_timestamp)
}
