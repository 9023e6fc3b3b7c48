//! WebSocket routes and handlers of the probe. Every event it handles is recorded in KV
//! (`ws-event:{n}`) so tests can see what the object saw.
//!
//! - `GET /ws?tags=a,b[&then=panic|&status=N]` (upgrade): accepts with the tags; `then=panic`
//!   panics after accepting, `status=N` answers N instead of 101.
//! - `GET /ws/no-accept` (upgrade): answers 101 without accepting.
//! - `POST /ws/accept`: tries to accept outside an upgrade; answers the error.
//! - `GET /ws/list[?tag=x]`: open socket ids. `GET /ws/events`: recorded events.
//!
//! Text commands a client may send: `echo:X`, `send-then-panic:X`, `send-then-err:X`,
//! `close:CODE:REASON`, `attach:BYTES`, `attachment`, `tags`, `big:BYTES`, `flood:N` (N binary
//! messages of 1,000 bytes; records how many were accepted),
//! `broadcast:TAG:X`, `auto:REQ:RESP`, `auto-stamp`, `accept`. Refusals come back as
//! `refused:{code:?}`.

use opendo_sdk::{
    Error, Request, Response, Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    WebSocketRequestResponsePair,
};

fn query<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query()?.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

fn refusal(err: Error) -> String {
    match err {
        Error::Storage { code, .. } => format!("refused:{code:?}"),
        other => format!("refused:{other}"),
    }
}

fn record(state: &State, event: String) -> Result<()> {
    let storage = state.storage();
    let n = storage.get::<u64>("ws-events")?.unwrap_or(0);
    storage.put(&format!("ws-event:{n:06}"), &event)?;
    storage.put("ws-events", &(n + 1))
}

pub fn route(state: &State, req: &Request, path: &str) -> Result<Response> {
    match path {
        "/ws" => {
            let tags: Vec<&str> = query(req, "tags").map(|t| t.split(',').collect()).unwrap_or_default();
            let pair = WebSocketPair::new();
            if let Err(err) = state.accept_websocket(&pair.server, &tags) {
                return Response::error(refusal(err), 400);
            }
            record(state, format!("accepted:{}", pair.server.id().unwrap_or(0)))?;
            pair.server.send_text("welcome")?;
            if query(req, "then") == Some("panic") {
                panic!("the probe panics after accepting a socket");
            }
            if let Some(status) = query(req, "status").and_then(|s| s.parse().ok()) {
                return Ok(Response::ok("not upgrading")?.with_status(status));
            }
            Response::from_websocket(pair.client)
        }
        "/ws/no-accept" => Ok(Response::empty()?.with_status(101)),
        "/ws/accept" => {
            let pair = WebSocketPair::new();
            match state.accept_websocket(&pair.server, &[]) {
                Ok(()) => Response::ok("accepted"),
                Err(err) => Response::ok(refusal(err)),
            }
        }
        "/ws/list" => {
            let ids: Vec<u64> =
                state.get_websockets(query(req, "tag")).iter().filter_map(WebSocket::id).collect();
            Response::from_json(&ids)
        }
        "/ws/events" => {
            let events =
                state.storage().list::<String>(opendo_sdk::ListOptions::new().prefix("ws-event:"))?;
            Response::from_json(&events.into_iter().map(|(_, v)| v).collect::<Vec<_>>())
        }
        _ => Response::error("no such ws route", 404),
    }
}

pub fn message(state: &State, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
    let id = ws.id().unwrap_or(0);
    let text = match message {
        WebSocketIncomingMessage::String(text) => text,
        WebSocketIncomingMessage::Binary(bytes) => {
            record(state, format!("binary:{id}:{}", bytes.len()))?;
            return ws.send_binary(&bytes);
        }
    };
    record(state, format!("message:{id}:{text}"))?;
    let (command, arg) = text.split_once(':').unwrap_or((&text, ""));
    let reply = |result: Result<()>| match result {
        Ok(()) => ws.send_text("ok"),
        Err(err) => ws.send_text(&refusal(err)),
    };
    match command {
        "echo" => ws.send_text(arg),
        "call" => {
            // A call from a socket handler: answers with what the object `arg` says it is.
            let answer =
                opendo_sdk::ObjectNamespace::new("probe").get_by_name(arg)?.fetch_with_str("/whoami")?;
            ws.send_text(answer.text()?)
        }
        "send-then-panic" => {
            ws.send_text(arg)?;
            panic!("the probe panics after sending");
        }
        "send-then-err" => {
            ws.send_text(arg)?;
            Err(Error::Message("the probe fails after sending".into()))
        }
        "close" => {
            let (code, reason) = arg.split_once(':').unwrap_or((arg, ""));
            let code = code.parse().unwrap_or(0);
            match ws.close(code, reason) {
                Ok(()) => Ok(()),
                Err(err) => ws.send_text(&refusal(err)),
            }
        }
        "attach" => reply(ws.serialize_attachment(&"x".repeat(arg.parse().unwrap_or(0)))),
        "attachment" => {
            let attachment = ws.deserialize_attachment::<String>()?;
            ws.send_text(&format!("{:?}", attachment.map(|a| a.len())))
        }
        "tags" => ws.send_json(&state.get_tags(&ws)),
        "flood" => {
            let mut sent = 0;
            for _ in 0..arg.parse().unwrap_or(0) {
                if ws.send_binary(&[0; 1000]).is_err() {
                    break;
                }
                sent += 1;
            }
            record(state, format!("flood:{sent}"))
        }
        "big" => reply(ws.send_binary(&vec![7; arg.parse().unwrap_or(0)])),
        "broadcast" => {
            let (tag, text) = arg.split_once(':').unwrap_or((arg, ""));
            for peer in state.get_websockets(Some(tag)) {
                peer.send_text(text)?;
            }
            Ok(())
        }
        "auto" => {
            let (request, response) = arg.split_once(':').unwrap_or((arg, ""));
            reply(
                state
                    .set_websocket_auto_response(Some(&WebSocketRequestResponsePair::new(request, response))),
            )
        }
        "auto-stamp" => ws.send_json(&state.get_websocket_auto_response_timestamp(&ws)),
        "accept" => {
            let pair = WebSocketPair::new();
            reply(state.accept_websocket(&pair.server, &[]))
        }
        _ => ws.send_text("unknown command"),
    }
}

pub fn close(state: &State, ws: WebSocket, code: u16, reason: String, was_clean: bool) -> Result<()> {
    let attachment = ws.deserialize_attachment::<String>()?.map(|a| a.len());
    record(state, format!("close:{}:{code}:{reason}:{was_clean}:{attachment:?}", ws.id().unwrap_or(0)))
}

pub fn error(state: &State, ws: WebSocket, error: Error) -> Result<()> {
    record(state, format!("error:{}:{error}", ws.id().unwrap_or(0)))
}
