//! Object files opened with file locks (a data directory shared by a cluster's nodes).

use opendo_storage::{Durability, Error, ObjectDb, Settings};

fn locked() -> Settings {
    Settings { durability: Durability::Relaxed, file_locks: true, ..Settings::default() }
}

#[test]
fn an_object_held_with_file_locks_cannot_be_opened_again_until_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.sqlite");
    let mut first = ObjectDb::open(&path, locked()).unwrap();
    first.begin_batch().unwrap();
    first.begin_event(true).unwrap();
    first.put("k", b"first").unwrap();
    first.finish_event(true).unwrap();
    let _ = first.commit_batch().unwrap();
    match ObjectDb::open(&path, locked()) {
        Err(Error::InUse(message)) => assert!(message.contains("open in another process"), "{message}"),
        other => panic!("a second open of a held object: {other:?}"),
    }
    first.close().unwrap();
    let second = ObjectDb::open(&path, locked()).unwrap();
    assert_eq!(second.get("k").unwrap().as_deref(), Some(&b"first"[..]));
}
