//! The admin listener's pages: health and the runtime's metrics.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use opendo_runtime::{METRICS_CONTENT_TYPE, Runtime};

use crate::response::{HttpResponse, plain};

pub(crate) fn answer<B>(runtime: &Runtime, request: &Request<B>) -> HttpResponse {
    if request.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here");
    }
    match request.uri().path() {
        "/healthz" => plain(StatusCode::OK, "ok"),
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(runtime.stats().encode())));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            response
        }
        _ => plain(StatusCode::NOT_FOUND, "not found: try /healthz or /metrics"),
    }
}
