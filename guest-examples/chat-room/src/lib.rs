//! A chat room per object, over hibernatable WebSockets.
//!
//! - `GET /`: a small HTML page to chat from a browser.
//! - `GET /ws?name=NAME` (a WebSocket upgrade; NAME is 1 to 32 characters): joins the room. The
//!   new client first receives the last 100 messages, oldest first, as `{"from", "text"}`; then
//!   everyone in the room, the new client included, receives `{"joined": NAME}`.
//! - Every text message a client sends (at most 2,000 characters) is kept and broadcast to
//!   everyone, sender included, as `{"from": NAME, "text": TEXT}`.
//! - When a client leaves, the others receive `{"left": NAME}`.
//! - The text `ping` is answered `pong` by the runtime without waking the room (a keep-alive).
//! - `GET /members`: the names connected right now, as a JSON array.
//!
//! The room keeps nothing in memory: names live in the sockets' attachments, messages in SQL,
//! so the room can hibernate between messages with everyone still connected.

use std::cell::Cell;

use opendo_sdk::{
    DurableObject, Method, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage,
    WebSocketPair, WebSocketRequestResponsePair, export_durable_object,
};
use serde::{Deserialize, Serialize};

/// Messages kept for newcomers.
const HISTORY: i64 = 100;
/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 32;
/// Longest message, in characters.
const MAX_TEXT_CHARS: usize = 2000;
/// The tag every member's socket carries.
const MEMBER: &str = "member";

const PAGE: &str = include_str!("page.html");

#[derive(Serialize, Deserialize)]
struct Chat {
    from: String,
    text: String,
}

#[derive(Serialize)]
enum Presence<'a> {
    #[serde(rename = "joined")]
    Joined(&'a str),
    #[serde(rename = "left")]
    Left(&'a str),
}

#[derive(Serialize)]
struct Problem<'a> {
    error: &'a str,
}

struct ChatRoom {
    state: State,
    schema_ready: Cell<bool>,
}

impl ChatRoom {
    fn ensure_schema(&self) -> Result<()> {
        if !self.schema_ready.get() {
            self.state.storage().sql().exec(
                "CREATE TABLE IF NOT EXISTS messages (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    sender TEXT NOT NULL,
                    text TEXT NOT NULL
                )",
                None,
            )?;
            self.schema_ready.set(true);
        }
        Ok(())
    }

    fn join(&self, req: &Request) -> Result<Response> {
        if !req.is_websocket_upgrade() {
            return Response::error("GET /ws is a WebSocket endpoint: connect with a WebSocket client", 426);
        }
        let name = form_urlencoded::parse(req.query().unwrap_or("").as_bytes())
            .find(|(key, _)| key == "name")
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default();
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Response::error(
                format!("?name= must be 1 to {MAX_NAME_CHARS} printable characters"),
                400,
            );
        }
        self.ensure_schema()?;
        let pair = WebSocketPair::new();
        self.state.accept_websocket(&pair.server, &[MEMBER])?;
        pair.server.serialize_attachment(&name)?;
        let ping = WebSocketRequestResponsePair::new("ping", "pong");
        self.state.set_websocket_auto_response(Some(&ping))?;
        let history = self.state.storage().sql().exec(
            "SELECT sender AS \"from\", text FROM messages ORDER BY id DESC LIMIT ?",
            vec![HISTORY.into()],
        )?;
        for chat in history.to_array::<Chat>()?.iter().rev() {
            pair.server.send_json(chat)?;
        }
        self.broadcast(&Presence::Joined(&name));
        Response::from_websocket(pair.client)
    }

    fn members(&self) -> Result<Response> {
        let mut names = Vec::new();
        for ws in self.state.get_websockets(Some(MEMBER)) {
            if let Some(name) = ws.deserialize_attachment::<String>()? {
                names.push(name);
            }
        }
        Response::from_json(&names)
    }

    /// Sends `value` to every member. A member that cannot take it (it is leaving, or not
    /// reading) misses it; the others still get it.
    fn broadcast<T: Serialize>(&self, value: &T) {
        for ws in self.state.get_websockets(Some(MEMBER)) {
            let _ = ws.send_json(value);
        }
    }
}

impl DurableObject for ChatRoom {
    fn new(state: State) -> Self {
        ChatRoom { state, schema_ready: Cell::new(false) }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        match (req.method(), req.path()) {
            (Method::Get, "/") => {
                Ok(Response::ok(PAGE)?.with_header("content-type", "text/html; charset=utf-8"))
            }
            (Method::Get, "/ws") => self.join(&req),
            (Method::Get, "/members") => self.members(),
            _ => Response::error("not found", 404),
        }
    }

    fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            return ws.send_json(&Problem { error: "only text messages are understood" });
        };
        if text.chars().count() > MAX_TEXT_CHARS {
            return ws.send_json(&Problem { error: "message too long (2,000 characters at most)" });
        }
        let Some(from) = ws.deserialize_attachment::<String>()? else { return Ok(()) };
        self.ensure_schema()?;
        let sql = self.state.storage().sql();
        sql.exec(
            "INSERT INTO messages (sender, text) VALUES (?, ?)",
            vec![from.clone().into(), text.clone().into()],
        )?;
        sql.exec(
            "DELETE FROM messages WHERE id <= (SELECT max(id) FROM messages) - ?",
            vec![HISTORY.into()],
        )?;
        self.broadcast(&Chat { from, text });
        Ok(())
    }

    fn websocket_close(&self, ws: WebSocket, _code: u16, _reason: String, _was_clean: bool) -> Result<()> {
        if let Some(name) = ws.deserialize_attachment::<String>()? {
            self.broadcast(&Presence::Left(&name));
        }
        Ok(())
    }

    fn websocket_error(&self, ws: WebSocket, _error: opendo_sdk::Error) -> Result<()> {
        self.websocket_close(ws, 1006, String::new(), false)
    }
}

export_durable_object!(ChatRoom);
