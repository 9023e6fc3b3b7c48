//! The few etcd v3 calls a node makes (leases, reads of a prefix, conditional puts and deletes),
//! through etcd's JSON gateway (`POST /v3/...` on the client port).
//!
//! The gateway is etcd's own HTTP face of its gRPC API, served by every etcd since 3.4 on the
//! same port. Talking to it with the HTTP client the node already has keeps the build free of
//! `protoc`, which the gRPC client crates need at build time. Keys and values are base64 in
//! JSON; 64-bit numbers come back as strings; fields at their zero value are left out.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Error;

/// Longest wait for one etcd call: a node that cannot reach etcd for longer treats the call as
/// failed and tries the next endpoint.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of one etcd cluster, by any of its client URLs.
#[derive(Clone)]
pub(crate) struct Etcd {
    endpoints: Vec<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// A key as read, with the revision that created it (an owner's fencing token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kv {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) create_revision: i64,
}

#[derive(Deserialize)]
struct RawKv {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    create_revision: Number,
}

/// A 64-bit number as the gateway writes it: a string (or, leniently, a number).
#[derive(Deserialize, Default, Debug, Clone, Copy)]
#[serde(from = "Value")]
struct Number(i64);

impl From<Value> for Number {
    fn from(value: Value) -> Self {
        Number(match value {
            Value::String(text) => text.parse().unwrap_or(0),
            Value::Number(number) => number.as_i64().unwrap_or(0),
            _ => 0,
        })
    }
}

impl Etcd {
    /// A client of the etcd reachable at `endpoints` (`http://host:port`, tried in order).
    pub(crate) fn new(endpoints: Vec<String>) -> Self {
        let http = Client::builder(TokioExecutor::new()).build_http();
        Etcd { endpoints, http }
    }

    async fn call(&self, path: &str, body: Value) -> Result<Value, Error> {
        let mut last = None;
        for endpoint in &self.endpoints {
            match self.call_one(endpoint, path, &body).await {
                Ok(value) => return Ok(value),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| Error::Etcd("no etcd endpoint is configured".into())))
    }

    async fn call_one(&self, endpoint: &str, path: &str, body: &Value) -> Result<Value, Error> {
        let url = format!("{}{path}", endpoint.trim_end_matches('/'));
        let request = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|err| Error::Etcd(format!("{url}: {err}")))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|err| format!("{err}"))?;
            let status = response.status();
            let bytes = response.into_body().collect().await.map_err(|err| format!("{err}"))?.to_bytes();
            Ok::<_, String>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| Error::Etcd(format!("{url}: no answer within {CALL_TIMEOUT:?}")))?
            .map_err(|err| Error::Etcd(format!("{url}: {err}")))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|err| Error::Etcd(format!("{url}: answered {status} with no JSON: {err}")))?;
        if !status.is_success() {
            let message = value.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(Error::Etcd(format!("{url}: {status} {message}")));
        }
        Ok(value)
    }

    /// A new lease of `ttl`; returns its id.
    pub(crate) async fn grant(&self, ttl: Duration) -> Result<i64, Error> {
        let answer = self.call("/v3/lease/grant", json!({ "TTL": ttl.as_secs() })).await?;
        let id = number(&answer["ID"]);
        if id == 0 {
            return Err(Error::Etcd(format!("lease grant answered no id: {answer}")));
        }
        Ok(id)
    }

    /// Renews lease `id`; returns the time it has left, zero if it has expired.
    pub(crate) async fn keep_alive(&self, id: i64) -> Result<Duration, Error> {
        let answer = self.call("/v3/lease/keepalive", json!({ "ID": id.to_string() })).await?;
        let ttl = number(&answer["result"]["TTL"]);
        Ok(Duration::from_secs(u64::try_from(ttl).unwrap_or(0)))
    }

    /// Ends lease `id` at once: etcd deletes every key bound to it.
    pub(crate) async fn revoke(&self, id: i64) -> Result<(), Error> {
        self.call("/v3/lease/revoke", json!({ "ID": id.to_string() })).await.map(drop)
    }

    /// Every key starting with `prefix`.
    pub(crate) async fn prefix(&self, prefix: &str) -> Result<Vec<Kv>, Error> {
        let answer = self
            .call(
                "/v3/kv/range",
                json!({ "key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix)) }),
            )
            .await?;
        let raw: Vec<RawKv> = match answer.get("kvs") {
            Some(kvs) => serde_json::from_value(kvs.clone())
                .map_err(|err| Error::Etcd(format!("unexpected range answer: {err}")))?,
            None => Vec::new(),
        };
        raw.into_iter()
            .map(|kv| {
                Ok(Kv {
                    key: decode(&kv.key)?,
                    value: decode(&kv.value)?,
                    create_revision: kv.create_revision.0,
                })
            })
            .collect()
    }

    /// Creates `key` = `value`, bound to `lease` (0: none), if it does not exist; returns the
    /// revision that created it, or `None` if the key exists.
    pub(crate) async fn create(&self, key: &str, value: &str, lease: i64) -> Result<Option<i64>, Error> {
        let key = B64.encode(key);
        let answer = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [{ "key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0" }],
                    "success": [{ "request_put": { "key": key, "value": B64.encode(value), "lease": lease.to_string() } }],
                }),
            )
            .await?;
        let succeeded = answer.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
        Ok(succeeded.then(|| number(&answer["header"]["revision"])))
    }

    /// Deletes `key` if its value is `value`; returns whether it did.
    pub(crate) async fn delete_if(&self, key: &str, value: &str) -> Result<bool, Error> {
        let key = B64.encode(key);
        let answer = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [{ "key": key, "target": "VALUE", "result": "EQUAL", "value": B64.encode(value) }],
                    "success": [{ "request_delete_range": { "key": key } }],
                }),
            )
            .await?;
        Ok(answer.get("succeeded").and_then(Value::as_bool).unwrap_or(false))
    }
}

fn number(value: &Value) -> i64 {
    Number::from(value.clone()).0
}

fn decode(text: &str) -> Result<String, Error> {
    let bytes =
        B64.decode(text).map_err(|err| Error::Etcd(format!("a key or value is not base64: {err}")))?;
    String::from_utf8(bytes).map_err(|_| Error::Etcd("a key or value is not UTF-8".into()))
}

/// The end of the range of keys starting with `prefix` (etcd's `range_end`): the prefix with
/// its last byte incremented.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_past_every_key_that_starts_with_it() {
        assert_eq!(prefix_end("/opendo/"), b"/opendo0".to_vec());
        assert_eq!(prefix_end("a"), b"b".to_vec());
    }

    #[test]
    fn numbers_come_as_strings_or_numbers_and_are_zero_when_left_out() {
        assert_eq!(number(&json!("7587899323226509829")), 7_587_899_323_226_509_829);
        assert_eq!(number(&json!(12)), 12);
        assert_eq!(number(&Value::Null), 0);
    }
}
