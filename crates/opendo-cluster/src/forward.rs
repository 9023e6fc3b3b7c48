//! Sending a request on to the node that owns its object, over kept-alive connections.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::upgrade::Upgraded;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The header a forwarded request carries, naming the node that forwarded it: the owner never
/// forwards such a request again (no loops), and answers [`MISDIRECTED`] if it no longer holds
/// the object.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("opendo-forwarded-by");

/// The header that proves [`FORWARDED_BY`] true: the cluster's secret between nodes. A request
/// without it is a client's, whatever its other headers say.
pub const CLUSTER_KEY: HeaderName = HeaderName::from_static("opendo-cluster-key");

/// On a call passed on to another node: the objects waiting for it, `namespace/id,...`. Read
/// only from a request that [`CLUSTER_KEY`] proves forwarded.
pub const CALL_CHAIN: HeaderName = HeaderName::from_static("opendo-call-chain");

/// The answer of a node to a forwarded request for an object it does not hold: nothing ran, and
/// the forwarding node may send it again to the owner it reads next.
pub const MISDIRECTED: StatusCode = StatusCode::MISDIRECTED_REQUEST;

/// Longest wait for the owner's answer. Longer than any event may run (its CPU limit is 30 s by
/// default), so that a slow event is not cut off by the hop.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// A request as forwarded.
pub struct Outgoing {
    pub method: Method,
    /// The path and query, as the client sent them.
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The owner's answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a forwarded request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No connection could be made: the request was not sent, so it may be sent elsewhere.
    #[error("could not connect to node {node}: {message}")]
    NotSent { node: String, message: String },
    /// The request may have reached the owner; whether it ran is unknown.
    #[error("node {node} did not answer: {message}")]
    NoAnswer { node: String, message: String },
}

#[derive(Clone)]
pub(crate) struct Forwarder {
    http: Client<HttpConnector, Full<Bytes>>,
    node_id: String,
    secret: HeaderValue,
}

impl Forwarder {
    pub(crate) fn new(node_id: String, secret: HeaderValue) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let http =
            Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Forwarder { http, node_id, secret }
    }

    /// Whether `headers` are those of a request another node of this cluster forwarded.
    pub(crate) fn is_forwarded(&self, headers: &HeaderMap) -> bool {
        headers.contains_key(FORWARDED_BY)
            && headers.get(CLUSTER_KEY).is_some_and(|key| {
                bool::from(subtle::ConstantTimeEq::ct_eq(key.as_bytes(), self.secret.as_bytes()))
            })
    }

    /// The request to send to the owner: the client's, without its hop-by-hop headers, marked
    /// as forwarded by this node.
    fn request(
        &self,
        node: &str,
        address: &str,
        outgoing: Outgoing,
    ) -> Result<http::Request<Full<Bytes>>, ForwardError> {
        let mut request = http::Request::builder()
            .method(outgoing.method)
            .uri(format!("http://{address}{}", outgoing.path_and_query))
            .body(Full::new(outgoing.body))
            .map_err(|err| ForwardError::NotSent { node: node.to_string(), message: err.to_string() })?;
        let headers = request.headers_mut();
        for (name, value) in &outgoing.headers {
            if !is_hop_by_hop(name) {
                headers.append(name, value.clone());
            }
        }
        if let Ok(me) = HeaderValue::from_str(&self.node_id) {
            headers.insert(FORWARDED_BY, me);
            headers.insert(CLUSTER_KEY, self.secret.clone());
        }
        Ok(request)
    }

    pub(crate) async fn send(
        &self,
        node: &str,
        address: &str,
        outgoing: Outgoing,
    ) -> Result<Answer, ForwardError> {
        let no_answer = |message: String| ForwardError::NoAnswer { node: node.to_string(), message };
        let request = self.request(node, address, outgoing)?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|err| {
                if err.is_connect() {
                    ForwardError::NotSent { node: node.to_string(), message: err.to_string() }
                } else {
                    no_answer(err.to_string())
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|err| no_answer(err.to_string()))?.to_bytes();
            Ok(Answer { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(ANSWER_TIMEOUT, exchange)
            .await
            .map_err(|_| no_answer(format!("no answer within {ANSWER_TIMEOUT:?}")))?
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "host"
            | "content-length"
    ) || *name == FORWARDED_BY
        || *name == CLUSTER_KEY
}

impl Forwarder {
    /// Sends a WebSocket upgrade request to the owner on a connection of its own; with the
    /// owner's 101 comes the upgraded connection, to be joined to the client's.
    pub(crate) async fn tunnel(
        &self,
        node: &str,
        address: &str,
        outgoing: Outgoing,
    ) -> Result<(Answer, Option<Upgraded>), ForwardError> {
        let not_sent = |message: String| ForwardError::NotSent { node: node.to_string(), message };
        let no_answer = |message: String| ForwardError::NoAnswer { node: node.to_string(), message };
        let mut request = self.request(node, address, outgoing)?;
        // The upgrade's own hop-by-hop headers, which `request` leaves out.
        let headers = request.headers_mut();
        headers.insert(http::header::CONNECTION, http::HeaderValue::from_static("upgrade"));
        headers.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        if let Ok(host) = http::HeaderValue::from_str(address) {
            headers.insert(http::header::HOST, host);
        }
        let exchange = async {
            let tcp = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(address))
                .await
                .map_err(|_| not_sent("no connection within 2 s".into()))?
                .map_err(|err| not_sent(err.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|err| not_sent(err.to_string()))?;
            tokio::spawn(async move {
                if let Err(err) = connection.with_upgrades().await {
                    tracing::debug!("a forwarded WebSocket's connection ended: {err}");
                }
            });
            let mut response =
                sender.send_request(request).await.map_err(|err| no_answer(err.to_string()))?;
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                let (parts, body) = response.into_parts();
                let body = body.collect().await.map_err(|err| no_answer(err.to_string()))?.to_bytes();
                return Ok((Answer { status: parts.status, headers: parts.headers, body }, None));
            }
            let upgraded =
                hyper::upgrade::on(&mut response).await.map_err(|err| no_answer(err.to_string()))?;
            let answer =
                Answer { status: response.status(), headers: response.headers().clone(), body: Bytes::new() };
            Ok((answer, Some(upgraded)))
        };
        tokio::time::timeout(ANSWER_TIMEOUT, exchange)
            .await
            .map_err(|_| no_answer(format!("no answer within {ANSWER_TIMEOUT:?}")))?
    }
}
