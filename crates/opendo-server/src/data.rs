//! The data plane: one request routed to its object (or, when the project has a front, given to
//! the front), and the answer as HTTP.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use opendo_cluster::{CALL_CHAIN, CLUSTER_KEY, Cluster, FORWARDED_BY, Place};
use opendo_runtime::Runtime;

use crate::request::read;
use crate::response::{HttpResponse, event_error, from_object, plain};
use crate::routing::{RouteError, route};
use crate::websocket;

pub(crate) async fn handle(
    runtime: &Runtime,
    mut request: Request<Incoming>,
    max_body: usize,
    cluster: Option<&Cluster>,
) -> HttpResponse {
    // A request another node forwarded is for an object: its front ran there already.
    let forwarded = cluster.is_some_and(|cluster| cluster.is_forwarded(request.headers()));
    let chain = cluster.and_then(|cluster| cluster.call_chain(request.headers()));
    // The hop's own headers: no object or front sees them (the key is the cluster's secret).
    for hop in [FORWARDED_BY, CLUSTER_KEY, CALL_CHAIN] {
        request.headers_mut().remove(hop);
    }
    // Only calls between objects name a method to run (a node forwards the calls of its objects).
    if !forwarded {
        request.headers_mut().remove(opendo_runtime::RPC_HEADER);
    }
    if runtime.has_front() && !forwarded {
        return through_front(runtime, request, max_body).await;
    }
    let route = match route(request.uri().path(), request.uri().query()) {
        Ok(route) => route,
        Err(err) => {
            let status = match err {
                RouteError::NoNamespace | RouteError::NoId => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            return plain(status, &err.to_string());
        }
    };
    if let Some(cluster) = cluster {
        match cluster.place(&route.namespace, &route.object) {
            // Not a valid name or id: the runtime says so below.
            None => {}
            Some(Place::Here) if websocket::asks_websocket(&request) => {}
            Some(_) if websocket::asks_websocket(&request) => {
                return crate::cluster::websocket(cluster, request, route, forwarded).await;
            }
            Some(_) => {
                return crate::cluster::handle(runtime, cluster, request, route, max_body, forwarded, chain)
                    .await;
            }
        }
    }
    let upgrade = match websocket::asks_websocket(&request).then(|| websocket::handshake(&request)) {
        None => None,
        Some(Ok(handshake)) => Some((handshake, hyper::upgrade::on(&mut request))),
        Some(Err(problem)) => return plain(StatusCode::BAD_REQUEST, &problem),
    };
    let object_request = match read(request, route.path, max_body).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let Some((handshake, on_upgrade)) = upgrade else {
        return match runtime.fetch_object(&route.namespace, &route.object, object_request).await {
            Ok(response) => from_object(response),
            Err(err) => event_error(&err),
        };
    };
    match runtime.fetch_upgrade(&route.namespace, &route.object, object_request).await {
        Ok((response, Some(socket))) => websocket::complete(handshake, response, on_upgrade, socket),
        Ok((response, None)) => from_object(response),
        Err(err) => event_error(&err),
    }
}

/// With a front, every request goes to it with its whole path and query.
async fn through_front(runtime: &Runtime, mut request: Request<Incoming>, max_body: usize) -> HttpResponse {
    let upgrade = match websocket::asks_websocket(&request).then(|| websocket::handshake(&request)) {
        None => None,
        Some(Ok(handshake)) => Some((handshake, hyper::upgrade::on(&mut request))),
        Some(Err(problem)) => return plain(StatusCode::BAD_REQUEST, &problem),
    };
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let front_request = match read(request, path, max_body).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let Some((handshake, on_upgrade)) = upgrade else {
        return match runtime.fetch_front(front_request).await {
            Ok(response) => from_object(response),
            Err(err) => event_error(&err),
        };
    };
    match runtime.fetch_front_upgrade(front_request).await {
        Ok((response, Some(socket))) => websocket::complete(handshake, response, on_upgrade, socket),
        Ok((response, None)) => from_object(response),
        Err(err) => event_error(&err),
    }
}
