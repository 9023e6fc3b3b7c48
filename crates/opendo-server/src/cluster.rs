//! On a node of a cluster: a request for an object served here, or forwarded to the node that
//! owns it, waiting (bounded) while its shard moves between nodes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opendo_cluster::{Cluster, ForwardError, MISDIRECTED, MOVE_WAIT, Outgoing, Place};
use opendo_runtime::{EventError, ObjectId, Runtime};

use crate::request::read;
use crate::response::{HttpResponse, event_error, from_object, plain};
use crate::routing::Route;

/// Between two looks at where the object lives while its shard moves.
const RETRY_EVERY: Duration = Duration::from_millis(50);

pub(crate) async fn handle(
    runtime: &Runtime,
    cluster: &Cluster,
    request: Request<Incoming>,
    route: Route,
    max_body: usize,
    forwarded: bool,
    chain: Option<Vec<(String, ObjectId)>>,
) -> HttpResponse {
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let headers = request.headers().clone();
    let object_request = match read(request, route.path.clone(), max_body).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let method = http::Method::from_bytes(object_request.method.as_bytes()).unwrap_or(http::Method::GET);
    let body = Bytes::from(object_request.body.clone());
    let deadline = Instant::now() + MOVE_WAIT;
    loop {
        match cluster.place(&route.namespace, &route.object) {
            None | Some(Place::Here) => {
                let request = object_request.clone();
                let answered = match &chain {
                    // A call from another node: the callee's calls are checked against its chain.
                    Some(chain) => {
                        runtime.fetch_in_chain(&route.namespace, &route.object, request, chain.clone()).await
                    }
                    None => runtime.fetch_object(&route.namespace, &route.object, request).await,
                };
                match answered {
                    Ok(response) => return from_object(response),
                    Err(EventError::Moved) => {}
                    Err(err) => return event_error(&err),
                }
            }
            // The node that forwarded it believed this one the owner: it looks again.
            Some(_) if forwarded => {
                return plain(
                    MISDIRECTED,
                    &format!("node {} does not hold this object now", cluster.node_id()),
                );
            }
            Some(Place::Node { id, address }) => {
                let outgoing = Outgoing {
                    method: method.clone(),
                    path_and_query: path_and_query.clone(),
                    headers: headers.clone(),
                    body: body.clone(),
                };
                match cluster.forward(&id, &address, outgoing).await {
                    Ok(answer) if answer.status == MISDIRECTED => {}
                    Ok(answer) => return relayed(answer),
                    // Not sent: the owner may have died; its shard moves soon.
                    Err(ForwardError::NotSent { .. }) => {}
                    Err(err) => {
                        tracing::warn!("forwarding a request: {err}");
                        return plain(StatusCode::BAD_GATEWAY, &err.to_string());
                    }
                }
            }
            Some(Place::Nowhere) => {}
        }
        if Instant::now() >= deadline {
            return no_owner();
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// A WebSocket upgrade for an object of another node: the upgrade goes to the owner, and once it
/// answers 101 the client's connection and the owner's are joined, byte for byte, until either
/// closes.
pub(crate) async fn websocket(
    cluster: &Cluster,
    mut request: Request<Incoming>,
    route: Route,
    forwarded: bool,
) -> HttpResponse {
    if let Err(problem) = crate::websocket::handshake(&request) {
        return plain(StatusCode::BAD_REQUEST, &problem);
    }
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let headers = request.headers().clone();
    let on_upgrade = hyper::upgrade::on(&mut request);
    let deadline = Instant::now() + MOVE_WAIT;
    loop {
        match cluster.place(&route.namespace, &route.object) {
            Some(Place::Node { .. }) if forwarded => {
                return plain(
                    MISDIRECTED,
                    &format!("node {} does not hold this object now", cluster.node_id()),
                );
            }
            Some(Place::Node { id, address }) => {
                let outgoing = Outgoing {
                    method: http::Method::GET,
                    path_and_query: path_and_query.clone(),
                    headers: headers.clone(),
                    body: Bytes::new(),
                };
                match cluster.forward_websocket(&id, &address, outgoing).await {
                    Ok((answer, Some(owner))) => {
                        tokio::spawn(async move {
                            match on_upgrade.await {
                                Ok(client) => {
                                    let (mut client, mut owner) = (TokioIo::new(client), TokioIo::new(owner));
                                    let _ = tokio::io::copy_bidirectional(&mut client, &mut owner).await;
                                }
                                Err(err) => tracing::debug!("WebSocket upgrade did not complete: {err}"),
                            }
                        });
                        let mut response = http::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = answer.status;
                        *response.headers_mut() = answer.headers;
                        return response;
                    }
                    Ok((answer, None)) if answer.status == MISDIRECTED => {}
                    Ok((answer, None)) => return relayed(answer),
                    Err(ForwardError::NotSent { .. }) => {}
                    Err(err) => {
                        tracing::warn!("forwarding a WebSocket: {err}");
                        return plain(StatusCode::BAD_GATEWAY, &err.to_string());
                    }
                }
            }
            // The object arrived here while the upgrade waited: the client connects again.
            Some(Place::Here) | None => return no_owner(),
            Some(Place::Nowhere) if forwarded => {
                return plain(
                    MISDIRECTED,
                    &format!("node {} does not hold this object now", cluster.node_id()),
                );
            }
            Some(Place::Nowhere) => {}
        }
        if Instant::now() >= deadline {
            return no_owner();
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// The owner's answer, as this node's.
fn relayed(answer: opendo_cluster::Answer) -> HttpResponse {
    let mut response = http::Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    // The framing is this hop's own.
    response.headers_mut().remove(http::header::TRANSFER_ENCODING);
    response.headers_mut().remove(http::header::CONNECTION);
    response
}

fn no_owner() -> HttpResponse {
    let mut response = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "the object's shard is moving between nodes and has no owner yet: try again",
    );
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
