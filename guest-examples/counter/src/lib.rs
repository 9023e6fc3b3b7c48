//! A counter per object.
//!
//! - `POST /increment` adds one and answers the new value.
//! - `GET /` answers the current value (0 if never set).
//! - `DELETE /` deletes everything the object stored and answers `0`.
//! - Anything else: 404.

use opendo_sdk::{DurableObject, Method, Request, Response, Result, State, export_durable_object};

struct Counter {
    state: State,
}

impl DurableObject for Counter {
    fn new(state: State) -> Self {
        Counter { state }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        let storage = self.state.storage();
        match (req.method(), req.path()) {
            (Method::Post, "/increment") => {
                let value = storage.get::<i64>("count")?.unwrap_or(0) + 1;
                storage.put("count", &value)?;
                Response::ok(value.to_string())
            }
            (Method::Get, "/") => Response::ok(storage.get::<i64>("count")?.unwrap_or(0).to_string()),
            (Method::Delete, "/") => {
                storage.delete_all()?;
                Response::ok("0")
            }
            _ => Response::error("not found", 404),
        }
    }
}

export_durable_object!(Counter);
