//! The admin HTTP API, `/v1/...`: JSON in and out, every path in `docs/runtime.md`. Calls that
//! change an object are logged (target `opendo::audit`): who, what, which object, the outcome.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use opendo_cluster::{Cluster, Place};
use opendo_runtime::{Admin, AdminError, KvQuery, ObjectPage, ObjectRef, ObjectsQuery, Runtime};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::response::HttpResponse;

/// Largest SQL request body.
const MAX_SQL_BODY: usize = 1024 * 1024;

/// Answers one `/v1/...` request (the token was checked).
pub(crate) async fn handle(
    runtime: &Runtime,
    request: Request<Incoming>,
    peer: SocketAddr,
    cluster: Option<&Cluster>,
) -> HttpResponse {
    let admin = runtime.admin();
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
    let method = request.method().clone();
    match segments.as_slice() {
        ["namespaces"] => only(&method, Method::GET, || async { json(admin.namespaces().await) }).await,
        ["namespaces", namespace, "objects"] => {
            only(&method, Method::GET, || async {
                let params: ListParams = match query(&request) {
                    Ok(params) => params,
                    Err((status, message)) => return error(status, &message),
                };
                // On a cluster, each node lists what it holds; the node asked merges them all.
                let asked_by_node = cluster.is_some_and(|cluster| cluster.is_forwarded(request.headers()));
                let listing = ObjectsQuery {
                    prefix: params.prefix,
                    cursor: params.cursor,
                    limit: params.limit,
                    held_only: cluster.is_some(),
                };
                match cluster {
                    Some(cluster) if !asked_by_node => {
                        let limit = listing.limit;
                        let mine = admin.objects(namespace, listing).await;
                        json(cluster_listing(cluster, &request, mine, limit).await)
                    }
                    _ => json(admin.objects(namespace, listing).await),
                }
            })
            .await
        }
        ["namespaces", namespace, "objects", kind, reference, rest @ ..] => {
            let object = match object_ref(kind, reference) {
                Ok(object) => object,
                Err((status, message)) => return error(status, &message),
            };
            if let Some(cluster) = cluster
                && !cluster.is_forwarded(request.headers())
                && let Some(Place::Node { id, .. }) = cluster.place(namespace, &object)
            {
                let limit = usize::try_from(admin.max_import_bytes(namespace)).unwrap_or(usize::MAX);
                return pass_on(cluster, &id, request, limit.max(MAX_SQL_BODY)).await;
            }
            let call = Call { admin, namespace, object: &object, peer, user_agent: user_agent(&request) };
            call.answer(&method, rest, request).await
        }
        _ => error(StatusCode::NOT_FOUND, "no such admin path: see docs/runtime.md, \"Admin API\""),
    }
}

/// A cluster-wide listing: this node's page (`mine`) merged with the pages every other live
/// node lists of the objects it holds, for the same query. Pages are in id order and cut at the
/// same cursor, so the first `limit` of the merge are the cluster's page.
async fn cluster_listing(
    cluster: &Cluster,
    request: &Request<Incoming>,
    mine: Result<ObjectPage, AdminError>,
    limit: Option<u32>,
) -> Result<ObjectPage, AdminError> {
    let mine = mine?;
    let limit = limit.unwrap_or(100) as usize;
    let mut more = mine.cursor.is_some();
    let mut rows = mine.objects;
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    for (node, admin) in cluster.other_admins() {
        let outgoing = opendo_cluster::Outgoing {
            method: Method::GET,
            path_and_query: path.clone(),
            headers: request.headers().clone(),
            body: Bytes::new(),
        };
        let answer = cluster
            .forward(&node, &admin, outgoing)
            .await
            .map_err(|err| AdminError::Unavailable(format!("listing node {node}'s objects: {err}")))?;
        if !answer.status.is_success() {
            let text = String::from_utf8_lossy(&answer.body);
            return Err(AdminError::Unavailable(format!(
                "listing node {node}'s objects: {} {text}",
                answer.status
            )));
        }
        let page: ObjectPage = serde_json::from_slice(&answer.body).map_err(|err| {
            AdminError::Internal(format!("node {node} listed its objects unreadably: {err}"))
        })?;
        more |= page.cursor.is_some();
        rows.extend(page.objects);
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    rows.dedup_by(|a, b| a.id == b.id);
    more |= rows.len() > limit;
    rows.truncate(limit);
    let cursor = if more { rows.last().map(|row| row.id.clone()) } else { None };
    Ok(ObjectPage { objects: rows, cursor })
}

/// An admin call on an object of another node, passed on to that node's admin listener with
/// the caller's token, and its answer relayed.
async fn pass_on(cluster: &Cluster, node: &str, request: Request<Incoming>, limit: usize) -> HttpResponse {
    let Some(admin) = cluster.admin_address(node) else {
        let message =
            format!("the object lives on node {node}, which serves no admin listener (--admin-listen)");
        return error(StatusCode::SERVICE_UNAVAILABLE, &message);
    };
    let (method, path, headers) = (
        request.method().clone(),
        request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string(),
        request.headers().clone(),
    );
    let body = match body(request, limit).await {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let outgoing = opendo_cluster::Outgoing { method, path_and_query: path, headers, body };
    match cluster.forward(node, &admin, outgoing).await {
        Ok(answer) => {
            let mut response = Response::new(Full::new(answer.body));
            *response.status_mut() = answer.status;
            for name in [CONTENT_TYPE, CONTENT_DISPOSITION] {
                if let Some(value) = answer.headers.get(&name) {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(err) => error(StatusCode::BAD_GATEWAY, &err.to_string()),
    }
}

/// A call on one object.
struct Call<'a> {
    admin: &'a Admin,
    namespace: &'a str,
    object: &'a ObjectRef,
    peer: SocketAddr,
    user_agent: String,
}

impl Call<'_> {
    async fn answer(&self, method: &Method, rest: &[&str], request: Request<Incoming>) -> HttpResponse {
        let (admin, namespace, object) = (self.admin, self.namespace, self.object);
        match (method, rest) {
            (&Method::GET, []) => json(admin.object(namespace, object).await),
            (&Method::DELETE, []) => self.audited("delete", admin.delete(namespace, object).await),
            (&Method::GET, ["kv"]) => {
                let params: KvParams = match query(&request) {
                    Ok(params) => params,
                    Err((status, message)) => return error(status, &message),
                };
                let kv =
                    KvQuery { prefix: params.prefix, start_after: params.start_after, limit: params.limit };
                json(admin.kv(namespace, object, kv).await)
            }
            (&Method::POST, ["sql"]) => {
                let body = match body(request, MAX_SQL_BODY).await {
                    Ok(body) => body,
                    Err(message) => return error(StatusCode::BAD_REQUEST, &message),
                };
                match serde_json::from_slice::<SqlBody>(&body) {
                    Ok(SqlBody { sql }) => json(admin.query(namespace, object, sql).await),
                    Err(err) => {
                        error(StatusCode::BAD_REQUEST, &format!("expected {{\"sql\": \"...\"}}: {err}"))
                    }
                }
            }
            (&Method::GET, ["export"]) => match admin.export(namespace, object).await {
                Ok(snapshot) => {
                    let mut response = Response::new(Full::new(Bytes::from(snapshot)));
                    let headers = response.headers_mut();
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/vnd.sqlite3"));
                    headers.insert(
                        CONTENT_DISPOSITION,
                        HeaderValue::from_static("attachment; filename=\"object.sqlite\""),
                    );
                    response
                }
                Err(err) => failure(&err),
            },
            (&Method::PUT, ["import"]) => {
                let limit = usize::try_from(admin.max_import_bytes(namespace)).unwrap_or(usize::MAX);
                let snapshot = match body(request, limit).await {
                    Ok(body) => body,
                    Err(message) => {
                        return self.audited::<()>("import", Err(AdminError::BadRequest(message)));
                    }
                };
                self.audited("import", admin.import(namespace, object, snapshot.to_vec()).await)
            }
            (&Method::POST, ["run-alarm"]) => {
                self.audited("run-alarm", admin.run_alarm(namespace, object).await)
            }
            (&Method::POST, ["hibernate"]) => {
                self.audited("hibernate", admin.hibernate(namespace, object).await)
            }
            (_, [] | ["kv"] | ["sql"] | ["export"] | ["import"] | ["run-alarm"] | ["hibernate"]) => {
                error(StatusCode::METHOD_NOT_ALLOWED, &format!("{method} is not served on this path"))
            }
            _ => error(StatusCode::NOT_FOUND, "no such admin path: see docs/runtime.md, \"Admin API\""),
        }
    }

    /// The answer to a call that changes the object, logged.
    fn audited<T: serde::Serialize>(&self, action: &str, outcome: Result<T, AdminError>) -> HttpResponse {
        let object = match self.object {
            ObjectRef::Id(id) => format!("id {id}"),
            ObjectRef::Name(name) => format!("name {name:?}"),
        };
        let result = match &outcome {
            Ok(_) => "ok".to_string(),
            Err(err) => err.to_string(),
        };
        tracing::info!(
            target: "opendo::audit",
            peer = %self.peer,
            user_agent = %self.user_agent,
            action,
            namespace = self.namespace,
            object = %object,
            result = %result,
            "admin call"
        );
        json(outcome)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    prefix: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KvParams {
    prefix: Option<String>,
    start_after: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlBody {
    sql: String,
}

async fn only<F, Fut>(method: &Method, allowed: Method, f: F) -> HttpResponse
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = HttpResponse>,
{
    if *method != allowed {
        return error(StatusCode::METHOD_NOT_ALLOWED, &format!("only {allowed} is served on this path"));
    }
    f().await
}

/// A request the API refuses before calling the runtime: the status and why.
type Refused = (StatusCode, String);

fn object_ref(kind: &str, reference: &str) -> Result<ObjectRef, Refused> {
    let decoded = percent_decode_str(reference)
        .decode_utf8()
        .map_err(|_| (StatusCode::BAD_REQUEST, "the object is not valid percent-encoded UTF-8".to_string()))?
        .into_owned();
    match kind {
        "id" => Ok(ObjectRef::Id(decoded)),
        "name" => Ok(ObjectRef::Name(decoded)),
        _ => Err((
            StatusCode::NOT_FOUND,
            "address an object as .../objects/id/{id} or .../objects/name/{name}".to_string(),
        )),
    }
}

fn query<T: serde::de::DeserializeOwned>(request: &Request<Incoming>) -> Result<T, Refused> {
    serde_urlencoded::from_str(request.uri().query().unwrap_or(""))
        .map_err(|err| (StatusCode::BAD_REQUEST, format!("bad query string: {err}")))
}

async fn body(request: Request<Incoming>, limit: usize) -> Result<Bytes, String> {
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(format!("the request body is larger than the limit of {limit} bytes"))
        }
        Err(err) => Err(format!("could not read the request body: {err}")),
    }
}

fn user_agent(request: &Request<Incoming>) -> String {
    request.headers().get(USER_AGENT).and_then(|value| value.to_str().ok()).unwrap_or("-").to_string()
}

/// `GET /v1/cluster`: the nodes and shard owners as this node last read them from etcd.
pub(crate) fn cluster(cluster: Option<&opendo_cluster::Cluster>, method: &Method) -> HttpResponse {
    if method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here");
    }
    match cluster {
        Some(cluster) => json(Ok::<_, AdminError>(cluster.status())),
        None => error(StatusCode::NOT_FOUND, "this server is not a node of a cluster (see --cluster)"),
    }
}

fn json<T: serde::Serialize>(outcome: Result<T, AdminError>) -> HttpResponse {
    match outcome {
        Ok(value) => match serde_json::to_vec(&value) {
            Ok(body) => {
                let mut response = Response::new(Full::new(Bytes::from(body)));
                response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("encoding the answer: {err}")),
        },
        Err(err) => failure(&err),
    }
}

fn failure(err: &AdminError) -> HttpResponse {
    let status = match err {
        AdminError::UnknownNamespace(_) | AdminError::UnknownObject(_) => StatusCode::NOT_FOUND,
        AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AdminError::NeedsServer(_) => StatusCode::CONFLICT,
        AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, &err.to_string())
}

/// A JSON error: `{"error": "..."}`.
pub(crate) fn error(status: StatusCode, message: &str) -> HttpResponse {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
