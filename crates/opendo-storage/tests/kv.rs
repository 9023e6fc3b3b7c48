use opendo_storage::{Durability, Error, ListOptions, MAX_BATCH, MAX_ENTRY_BYTES, MAX_KEY_BYTES, ObjectDb};

fn open(dir: &tempfile::TempDir) -> ObjectDb {
    ObjectDb::open(&dir.path().join("object.sqlite"), Durability::Relaxed).unwrap()
}

fn keys(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
    entries.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn get_put_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    assert_eq!(db.get("a").unwrap(), None);
    db.put("a", b"1").unwrap();
    assert_eq!(db.get("a").unwrap(), Some(b"1".to_vec()));
    db.put("a", b"").unwrap();
    assert_eq!(db.get("a").unwrap(), Some(Vec::new()), "an empty value is a value");
    assert!(db.delete("a").unwrap());
    assert!(!db.delete("a").unwrap());
    assert_eq!(db.get("a").unwrap(), None);
}

#[test]
fn keys_are_ordered_by_utf8_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    // Byte order differs from UTF-16 order and from case-insensitive order.
    let inserted = ["é", "z", "Z", "a", "", "\u{FFFD}", "😀", "a\0b", "ab", "\u{7f}"];
    for k in inserted {
        db.put(k, k.as_bytes()).unwrap();
    }
    let mut expected: Vec<&str> = inserted.to_vec();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let all = db.list(&ListOptions::default()).unwrap();
    assert_eq!(keys(&all), expected);
    assert_eq!(db.get("a\0b").unwrap(), Some(b"a\0b".to_vec()), "NUL inside a key is kept");
    let reversed = db.list(&ListOptions { reverse: true, ..Default::default() }).unwrap();
    expected.reverse();
    assert_eq!(keys(&reversed), expected);
}

/// Every combination of bounds, reverse and limit agrees with a straightforward model.
#[test]
fn list_matches_model_for_every_bound_combination() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    let stored = ["", "a", "a\0", "aa", "ab", "abc", "b", "ba", "bb", "c", "é", "éa"];
    for k in stored {
        db.put(k, format!("v{k}").as_bytes()).unwrap();
    }
    let candidates: Vec<Option<&str>> =
        vec![None, Some(""), Some("a"), Some("ab"), Some("b"), Some("bz"), Some("é"), Some("zz")];
    let limits = [None, Some(0), Some(1), Some(3)];
    let mut checked = 0;
    for start in &candidates {
        for start_after in &candidates {
            for end in &candidates {
                for prefix in &candidates {
                    for reverse in [false, true] {
                        for limit in limits {
                            let options = ListOptions {
                                start: start.map(String::from),
                                start_after: start_after.map(String::from),
                                end: end.map(String::from),
                                prefix: prefix.map(String::from),
                                reverse,
                                limit,
                            };
                            let mut model: Vec<&str> = stored
                                .iter()
                                .copied()
                                .filter(|k| start.is_none_or(|s| k.as_bytes() >= s.as_bytes()))
                                .filter(|k| start_after.is_none_or(|s| k.as_bytes() > s.as_bytes()))
                                .filter(|k| end.is_none_or(|e| k.as_bytes() < e.as_bytes()))
                                .filter(|k| prefix.is_none_or(|p| k.as_bytes().starts_with(p.as_bytes())))
                                .collect();
                            model.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                            if reverse {
                                model.reverse();
                            }
                            if let Some(limit) = limit {
                                model.truncate(limit as usize);
                            }
                            let got = db.list(&options).unwrap();
                            assert_eq!(keys(&got), model, "{options:?}");
                            for (k, v) in &got {
                                assert_eq!(v, format!("v{k}").as_bytes());
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 8 * 8 * 8 * 8 * 2 * 4);
}

#[test]
fn size_limits_are_enforced_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    assert!(matches!(db.put(&long_key, b"v"), Err(Error::LimitExceeded(_))));
    assert!(matches!(db.get(&long_key), Err(Error::LimitExceeded(_))));
    assert!(matches!(db.delete(&long_key), Err(Error::LimitExceeded(_))));
    let max_key = "k".repeat(MAX_KEY_BYTES);
    db.put(&max_key, b"v").unwrap();

    let big = vec![7u8; MAX_ENTRY_BYTES - 1];
    db.put("x", &big).unwrap();
    let too_big = vec![7u8; MAX_ENTRY_BYTES];
    assert!(matches!(db.put("y", &too_big), Err(Error::LimitExceeded(_))));
    assert_eq!(db.get("y").unwrap(), None);
}

#[test]
fn batches_are_limited_and_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    let entries: Vec<(String, Vec<u8>)> =
        (0..MAX_BATCH).map(|i| (format!("k{i:03}"), vec![i as u8])).collect();
    db.put_many(&entries).unwrap();
    let names: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(db.get_many(&names).unwrap(), entries);

    let mut too_many = entries.clone();
    too_many.push(("extra".into(), vec![1]));
    assert!(matches!(db.put_many(&too_many), Err(Error::LimitExceeded(_))));
    assert_eq!(db.get("extra").unwrap(), None);

    // One bad entry refuses the whole batch.
    let mixed = vec![("fine".to_string(), vec![1]), ("k".repeat(MAX_KEY_BYTES + 1), vec![1])];
    assert!(matches!(db.put_many(&mixed), Err(Error::LimitExceeded(_))));
    assert_eq!(db.get("fine").unwrap(), None);

    let mut names_too_many = names.clone();
    names_too_many.push("extra".into());
    assert!(matches!(db.get_many(&names_too_many), Err(Error::LimitExceeded(_))));
    assert!(matches!(db.delete_many(&names_too_many), Err(Error::LimitExceeded(_))));

    let some = vec!["k000".to_string(), "k001".into(), "k001".into(), "missing".into()];
    assert_eq!(db.get_many(&some).unwrap().len(), 2, "missing keys left out, duplicates once");
    assert_eq!(db.delete_many(&some).unwrap(), 2);
    assert_eq!(db.list(&ListOptions::default()).unwrap().len(), MAX_BATCH - 2);
}

#[test]
fn delete_all_empties_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    for i in 0..10 {
        db.put(&format!("k{i}"), b"v").unwrap();
    }
    db.delete_all().unwrap();
    assert!(db.list(&ListOptions::default()).unwrap().is_empty());
    db.put("after", b"v").unwrap();
    assert_eq!(db.get("after").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.sqlite");
    let mut db = ObjectDb::open(&path, Durability::Full).unwrap();
    db.begin_batch().unwrap();
    db.begin_event(false).unwrap();
    db.put("kept", b"1").unwrap();
    db.finish_event(true).unwrap();
    db.commit_batch().unwrap();
    db.close().unwrap();
    assert!(!dir.path().join("object.sqlite-shm").exists(), "exclusive locking needs no -shm file");
    let wal = std::fs::metadata(dir.path().join("object.sqlite-wal")).expect("the WAL file is kept");
    assert_eq!(wal.len(), 0, "and emptied into the database on close");

    let db = ObjectDb::open(&path, Durability::Full).unwrap();
    assert_eq!(db.get("kept").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn a_failed_event_rolls_back_alone_inside_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.sqlite");
    let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    db.begin_batch().unwrap();
    db.begin_event(false).unwrap();
    db.put("first", b"1").unwrap();
    db.finish_event(true).unwrap();
    db.begin_event(false).unwrap();
    db.put("second", b"2").unwrap();
    db.put("first", b"overwritten").unwrap();
    db.finish_event(false).unwrap();
    db.begin_event(false).unwrap();
    db.put("third", b"3").unwrap();
    db.finish_event(true).unwrap();
    db.commit_batch().unwrap();
    db.close().unwrap();

    let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    assert_eq!(db.get("first").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get("second").unwrap(), None);
    assert_eq!(db.get("third").unwrap(), Some(b"3".to_vec()));
}

#[test]
fn an_event_alone_in_its_batch_keeps_or_undoes_its_writes_without_a_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.sqlite");
    let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    db.begin_batch().unwrap();
    db.begin_event(true).unwrap();
    db.put("kept", b"1").unwrap();
    assert!(db.finish_event(true).unwrap().is_none());
    db.commit_batch().unwrap();

    db.begin_batch().unwrap();
    db.begin_event(true).unwrap();
    db.put("undone", b"2").unwrap();
    db.put("kept", b"overwritten").unwrap();
    assert!(db.finish_event(false).unwrap().is_none());
    assert!(db.in_transaction(), "the batch goes on, empty, after its lone event was undone");
    // What the runtime writes after a failed event (an alarm's retry) still commits.
    db.put("after", b"3").unwrap();
    db.commit_batch().unwrap();
    db.close().unwrap();

    let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    assert_eq!(db.get("kept").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get("undone").unwrap(), None);
    assert_eq!(db.get("after").unwrap(), Some(b"3".to_vec()));
}

#[test]
fn an_uncommitted_batch_is_lost_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.sqlite");
    let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    db.begin_batch().unwrap();
    db.put("never", b"1").unwrap();
    db.rollback_batch().unwrap();
    assert!(!db.in_transaction());
    db.close().unwrap();
    let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    assert_eq!(db.get("never").unwrap(), None);
}

#[test]
fn a_commit_reports_whether_it_wrote_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = ObjectDb::open(&dir.path().join("object.sqlite"), Durability::Relaxed).unwrap();
    let mut commit = |write: bool| {
        db.begin_batch().unwrap();
        db.begin_event(false).unwrap();
        if write {
            db.put("k", b"v").unwrap();
        } else {
            assert_eq!(db.get("missing").unwrap(), None);
        }
        db.finish_event(true).unwrap();
        db.commit_batch().unwrap()
    };
    // The first commit also covers the creation of the file, which a flush must make durable.
    assert!(commit(false), "creating the file counts as a write");
    assert!(!commit(false), "a read-only batch writes nothing");
    assert!(commit(true));
    assert!(!commit(false));
    drop(db);
    let mut db = ObjectDb::open(&dir.path().join("object.sqlite"), Durability::Relaxed).unwrap();
    db.begin_batch().unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(!db.commit_batch().unwrap(), "opening an existing file writes nothing");
}

#[test]
fn puts_and_deletes_never_leave_the_database_past_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 2 * 1024 * 1024;
    let settings =
        opendo_storage::Settings { durability: Durability::Relaxed, storage_cap: cap, file_locks: false };
    let mut db = ObjectDb::open(&dir.path().join("capped.sqlite"), settings).unwrap();
    // A fixed pseudo-random sequence: values from empty to 40 KB over 300 keys, a fifth deletes.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |bound: u64| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    let (mut stored, mut refused) = (0, 0);
    for batch in 0..200 {
        db.begin_batch().unwrap();
        for _ in 0..10 {
            let key = format!("k{}", next(300));
            if next(5) == 0 {
                db.delete(&key).unwrap();
            } else {
                let value = vec![batch as u8; next(40_000) as usize];
                match db.put(&key, &value) {
                    Ok(()) => stored += 1,
                    Err(Error::StorageFull(_)) => {
                        refused += 1;
                        assert_ne!(db.get(&key).unwrap(), Some(value), "a refused put leaves nothing");
                    }
                    Err(err) => panic!("put failed: {err}"),
                }
            }
            let size = db.database_size().unwrap();
            assert!(size <= cap, "the database grew to {size} bytes, past its cap of {cap}");
        }
        db.commit_batch().unwrap();
    }
    assert!(stored > 100 && refused > 10, "stored {stored}, refused {refused}");
    assert_eq!(db.integrity_check().unwrap(), "ok");
}

#[test]
fn rows_read_and_written_are_counted_until_taken() {
    use opendo_storage::RowCounts;
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.put("a", b"1").unwrap();
    db.put_many(&[("b".into(), b"2".to_vec()), ("c".into(), b"3".to_vec())]).unwrap();
    db.get("a").unwrap();
    db.get("missing").unwrap();
    assert_eq!(db.list(&ListOptions::default()).unwrap().len(), 3);
    assert!(db.delete("a").unwrap());
    assert!(!db.delete("a").unwrap(), "deleting nothing writes nothing");
    assert_eq!(db.take_row_counts(), RowCounts { read: 5, written: 4 });
    assert_eq!(db.take_row_counts(), RowCounts::default(), "taking resets them");
    db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2)", &[]).unwrap();
    db.exec("SELECT x FROM t", &[]).unwrap();
    let counted = db.take_row_counts();
    assert_eq!(counted.written, 2);
    assert!(counted.read >= 2, "{counted:?}");
}

#[test]
fn an_event_ended_early_keeps_its_writes_so_far_and_undoes_only_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("object.sqlite");
    let mut db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    db.begin_batch().unwrap();
    db.begin_event(false).unwrap();
    db.put("earlier event", b"1").unwrap();
    db.finish_event(true).unwrap();
    db.begin_event(false).unwrap();
    db.put("before the call", b"2").unwrap();
    db.end_event_early().unwrap();
    let _ = db.commit_batch().unwrap();
    db.begin_batch().unwrap();
    db.put("after the call", b"3").unwrap();
    // The event fails after the call: only what it wrote since is undone.
    db.finish_event(false).unwrap();
    db.commit_batch().unwrap();
    db.close().unwrap();

    let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    assert_eq!(db.get("earlier event").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get("before the call").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get("after the call").unwrap(), None);
}

#[test]
fn an_event_cannot_end_early_inside_a_transaction_and_keeps_its_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.begin_batch().unwrap();
    db.begin_event(false).unwrap();
    db.put("earlier event", b"1").unwrap();
    db.finish_event(true).unwrap();
    db.begin_event(false).unwrap();
    db.put("a", b"1").unwrap();
    let txn = db.begin_transaction().unwrap();
    assert!(matches!(db.end_event_early(), Err(Error::Transaction(_))));
    assert!(db.is_transaction_open(txn), "the refusal ends nothing");
    db.commit_transaction(txn).unwrap();
    // Still inside its own savepoint: failing the event undoes it alone.
    db.finish_event(false).unwrap();
    assert_eq!(db.get("a").unwrap(), None);
    assert_eq!(db.get("earlier event").unwrap(), Some(b"1".to_vec()));
}
