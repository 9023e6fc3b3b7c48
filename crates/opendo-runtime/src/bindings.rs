//! The one place the `durable-object` world is turned into Rust: host traits for the imports,
//! typed calls for the exports.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "durable-object",
    // Host functions return `wasmtime::Result`: `Err` traps the event. Functions whose WIT result
    // is `result<_, error>` return `HostError` instead, which `host::errors` turns into a trap or
    // an error the guest sees: the one place that rule is decided.
    imports: { default: trappable },
    trappable_error_type: {
        "opendo:durable-object/types.error" => crate::error::HostError,
    },
});

pub(crate) use exports::opendo::durable_object::handler::AlarmInfo;
pub(crate) use opendo::durable_object::types::{Error as GuestError, ErrorCode, Request as GuestRequest};
pub(crate) use opendo::durable_object::websockets::Message as WsMessage;
