//! A test object. Routes:
//! - `GET|PUT|DELETE /kv/{key}`: one key (value = body bytes).
//! - `POST /kv-op` with a JSON [`Op`]: batch and list calls, answered as JSON.
//! - `POST /write-then-panic/{key}`: stores `key`, then panics.
//! - `GET /hits`: events served by this instance (in memory: resets with the instance).
//! - `POST /span`: records its start and end wall-clock times around a short busy wait.
//! - `POST /spin?ms=N`: busy-waits N milliseconds.
//! - `POST /grow?mb=N`: allocates and fills N MiB.
//! - `GET /whoami`: id, name and namespace as JSON.
//! - `GET /error`: returns an `Err` from `fetch`.
//! - `GET /env?name=NAME`: the environment variable NAME (404 if not set).
//! - `POST /print`: writes a line to stdout and stderr.
//! - `POST /sql` with JSON `{"query": ..., "params": [...]}`: runs SQL, answers the result as JSON
//!   (400 with `{"code", "message", "sqlite_code"}` when refused). Arrays of numbers bind as blobs.
//! - `POST /txn/{scenario}`: exercises transactions (see [`Probe::transaction_scenario`]).
//! - `POST /alarm/set?at=MS` or `?in=MS`: sets the alarm (absolute epoch ms, or from now).
//! - `POST /alarm/set-then-panic?in=MS`: sets the alarm, then panics.
//! - `GET /alarm`, `DELETE /alarm`: reads or deletes the alarm.
//! - `PUT /alarm/mode` with a mode as body: how the alarm handler behaves (see
//!   [`Probe::alarm`]). `GET /alarm/runs`: the recorded successful runs, as JSON.
//! - `/ws...`: WebSockets (see the `ws` module).
//! - `/to/{ns}/{name}/{rest}`, `/to-id/{ns}/{id}/{rest}`: calls that object (see [`forward`]).
//! - `POST /sleep?ms=N`: sleeps N ms (no CPU), counts its runs in `sleeps`, answers the count.
//! - `POST /write-call?callee=NAME[&sleep=MS][&then=panic]`: writes `before-call`, calls NAME
//!   (`PUT /kv/seen`, or `POST /sleep?ms=MS`), writes `after-call`, then panics if asked.
//! - `POST /call-in-transaction`: calls another object inside an open transaction.
//! - `POST /fetch[?write=1][&then=panic]` with a URL as body: outbound `GET`, answered as
//!   `{status} {body}` (502 `fetch error: ...` when it fails).

mod ws;

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opendo_sdk::{
    AlarmInfo, DurableObject, Error, Fetch, ListOptions, Method, ObjectNamespace, Request, Response, Result,
    ScheduledTime, SqlStorageValue, State, WebSocket, WebSocketIncomingMessage, export_durable_object,
};
use serde::Deserialize;

struct Probe {
    state: State,
    hits: Cell<u64>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    GetMany {
        keys: Vec<String>,
    },
    PutMany {
        entries: Vec<(String, String)>,
    },
    DeleteMany {
        keys: Vec<String>,
    },
    List {
        start: Option<String>,
        start_after: Option<String>,
        end: Option<String>,
        prefix: Option<String>,
        #[serde(default)]
        reverse: bool,
        limit: Option<u32>,
    },
    DeleteAll,
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn spin(duration: Duration) {
    let until = SystemTime::now() + duration;
    while SystemTime::now() < until {}
}

/// The number in query parameter `name`, or 0.
/// The value of `name` in the query string (not decoded: ids and test names need no escapes).
fn query_text<'a>(req: &'a Request, name: &str) -> &'a str {
    let query = req.query().unwrap_or("");
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')).unwrap_or("")
}

/// `GET /ids/name?ns=N&name=X`, `/ids/unique?ns=N`, `/ids/check?ns=N&id=I`: an id made by the
/// `objects` import, or 400 with the error it gave.
fn ids(req: &Request, path: &str) -> Result<Response> {
    let namespace = ObjectNamespace::new(query_text(req, "ns"));
    let made = match path {
        "/ids/name" => namespace.id_from_name(query_text(req, "name")),
        "/ids/unique" => namespace.unique_id(),
        _ => namespace.id_from_string(query_text(req, "id")),
    };
    match made {
        Ok(id) => Response::ok(format!("{id} {}", id.path())),
        Err(Error::Storage { code, message, .. }) => Response::error(format!("{code:?}: {message}"), 400),
        Err(err) => Err(err),
    }
}

/// `/to/{ns}/{name}/{rest}` and `/to-id/{ns}/{id}/{rest}`: calls that object with `/{rest}` (and
/// this request's query, method and body), and answers its response as is; a call error is a
/// 502 `call error {code:?}: {message}`. Calls nest: `/to/probe/b/to/probe/c/whoami`.
fn forward(req: &Request, by_id: bool, route: &str) -> Result<Response> {
    let mut parts = route.splitn(3, '/');
    let (Some(namespace), Some(object)) = (parts.next(), parts.next()) else {
        return Response::error("expected /to/{ns}/{name}/{rest}", 400);
    };
    let mut path = format!("/{}", parts.next().unwrap_or(""));
    if let Some(query) = req.query() {
        path = format!("{path}?{query}");
    }
    let namespace = ObjectNamespace::new(namespace);
    let stub = match by_id {
        true => namespace.id_from_string(object).and_then(|id| id.get_stub()),
        false => namespace.get_by_name(object),
    };
    let request = Request::new(&path, req.method()).with_body(req.bytes().to_vec());
    answer_call(stub.and_then(|stub| stub.fetch_with_request(request)))
}

fn answer_call(answered: Result<Response>) -> Result<Response> {
    match answered {
        Ok(response) => Ok(response),
        Err(Error::Call { code, message }) => Response::error(format!("call error {code:?}: {message}"), 502),
        Err(Error::Storage { code, message, .. }) => Response::error(format!("{code:?}: {message}"), 400),
        Err(err) => Err(err),
    }
}

fn query_number(req: &Request, name: &str) -> u64 {
    let query = req.query().unwrap_or("");
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

fn text_entries(entries: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    entries.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())).collect()
}

#[derive(Deserialize)]
struct SqlCall {
    query: String,
    #[serde(default)]
    params: Vec<serde_json::Value>,
}

fn bind(value: serde_json::Value) -> SqlStorageValue {
    match value {
        serde_json::Value::Null => SqlStorageValue::Null,
        serde_json::Value::Bool(b) => SqlStorageValue::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => SqlStorageValue::Integer(i),
            None => SqlStorageValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => SqlStorageValue::String(s),
        serde_json::Value::Array(bytes) => {
            SqlStorageValue::Blob(bytes.iter().map(|b| b.as_u64().unwrap_or(0) as u8).collect())
        }
        serde_json::Value::Object(_) => SqlStorageValue::Null,
    }
}

fn storage_error(err: Error) -> Result<Response> {
    match err {
        Error::Storage { code, message, sqlite_code } => {
            let body = serde_json::json!({"code": format!("{code:?}"), "message": message, "sqlite_code": sqlite_code});
            Ok(Response::from_json(&body)?.with_status(400))
        }
        other => Err(other),
    }
}

impl Probe {
    fn alarm_route(&self, req: &Request, path: &str) -> Result<Response> {
        let storage = self.state.storage();
        match (req.method(), path) {
            (Method::Post, "/alarm/set") | (Method::Post, "/alarm/set-then-panic") => {
                let at = match req.query().unwrap_or("").split_once('=') {
                    Some(("at", value)) => value.parse::<i64>().map_err(|e| Error::Message(e.to_string()))?,
                    _ => (now_nanos() / 1_000_000) as i64 + query_number(req, "in") as i64,
                };
                storage.set_alarm(ScheduledTime::at_epoch_ms(at))?;
                if path.ends_with("panic") {
                    panic!("the probe panics after setting its alarm");
                }
                Response::ok(at.to_string())
            }
            (Method::Get, "/alarm") => Response::from_json(&storage.get_alarm()?),
            (Method::Delete, "/alarm") => {
                storage.delete_alarm()?;
                Response::empty()
            }
            (Method::Put, "/alarm/mode") => {
                storage.put("alarm-mode", req.text()?)?;
                Response::empty()
            }
            (Method::Get, "/alarm/runs") => {
                let runs: Vec<(String, serde_json::Value)> =
                    storage.list(ListOptions::new().prefix("alarm-run:"))?;
                Response::from_json(&runs.into_iter().map(|(_, run)| run).collect::<Vec<_>>())
            }
            _ => Response::error("no such alarm route", 404),
        }
    }

    fn sql(&self, call: SqlCall) -> Result<Response> {
        let params: Vec<SqlStorageValue> = call.params.into_iter().map(bind).collect();
        let cursor = match self.state.storage().sql().exec(&call.query, params) {
            Ok(cursor) => cursor,
            Err(err) => return storage_error(err),
        };
        let rows: Vec<Vec<serde_json::Value>> = cursor
            .raw()
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| match v {
                        SqlStorageValue::Null => serde_json::Value::Null,
                        SqlStorageValue::Boolean(b) => (*b).into(),
                        SqlStorageValue::Integer(i) => (*i).into(),
                        SqlStorageValue::Float(f) => (*f).into(),
                        SqlStorageValue::String(s) => s.clone().into(),
                        SqlStorageValue::Blob(b) => b.clone().into(),
                    })
                    .collect()
            })
            .collect();
        Response::from_json(&serde_json::json!({
            "columns": cursor.column_names(),
            "rows": rows,
            "rows_read": cursor.rows_read(),
            "rows_written": cursor.rows_written(),
        }))
    }

    /// Transaction scenarios; each writes keys under `t:` and rows into table `log`.
    /// - `commit`: writes `t:commit` and a row in a committed transaction.
    /// - `rollback`: writes `t:rollback` and a row, rolls back; answers this instance's hit count.
    /// - `nested`: outer writes `t:outer`, inner writes `t:inner` and rolls back, outer commits.
    /// - `drop`: writes `t:drop` and drops the transaction uncommitted.
    /// - `closure-err`: the closure API writes `t:closure` and returns `Err`.
    /// - `panic`: writes `t:panic` in an open transaction, then panics.
    /// - `misuse`: commits an outer transaction while an inner one is open; answers the error.
    fn transaction_scenario(&self, scenario: &str) -> Result<Response> {
        let storage = self.state.storage();
        let sql = storage.sql();
        sql.exec("CREATE TABLE IF NOT EXISTS log (v TEXT)", None)?;
        match scenario {
            "commit" => {
                let txn = storage.begin_transaction()?;
                storage.put("t:commit", &1)?;
                sql.exec("INSERT INTO log VALUES ('commit')", None)?;
                txn.commit()?;
            }
            "rollback" => {
                let txn = storage.begin_transaction()?;
                storage.put("t:rollback", &1)?;
                sql.exec("INSERT INTO log VALUES ('rollback')", None)?;
                txn.rollback()?;
                return Response::ok(self.hits.get().to_string());
            }
            "nested" => {
                let outer = storage.begin_transaction()?;
                storage.put("t:outer", &1)?;
                let inner = storage.begin_transaction()?;
                storage.put("t:inner", &1)?;
                sql.exec("INSERT INTO log VALUES ('inner')", None)?;
                inner.rollback()?;
                outer.commit()?;
            }
            "drop" => {
                let txn = storage.begin_transaction()?;
                storage.put("t:drop", &1)?;
                drop(txn);
            }
            "closure-err" => {
                let outcome: Result<()> = storage.transaction(|txn| {
                    txn.put("t:closure", &1)?;
                    txn.sql().exec("INSERT INTO log VALUES ('closure')", None)?;
                    Err(Error::Message("changed my mind".into()))
                });
                return Response::ok(format!("{}", outcome.is_err()));
            }
            "panic" => {
                let _txn = storage.begin_transaction()?;
                storage.put("t:panic", &1)?;
                sql.exec("INSERT INTO log VALUES ('panic')", None)?;
                panic!("the probe panics inside a transaction");
            }
            "misuse" => {
                let outer = storage.begin_transaction()?;
                let _inner = storage.begin_transaction()?;
                return match outer.commit() {
                    Ok(()) => Response::ok("committed"),
                    Err(err) => storage_error(err),
                };
            }
            _ => return Response::error("no such scenario", 404),
        }
        Response::ok("done")
    }

    fn op(&self, op: Op) -> Result<Response> {
        let storage = self.state.storage();
        match op {
            Op::GetMany { keys } => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                Response::from_json(&text_entries(storage.get_multiple_bytes(&keys)?))
            }
            Op::PutMany { entries } => {
                let entries: Vec<(&str, &[u8])> =
                    entries.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
                storage.put_multiple_bytes(&entries)?;
                Response::from_json(&true)
            }
            Op::DeleteMany { keys } => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                Response::from_json(&storage.delete_multiple(&keys)?)
            }
            Op::List { start, start_after, end, prefix, reverse, limit } => {
                let mut options = ListOptions::new().reverse(reverse);
                if let Some(start) = &start {
                    options = options.start(start);
                }
                if let Some(after) = &start_after {
                    options = options.start_after(after);
                }
                if let Some(end) = &end {
                    options = options.end(end);
                }
                if let Some(prefix) = &prefix {
                    options = options.prefix(prefix);
                }
                if let Some(limit) = limit {
                    options = options.limit(limit);
                }
                Response::from_json(&text_entries(storage.list_bytes(options)?))
            }
            Op::DeleteAll => {
                storage.delete_all()?;
                Response::from_json(&true)
            }
        }
    }
}

impl DurableObject for Probe {
    fn new(state: State) -> Self {
        Probe { state, hits: Cell::new(0) }
    }

    /// Modes (`PUT /alarm/mode`): `ok` (default) records the run; `trap-twice` panics on the
    /// first two runs; `always-trap` always panics; `err-once` returns `Err` on the first run;
    /// `rearm-once` records the run and, the first time, sets a new alarm 50 ms later;
    /// `call-sleeper-first` first calls `sleeper` to sleep a minute (a test kills the server
    /// meanwhile), and on a retry calls `witness` to store `from-alarm`.
    fn alarm(&self, info: AlarmInfo) -> Result<()> {
        self.hits.set(self.hits.get() + 1);
        let storage = self.state.storage();
        let mode: String = storage.get("alarm-mode")?.unwrap_or_else(|| "ok".into());
        let alarm_inside = storage.get_alarm()?;
        match mode.as_str() {
            "trap-twice" if info.retry_count < 2 => panic!("alarm run {} fails on purpose", info.retry_count),
            "always-trap" => panic!("this alarm always fails"),
            "err-once" if info.retry_count == 0 => return Err(Error::Message("not this time".into())),
            "call-sleeper-first" => {
                let (callee, request) = match info.retry_count {
                    0 => ("sleeper", Request::new("/sleep?ms=60000", Method::Post)),
                    _ => ("witness", Request::new("/kv/from-alarm", Method::Put).with_body("yes")),
                };
                ObjectNamespace::new("probe").get_by_name(callee)?.fetch_with_request(request)?;
            }
            _ => {}
        }
        let runs = storage.list_bytes(ListOptions::new().prefix("alarm-run:"))?.len();
        storage.put(
            &format!("alarm-run:{runs:04}"),
            &serde_json::json!({
                "retry_count": info.retry_count,
                "is_retry": info.is_retry,
                "alarm_inside": alarm_inside,
                "at_ms": (now_nanos() / 1_000_000) as i64,
            }),
        )?;
        if mode == "rearm-once" && storage.get::<bool>("rearmed")?.is_none() {
            storage.put("rearmed", &true)?;
            storage.set_alarm(std::time::Duration::from_millis(50))?;
        }
        Ok(())
    }

    fn websocket_message(&self, ws: WebSocket, message: WebSocketIncomingMessage) -> Result<()> {
        ws::message(&self.state, ws, message)
    }

    fn websocket_close(&self, ws: WebSocket, code: u16, reason: String, was_clean: bool) -> Result<()> {
        ws::close(&self.state, ws, code, reason, was_clean)
    }

    fn websocket_error(&self, ws: WebSocket, error: Error) -> Result<()> {
        ws::error(&self.state, ws, error)
    }

    fn fetch(&self, req: Request) -> Result<Response> {
        self.hits.set(self.hits.get() + 1);
        let storage = self.state.storage();
        let path = req.path().to_string();
        match (req.method(), path.as_str()) {
            (Method::Get, "/hits") => Response::ok(self.hits.get().to_string()),
            (Method::Get, "/json") => {
                Response::from_json(&storage.get::<serde_json::Value>(&query_text(&req, "key"))?)
            }
            (Method::Get, "/whoami") => Response::from_json(&serde_json::json!({
                "id": self.state.id(),
                "name": self.state.name(),
                "namespace": self.state.namespace(),
            })),
            (Method::Get, "/env") => match std::env::var(query_text(&req, "name")) {
                Ok(value) => Response::ok(value),
                Err(_) => Response::error("not set", 404),
            },
            (Method::Get, "/error") => Err(Error::Message("the probe was asked to fail".into())),
            (Method::Get, "/ids/name" | "/ids/unique" | "/ids/check") => ids(&req, &path),
            (Method::Post, "/print") => {
                println!("probe says hello on stdout");
                eprintln!("probe says hello on stderr");
                Response::ok("printed")
            }
            (Method::Post, "/sql") => match req.json::<SqlCall>() {
                Ok(call) => self.sql(call),
                Err(err) => Response::error(format!("bad sql call: {err}"), 400),
            },
            (Method::Post, "/kv-op") => match req.json::<Op>() {
                Ok(op) => match self.op(op) {
                    Err(Error::Storage { code, message, .. }) => {
                        Response::error(format!("{code:?}: {message}"), 400)
                    }
                    other => other,
                },
                Err(err) => Response::error(format!("bad op: {err}"), 400),
            },
            (Method::Post, "/span") => {
                let enter = now_nanos();
                spin(Duration::from_millis(2));
                let exit = now_nanos();
                storage.put(&format!("span:{enter:039}"), &exit.to_string())?;
                Response::ok("ok")
            }
            (Method::Post, "/spin") => {
                spin(Duration::from_millis(query_number(&req, "ms")));
                Response::ok("done")
            }
            (Method::Post, "/sleep") => {
                // Holds the object without using CPU: a slow callee.
                let ms = query_number(&req, "ms");
                println!("probe sleeps {ms} ms");
                std::thread::sleep(Duration::from_millis(ms));
                let sleeps = storage.get::<u64>("sleeps")?.unwrap_or(0) + 1;
                storage.put("sleeps", &sleeps)?;
                Response::ok(sleeps.to_string())
            }
            (Method::Post, "/write-call") => {
                // The output gate: what was written before the call survives what follows it.
                storage.put("before-call", &true)?;
                let callee = ObjectNamespace::new("probe").get_by_name(query_text(&req, "callee"))?;
                let answer = match query_number(&req, "sleep") {
                    0 => callee.fetch_with_request(Request::new("/kv/seen", Method::Put).with_body("yes"))?,
                    ms => {
                        callee.fetch_with_request(Request::new(&format!("/sleep?ms={ms}"), Method::Post))?
                    }
                };
                storage.put("after-call", &answer.status_code())?;
                if query_text(&req, "then") == "panic" {
                    panic!("the probe panics on purpose after its call");
                }
                Response::ok(answer.status_code().to_string())
            }
            (Method::Post, "/fetch") => {
                // Outbound HTTP: a GET of the body's URL; `?write=1` first writes `before-fetch`,
                // `&then=panic` panics after the answer.
                if query_number(&req, "write") == 1 {
                    storage.put("before-fetch", &true)?;
                }
                let answered = Fetch::Url(req.text()?.to_string()).send();
                if query_text(&req, "then") == "panic" {
                    panic!("the probe panics on purpose after its fetch");
                }
                match answered {
                    Ok(response) => Response::ok(format!("{} {}", response.status_code(), response.text()?)),
                    Err(Error::Fetch(message)) => Response::error(format!("fetch error: {message}"), 502),
                    Err(err) => Err(err),
                }
            }
            (Method::Post, "/call-in-transaction") => {
                let _txn = storage.begin_transaction()?;
                storage.put("in-txn", &true)?;
                answer_call(ObjectNamespace::new("probe").get_by_name("anyone")?.fetch_with_str("/hits"))
            }
            (Method::Post, "/grow") => {
                let bytes = vec![1u8; (query_number(&req, "mb") as usize) << 20];
                Response::ok(bytes.iter().map(|b| *b as usize).sum::<usize>().to_string())
            }
            (_, path) if path == "/alarm" || path.starts_with("/alarm/") => self.alarm_route(&req, path),
            (_, path) if path.starts_with("/to/") => {
                println!("probe calls {path}");
                forward(&req, false, &path["/to/".len()..])
            }
            (_, path) if path.starts_with("/to-id/") => forward(&req, true, &path["/to-id/".len()..]),
            (_, path) if path == "/ws" || path.starts_with("/ws/") => ws::route(&self.state, &req, path),
            (method, path) => {
                if let Some(scenario) = path.strip_prefix("/txn/") {
                    return self.transaction_scenario(scenario);
                }
                if let Some(key) = path.strip_prefix("/write-then-undo/") {
                    storage.put_bytes(key, b"written, then undone")?;
                    return Ok(Response::ok("undone")?.with_status(409).with_header("opendo-rollback", "1"));
                }
                if let Some(key) = path.strip_prefix("/write-then-panic/") {
                    storage.put_bytes(key, b"written before the panic")?;
                    panic!("the probe panics on purpose after writing {key}");
                }
                let Some(key) = path.strip_prefix("/kv/") else {
                    return Response::error("no such route", 404);
                };
                match method {
                    Method::Get => match storage.get_bytes(key)? {
                        Some(value) => Response::from_bytes(value),
                        None => Response::error("no such key", 404),
                    },
                    Method::Put => match storage.put_bytes(key, req.bytes()) {
                        Ok(()) => Response::empty(),
                        Err(Error::Storage { code, message, .. }) => {
                            Response::error(format!("{code:?}: {message}"), 400)
                        }
                        Err(err) => Err(err),
                    },
                    Method::Delete => Response::ok(storage.delete(key)?.to_string()),
                    _ => Response::error("method not allowed", 405),
                }
            }
        }
    }
}

export_durable_object!(Probe);
