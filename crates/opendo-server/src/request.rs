//! A client's request as the runtime's: its body read whole, within the limit.

use http::header::CONTENT_LENGTH;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::response::{HttpResponse, plain, too_large};

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
