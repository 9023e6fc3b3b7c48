//! The HTTP side of a WebSocket upgrade: checking the handshake, answering 101, and handing the
//! upgraded connection to the runtime, which serves it from then on.

use bytes::Bytes;
use http::Request;
use http::header::UPGRADE;
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use opendo_runtime::AcceptedWebSocket;
use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;

use crate::response::{HttpResponse, copy_headers, invalid_header};

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
pub(crate) fn asks_websocket<B>(request: &Request<B>) -> bool {
    request.headers().get_all(UPGRADE).iter().any(|value| {
        value.to_str().is_ok_and(|v| v.split(',').any(|token| token.trim().eq_ignore_ascii_case("websocket")))
    })
}

/// The 101 answer to a well-formed upgrade request (with its `Sec-WebSocket-Accept`), or what is
/// malformed about it. Checked before the object sees the request.
pub(crate) fn handshake<B>(request: &Request<B>) -> Result<HttpResponse, String> {
    create_response_with_body(request, || Full::new(Bytes::new()))
        .map_err(|err| format!("malformed WebSocket upgrade: {err}"))
}

/// Adds the object's headers to the 101 `handshake` and, once hyper hands over the connection,
/// lets the runtime serve it. If the object's headers are invalid the upgrade is refused with a
/// 500 (and dropping `socket` tells the object the socket closed).
pub(crate) fn complete(
    mut handshake: HttpResponse,
    response: opendo_runtime::Response,
    on_upgrade: OnUpgrade,
    socket: AcceptedWebSocket,
) -> HttpResponse {
    // The handshake's own Connection, Upgrade and Sec-WebSocket-Accept are framing: kept.
    if copy_headers(response.headers, handshake.headers_mut()).is_err() {
        return invalid_header();
    }
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => socket.attach(TokioIo::new(upgraded)),
            Err(err) => tracing::debug!("WebSocket upgrade did not complete: {err}"),
        }
    });
    handshake
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

    use http::StatusCode;

    #[test]
    fn a_well_formed_upgrade_gets_its_101_with_the_accept_key() {
        let request = request("GET", &GOOD);
        assert!(asks_websocket(&request));
        let answer = handshake(&request).expect("well formed");
        assert_eq!(answer.status(), StatusCode::SWITCHING_PROTOCOLS);
        // The accept value from RFC 6455's example.
        assert_eq!(answer.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn plain_requests_do_not_ask_for_a_websocket() {
        assert!(!asks_websocket(&request("GET", &[("connection", "upgrade")])));
        assert!(!asks_websocket(&request("POST", &[])));
        assert!(asks_websocket(&request("GET", &[("upgrade", "h2c, WebSocket")])));
    }

    #[test]
    fn malformed_upgrades_are_refused_with_the_reason() {
        let without =
            |skip: &str| -> Vec<(&str, &str)> { GOOD.iter().copied().filter(|(n, _)| *n != skip).collect() };
        let problem = |method: &str, headers: &[(&str, &str)]| handshake(&request(method, headers)).err();
        assert!(problem("POST", &GOOD).is_some_and(|p| p.contains("GET")));
        assert!(problem("GET", &without("connection")).is_some_and(|p| p.contains("Connection")));
        assert!(
            problem("GET", &without("sec-websocket-key")).is_some_and(|p| p.contains("Sec-WebSocket-Key"))
        );
        let mut old_version = without("sec-websocket-version");
        old_version.push(("sec-websocket-version", "8"));
        assert!(problem("GET", &old_version).is_some_and(|p| p.contains("Sec-WebSocket-Version")));
        let mut short_key = without("sec-websocket-key");
        short_key.push(("sec-websocket-key", "c2hvcnQ="));
        assert!(problem("GET", &short_key).is_some());
    }
}
