//! Turning a request path into (namespace, object name, path inside the object).

use percent_encoding::percent_decode_str;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub namespace: String,
    /// The percent-decoded object name.
    pub object: String,
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
    /// The object name is not valid percent-encoded UTF-8.
    #[error("object name is not valid percent-encoded UTF-8")]
    BadEncoding,
}

/// Splits `path` (starting with `/`) and `query` into a [`Route`].
pub fn route(path: &str, query: Option<&str>) -> Result<Route, RouteError> {
    let mut parts = path.strip_prefix('/').unwrap_or(path).splitn(3, '/');
    let namespace = parts.next().filter(|s| !s.is_empty()).ok_or(RouteError::NoNamespace)?;
    let raw_object = parts.next().filter(|s| !s.is_empty()).ok_or(RouteError::NoObject)?;
    let rest = parts.next().unwrap_or("");
    if !is_well_formed_percent_encoding(raw_object) {
        return Err(RouteError::BadEncoding);
    }
    let object = percent_decode_str(raw_object).decode_utf8().map_err(|_| RouteError::BadEncoding)?;
    let mut inner = format!("/{rest}");
    if let Some(query) = query {
        inner.push('?');
        inner.push_str(query);
    }
    Ok(Route { namespace: namespace.to_string(), object: object.into_owned(), path: inner })
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
        (r.namespace, r.object, r.path)
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
