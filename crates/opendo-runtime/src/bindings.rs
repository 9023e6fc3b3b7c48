//! The one place the `durable-object` world is turned into Rust: host traits for the imports,
//! typed calls for the exports.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "durable-object",
    // Host functions return `wasmtime::Result`: `Err` traps the event. Functions whose WIT result
    // is `result<_, error>` return `HostError` instead, which `host::errors` turns into a trap or
    // an error the guest sees: the one place that rule is decided.
    imports: {
        // A call to another object waits for its answer without holding a thread.
        "opendo:durable-object/objects.fetch": async | trappable,
        default: trappable,
    },
    // Handlers run on a fiber (`call_async`), so that a guest waiting for another object
    // suspends instead of holding a thread (`actor/blocking.rs`).
    exports: { default: async },
    trappable_error_type: {
        "opendo:durable-object/types.error" => crate::error::HostError,
    },
});

pub(crate) use exports::opendo::durable_object::handler::AlarmInfo;
pub(crate) use opendo::durable_object::types::{
    Error as GuestError, ErrorCode, Request as GuestRequest, Response as GuestResponse,
};
pub(crate) use opendo::durable_object::websockets::Message as WsMessage;
