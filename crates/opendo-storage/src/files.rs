//! Creating an object's files, and making file creations durable.
//!
//! New object databases are written from a prebuilt image rather than created by SQLite.
//!
//! Letting SQLite create the file costs, per object, a rollback journal that is created, synced
//! and deleted just to switch the new file to WAL, then a transaction for the schema: several
//! fsyncs and two directory changes. On ext4, deleted inodes are also skipped for a while by
//! every later file creation, so first touches of many objects got slower as they went. Writing
//! the image (already in WAL format, schema included) is one small file write and a rename.
//!
//! SQLite is built without its directory syncs (`SQLITE_DISABLE_DIRSYNC`, `.cargo/config.toml`),
//! which it did after the first sync of every WAL it opened, that is on every wake. Directory
//! entries are made durable here instead, once, when a file is created: by the caller's flush of
//! the whole filesystem (group sync) or by [`sync_folder`].

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rusqlite::{Connection, MAIN_DB};

use crate::error::{Error, Result};

/// Offsets of the file format write and read versions in the database header: 1 for a rollback
/// journal, 2 for WAL (<https://sqlite.org/fileformat.html#file_format_version_numbers>).
pub(crate) const FORMAT_VERSION_BYTES: [usize; 2] = [18, 19];
pub(crate) const ROLLBACK_FORMAT: u8 = 1;
pub(crate) const WAL_FORMAT: u8 = 2;

/// The image of an empty object database: the runtime's schema, WAL format.
fn image() -> Result<&'static [u8]> {
    static IMAGE: OnceLock<std::result::Result<Vec<u8>, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| build(crate::schema::SCHEMA).map_err(|err| err.to_string()))
        .as_deref()
        .map_err(|err| Error::Corrupt(format!("could not build the image of a new database: {err}")))
}

fn build(schema: &str) -> Result<Vec<u8>> {
    let mut conn = Connection::open_in_memory()?;
    conn.execute_batch(schema)?;
    let mut bytes = conn.serialize(MAIN_DB)?.to_vec();
    for offset in FORMAT_VERSION_BYTES {
        let byte = bytes.get_mut(offset).ok_or_else(|| Error::Corrupt("database image too short".into()))?;
        *byte = WAL_FORMAT;
    }
    Ok(bytes)
}

/// Writes a new, empty object database at `path`, which must not exist, and its empty WAL file.
///
/// The image is written under a temporary name, synced, and renamed into place, so a crash leaves
/// either no database or a whole one. With `durable` the new directory entries are synced too
/// (for durability modes that do not flush the whole filesystem after the first commit).
pub(crate) fn create(path: &Path, durable: bool) -> Result<()> {
    let temporary = write_beside(path, image()?)?;
    std::fs::rename(&temporary, path).map_err(io(path))?;
    // A WAL left without its database (deleted by hand) belongs to no database any more: SQLite
    // would replay it into the new one.
    open_wal(path, true, durable)
}

/// Puts `image`, a whole database in WAL format, at `path` in place of the database there (if
/// any), which must be closed with its WAL checkpointed. As for [`create`], a crash leaves the old
/// database or the new one, whole. The WAL is emptied before the new file takes its place: frames
/// of the old database must never be replayed into the new one. With `durable` the directory
/// entries are synced too.
pub(crate) fn replace(path: &Path, image: &[u8], durable: bool) -> Result<()> {
    let temporary = write_beside(path, image)?;
    let wal = wal_path(path);
    let emptied = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&wal);
    emptied.and_then(|wal| wal.sync_all()).map_err(io(&wal))?;
    std::fs::rename(&temporary, path).map_err(io(path))?;
    match (durable, path.parent()) {
        (true, Some(folder)) => sync_folder(folder),
        _ => Ok(()),
    }
}

/// Removes the database at `path`, which must be closed with its WAL checkpointed, and its WAL.
/// Returns whether there was one. The database goes first: a crash in between leaves an empty
/// WAL, which a new database of the same object starts over.
pub(crate) fn remove(path: &Path) -> Result<bool> {
    let existed = match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
        Err(source) => return Err(Error::Io { path: path.to_path_buf(), source }),
    };
    for leftover in [wal_path(path), temporary_path(path)] {
        match std::fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: leftover, source }),
        }
    }
    if let Some(folder) = path.parent() {
        sync_folder(folder)?;
    }
    Ok(existed)
}

/// Writes `image` under the temporary name of `path` and syncs it; returns that name.
fn write_beside(path: &Path, image: &[u8]) -> Result<PathBuf> {
    let temporary = temporary_path(path);
    let mut file = File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(image).map_err(io(&temporary))?;
    file.sync_data().map_err(io(&temporary))?;
    Ok(temporary)
}

/// Makes sure the WAL file of the database at `path` exists (SQLite would create it on the first
/// write without syncing its directory entry). With `durable` its directory entry is synced.
pub(crate) fn create_wal(path: &Path, durable: bool) -> Result<()> {
    open_wal(path, false, durable)
}

fn open_wal(path: &Path, truncate: bool, durable: bool) -> Result<()> {
    let wal = wal_path(path);
    let stale = truncate && !wal_is_empty(path);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(&wal)
        .map_err(io(&wal))?;
    if stale {
        // The new database's first commit does not sync the WAL header (`ObjectDb::open`): the
        // old frames must be gone from the disk, not only from the cache.
        file.sync_all().map_err(io(&wal))?;
    }
    if durable && let Some(folder) = path.parent() {
        sync_folder(folder)?;
    }
    Ok(())
}

/// The WAL file of the database at `path` (SQLite's naming).
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Whether the WAL file of the database at `path` is empty or missing (SQLite creates it then).
pub(crate) fn wal_is_empty(path: &Path) -> bool {
    match std::fs::metadata(wal_path(path)) {
        Ok(metadata) => metadata.len() == 0,
        Err(err) => err.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Makes the entries of `folder` (files created, renamed or deleted in it) durable.
pub(crate) fn sync_folder(folder: &Path) -> Result<()> {
    #[cfg(test)]
    tests::FOLDER_SYNCS.with(|syncs| syncs.set(syncs.get() + 1));
    File::open(folder).and_then(|folder| folder.sync_all()).map_err(io(folder))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, source }
}

/// `{name}.sqlite` → `{name}.sqlite.new`: a leftover of a crash is overwritten by the next
/// creation of the same object.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// Calls of [`sync_folder`] on this thread.
        pub(crate) static FOLDER_SYNCS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn the_image_is_a_wal_database_with_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        create(&path, true).unwrap();
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(tables, ["_opendo_alarm", "_opendo_kv", "_opendo_meta"]);
        let check: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok");
        assert!(!temporary_path(&path).exists());
        assert_eq!(std::fs::metadata(wal_path(&path)).unwrap().len(), 0);
    }

    #[test]
    fn a_wal_without_its_database_is_not_replayed_into_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sqlite");
        let mut db = crate::ObjectDb::open(&path, crate::Durability::Relaxed).unwrap();
        db.put("k", b"old").unwrap();
        // Crash-like: the WAL keeps the write, then the database file alone is deleted.
        std::mem::forget(db);
        assert!(std::fs::metadata(wal_path(&path)).unwrap().len() > 0);
        std::fs::remove_file(&path).unwrap();
        let db = crate::ObjectDb::open(&path, crate::Durability::Relaxed).unwrap();
        assert_eq!(db.get("k").unwrap(), None);
        assert_eq!(db.integrity_check().unwrap(), "ok");
    }
}
