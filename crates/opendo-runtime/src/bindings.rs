//! The one place the WIT worlds are turned into Rust: host traits for the imports, typed calls
//! for the exports.
//!
//! An object's handlers are called directly, or, for a component that imports `objects.fetch`
//! (it may wait for another object), on a fiber (`call_async`, [`on_fiber`]): a waiting guest
//! then suspends instead of holding a thread (`blocking.rs`). A fiber needs a stack of its own
//! (about 18 KiB resident and two memory mappings per active object), which objects that never
//! call do not pay for.

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
    trappable_error_type: {
        "opendo:durable-object/types.error" => crate::error::HostError,
    },
});

pub(crate) use exports::opendo::durable_object::handler::AlarmInfo;
pub(crate) use opendo::durable_object::types::{
    Error as GuestError, ErrorCode, Request as GuestRequest, Response as GuestResponse,
};
pub(crate) use opendo::durable_object::websockets::Message as WsMessage;

/// The `durable-object` world with its handlers called on a fiber; the imports' traits are the
/// ones above (`with`).
pub(crate) mod on_fiber {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "durable-object",
        exports: { default: async },
        with: {
            "opendo:durable-object/types": crate::bindings::opendo::durable_object::types,
            "opendo:durable-object/kv": crate::bindings::opendo::durable_object::kv,
            "opendo:durable-object/sql": crate::bindings::opendo::durable_object::sql,
            "opendo:durable-object/transaction": crate::bindings::opendo::durable_object::transaction,
            "opendo:durable-object/alarms": crate::bindings::opendo::durable_object::alarms,
            "opendo:durable-object/state": crate::bindings::opendo::durable_object::state,
            "opendo:durable-object/objects": crate::bindings::opendo::durable_object::objects,
            "opendo:durable-object/websockets": crate::bindings::opendo::durable_object::websockets,
        },
    });
}

/// The `front` world: the same `types` and `objects` as objects get, and its own export, called
/// on a fiber.
pub(crate) mod front {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "front",
        // The imports' traits are the ones above (`with`).
        exports: { default: async },
        with: {
            "opendo:durable-object/types": crate::bindings::opendo::durable_object::types,
            "opendo:durable-object/objects": crate::bindings::opendo::durable_object::objects,
        },
    });
}
