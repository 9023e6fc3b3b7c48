//! The benchmark object. Routes (the same as bench/workerd/worker.js):
//! - `/hello`: answers "hello", no storage.
//! - `/incr`: KV get + put of key "n", answers the new value.
//! - `/sql`: inserts one row, answers the row count.

use std::cell::Cell;

use opendo_sdk::{DurableObject, Request, Response, Result, SqlStorageValue, State, export_durable_object};

struct Bench {
    state: State,
    schema_ready: Cell<bool>,
}

impl DurableObject for Bench {
    fn new(state: State) -> Self {
        Bench { state, schema_ready: Cell::new(false) }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        let storage = self.state.storage();
        match req.path() {
            "/hello" => Response::ok("hello"),
            "/incr" => {
                let n = storage.get::<i64>("n")?.unwrap_or(0) + 1;
                storage.put("n", &n)?;
                Response::ok(n.to_string())
            }
            "/sql" => {
                let sql = storage.sql();
                if !self.schema_ready.get() {
                    sql.exec("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL)", None)?;
                    self.schema_ready.set(true);
                }
                sql.exec("INSERT INTO rows (v) VALUES ('x')", None)?;
                let count = sql.exec("SELECT count(*) FROM rows", None)?;
                match count.raw().first().and_then(|row| row.first()) {
                    Some(SqlStorageValue::Integer(n)) => Response::ok(n.to_string()),
                    _ => Response::error("count failed", 500),
                }
            }
            _ => Response::error("not found", 404),
        }
    }
}

export_durable_object!(Bench);
