//! The front of the link shortener: every request comes here.
//! - `POST /links` with `Authorization: Bearer TOKEN` and a URL as body: the `limiter` object
//!   called TOKEN allows 10 links per minute (429 past that); a `link` object with a new unique
//!   id stores the URL; 201 `{"id": ..., "short": "/l/<id>"}`. No token: 401; a body that is not
//!   an http(s) URL: 400.
//! - `GET /l/{id}`: 302 to the link's URL, counting the visit; 400 for a malformed id, 404 for a
//!   link never created.
//! - `GET /l/{id}/stats`: `{"url": ..., "visits": N}`.
//!
//! With the environment variable `WEBHOOK` set (`env` in the project file's `[front]`, its host
//! in `outbound`), each new link is POSTed to it as JSON `{"id", "short", "url"}`.

use opendo_sdk::{
    Error, Fetch, Front, Method, ObjectId, ObjectNamespace, Request, Response, Result, export_front,
};

struct Shortener;

impl Front for Shortener {
    fn new() -> Self {
        Shortener
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        let path = req.path().to_string();
        match (req.method(), path.as_str()) {
            (Method::Post, "/links") => create(&req),
            (Method::Get, path) if path.starts_with("/l/") => {
                let rest = &path["/l/".len()..];
                let (id, stats) = match rest.strip_suffix("/stats") {
                    Some(id) => (id, true),
                    None => (rest, false),
                };
                let Some(link) = link_id(id) else {
                    return Response::error("malformed link id", 400);
                };
                let stub = link.get_stub()?;
                if stats {
                    return stub.fetch_with_str("/stats");
                }
                let visited = stub.fetch_with_request(Request::new("/visit", Method::Post))?;
                if visited.status_code() != 200 {
                    return Ok(visited);
                }
                Ok(Response::empty()?.with_status(302).with_header("location", visited.text()?))
            }
            _ => Response::error("not found", 404),
        }
    }
}

fn create(req: &Request) -> Result<Response> {
    let token = req.header("authorization").and_then(|value| value.strip_prefix("Bearer ")).map(str::trim);
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return Response::error("send your token: Authorization: Bearer TOKEN", 401);
    };
    let url = match req.text() {
        Ok(text) if is_web_url(text.trim()) => text.trim().to_string(),
        _ => return Response::error("the body must be an http:// or https:// URL", 400),
    };
    let limiter = match ObjectNamespace::new("limiter").get_by_name(token) {
        Ok(limiter) => limiter,
        // Not an object name (longer than 256 bytes): not a token either.
        Err(Error::Storage { .. }) => return Response::error("that is not a token", 401),
        Err(err) => return Err(err),
    };
    let allowed = limiter.fetch_with_request(Request::new("/take", Method::Post))?;
    if allowed.status_code() == 429 {
        return Ok(allowed);
    }
    let id = ObjectNamespace::new("link").unique_id()?;
    let stored = id.get_stub()?.fetch_with_request(Request::new("/", Method::Put).with_body(url.clone()))?;
    if stored.status_code() != 201 {
        return Ok(stored);
    }
    let created = serde_json::json!({ "id": id.to_string(), "short": format!("/l/{id}") });
    if let Ok(webhook) = std::env::var("WEBHOOK") {
        notify(&webhook, &created, &url);
    }
    Ok(Response::from_json(&created)?.with_status(201))
}

/// Tells the webhook about a new link. A webhook that fails loses the link nothing: it is
/// created already; the failure goes to the log.
fn notify(webhook: &str, created: &serde_json::Value, url: &str) {
    let mut event = created.clone();
    event["url"] = url.into();
    let sent =
        Request::new(webhook, Method::Post).with_json(&event).and_then(|hook| Fetch::Request(hook).send());
    match sent {
        Ok(answer) if answer.status_code() < 300 => {}
        Ok(answer) => eprintln!("webhook {webhook} answered {}", answer.status_code()),
        Err(err) => eprintln!("webhook {webhook}: {err}"),
    }
}

/// `http://` or `https://`, a host, and no whitespace.
fn is_web_url(text: &str) -> bool {
    let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !text.chars().any(char::is_whitespace)
    })
}

/// The link with id `text`, if it is one (64 hex characters made for the `link` namespace).
fn link_id(text: &str) -> Option<ObjectId> {
    ObjectNamespace::new("link").id_from_string(text).ok()
}

export_front!(Shortener);
