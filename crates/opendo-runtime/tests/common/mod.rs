//! Helpers shared by the runtime's integration tests: a runtime serving the probe guest.

#![allow(dead_code)]

use std::path::Path;

use opendo_runtime::{Config, Durability, Request, Response, Runtime};
use opendo_test_support::PROBE;
use serde_json::Value;

pub fn config(dir: &Path) -> Config {
    Config { data_dir: dir.to_path_buf(), durability: Durability::Relaxed, ..Config::default() }
}

pub fn runtime_with(config: Config) -> Runtime {
    let runtime = Runtime::new(config).unwrap();
    runtime.load_namespace("probe", Path::new(PROBE)).unwrap();
    runtime
}

pub fn request(method: &str, path: &str, body: &[u8]) -> Request {
    Request { method: method.into(), path: path.into(), headers: Vec::new(), body: body.to_vec() }
}

pub async fn call(runtime: &Runtime, object: &str, method: &str, path: &str, body: &[u8]) -> Response {
    runtime.fetch("probe", object, request(method, path, body)).await.unwrap()
}

pub async fn text(runtime: &Runtime, object: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let response = call(runtime, object, method, path, body).await;
    (response.status, String::from_utf8(response.body).unwrap())
}

pub async fn op(runtime: &Runtime, object: &str, op: Value) -> (u16, Value) {
    let response = call(runtime, object, "POST", "/kv-op", op.to_string().as_bytes()).await;
    let body = String::from_utf8(response.body).unwrap();
    (response.status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}
