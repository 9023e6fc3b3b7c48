use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::opendo::durable_object::types as wit;
use crate::{Error, Result};

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    /// Any other method, as sent.
    Other(String),
}

impl Method {
    /// The method as sent (`GET`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(method) => method,
        }
    }

    fn parse(method: String) -> Self {
        match method.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other(method),
        }
    }
}

/// An HTTP request addressed to this object.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    /// `scheme://authority` of a URL given to [`Request::new`], for [`Fetch`](crate::Fetch).
    origin: Option<(String, String)>,
    path_and_query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Request {
    pub(crate) fn from_wit(request: wit::Request) -> Self {
        Request {
            method: Method::parse(request.method),
            origin: None,
            path_and_query: request.path,
            headers: request.headers,
            body: request.body,
        }
    }

    /// A request to send to another object ([`Stub::fetch_with_request`](crate::Stub)):
    /// `url` is a path such as `/items/7?full=1`, or a URL whose scheme and host are ignored.
    pub fn new(url: &str, method: Method) -> Request {
        let origin = url.split_once("://").map(|(scheme, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            (scheme.to_ascii_lowercase(), authority.to_string())
        });
        Request { method, origin, path_and_query: path_of(url), headers: Vec::new(), body: Vec::new() }
    }

    /// The scheme and authority of the URL the request was made with, if it had them.
    pub(crate) fn origin(&self) -> Option<(&str, &str)> {
        self.origin.as_ref().map(|(scheme, authority)| (scheme.as_str(), authority.as_str()))
    }

    /// The path and query (`/a?b=1`).
    pub(crate) fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The same request with `body`.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// The same request with `value` as a JSON body (and its `content-type`).
    pub fn with_json<T: Serialize + ?Sized>(self, value: &T) -> Result<Request> {
        Ok(self.with_header("content-type", "application/json").with_body(serde_json::to_vec(value)?))
    }

    /// The same request (method, headers, body) for another path: how a front passes on a
    /// request it received, WebSocket upgrades included, to an object with
    /// [`Stub::fetch_with_request`](crate::Stub::fetch_with_request).
    pub fn with_path(mut self, url: &str) -> Request {
        self.path_and_query = path_of(url);
        self
    }

    /// The same request with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.as_bytes().to_vec()));
        self
    }

    pub(crate) fn into_wit(self) -> wit::Request {
        wit::Request {
            method: self.method.as_str().to_string(),
            path: self.path_and_query,
            headers: self.headers,
            body: self.body,
        }
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method.clone()
    }

    /// The path inside the object, starting with `/`, without the query string.
    pub fn path(&self) -> &str {
        self.path_and_query.split_once('?').map_or(&self.path_and_query, |(path, _)| path)
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query.split_once('?').map(|(_, query)| query)
    }

    /// The first header called `name` (case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// All headers, in the order received, values as raw bytes.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// Whether this is a WebSocket upgrade request (`Upgrade: websocket`), which the object may
    /// accept with [`State::accept_websocket`](crate::State::accept_websocket).
    pub fn is_websocket_upgrade(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("upgrade")
                && std::str::from_utf8(value)
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket")))
        })
    }

    /// The body bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|_| Error::NotUtf8)
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Response {
    /// 200 with a UTF-8 text body.
    pub fn ok(body: impl Into<String>) -> Result<Response> {
        Ok(Response::plain(200, body.into()))
    }

    /// `status` with `message` as a text body.
    pub fn error(message: impl Into<String>, status: u16) -> Result<Response> {
        Ok(Response::plain(status, message.into()))
    }

    /// 200 with `value` as a JSON body.
    pub fn from_json<T: Serialize + ?Sized>(value: &T) -> Result<Response> {
        Ok(Response {
            status: 200,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: serde_json::to_vec(value)?,
        })
    }

    /// 200 with a raw body.
    pub fn from_bytes(body: Vec<u8>) -> Result<Response> {
        Ok(Response { status: 200, headers: Vec::new(), body })
    }

    /// 204 with no body.
    pub fn empty() -> Result<Response> {
        Ok(Response { status: 204, headers: Vec::new(), body: Vec::new() })
    }

    /// The same response with another status.
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.as_bytes().to_vec()));
        self
    }

    /// The status code.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|_| Error::NotUtf8)
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The first header called `name` (case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// All headers, values as raw bytes.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.headers
    }

    /// A response with these parts (what [`Fetch`](crate::Fetch) received).
    pub(crate) fn from_parts(status: u16, headers: Vec<(String, Vec<u8>)>, body: Vec<u8>) -> Response {
        Response { status, headers, body }
    }

    pub(crate) fn from_wit(response: wit::Response) -> Response {
        Response { status: response.status, headers: response.headers, body: response.body }
    }

    fn plain(status: u16, body: String) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())],
            body: body.into_bytes(),
        }
    }

    pub(crate) fn switching_protocols() -> Response {
        Response { status: 101, headers: Vec::new(), body: Vec::new() }
    }

    pub(crate) fn internal_error(err: &Error) -> Response {
        Response::plain(500, err.to_string())
    }

    pub(crate) fn into_wit(self) -> wit::Response {
        wit::Response { status: self.status, headers: self.headers, body: self.body }
    }
}

/// The first of `headers` called `name` (case-insensitive), if it is valid UTF-8.
fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// The path and query of `url`: itself if it starts with `/`, else what follows its scheme and
/// host (`/` if nothing does).
fn path_of(url: &str) -> String {
    if url.starts_with('/') {
        return url.to_string();
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find(['/', '?']) {
        Some(start) if after_scheme[start..].starts_with('?') => format!("/{}", &after_scheme[start..]),
        Some(start) => after_scheme[start..].to_string(),
        None => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn a_url_becomes_the_path_and_query_the_callee_sees() {
        assert_eq!(path_of("/items/7?full=1"), "/items/7?full=1");
        assert_eq!(path_of("https://counter.internal/increment?by=2"), "/increment?by=2");
        assert_eq!(path_of("http://host"), "/");
        assert_eq!(path_of("http://host?x=1"), "/?x=1");
        assert_eq!(path_of("host/a"), "/a");
    }
}
