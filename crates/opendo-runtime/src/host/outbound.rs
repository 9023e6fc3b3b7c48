//! Outbound HTTP (`wasi:http/outgoing-handler`) for objects and the front: refused unless the
//! namespace (or the front) allows the host, and for an object held by the output gate like a
//! call (its writes so far are durable before the request leaves).
//!
//! A request passes three checks: its host (and port) is in the allowlist, before anything is
//! committed; then, once resolved, no address of a host given by name is loopback, private or
//! link-local (an allowlist entry that is an IP address allows its own), and no address is the
//! admin listener's. Each redirect the guest follows is a new request, checked
//! again. Timeouts are capped, and a response body longer than the limit fails its read.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::p2::{HttpError, HttpResult};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

use crate::config::Outbound;
use crate::context::Context;
use crate::identity::Identity;

/// Longest wait for a connection (a guest may ask for less; `Config::outbound_timeout` caps it
/// too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The hooks of one store's `wasi:http`: the checks above, with what they need.
pub(crate) struct OutboundHooks {
    allowed: Arc<Outbound>,
    /// Largest response body a guest may read.
    max_response_bytes: usize,
    /// The admin listener's address, once it listens.
    admin: Arc<OnceLock<SocketAddr>>,
    /// Longest wait for a response to begin, and between two pieces of its body.
    timeout: Duration,
}

impl OutboundHooks {
    pub(crate) fn new(allowed: Arc<Outbound>, max_response_bytes: usize, context: &Context) -> Self {
        OutboundHooks {
            allowed,
            max_response_bytes,
            admin: context.admin_address.clone(),
            timeout: context.config.outbound_timeout,
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>),
                    Error,
                >,
            > + Send,
    > {
        let allowed = self.allowed.clone();
        let admin = self.admin.get().copied();
        let limit = self.max_response_bytes;
        let timeout = self.timeout;
        Box::new(async move {
            vet(&allowed, admin, request.uri()).await?;
            let options = Some(capped(options, timeout));
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let response = response.map(|body| {
                Limited::new(body, limit)
                    .map_err(move |_| Error::HttpResponseBodySize(Some(limit as u64)))
                    .boxed_unsync()
            });
            Ok((response, Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>))
        })
    }
}

/// The guest's timeouts, none longer than ours (`timeout` for the response).
fn capped(options: Option<RequestOptions>, timeout: Duration) -> RequestOptions {
    let asked = options.unwrap_or_default();
    let cap = |asked: Option<Duration>, most: Duration| Some(asked.map_or(most, |asked| asked.min(most)));
    RequestOptions {
        connect_timeout: cap(asked.connect_timeout, CONNECT_TIMEOUT.min(timeout)),
        first_byte_timeout: cap(asked.first_byte_timeout, timeout),
        between_bytes_timeout: cap(asked.between_bytes_timeout, timeout),
    }
}

/// Resolves the request's host and checks its addresses (see the module's docs).
async fn vet(allowed: &Outbound, admin: Option<SocketAddr>, uri: &http::Uri) -> Result<(), Error> {
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let Some(entry) = allowed.entry(host, port) else { return Err(Error::HttpRequestDenied) };
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Error::DnsError { rcode: None, info_code: None })?;
    let mut any = false;
    for address in addresses {
        any = true;
        let to_admin = admin.is_some_and(|admin| {
            admin == address
                || (admin.port() == address.port() && (admin.ip().is_unspecified() || is_local(address.ip())))
        });
        if to_admin || (is_local(address.ip()) && !entry.allows_local()) {
            return Err(Error::DestinationIpProhibited);
        }
    }
    if !any {
        return Err(Error::DestinationNotFound);
    }
    Ok(())
}

/// Loopback, private, link-local, unspecified or shared (carrier-grade NAT) addresses.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_local(IpAddr::V4(v4)),
            None => {
                let first = ip.segments()[0];
                ip.is_loopback()
                    || ip.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

/// A store whose guest may send HTTP requests: what it checks (and, for an object, commits)
/// before one leaves. `wasi:http/outgoing-handler.handle` calls it (`runtime.rs`).
pub(crate) trait SendsHttp: WasiHttpView + Send + 'static {
    fn before_request(&mut self, request: &Resource<HostOutgoingRequest>) -> HttpResult<()>;
}

/// `handle` with the checks of `before_request` first.
pub(crate) fn handle<T: SendsHttp>(
    host: &mut T,
    request: Resource<HostOutgoingRequest>,
    options: Option<Resource<RequestOptions>>,
) -> wasmtime::Result<Result<Resource<HostFutureIncomingResponse>, ErrorCode>> {
    let handled = host
        .before_request(&request)
        .and_then(|()| outgoing_handler::Host::handle(&mut host.http(), request, options));
    match handled {
        Ok(future) => Ok(Ok(future)),
        Err(err) => err.downcast().map(Err),
    }
}

/// Whether `hooks` allow the request's host, with a log line if not.
pub(super) fn allowed(
    hooks: &OutboundHooks,
    table: &ResourceTable,
    request: &Resource<HostOutgoingRequest>,
    who: &Identity,
) -> HttpResult<()> {
    let outgoing = table.get(request).map_err(HttpError::trap)?;
    let authority = outgoing.authority.clone().unwrap_or_default();
    let https = !matches!(outgoing.scheme, Some(Scheme::Http));
    if hooks.allowed.allows_authority(&authority, https) {
        return Ok(());
    }
    tracing::warn!(
        namespace = %who.namespace,
        object = %who.id,
        "outbound request to `{authority}` refused: not in the `outbound` list"
    );
    Err(ErrorCode::HttpRequestDenied.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_are_told_from_public_ones() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_local(local.parse().unwrap()), "{local}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:2800:220:1::1", "::ffff:8.8.8.8"] {
            assert!(!is_local(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_guest_may_shorten_the_timeouts_but_not_lengthen_them() {
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(1)),
            first_byte_timeout: Some(Duration::from_secs(3600)),
            between_bytes_timeout: None,
        };
        let kept = capped(Some(asked), Duration::from_secs(30));
        assert_eq!(kept.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(kept.first_byte_timeout, Some(Duration::from_secs(30)));
        assert_eq!(kept.between_bytes_timeout, Some(Duration::from_secs(30)));
        let short = capped(None, Duration::from_secs(2));
        assert_eq!(
            short.connect_timeout,
            Some(Duration::from_secs(2)),
            "the server's timeout caps connecting too"
        );
    }
}
