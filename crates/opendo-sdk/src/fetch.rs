//! Outbound HTTP: [`Fetch`], with the workers-rs name, over `wasi:http/outgoing-handler`.

use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, Method as WasiMethod, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

use crate::{Error, Method, Request, Response, Result};

/// Redirects [`Fetch::send`] follows before it gives up.
const MAX_REDIRECTS: usize = 10;
/// Bytes written to the request body per call (the most `blocking-write-and-flush` takes).
const WRITE_CHUNK: usize = 4096;

/// An outbound HTTP request, from an object or the front, to a host its namespace's
/// `outbound` list in the project file allows (none by default).
///
/// Before the request leaves an object, the writes its event made so far are committed and
/// durable, as before a call to another object. Redirects are followed (up to 10), each one
/// checked against the list again.
///
/// ```no_run
/// use opendo_sdk::{Fetch, Method, Request, Response, Result};
///
/// /// Tells a webhook about a new link, and answers its status.
/// fn notify(link: &str) -> Result<u16> {
///     let hook = Request::new("https://hooks.example.com/links", Method::Post).with_json(&link)?;
///     Ok(Fetch::Request(hook).send()?.status_code())
/// }
/// ```
#[derive(Debug, Clone)]
pub enum Fetch {
    /// A `GET` of this URL.
    Url(String),
    /// This request; its URL (`Request::new`) must have a scheme and a host.
    Request(Request),
}

impl Fetch {
    /// Sends the request and returns the response, whatever its status (after redirects).
    pub fn send(self) -> Result<Response> {
        let mut request = match self {
            Fetch::Url(url) => Request::new(&url, Method::Get),
            Fetch::Request(request) => request,
        };
        for _ in 0..=MAX_REDIRECTS {
            let response = send_once(&request)?;
            let location = match response.status_code() {
                301 | 302 | 303 | 307 | 308 => response.header("location").map(str::to_string),
                _ => None,
            };
            let Some(location) = location else { return Ok(response) };
            let (scheme, authority) =
                request.origin().map(|(s, a)| (s.to_string(), a.to_string())).unwrap_or_default();
            let next =
                if location.contains("://") { location } else { format!("{scheme}://{authority}{location}") };
            let method = match response.status_code() {
                303 => Method::Get,
                _ => request.method(),
            };
            let body = if method == Method::Get { Vec::new() } else { request.bytes().to_vec() };
            request = Request::new(&next, method).with_body(body);
        }
        Err(Error::Fetch(format!("more than {MAX_REDIRECTS} redirects")))
    }
}

/// Headers the host sets itself (`wasi:http` refuses them from a guest).
const HOST_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

fn send_once(request: &Request) -> Result<Response> {
    let failed = |what: &str| Error::Fetch(what.to_string());
    let Some((scheme, authority)) = request.origin() else {
        return Err(Error::Fetch(format!(
            "`{}` is not a URL with a scheme and a host",
            request.path_and_query()
        )));
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(Error::Fetch(format!("unsupported scheme `{other}`"))),
    };
    let mut headers: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        .filter(|(name, _)| !HOST_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .cloned()
        .collect();
    // The whole body is known: say its length rather than send it chunked.
    if !request.bytes().is_empty() && request.header("content-length").is_none() {
        headers.push(("content-length".into(), request.bytes().len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&headers).map_err(|err| Error::Fetch(format!("bad header: {err:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match request.method() {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Patch => WasiMethod::Patch,
        Method::Delete => WasiMethod::Delete,
        Method::Options => WasiMethod::Options,
        Method::Other(other) => WasiMethod::Other(other),
    };
    outgoing.set_method(&method).map_err(|()| failed("bad method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|()| failed("bad scheme"))?;
    outgoing.set_authority(Some(authority)).map_err(|()| failed("bad host"))?;
    outgoing.set_path_with_query(Some(request.path_and_query())).map_err(|()| failed("bad path"))?;
    let body = outgoing.body().map_err(|()| failed("no request body"))?;
    let future =
        outgoing_handler::handle(outgoing, None).map_err(|code| Error::Fetch(format!("{code:?}")))?;
    {
        let stream = body.write().map_err(|()| failed("cannot write the request body"))?;
        for chunk in request.bytes().chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|err| Error::Fetch(format!("sending the body: {err:?}")))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| Error::Fetch(format!("{code:?}")))?;
    future.subscribe().block();
    let incoming = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(Error::Fetch(format!("{code:?}"))),
        Some(Err(())) | None => return Err(failed("no response")),
    };
    let status = incoming.status();
    let headers = incoming.headers().entries();
    let body = incoming.consume().map_err(|()| failed("no response body"))?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| failed("no response body"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(err)) => {
                    return Err(Error::Fetch(format!("reading the response: {}", err.to_debug_string())));
                }
            }
        }
    }
    Ok(Response::from_parts(status, headers, bytes))
}
