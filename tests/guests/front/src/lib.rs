//! A test front over the `probe` namespace. Every route but `/public` needs
//! `Authorization: Bearer let-me-in` (401 otherwise). Routes:
//! - `GET /public`: `hello`.
//! - `PUT /notes/{name}` with a body: stores it as key `note` of the probe object `{name}`;
//!   `GET /notes/{name}`: reads it back (the probe's status passes through).
//! - `GET /by-id/{id}/whoami`: the probe object with that id says who it is (400 for a bad id).
//! - `GET /echo` (any query): the path and query the front got.
//! - `GET /panic`: panics.
//! - `GET /chat/{room}?name=NAME` (a WebSocket upgrade): passed on to the chat-room example's
//!   object `{room}` as `/ws?name=NAME` (a project with that namespace).
//! - `GET /socket/{name}` (a WebSocket upgrade; the token may be `?token=let-me-in`): passed on
//!   to the probe object `{name}` as `/ws`, which accepts the socket.
//! - `/to/{name}/{rest}`: forwards `/{rest}` (with the query and method) to the probe object
//!   `{name}`, and answers its response as is.

use opendo_sdk::{Error, Front, Method, ObjectNamespace, Request, Response, Result, export_front};

struct TestFront;

fn probe() -> ObjectNamespace {
    ObjectNamespace::new("probe")
}

impl Front for TestFront {
    fn new() -> Self {
        TestFront
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        let path = req.path().to_string();
        if path == "/public" {
            return Response::ok("hello");
        }
        // Browsers cannot set headers on a WebSocket: the token may come in the query too.
        let token =
            req.query().and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("token=")));
        if req.header("authorization") != Some("Bearer let-me-in") && token != Some("let-me-in") {
            return Response::error("who are you?", 401);
        }
        if let Some(room) = path.strip_prefix("/chat/") {
            // The chat-room example behind the front: its `/ws?name=...` upgrade, passed on.
            let name = req
                .query()
                .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("name=")))
                .unwrap_or("");
            let to_room = req.clone().with_path(&format!("/ws?name={name}"));
            return ObjectNamespace::new("chat-room").get_by_name(room)?.fetch_with_request(to_room);
        }
        if let Some(room) = path.strip_prefix("/socket/") {
            // The client's upgrade, passed on as it came: the probe accepts the socket.
            return probe().get_by_name(room)?.fetch_with_request(req.with_path("/ws"));
        }
        let answered = if let Some(name) = path.strip_prefix("/notes/") {
            let stub = probe().get_by_name(name)?;
            match req.method() {
                Method::Put => stub.fetch_with_request(
                    Request::new("/kv/note", Method::Put).with_body(req.bytes().to_vec()),
                ),
                _ => stub.fetch_with_str("/kv/note"),
            }
        } else if let Some(rest) = path.strip_prefix("/by-id/") {
            let id = rest.strip_suffix("/whoami").unwrap_or(rest);
            match probe().id_from_string(id) {
                Ok(id) => id.get_stub()?.fetch_with_str("/whoami"),
                Err(Error::Storage { message, .. }) => return Response::error(message, 400),
                Err(err) => Err(err),
            }
        } else if let Some(rest) = path.strip_prefix("/to/") {
            let (name, inner) = rest.split_once('/').unwrap_or((rest, ""));
            let inner = match req.query() {
                Some(query) => format!("/{inner}?{query}"),
                None => format!("/{inner}"),
            };
            probe().get_by_name(name)?.fetch_with_request(Request::new(&inner, req.method()))
        } else if path == "/echo" {
            return Response::ok(format!("{}?{}", req.path(), req.query().unwrap_or("")));
        } else if path == "/panic" {
            panic!("the test front panics on purpose");
        } else {
            return Response::error("no such route", 404);
        };
        match answered {
            Err(Error::Call { code, message }) => {
                Response::error(format!("call error {code:?}: {message}"), 502)
            }
            other => other,
        }
    }
}

export_front!(TestFront);
