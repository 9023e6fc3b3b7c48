//! Write Durable Objects in Rust for [open-do](https://github.com/open-do/open-do).
//!
//! An object is a type implementing [`DurableObject`], exported with
//! [`export_durable_object!`] from a `cdylib` crate built for `wasm32-wasip2`. The runtime creates
//! one instance per object on its first event and delivers events to it one at a time. Everything
//! the object writes to [`Storage`] during an event commits when the event returns, before the
//! response leaves the runtime; in-memory fields survive between events only while the object is
//! active (it may be reset or hibernate at any time), so keep what matters in storage.
//!
//! See [`DurableObject`] for a complete object. Objects reach each other through
//! [`ObjectNamespace`] (ids by name, new unique ids, ids checked from strings) and [`Stub`] (calls).
//!
//! A [`Front`], exported with [`export_front!`], is the stateless component that receives every
//! HTTP request when a project has one, and reaches objects the same way. Both may send HTTP
//! requests to the hosts the project file allows them ([`Fetch`]).
//!
//! # Encoding of typed values
//! [`Storage::get`] and [`Storage::put`] store values as JSON text (UTF-8, via `serde_json`), so
//! any language can read them back; [`Storage::get_bytes`] and [`Storage::put_bytes`] store raw
//! bytes untouched.

// Lets the generated bindings name this crate by its public path, from inside and outside.
extern crate self as opendo_sdk;

mod alarm;
mod error;
mod fetch;
mod front;
mod http;
mod objects;
mod sql;
mod state;
mod storage;
mod transaction;
mod websocket;

pub use alarm::{AlarmInfo, ScheduledTime};
pub use error::{Error, Result, StorageErrorCode};
pub use fetch::Fetch;
pub use front::Front;
pub use http::{Method, Request, Response};
pub use objects::{CallErrorCode, ObjectId, ObjectNamespace, Stub};
pub use sql::{SqlCursor, SqlStorage, SqlStorageValue};
pub use state::State;
pub use storage::{ListOptions, Storage};
pub use transaction::Transaction;
pub use websocket::{WebSocket, WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "durable-object",
        pub_export_macro: true,
        export_macro_name: "__export_handler",
        default_bindings_module: "::opendo_sdk::bindings",
        runtime_path: "::opendo_sdk::__private::wit_bindgen::rt",
    });

    /// The `front` world: the same `types` and `objects` imports, its own export.
    pub mod front {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "front",
            pub_export_macro: true,
            export_macro_name: "__export_front",
            default_bindings_module: "::opendo_sdk::bindings::front",
            runtime_path: "::opendo_sdk::__private::wit_bindgen::rt",
            with: {
                "opendo:durable-object/types@0.1.0": crate::bindings::opendo::durable_object::types,
                "opendo:durable-object/objects@0.1.0": crate::bindings::opendo::durable_object::objects,
            },
        });
    }
}

/// A Durable Object class.
///
/// The runtime creates the value with [`DurableObject::new`] on the object's first event after
/// it was activated (or reset), then calls the handlers one event at a time.
///
/// ```
/// use opendo_sdk::{DurableObject, Method, Request, Response, Result, State, export_durable_object};
///
/// struct Counter {
///     state: State,
/// }
///
/// impl DurableObject for Counter {
///     fn new(state: State) -> Self {
///         Counter { state }
///     }
///
///     fn fetch(&self, req: Request) -> Result<Response> {
///         let storage = self.state.storage();
///         match (req.method(), req.path()) {
///             (Method::Post, "/increment") => {
///                 let value = storage.get::<i64>("count")?.unwrap_or(0) + 1;
///                 storage.put("count", &value)?;
///                 Response::ok(value.to_string())
///             }
///             _ => Response::error("not found", 404),
///         }
///     }
/// }
///
/// export_durable_object!(Counter);
/// ```
pub trait DurableObject: 'static {
    /// Creates the object's in-memory instance. Storage is already available through `state`.
    fn new(state: State) -> Self;

    /// Handles one HTTP request. An `Err` becomes a 500 response carrying the error's message;
    /// the event's storage writes still commit (return an error response yourself, or panic, to
    /// decide otherwise: a panic rolls the event back).
    fn fetch(&self, req: Request) -> Result<Response>;

    /// Runs when the object's alarm is due (see [`Storage::set_alarm`]). The alarm is already
    /// cleared: set a new one here to keep a schedule going. `Ok` commits the call's writes; an
    /// `Err` or a panic rolls them back and the alarm is retried (after 2, 4, ... 64 seconds),
    /// so make the handler safe to run more than once. The default does nothing.
    fn alarm(&self, info: AlarmInfo) -> Result<()> {
        let _ = info;
        Ok(())
    }

    /// A client sent a message on a WebSocket this object accepted (see
    /// [`State::accept_websocket`]). The object may have hibernated since: the socket, its tags
    /// and attachment are still there. `Ok` commits the call's writes and releases its sends; an
    /// `Err` or a panic rolls them back (the message is not delivered again). The default
    /// ignores the message.
    fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        let _ = (ws, message);
        Ok(())
    }

    /// A client closed its WebSocket: `was_clean` with a close frame (`code` and `reason` are
    /// the client's), otherwise the connection dropped (`code` 1006). The socket is no longer
    /// listed. The default does nothing.
    fn websocket_close(&self, ws: WebSocket, code: u16, reason: String, was_clean: bool) -> Result<()> {
        let _ = (ws, code, reason, was_clean);
        Ok(())
    }

    /// A WebSocket failed (a protocol error, or a message over the size limit) and the runtime
    /// closed it; no `websocket_close` follows. The default does nothing.
    fn websocket_error(&self, ws: WebSocket, error: Error) -> Result<()> {
        let _ = (ws, error);
        Ok(())
    }
}

/// Exports a [`DurableObject`] type as the component's event handlers.
///
/// Use it once, at the top level of a `cdylib` crate: `export_durable_object!(MyObject);`.
#[macro_export]
macro_rules! export_durable_object {
    ($object:ty) => {
        const _: () = {
            ::std::thread_local! {
                static OBJECT: ::std::cell::OnceCell<$object> = const { ::std::cell::OnceCell::new() };
            }

            /// The object's value, made on the first event after activation or a reset.
            fn with_object<R>(f: impl FnOnce(&$object) -> R) -> R {
                OBJECT.with(|cell| {
                    f(cell.get_or_init(|| <$object as $crate::DurableObject>::new($crate::State::current())))
                })
            }

            struct Export;

            impl $crate::bindings::exports::opendo::durable_object::handler::Guest for Export {
                fn fetch(
                    request: $crate::bindings::opendo::durable_object::types::Request,
                ) -> $crate::bindings::opendo::durable_object::types::Response {
                    with_object(|object| $crate::__private::fetch(object, request))
                }

                fn alarm(
                    info: $crate::bindings::exports::opendo::durable_object::handler::AlarmInfo,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    with_object(|object| $crate::__private::alarm(object, info))
                }

                fn websocket_message(
                    socket: u64,
                    message: $crate::bindings::opendo::durable_object::websockets::Message,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    with_object(|object| $crate::__private::websocket_message(object, socket, message))
                }

                fn websocket_close(
                    socket: u64,
                    code: u16,
                    reason: ::std::string::String,
                    was_clean: bool,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    with_object(|object| {
                        $crate::__private::websocket_close(object, socket, code, reason, was_clean)
                    })
                }

                fn websocket_error(
                    socket: u64,
                    message: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    with_object(|object| $crate::__private::websocket_error(object, socket, message))
                }
            }

            $crate::bindings::__export_handler!(Export);
        };
    };
}

/// Exports a [`Front`] type as the component's request handler.
///
/// Use it once, at the top level of a `cdylib` crate: `export_front!(MyFront);`.
#[macro_export]
macro_rules! export_front {
    ($front:ty) => {
        const _: () = {
            ::std::thread_local! {
                static FRONT: ::std::cell::OnceCell<$front> = const { ::std::cell::OnceCell::new() };
            }

            struct Export;

            impl $crate::bindings::front::exports::opendo::durable_object::front_handler::Guest for Export {
                fn fetch(
                    request: $crate::bindings::opendo::durable_object::types::Request,
                ) -> $crate::bindings::opendo::durable_object::types::Response {
                    FRONT.with(|cell| {
                        $crate::__private::front_fetch(
                            cell.get_or_init(<$front as $crate::Front>::new),
                            request,
                        )
                    })
                }
            }

            $crate::bindings::front::__export_front!(Export);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    pub fn front_fetch<T: crate::Front>(front: &T, request: wit::Request) -> wit::Response {
        match front.fetch(crate::Request::from_wit(request)) {
            Ok(response) => response.into_wit(),
            Err(err) => crate::Response::internal_error(&err).into_wit(),
        }
    }

    use crate::bindings::exports::opendo::durable_object::handler as handler_wit;
    use crate::bindings::opendo::durable_object::types as wit;

    pub fn fetch<T: crate::DurableObject>(object: &T, request: wit::Request) -> wit::Response {
        match object.fetch(crate::Request::from_wit(request)) {
            Ok(response) => response.into_wit(),
            Err(err) => crate::Response::internal_error(&err).into_wit(),
        }
    }

    pub fn alarm<T: crate::DurableObject>(object: &T, info: handler_wit::AlarmInfo) -> Result<(), String> {
        let info = crate::AlarmInfo { retry_count: info.retry_count, is_retry: info.is_retry };
        object.alarm(info).map_err(|err| err.to_string())
    }

    pub fn websocket_message<T: crate::DurableObject>(
        object: &T,
        socket: u64,
        message: crate::bindings::opendo::durable_object::websockets::Message,
    ) -> Result<(), String> {
        let message = crate::WebSocketIncomingMessage::from_wit(message);
        object.websocket_message(crate::WebSocket::from_id(socket), message).map_err(|err| err.to_string())
    }

    pub fn websocket_close<T: crate::DurableObject>(
        object: &T,
        socket: u64,
        code: u16,
        reason: String,
        was_clean: bool,
    ) -> Result<(), String> {
        object
            .websocket_close(crate::WebSocket::from_id(socket), code, reason, was_clean)
            .map_err(|err| err.to_string())
    }

    pub fn websocket_error<T: crate::DurableObject>(
        object: &T,
        socket: u64,
        message: String,
    ) -> Result<(), String> {
        object
            .websocket_error(crate::WebSocket::from_id(socket), crate::Error::Message(message))
            .map_err(|err| err.to_string())
    }
}

/// The README's example object compiles against this SDK.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
