//! The two listeners: the data plane ([`serve`]) and the admin listener ([`serve_admin`]).

use std::future::Future;
use std::time::Duration;

use opendo_cluster::Cluster;
use opendo_runtime::Runtime;
use tokio::net::TcpListener;

use crate::admin::AdminAccess;
use crate::listener::{Connections, Error, serve_connections};

/// Settings of the HTTP front.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers before the connection is closed.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing their connections.
    pub shutdown_grace: Duration,
    /// Set on a node of a cluster: requests for objects of other nodes are forwarded there, and
    /// the admin listener shows the cluster.
    pub cluster: Option<Cluster>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 32 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            cluster: None,
        }
    }
}

impl ServerConfig {
    fn connections(&self) -> Connections {
        Connections { header_read_timeout: self.header_read_timeout, shutdown_grace: self.shutdown_grace }
    }
}

/// Serves `runtime`'s objects on `listener` until `shutdown` completes, then stops accepting and
/// waits (up to the grace period) for in-flight requests to be answered. The runtime itself is
/// not shut down: call [`Runtime::shutdown`] afterwards.
pub async fn serve(
    listener: TcpListener,
    runtime: Runtime,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let max_body = config.max_body_bytes;
    let cluster = config.cluster.clone();
    serve_connections(listener, &config.connections(), shutdown, move |request, _| {
        let (runtime, cluster) = (runtime.clone(), cluster.clone());
        async move { crate::data::handle(&runtime, request, max_body, cluster.as_ref()).await }
    })
    .await
}

/// Serves the admin listener for `runtime` on `listener` (never the data port) until `shutdown`
/// completes, with the connection settings of `config`: `GET /healthz`, `GET /metrics`, the web
/// inspector at `/`, and the admin API at `/v1/...` for requests bearing `access`'s token.
pub async fn serve_admin(
    listener: TcpListener,
    runtime: Runtime,
    config: ServerConfig,
    access: AdminAccess,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let cluster = config.cluster.clone();
    serve_connections(listener, &config.connections(), shutdown, move |request, peer| {
        let (runtime, access, cluster) = (runtime.clone(), access.clone(), cluster.clone());
        async move { crate::admin::answer(&runtime, &access, request, peer, cluster.as_ref()).await }
    })
    .await
}
