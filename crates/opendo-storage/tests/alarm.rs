use opendo_storage::{Alarm, AlarmIndex, Durability, ObjectDb, ObjectId};

#[test]
fn the_alarm_is_part_of_the_event_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = ObjectDb::open(&dir.path().join("o.sqlite"), Durability::Relaxed).unwrap();
    assert_eq!(db.get_alarm().unwrap(), None);
    db.begin_batch().unwrap();
    db.begin_event(false).unwrap();
    db.set_alarm(1000).unwrap();
    db.set_alarm(2000).unwrap();
    assert!(db.finish_event(true).unwrap().is_none());
    db.begin_event(false).unwrap();
    db.delete_alarm().unwrap();
    assert!(db.finish_event(false).unwrap().is_none(), "a failed event's delete is undone");
    db.commit_batch().unwrap();
    assert_eq!(db.get_alarm().unwrap(), Some(Alarm { time_ms: 2000, retry_count: 0 }));
    db.put_alarm(Alarm { time_ms: 3000, retry_count: 2 }).unwrap();
    assert_eq!(db.get_alarm().unwrap(), Some(Alarm { time_ms: 3000, retry_count: 2 }));
    db.delete_all().unwrap();
    assert_eq!(db.get_alarm().unwrap(), None, "delete_all deletes the alarm too");
}

#[test]
fn the_index_lowers_sets_removes_and_lists_due_entries() {
    let dir = tempfile::tempdir().unwrap();
    let index = AlarmIndex::open(&dir.path().join("_alarms.sqlite"), Durability::Relaxed).unwrap();
    let a = ObjectId::from_name("ns", "a");
    let b = ObjectId::from_name("ns", "b");
    assert_eq!(index.next_time().unwrap(), None);
    index.lower(&a, Some("a"), 500).unwrap();
    index.lower(&a, None, 900).unwrap();
    assert_eq!(index.next_time().unwrap(), Some(500), "lower never moves an entry later");
    index.set(&a, None, 900).unwrap();
    index.set(&b, Some("b"), 100).unwrap();
    let due = index.due("ns", 1000, 10).unwrap();
    assert_eq!(
        due.iter().map(|e| (e.id, e.name.as_deref(), e.time_ms)).collect::<Vec<_>>(),
        vec![(b, Some("b"), 100), (a, Some("a"), 900)]
    );
    assert!(index.due("other", 1000, 10).unwrap().is_empty(), "ids of another namespace are skipped");
    assert_eq!(index.due("ns", 500, 10).unwrap().len(), 1);
    index.remove(&b).unwrap();
    assert_eq!(index.next_time().unwrap(), Some(900));
}

#[test]
fn every_kind_of_alarm_write_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = ObjectDb::open(&dir.path().join("object.sqlite"), Durability::Relaxed).unwrap();
    assert_eq!(db.alarm_writes(), 0);
    db.get_alarm().unwrap();
    db.put("k", b"v").unwrap();
    assert_eq!(db.alarm_writes(), 0, "reads and other writes do not count");
    db.set_alarm(1_000).unwrap();
    db.put_alarm(Alarm { time_ms: 2_000, retry_count: 1 }).unwrap();
    db.delete_alarm().unwrap();
    db.set_alarm(3_000).unwrap();
    db.delete_all().unwrap();
    assert_eq!(db.alarm_writes(), 5);
    assert_eq!(db.get_alarm().unwrap(), None, "delete_all removed the alarm");
}

#[test]
fn a_shared_index_keeps_a_rollback_journal_and_is_seen_by_another_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("_alarms.sqlite");
    let first = AlarmIndex::open_shared(&path, Durability::Full).unwrap();
    let second = AlarmIndex::open_shared(&path, Durability::Full).unwrap();
    let id = ObjectId::from_name("ns", "a");
    first.set(&id, Some("a"), 1_000).unwrap();
    assert_eq!(second.get(&id).unwrap(), Some(1_000), "each write is visible to the other process");
    assert!(
        !dir.path().join("_alarms.sqlite-wal").exists(),
        "no WAL: its shared memory would not cross machines"
    );
    assert!(dir.path().join("_alarms.sqlite-journal").exists(), "the journal stays, synced once");
}
