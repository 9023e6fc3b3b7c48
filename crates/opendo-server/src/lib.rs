//! The HTTP front of open-do.
//!
//! `/{namespace}/{object-name}/{rest...}?query` is delivered to object `{object-name}` (percent-
//! decoded UTF-8, 1 to 256 bytes) of `{namespace}`, which sees the path `/{rest...}?query`;
//! `/_id/{namespace}/{id}/{rest...}?query` to the object with that id.
//! Errors of the runtime itself get a short plain-text body: 404 unknown namespace, 400 bad
//! object name or id, 413 body over the limit, 503 with `Retry-After` when the object is overloaded or
//! the server is shutting down, 500 when the event trapped (the body names the cause class).
//!
//! A WebSocket upgrade request (`GET` with `Upgrade: websocket`) is delivered to the object like
//! any request; if the object accepts the socket and answers 101, the server completes the
//! handshake and hands the connection to the runtime, which owns it from then on. A malformed
//! upgrade request gets 400 without reaching the object.
//!
//! [`serve_admin`] serves, on a separate listener, health, metrics (OpenMetrics text), the web
//! inspector at `/`, and the admin API at `/v1/...` (JSON, behind a bearer token: [`AdminAccess`]).
//!
//! # Modules
//! Each uses only those before it:
//!
//! | module | its job |
//! |---|---|
//! | `response` | responses the server writes itself; an object's response as HTTP |
//! | `routing` | a path as (namespace, object name, path inside the object) |
//! | `request` | a client's request as the runtime's, its body read within the limit |
//! | `listener` | the accept loop both listeners share: timeouts, accept errors, graceful shutdown |
//! | `websocket` | the HTTP side of a WebSocket upgrade |
//! | `cluster` | on a cluster's node: a request served here or forwarded to its object's owner |
//! | `data` | one data-plane request, routed to its object |
//! | `admin/` | the admin listener: health, metrics, the inspector page; `admin/access.rs` the token; `admin/api.rs` the `/v1` API |
//! | `serve` | [`serve`] and [`serve_admin`] |

mod admin;
mod cluster;
mod data;
mod listener;
mod request;
mod response;
mod routing;
mod serve;
mod websocket;

pub use admin::AdminAccess;
pub use listener::Error;
pub use routing::{Route, RouteError, route};
pub use serve::{ServerConfig, serve, serve_admin};
