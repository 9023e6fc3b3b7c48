//! The data plane: one request routed to its object (or, when the project has a front, given to
//! the front), and the answer as HTTP.

use http::header::CONTENT_LENGTH;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use opendo_cluster::{CLUSTER_KEY, Cluster, FORWARDED_BY, Place};
use opendo_runtime::Runtime;

use crate::response::{HttpResponse, event_error, from_object, plain, too_large};
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
    // The hop's own headers: no object or front sees them (the key is the cluster's secret).
    request.headers_mut().remove(FORWARDED_BY);
    request.headers_mut().remove(CLUSTER_KEY);
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
                return crate::cluster::handle(runtime, cluster, request, route, max_body, forwarded).await;
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

/// Reads `request`'s body (at most `max_body` bytes) into the request a guest gets, with `path`.
pub(crate) async fn read(
    request: Request<Incoming>,
    path: String,
    max_body: usize,
) -> Result<opendo_runtime::Request, HttpResponse> {
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body as u64) {
        return Err(too_large(max_body));
    }
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => return Err(too_large(max_body)),
        Err(err) => {
            return Err(plain(StatusCode::BAD_REQUEST, &format!("could not read the request body: {err}")));
        }
    };
    Ok(opendo_runtime::Request {
        method: parts.method.as_str().to_string(),
        path,
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    })
}
