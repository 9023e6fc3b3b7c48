//! The one place the `durable-object` world is turned into Rust: host traits for the imports,
//! typed calls for the exports.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "durable-object",
    // Host functions return `wasmtime::Result`: `Err` traps the event (see `host` for the rule).
    imports: { default: trappable },
});

pub use exports::opendo::durable_object::handler::AlarmInfo;
pub use opendo::durable_object::types::{Error as GuestError, ErrorCode, Request, Response};
pub use opendo::durable_object::websockets::Message as WsMessage;
