//! Paths of the test guests and example objects, built for wasm32-wasip2 by this crate's build
//! script. Each const is named after its crate (`PROBE`, `EXAMPLE_COUNTER`, ...).

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
