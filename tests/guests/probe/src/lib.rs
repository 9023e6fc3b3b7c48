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
//! - `POST /print`: writes a line to stdout and stderr.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opendo_sdk::{
    DurableObject, Error, ListOptions, Method, Request, Response, Result, State, export_durable_object,
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

impl Probe {
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

    fn fetch(&self, req: Request) -> Result<Response> {
        self.hits.set(self.hits.get() + 1);
        let storage = self.state.storage();
        let path = req.path().to_string();
        match (req.method(), path.as_str()) {
            (Method::Get, "/hits") => Response::ok(self.hits.get().to_string()),
            (Method::Get, "/whoami") => Response::from_json(&serde_json::json!({
                "id": self.state.id(),
                "name": self.state.name(),
                "namespace": self.state.namespace(),
            })),
            (Method::Get, "/error") => Err(Error::Message("the probe was asked to fail".into())),
            (Method::Post, "/print") => {
                println!("probe says hello on stdout");
                eprintln!("probe says hello on stderr");
                Response::ok("printed")
            }
            (Method::Post, "/kv-op") => match req.json::<Op>() {
                Ok(op) => match self.op(op) {
                    Err(Error::Storage { code, message }) => {
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
            (Method::Post, "/grow") => {
                let bytes = vec![1u8; (query_number(&req, "mb") as usize) << 20];
                Response::ok(bytes.iter().map(|b| *b as usize).sum::<usize>().to_string())
            }
            (method, path) => {
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
                        Err(Error::Storage { code, message }) => {
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
