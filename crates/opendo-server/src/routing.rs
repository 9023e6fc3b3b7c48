//! Turning a request path into (namespace, object, path inside the object).
//!
//! `/{namespace}/{object-name}/{rest}` names an object by name; `/_id/{namespace}/{id}/{rest}` by
//! id. No namespace starts with `_`, so the second form never reaches an object by name.

use opendo_runtime::ObjectRef;
use percent_encoding::percent_decode_str;

/// The first path segment of addresses by id.
pub const BY_ID: &str = "_id";

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub namespace: String,
    /// The object: its percent-decoded name, or its id.
    pub object: ObjectRef,
    /// The path the object sees: `/{rest...}` plus `?query` if any.
    pub path: String,
}

/// Why a path cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The path names no namespace.
    #[error("no namespace in the path: address an object as /{{namespace}}/{{object-name}}/...")]
    NoNamespace,
    /// The path names a namespace but no object.
    #[error("no object name in the path: address an object as /{{namespace}}/{{object-name}}/...")]
    NoObject,
    /// An address by id without its namespace or id.
    #[error("address an object by id as /_id/{{namespace}}/{{id}}/...")]
    NoId,
    /// The object name is not valid percent-encoded UTF-8.
    #[error("object name is not valid percent-encoded UTF-8")]
    BadEncoding,
}

/// Splits `path` (starting with `/`) and `query` into a [`Route`].
pub fn route(path: &str, query: Option<&str>) -> Result<Route, RouteError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (namespace, object, rest) = match path.split_once('/') {
        Some((BY_ID, by_id)) => {
            let mut parts = by_id.splitn(3, '/');
            let namespace = parts.next().filter(|s| !s.is_empty()).ok_or(RouteError::NoId)?;
            let id = parts.next().filter(|s| !s.is_empty()).ok_or(RouteError::NoId)?;
            (namespace, ObjectRef::Id(id.to_string()), parts.next().unwrap_or(""))
        }
        _ => {
            let mut parts = path.splitn(3, '/');
            let namespace = parts.next().filter(|s| !s.is_empty()).ok_or(RouteError::NoNamespace)?;
            let raw_object = parts.next().filter(|s| !s.is_empty()).ok_or(RouteError::NoObject)?;
            if !is_well_formed_percent_encoding(raw_object) {
                return Err(RouteError::BadEncoding);
            }
            let object = percent_decode_str(raw_object).decode_utf8().map_err(|_| RouteError::BadEncoding)?;
            (namespace, ObjectRef::Name(object.into_owned()), parts.next().unwrap_or(""))
        }
    };
    let mut inner = format!("/{rest}");
    if let Some(query) = query {
        inner.push('?');
        inner.push_str(query);
    }
    Ok(Route { namespace: namespace.to_string(), object, path: inner })
}

/// Every `%` is followed by two hex digits.
fn is_well_formed_percent_encoding(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str, query: Option<&str>) -> (String, String, String) {
        let r = route(path, query).unwrap();
        let ObjectRef::Name(name) = r.object else { panic!("{path} is addressed by id") };
        (r.namespace, name, r.path)
    }

    #[test]
    fn addresses_by_id_start_with_a_segment_no_namespace_can_have() {
        let id = "ab".repeat(32);
        let r = route(&format!("/_id/counter/{id}/increment"), Some("x=1")).unwrap();
        assert_eq!(
            r,
            Route {
                namespace: "counter".into(),
                object: ObjectRef::Id(id.clone()),
                path: "/increment?x=1".into()
            }
        );
        assert_eq!(route(&format!("/_id/counter/{id}"), None).unwrap().path, "/");
        assert_eq!(route("/_id/counter", None), Err(RouteError::NoId));
        assert_eq!(route("/_id/counter/", None), Err(RouteError::NoId));
        assert_eq!(route("/_id/", None), Err(RouteError::NoId));
        // A name `_id` in a namespace is still a name.
        assert_eq!(ok("/counter/_id/x", None), ("counter".into(), "_id".into(), "/x".into()));
    }

    #[test]
    fn splits_namespace_object_and_rest() {
        assert_eq!(
            ok("/counter/alice/increment", None),
            ("counter".into(), "alice".into(), "/increment".into())
        );
        assert_eq!(ok("/counter/alice", None).2, "/");
        assert_eq!(ok("/counter/alice/", None).2, "/");
        assert_eq!(ok("/counter/alice/a/b/", Some("x=1&y")).2, "/a/b/?x=1&y");
        assert_eq!(ok("/counter/alice", Some("q")).2, "/?q");
    }

    #[test]
    fn decodes_object_names() {
        assert_eq!(ok("/c/hello%20world", None).1, "hello world");
        assert_eq!(ok("/c/caf%C3%A9", None).1, "café");
        assert_eq!(ok("/c/a%2Fb/x", None), ("c".into(), "a/b".into(), "/x".into()));
    }

    #[test]
    fn refuses_what_cannot_be_routed() {
        assert_eq!(route("/", None), Err(RouteError::NoNamespace));
        assert_eq!(route("//x", None), Err(RouteError::NoNamespace));
        assert_eq!(route("/counter", None), Err(RouteError::NoObject));
        assert_eq!(route("/counter/", None), Err(RouteError::NoObject));
        assert_eq!(route("/c/%zz", None), Err(RouteError::BadEncoding));
        assert_eq!(route("/c/abc%4", None), Err(RouteError::BadEncoding));
        assert_eq!(route("/c/%FF%FE", None), Err(RouteError::BadEncoding));
    }
}
