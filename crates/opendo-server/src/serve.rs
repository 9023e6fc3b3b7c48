//! The accept loop, per-request handling, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use opendo_runtime::{EventError, Runtime};
use tokio::net::TcpListener;

use crate::routing::route;
use crate::websocket;

/// Settings of the HTTP front.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers before the connection is closed.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing their connections.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 32 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Errors of the HTTP front.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Accepting connections failed.
    #[error("accepting connections: {0}")]
    Accept(std::io::Error),
}

/// Serves `runtime` on `listener` until `shutdown` completes, then stops accepting and waits (up
/// to the grace period) for in-flight requests to be answered. The runtime itself is not shut
/// down: call [`Runtime::shutdown`] afterwards.
pub async fn serve(
    listener: TcpListener,
    runtime: Runtime,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) if is_transient(&err) => {
                        // Out of file descriptors or a connection reset before accept: keep serving.
                        tracing::warn!("accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(err) => return Err(Error::Accept(err)),
                };
                let _ = stream.set_nodelay(true);
                let runtime = runtime.clone();
                let max_body = config.max_body_bytes;
                let service = service_fn(move |request| {
                    let runtime = runtime.clone();
                    async move { Ok::<_, Infallible>(handle(&runtime, request, max_body).await) }
                });
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let first_byte_timeout = config.header_read_timeout;
                tokio::spawn(async move {
                    // Telling HTTP/1 from HTTP/2 waits for the first bytes with no timeout of its
                    // own: a client that connects and sends nothing is dropped here.
                    let mut first = [0u8; 1];
                    if !matches!(tokio::time::timeout(first_byte_timeout, stream.peek(&mut first)).await, Ok(Ok(1..))) {
                        tracing::debug!(%peer, "connection sent nothing before the header timeout");
                        return;
                    }
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(err) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(%peer, "connection ended: {err}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("grace period over: closing connections with requests still in flight");
    }
    Ok(())
}

fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(err.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock)
        || err.raw_os_error().is_some_and(|code| code == 23 || code == 24) // ENFILE, EMFILE
}

pub(crate) type HttpResponse = Response<Full<Bytes>>;

async fn handle(runtime: &Runtime, mut request: Request<Incoming>, max_body: usize) -> HttpResponse {
    let route = match route(request.uri().path(), request.uri().query()) {
        Ok(route) => route,
        Err(err) => {
            let status = match err {
                crate::RouteError::NoNamespace => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            return plain(status, &err.to_string());
        }
    };
    let upgrade = match websocket::asks_websocket(&request).then(|| websocket::handshake(&request)) {
        None => None,
        Some(Ok(handshake)) => Some((handshake, hyper::upgrade::on(&mut request))),
        Some(Err(problem)) => return plain(StatusCode::BAD_REQUEST, &problem),
    };
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body as u64) {
        return too_large(max_body);
    }
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => return too_large(max_body),
        Err(err) => {
            return plain(StatusCode::BAD_REQUEST, &format!("could not read the request body: {err}"));
        }
    };
    let guest_request = opendo_runtime::Request {
        method: parts.method.as_str().to_string(),
        path: route.path,
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    };
    let Some((handshake, on_upgrade)) = upgrade else {
        return match runtime.fetch(&route.namespace, &route.object, guest_request).await {
            Ok(response) => into_http(response),
            Err(err) => event_error(&err),
        };
    };
    match runtime.fetch_upgrade(&route.namespace, &route.object, guest_request).await {
        Ok((response, Some(socket))) => websocket::complete(handshake, response, on_upgrade, socket),
        Ok((response, None)) => into_http(response),
        Err(err) => event_error(&err),
    }
}

fn into_http(response: opendo_runtime::Response) -> HttpResponse {
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
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "the object answered an invalid HTTP header");
    }
    http
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
        if is_framing_header(&name) {
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

fn event_error(err: &EventError) -> HttpResponse {
    match err {
        EventError::UnknownNamespace(_) => plain(StatusCode::NOT_FOUND, &err.to_string()),
        EventError::BadObjectName(_) => plain(StatusCode::BAD_REQUEST, &err.to_string()),
        EventError::Overloaded | EventError::ShuttingDown => {
            let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, &err.to_string());
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        EventError::Trapped(_) | EventError::Refused(_) | EventError::Internal(_) => {
            plain(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string())
        }
    }
}

fn too_large(max_body: usize) -> HttpResponse {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body is larger than the limit of {max_body} bytes"),
    )
}

pub(crate) fn plain(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
