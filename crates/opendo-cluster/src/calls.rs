//! Calls from this node's objects and front to objects of other nodes: sent as HTTP requests to
//! the owner, as a client's request would be forwarded, and answered as a local call is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use opendo_runtime::{ERROR_HEADER, Elsewhere, EventError, Ownership, Request, Response};
use opendo_storage::ObjectId;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::forward::{CALL_CHAIN, ForwardError, Forwarder, MISDIRECTED, Outgoing};
use crate::table::{MOVE_WAIT, Place, Table};

/// What the runtime of a cluster's node asks of the cluster.
pub(crate) struct NodeOwnership {
    pub(crate) table: Arc<Table>,
    pub(crate) forwarder: Forwarder,
}

impl Ownership for NodeOwnership {
    fn holds(&self, namespace: &str, id: &ObjectId) -> bool {
        self.table.holds(namespace, id)
    }

    fn call_elsewhere(
        &self,
        namespace: &str,
        id: &ObjectId,
        name: Option<&str>,
        request: Request,
        chain: &[(Arc<str>, ObjectId)],
    ) -> Elsewhere {
        let chain = format_chain(chain);
        let (table, forwarder) = (self.table.clone(), self.forwarder.clone());
        let shard = table.shard(namespace, id);
        // By name when the call named the object, so that a new object records its name.
        let object = match name {
            Some(name) => format!("/{namespace}/{}", utf8_percent_encode(name, NON_ALPHANUMERIC)),
            None => format!("/_id/{namespace}/{}", id.to_hex()),
        };
        Box::pin(async move {
            let outgoing = || {
                let mut outgoing = outgoing(&object, &request)?;
                if let Ok(chain) = HeaderValue::from_str(&chain) {
                    outgoing.headers.insert(CALL_CHAIN, chain);
                }
                Ok::<_, EventError>(outgoing)
            };
            let deadline = Instant::now() + MOVE_WAIT;
            loop {
                match table.place(shard) {
                    Place::Here => return Err(EventError::Moved),
                    Place::Node { id, address } => match forwarder.send(&id, &address, outgoing()?).await {
                        Ok(answer) if answer.status == MISDIRECTED => {}
                        Ok(answer) => match answer.headers.get(ERROR_HEADER).and_then(|v| v.to_str().ok()) {
                            Some("moved") => {}
                            Some(kind) => {
                                return Err(EventError::from_wire(
                                    kind,
                                    &String::from_utf8_lossy(&answer.body),
                                ));
                            }
                            None => {
                                return Ok(response(answer.status.as_u16(), &answer.headers, answer.body));
                            }
                        },
                        Err(ForwardError::NotSent { .. }) => {}
                        Err(err) => return Err(EventError::Internal(err.to_string())),
                    },
                    Place::Nowhere => {}
                }
                if Instant::now() >= deadline {
                    return Err(EventError::Internal(format!(
                        "the callee's shard has had no owner for {MOVE_WAIT:?}"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }
}

fn outgoing(object: &str, request: &Request) -> Result<Outgoing, EventError> {
    let bad = |what: &str| EventError::BadObjectName(format!("the call's {what} is not valid HTTP"));
    let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| bad("method"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("header name"))?;
        headers.append(name, HeaderValue::from_bytes(value).map_err(|_| bad("header value"))?);
    }
    Ok(Outgoing {
        method,
        path_and_query: format!("{object}{}", request.path),
        headers,
        body: Bytes::from(request.body.clone()),
    })
}

/// The owner's answer as the caller gets it, without the headers of the hop itself.
fn response(status: u16, headers: &HeaderMap, body: Bytes) -> Response {
    let headers = headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "date"
            )
        })
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect();
    Response { status, headers, body: body.to_vec() }
}

/// A chain of waiting objects as the [`CALL_CHAIN`] header carries it.
fn format_chain(chain: &[(Arc<str>, ObjectId)]) -> String {
    chain.iter().map(|(namespace, id)| format!("{namespace}/{}", id.to_hex())).collect::<Vec<_>>().join(",")
}

/// The chain a [`CALL_CHAIN`] header carries; `None` if it is malformed.
pub(crate) fn parse_chain(text: &str) -> Option<Vec<(String, ObjectId)>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',')
        .map(|entry| {
            let (namespace, id) = entry.split_once('/')?;
            Some((namespace.to_string(), ObjectId::parse(namespace, id).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_of_waiting_objects_survives_its_header() {
        let chain: Vec<(Arc<str>, ObjectId)> = [("probe", "a"), ("other-ns", "b")]
            .iter()
            .map(|(ns, name)| (Arc::from(*ns), ObjectId::from_name(ns, name)))
            .collect();
        let parsed = parse_chain(&format_chain(&chain)).unwrap();
        assert_eq!(parsed, chain.iter().map(|(ns, id)| (ns.to_string(), *id)).collect::<Vec<_>>());
        assert_eq!(parse_chain(""), Some(Vec::new()));
        assert_eq!(parse_chain("probe/nothex"), None);
        assert_eq!(
            parse_chain(&format!("other/{}", chain[0].1.to_hex())),
            None,
            "an id of another namespace"
        );
    }
}
