//! The accept loop shared by the data and admin listeners: connections served over HTTP/1 or
//! HTTP/2 with a header timeout, accept errors survived, and a graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::response::HttpResponse;

/// Settings of a listener's connections.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    /// How long a client may take to send a request's headers before the connection is closed.
    pub(crate) header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing their connections.
    pub(crate) shutdown_grace: Duration,
}

/// Errors of a listener.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Accepting connections failed.
    #[error("accepting connections: {0}")]
    Accept(std::io::Error),
}

/// Serves every connection on `listener` with `handle` (given each request and its peer) until `shutdown` completes, then stops
/// accepting and waits (up to the grace period) for in-flight requests to be answered.
pub(crate) async fn serve_connections<H, F>(
    listener: TcpListener,
    connections: &Connections,
    shutdown: impl Future<Output = ()>,
    handle: H,
) -> Result<(), Error>
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(connections.header_read_timeout);
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
                let handle = handle.clone();
                let service = service_fn(move |request| {
                    let response = handle(request, peer);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let first_byte_timeout = connections.header_read_timeout;
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
    if tokio::time::timeout(connections.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("grace period over: closing connections with requests still in flight");
    }
    Ok(())
}

fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(err.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock)
        || err.raw_os_error().is_some_and(|code| code == 23 || code == 24) // ENFILE, EMFILE
}
