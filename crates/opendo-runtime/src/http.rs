//! The runtime's own HTTP request and response, so that a change of the WIT world does not
//! reach the runtime's callers.

/// An HTTP request for an object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The method, upper case as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The path inside the object, starting with `/`, with the query string if any.
    pub path: String,
    /// Headers in the order received: name and raw value.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// An object's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The status code as the object gave it (the caller checks it is valid HTTP).
    pub status: u16,
    /// Headers: name and raw value (the caller checks they are valid HTTP).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// The response header with which an object answers and still undoes the event's writes (and
/// the WebSocket messages it sent): its answer is delivered, nothing of the event is kept. The
/// runtime removes it; its value does not matter.
pub const ROLLBACK_HEADER: &str = "opendo-rollback";

/// The request header of a call to a JavaScript object's method (RPC on a stub, see the SDK's
/// `namespaces.js`). The server removes it from the requests of clients, so only calls carry it.
pub const RPC_HEADER: &str = "opendo-rpc";

/// Removes [`ROLLBACK_HEADER`] from `response`; whether it was there.
pub(crate) fn take_rollback(response: &mut Response) -> bool {
    let before = response.headers.len();
    response.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(ROLLBACK_HEADER));
    response.headers.len() != before
}

/// Whether `headers` ask for a WebSocket upgrade (`Upgrade: websocket`).
pub(crate) fn asks_websocket(headers: &[(String, Vec<u8>)]) -> bool {
    headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("upgrade")
            && std::str::from_utf8(value).is_ok_and(|value| {
                value.split(',').any(|token| token.trim().eq_ignore_ascii_case("websocket"))
            })
    })
}
