//! The name an object was created under, recorded in its own database.

use opendo_storage::{Durability, ObjectDb};

#[test]
fn a_new_database_records_its_name_with_its_first_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.sqlite");
    let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    db.record_name_at_creation("alice");
    assert_eq!(db.name().unwrap(), None, "not before a batch");
    // The first batch's lone event fails: its writes go, the name stays with the batch.
    db.begin_batch().unwrap();
    db.begin_event(true).unwrap();
    db.put("k", b"v").unwrap();
    assert_eq!(db.finish_event(false).unwrap().map(|e| e.to_string()), None);
    let _ = db.commit_batch().unwrap();
    db.close().unwrap();

    let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    assert_eq!(db.name().unwrap().as_deref(), Some("alice"));
    assert_eq!(db.get("k").unwrap(), None);
    // An existing database keeps the name it has; deleting everything keeps it too.
    db.record_name_at_creation("bob");
    db.begin_batch().unwrap();
    db.delete_all().unwrap();
    let _ = db.commit_batch().unwrap();
    assert_eq!(db.name().unwrap().as_deref(), Some("alice"));
}

#[test]
fn a_database_opened_without_a_name_has_none_and_the_guest_cannot_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = ObjectDb::open(&dir.path().join("a.sqlite"), Durability::Relaxed).unwrap();
    db.begin_batch().unwrap();
    db.put("k", b"v").unwrap();
    let _ = db.commit_batch().unwrap();
    assert_eq!(db.name().unwrap(), None);
    assert!(db.exec("SELECT value FROM _opendo_meta", &[]).is_err());
    assert!(db.exec("UPDATE _opendo_meta SET value = 'x'", &[]).is_err());
}

#[test]
fn a_batch_rolled_back_whole_leaves_the_name_for_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.sqlite");
    let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    db.record_name_at_creation("carol");
    db.begin_batch().unwrap();
    db.rollback_batch().unwrap();
    db.begin_batch().unwrap();
    let _ = db.commit_batch().unwrap();
    drop(db);
    let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    assert_eq!(db.name().unwrap().as_deref(), Some("carol"));
}
