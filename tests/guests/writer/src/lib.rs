//! Records, in its own SQL table, which node made each write: the node is the `NODE`
//! environment variable of its namespace (each node of a test cluster sets its own).
//!
//! - `POST /write` appends (next sequence number, node) and answers the sequence number.
//! - `GET /log` answers every write as `[[seq, node], ...]` in order.
//! - `POST /alarm?in=MS` sets the alarm MS milliseconds ahead; the alarm appends its node to the
//!   list `GET /fired` answers.

use opendo_sdk::{
    AlarmInfo, DurableObject, Method, Request, Response, Result, ScheduledTime, SqlStorageValue, State,
    export_durable_object,
};

struct Writer {
    state: State,
}

fn node() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "unknown".into())
}

impl Writer {
    fn tables(&self) -> Result<()> {
        let sql = self.state.storage().sql();
        sql.exec("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, node TEXT NOT NULL)", Vec::new())?;
        sql.exec("CREATE TABLE IF NOT EXISTS fired (n INTEGER PRIMARY KEY, node TEXT NOT NULL)", Vec::new())?;
        Ok(())
    }

    fn rows(&self, query: &str) -> Result<Vec<Vec<serde_json::Value>>> {
        let cursor = self.state.storage().sql().exec(query, Vec::new())?;
        Ok(cursor
            .raw()
            .iter()
            .map(|row| {
                row.iter()
                    .map(|value| match value {
                        SqlStorageValue::Integer(i) => (*i).into(),
                        SqlStorageValue::String(s) => s.clone().into(),
                        _ => serde_json::Value::Null,
                    })
                    .collect()
            })
            .collect())
    }
}

impl DurableObject for Writer {
    fn new(state: State) -> Self {
        Writer { state }
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        self.tables()?;
        let sql = self.state.storage().sql();
        match (req.method(), req.path()) {
            (Method::Post, "/write") => {
                let next = self.rows("SELECT coalesce(max(seq), 0) + 1 FROM log")?;
                let seq =
                    next.first().and_then(|row| row.first()).and_then(serde_json::Value::as_i64).unwrap_or(1);
                sql.exec(
                    "INSERT INTO log (seq, node) VALUES (?, ?)",
                    vec![SqlStorageValue::Integer(seq), SqlStorageValue::String(node())],
                )?;
                Response::ok(seq.to_string())
            }
            (Method::Get, "/log") => {
                Response::from_json(&self.rows("SELECT seq, node FROM log ORDER BY seq")?)
            }
            (Method::Post, "/alarm") => {
                let ms: u64 = req
                    .query()
                    .and_then(|query| query.strip_prefix("in="))
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(0);
                self.state.storage().set_alarm(ScheduledTime::from(std::time::Duration::from_millis(ms)))?;
                Response::ok(node())
            }
            (Method::Get, "/fired") => {
                let nodes: Vec<serde_json::Value> =
                    self.rows("SELECT node FROM fired ORDER BY n")?.into_iter().flatten().collect();
                Response::from_json(&nodes)
            }
            _ => Response::error("not found", 404),
        }
    }

    fn alarm(&self, _info: AlarmInfo) -> Result<()> {
        self.tables()?;
        self.state
            .storage()
            .sql()
            .exec("INSERT INTO fired (node) VALUES (?)", vec![SqlStorageValue::String(node())])?;
        Ok(())
    }
}

export_durable_object!(Writer);
