//! Where things live in the data directory.
//!
//! ```text
//! {data-dir}/{namespace}/{id}.sqlite     one database per object (plus its -wal file)
//! {data-dir}/{namespace}/_alarms.sqlite  the namespace's alarm index
//! ```
//! Namespace names are checked by [`validate_namespace`]; object names never reach the
//! filesystem, only their hex ids do, so no name can escape the data directory.

use std::path::{Path, PathBuf};

use crate::{Error, ObjectId, Result};

/// Longest namespace name, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 64;

/// Checks that `name` can be a namespace: 1 to 64 characters of `a-z A-Z 0-9 _ -`, not starting
/// with `-` or `_` (names starting with `_` or `.` are reserved for the runtime's own folders).
pub fn validate_namespace(name: &str) -> Result<()> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let ok_start = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if name.len() <= MAX_NAMESPACE_LEN && ok_chars && ok_start {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid namespace name `{name}`: use 1 to {MAX_NAMESPACE_LEN} characters of a-z, A-Z, 0-9, `_` and `-`, starting with a letter or digit"
        )))
    }
}

/// The folder holding a namespace's object databases.
pub fn namespace_dir(data_dir: &Path, namespace: &str) -> PathBuf {
    data_dir.join(namespace)
}

/// The alarm index of a namespace (its name cannot be an object id).
pub fn alarm_index_path(data_dir: &Path, namespace: &str) -> PathBuf {
    namespace_dir(data_dir, namespace).join("_alarms.sqlite")
}

/// The database file of one object.
pub fn object_db_path(data_dir: &Path, namespace: &str, id: &ObjectId) -> PathBuf {
    namespace_dir(data_dir, namespace).join(format!("{}.sqlite", id.to_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        for good in ["counter", "chat-room", "a", "Todo_2", &"x".repeat(64)] {
            assert!(validate_namespace(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "_cache", "-x", "a b", "é", &"x".repeat(65), "a\0"] {
            assert!(validate_namespace(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_paths_stay_inside_the_namespace_dir() {
        let id = ObjectId::from_name("counter", "../../etc/passwd");
        let path = object_db_path(Path::new("/data"), "counter", &id);
        assert_eq!(path.parent(), Some(Path::new("/data/counter")));
        assert!(path.file_name().unwrap().to_str().unwrap().ends_with(".sqlite"));
    }
}
