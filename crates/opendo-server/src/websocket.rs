//! The HTTP side of a WebSocket upgrade: checking the handshake, answering 101, and handing the
//! upgraded connection to the runtime, which serves it from then on.

use bytes::Bytes;
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use opendo_runtime::AcceptedWebSocket;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::serve::{HttpResponse, copy_headers, plain};

/// For a WebSocket upgrade request, its `Sec-WebSocket-Key`; `None` for any other request; an
/// error for an upgrade request that is malformed.
pub(crate) fn upgrade_key<B>(request: &Request<B>) -> Result<Option<HeaderValue>, &'static str> {
    let headers = request.headers();
    let asks_websocket = headers.get_all(UPGRADE).iter().any(|value| {
        value.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket")))
    });
    if !asks_websocket {
        return Ok(None);
    }
    if request.method() != Method::GET {
        return Err("a WebSocket upgrade must be a GET request");
    }
    let has_connection_upgrade = headers.get_all(CONNECTION).iter().any(|value| {
        value.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
    });
    if !has_connection_upgrade {
        return Err("a WebSocket upgrade needs `Connection: Upgrade`");
    }
    if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
        return Err("only WebSocket version 13 is supported (`Sec-WebSocket-Version: 13`)");
    }
    match headers.get(SEC_WEBSOCKET_KEY) {
        Some(key) if !key.is_empty() => Ok(Some(key.clone())),
        _ => Err("a WebSocket upgrade needs a `Sec-WebSocket-Key` header"),
    }
}

/// Answers 101 with the object's headers and, once hyper hands over the connection, lets the
/// runtime serve it. If the object's headers are invalid the upgrade is refused with a 500 (and
/// dropping `socket` tells the object the socket closed).
pub(crate) fn complete(
    response: opendo_runtime::Response,
    key: &HeaderValue,
    on_upgrade: OnUpgrade,
    socket: AcceptedWebSocket,
) -> HttpResponse {
    let mut http = Response::new(Full::new(Bytes::new()));
    *http.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    if copy_headers(response.headers, http.headers_mut()).is_err() {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "the object answered an invalid HTTP header");
    }
    let headers = http.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    let accept = derive_accept_key(key.as_bytes());
    match HeaderValue::from_str(&accept) {
        Ok(value) => headers.insert(SEC_WEBSOCKET_ACCEPT, value),
        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "could not answer the WebSocket key"),
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => socket.attach(TokioIo::new(upgraded)),
            Err(err) => tracing::debug!("WebSocket upgrade did not complete: {err}"),
        }
    });
    http
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri("/ns/obj/ws");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("valid request")
    }

    const GOOD: [(&str, &str); 4] = [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_well_formed_upgrade_yields_its_key() {
        let key = upgrade_key(&request("GET", &GOOD)).expect("accepted").expect("an upgrade");
        assert_eq!(key, "dGhlIHNhbXBsZSBub25jZQ==");
        // The accept value from RFC 6455's example.
        assert_eq!(derive_accept_key(key.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn plain_requests_are_not_upgrades() {
        assert_eq!(upgrade_key(&request("GET", &[("connection", "upgrade")])), Ok(None));
        assert_eq!(upgrade_key(&request("POST", &[])), Ok(None));
    }

    #[test]
    fn malformed_upgrades_are_refused() {
        let without =
            |skip: &str| -> Vec<(&str, &str)> { GOOD.iter().copied().filter(|(n, _)| *n != skip).collect() };
        assert!(upgrade_key(&request("POST", &GOOD)).is_err());
        assert!(upgrade_key(&request("GET", &without("connection"))).is_err());
        assert!(upgrade_key(&request("GET", &without("sec-websocket-key"))).is_err());
        let mut old_version = without("sec-websocket-version");
        old_version.push(("sec-websocket-version", "8"));
        assert!(upgrade_key(&request("GET", &old_version)).is_err());
    }
}
