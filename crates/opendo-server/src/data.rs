//! The data plane: one request routed to its object, and the object's answer as HTTP.

use http::header::CONTENT_LENGTH;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use opendo_runtime::Runtime;

use crate::response::{HttpResponse, event_error, from_object, plain, too_large};
use crate::routing::{RouteError, route};
use crate::websocket;

pub(crate) async fn handle(
    runtime: &Runtime,
    mut request: Request<Incoming>,
    max_body: usize,
) -> HttpResponse {
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
    let object_request = opendo_runtime::Request {
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
