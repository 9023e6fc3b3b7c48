//! The admin listener: health, metrics, the web inspector, and the admin API (`api.rs`) behind
//! the bearer token (`access.rs`).

mod access;
mod api;

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use opendo_cluster::Cluster;
use opendo_runtime::{METRICS_CONTENT_TYPE, Runtime};

pub use access::AdminAccess;
use access::Denied;

use crate::response::{HttpResponse, plain};

/// The web inspector: one page, no build step (`inspector.html`).
const INSPECTOR: &str = include_str!("inspector.html");

pub(crate) async fn answer(
    runtime: &Runtime,
    access: &AdminAccess,
    request: Request<Incoming>,
    peer: SocketAddr,
    cluster: Option<&Cluster>,
) -> HttpResponse {
    let path = request.uri().path();
    if path.starts_with("/v1/") {
        return match access.check(request.headers()) {
            Ok(()) if path == "/v1/cluster" => api::cluster(cluster, request.method()),
            Ok(()) => api::handle(runtime, request, peer, cluster).await,
            Err(Denied::NoToken) => api::error(
                StatusCode::UNAUTHORIZED,
                "the admin API is off: start the server with --admin-token-file FILE (a file holding the token)",
            ),
            Err(Denied::WrongToken) => {
                tracing::warn!(target: "opendo::audit", %peer, path, "admin call with a missing or wrong token");
                api::error(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong admin token: send Authorization: Bearer TOKEN",
                )
            }
        };
    }
    if request.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here");
    }
    match path {
        "/healthz" => plain(StatusCode::OK, "ok"),
        "/metrics" => {
            let mut text = runtime.stats().encode();
            if let Some(cluster) = cluster
                && let Some(runtime_part) = text.strip_suffix("# EOF\n")
            {
                text = format!("{runtime_part}{}# EOF\n", cluster.metrics_text());
            }
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            response
        }
        "/" => {
            let mut response = Response::new(Full::new(Bytes::from_static(INSPECTOR.as_bytes())));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        _ => plain(StatusCode::NOT_FOUND, "not found: try /, /healthz, /metrics or /v1/namespaces"),
    }
}
