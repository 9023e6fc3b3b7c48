//! Where things live in the data directory.
//!
//! ```text
//! {data-dir}/{namespace}/{id}.sqlite     one database per object (plus its -wal file)
//! {data-dir}/{namespace}/_alarms.sqlite  the namespace's alarm index
//! {data-dir}/opendo.lock                  held by the one process using the data directory
//! ```
//! Namespace names are checked by [`validate_namespace`]; object names never reach the
//! filesystem, only their hex ids do, so no name can escape the data directory.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::id::ObjectId;

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

/// An object database found in a namespace's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub id: ObjectId,
    /// Bytes of the database file and its WAL.
    pub size_bytes: u64,
    /// When the database file or its WAL was last written, in milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

/// The namespaces that have a folder in `data_dir`, by name.
pub fn stored_namespaces(data_dir: &Path) -> Result<Vec<String>> {
    let io = |source| Error::Io { path: data_dir.to_path_buf(), source };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(data_dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if entry.file_type().map_err(io)?.is_dir() && validate_namespace(&name).is_ok() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The object databases in `namespace`'s folder, ordered by id; none if it has no folder. Files
/// whose name is not an id of this namespace are left out.
pub fn stored_objects(data_dir: &Path, namespace: &str) -> Result<Vec<StoredObject>> {
    let dir = namespace_dir(data_dir, namespace);
    let io = |source| Error::Io { path: dir.clone(), source };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io(err)),
    };
    let mut objects = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let file_name = entry.file_name();
        let Some(hex) = file_name.to_str().and_then(|name| name.strip_suffix(".sqlite")) else { continue };
        let Ok(id) = ObjectId::parse(namespace, hex) else { continue };
        objects.extend(stat(&entry.path(), id));
    }
    objects.sort_by_key(|object| object.id);
    Ok(objects)
}

/// The object database of `id` in `namespace`, if it exists.
pub fn stored_object(data_dir: &Path, namespace: &str, id: &ObjectId) -> Option<StoredObject> {
    stat(&object_db_path(data_dir, namespace, id), *id)
}

fn stat(path: &Path, id: ObjectId) -> Option<StoredObject> {
    let db = std::fs::metadata(path).ok()?;
    let wal = std::fs::metadata(crate::files::wal_path(path)).ok();
    let modified_ms = [Some(&db), wal.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|meta| meta.modified().ok())
        .max()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    Some(StoredObject { id, size_bytes: db.len() + wal.map_or(0, |wal| wal.len()), modified_ms })
}

/// The data directory's lock, held while the process uses the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Takes the data directory's lock, or fails if another process holds it.
///
/// Object databases are opened without SQLite's file locks (see `ObjectDb::open`), so two
/// servers on one data directory would corrupt each other's objects: this lock keeps the second
/// out. The holder's process id is written into the file for the message the next one gets.
/// The operating system releases the lock when the process ends, however it ends.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock> {
    let path = data_dir.join("opendo.lock");
    let io = |source| Error::Io { path: path.clone(), source };
    let mut file =
        File::options().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let by = if holder.is_empty() { String::new() } else { format!(" (process {holder})") };
            return Err(Error::InUse(format!(
                "the data directory {} is in use by another opendo{by}: give each server its own --data-dir",
                data_dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
    }
    file.set_len(0).and_then(|()| file.rewind()).map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(DataDirLock { _file: file })
}

/// Takes a shared lock on the data directory, for the nodes of a cluster that share it: any
/// number of them may hold it together, and [`lock_data_dir`] (a server on its own, or offline
/// admin commands) keeps out of it while they do. The nodes keep each other out of every object's
/// file by file locks ([`crate::Settings::file_locks`]).
pub fn lock_data_dir_shared(data_dir: &Path) -> Result<DataDirLock> {
    let path = data_dir.join("opendo.lock");
    let io = |source| Error::Io { path: path.clone(), source };
    let file = File::options().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse(format!(
            "the data directory {} is in use by an opendo that is not a node of a cluster",
            data_dir.display()
        ))),
        Err(std::fs::TryLockError::Error(err)) => Err(io(err)),
    }
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

    #[test]
    fn a_data_directory_has_one_user_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another opendo"), "{err}");
        assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
        drop(lock);
        lock_data_dir(dir.path()).unwrap();
    }

    #[test]
    fn cluster_nodes_share_a_data_directory_that_a_lone_server_cannot_take() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_data_dir_shared(dir.path()).unwrap();
        let second = lock_data_dir_shared(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another opendo"), "{err}");
        drop((first, second));
        let alone = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir_shared(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a node of a cluster"), "{err}");
        drop(alone);
    }
}
