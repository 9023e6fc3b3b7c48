//! The responses the server writes itself, and copying an object's response onto HTTP.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::Full;
use opendo_runtime::EventError;

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// A response with a short plain-text body.
pub(crate) fn plain(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

pub(crate) fn too_large(max_body: usize) -> HttpResponse {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body is larger than the limit of {max_body} bytes"),
    )
}

/// The HTTP answer to an event that produced no response from the object.
pub(crate) fn event_error(err: &EventError) -> HttpResponse {
    let mut response = event_error_status(err);
    response.headers_mut().insert(opendo_runtime::ERROR_HEADER, HeaderValue::from_static(err.wire_kind()));
    response
}

fn event_error_status(err: &EventError) -> HttpResponse {
    match err {
        EventError::UnknownNamespace(_) => plain(StatusCode::NOT_FOUND, &err.to_string()),
        EventError::BadObjectName(_) => plain(StatusCode::BAD_REQUEST, &err.to_string()),
        EventError::Overloaded | EventError::ShuttingDown | EventError::Moved => {
            let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, &err.to_string());
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        EventError::Trapped(_) | EventError::Refused(_) | EventError::Internal(_) => {
            plain(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
        }
    }
}

/// An object's response as HTTP; a 500 if its status or a header is not valid HTTP.
pub(crate) fn from_object(response: opendo_runtime::Response) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).ok().filter(|status| !status.is_informational());
    let Some(status) = status else {
        tracing::warn!(status = response.status, "object answered an invalid status code");
        let message = if response.status == 101 {
            "the object answered 101 without accepting a WebSocket upgrade"
        } else {
            "the object answered an invalid HTTP status code"
        };
        return plain(StatusCode::INTERNAL_SERVER_ERROR, message);
    };
    let mut http = Response::new(Full::new(Bytes::from(response.body)));
    *http.status_mut() = status;
    if copy_headers(response.headers, http.headers_mut()).is_err() {
        return invalid_header();
    }
    http
}

/// The answer when an object's header is not valid HTTP.
pub(crate) fn invalid_header() -> HttpResponse {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "the object answered an invalid HTTP header")
}

/// Copies an object's headers onto an HTTP response, leaving out the framing headers (the
/// server's job). Fails on a header that is not valid HTTP.
pub(crate) fn copy_headers(headers: Vec<(String, Vec<u8>)>, to: &mut http::HeaderMap) -> Result<(), ()> {
    for (name, value) in headers {
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value))
        else {
            tracing::warn!(header = %name, "object answered an invalid header");
            return Err(());
        };
        // The runtime's own errors are marked with `opendo-error`: an object cannot claim one.
        if is_framing_header(&name) || name.as_str() == opendo_runtime::ERROR_HEADER {
            continue;
        }
        to.append(name, value);
    }
    Ok(())
}

fn is_framing_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "sec-websocket-accept"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_cannot_mark_its_response_as_the_runtimes_own_error() {
        let object = opendo_runtime::Response {
            status: 503,
            headers: vec![("opendo-error".into(), b"overloaded".to_vec()), ("x-kept".into(), b"1".to_vec())],
            body: b"busy".to_vec(),
        };
        let http = from_object(object);
        assert_eq!(http.headers().get("x-kept").map(|v| v.as_bytes()), Some(&b"1"[..]));
        assert!(http.headers().get(opendo_runtime::ERROR_HEADER).is_none());
        let runtime_own = event_error(&EventError::Overloaded);
        assert_eq!(runtime_own.headers()[opendo_runtime::ERROR_HEADER], "overloaded");
    }
}
