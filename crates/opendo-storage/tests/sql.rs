use std::time::{Duration, Instant};

use opendo_storage::{Durability, Error, ObjectDb, Settings, SqlValue};

fn open(dir: &tempfile::TempDir) -> ObjectDb {
    let mut db = ObjectDb::open(&dir.path().join("object.sqlite"), Durability::Relaxed).unwrap();
    db.begin_batch().unwrap();
    db.begin_event(false).unwrap();
    db
}

fn int(value: i64) -> SqlValue {
    SqlValue::Integer(value)
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.into())
}

#[test]
fn exec_returns_columns_rows_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)", &[]).unwrap();
    let inserted = db
        .exec(
            "INSERT INTO t (name, score, data) VALUES (?, ?, ?), ('b', NULL, NULL)",
            &[text("a"), SqlValue::Real(1.5), SqlValue::Blob(vec![1, 2])],
        )
        .unwrap();
    assert_eq!(inserted.rows_written, 2);
    assert!(inserted.columns.is_empty());
    let selected = db.exec("SELECT id, name, score, data FROM t ORDER BY id", &[]).unwrap();
    assert_eq!(selected.columns, ["id", "name", "score", "data"]);
    assert_eq!(
        selected.rows,
        vec![
            vec![int(1), text("a"), SqlValue::Real(1.5), SqlValue::Blob(vec![1, 2])],
            vec![int(2), text("b"), SqlValue::Null, SqlValue::Null],
        ]
    );
    assert!(selected.rows_read >= 2, "at least the rows returned: {}", selected.rows_read);
    db.exec("INSERT INTO t (name) SELECT 'x' FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 98) SELECT i FROM n)", &[]).unwrap();
    let counted = db.exec("SELECT count(*) FROM t WHERE name = 'x'", &[]).unwrap();
    assert_eq!(counted.rows, vec![vec![int(98)]]);
    assert!(counted.rows_read >= 99, "a full scan reads every row: {}", counted.rows_read);
    assert_eq!(selected.rows_written, 0);
}

#[test]
fn several_statements_bind_params_to_the_last_and_return_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    let result = db
        .exec(
            "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x;y'); -- a comment; with a semicolon
             INSERT INTO t VALUES ('z'); SELECT count(*) AS n, max(v) FROM t WHERE v != ?;  ",
            &[text("nothing")],
        )
        .unwrap();
    assert_eq!(result.columns, ["n", "max(v)"]);
    assert_eq!(result.rows, vec![vec![int(2), text("z")]]);
    assert_eq!(result.rows_written, 2);
    let trigger = db.exec(
        "CREATE TABLE log (msg TEXT); CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('a'); INSERT INTO log VALUES ('b'); END; INSERT INTO t VALUES (?)",
        &[text("w")],
    );
    assert_eq!(trigger.unwrap().rows_written, 3, "one insert and two by the trigger");
    let early = db.exec("SELECT ?; SELECT 1", &[int(1)]);
    assert!(matches!(early, Err(Error::Sql { .. })), "{early:?}");
    let count = db.exec("SELECT count(*) FROM log", &[]).unwrap();
    assert_eq!(count.rows, vec![vec![int(2)]]);
}

#[test]
fn a_failing_exec_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.exec("CREATE TABLE t (v INTEGER UNIQUE)", &[]).unwrap();
    let failed = db.exec("INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)", &[]);
    match failed {
        Err(Error::Sql { code, message }) => {
            assert_eq!(code & 0xff, 19, "SQLITE_CONSTRAINT");
            assert!(message.contains("UNIQUE"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.exec("SELECT count(*) FROM t", &[]).unwrap().rows, vec![vec![int(0)]]);
    assert!(matches!(db.exec("SELEC 1", &[]), Err(Error::Sql { .. })));
    assert!(matches!(db.exec("SELECT ?", &[]), Err(Error::Sql { .. })), "missing parameter");
}

#[test]
fn database_size_grows() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    let before = db.database_size().unwrap();
    db.exec("CREATE TABLE t (v BLOB)", &[]).unwrap();
    for _ in 0..10 {
        db.exec("INSERT INTO t VALUES (zeroblob(100000))", &[]).unwrap();
    }
    let after = db.database_size().unwrap();
    assert!(after >= before + 1_000_000, "{before} -> {after}");
}

#[test]
fn fts5_json_and_math_are_available() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.exec("CREATE VIRTUAL TABLE docs USING fts5(body)", &[]).unwrap();
    db.exec("INSERT INTO docs VALUES ('the quick brown fox'), ('lazy dogs')", &[]).unwrap();
    let found = db.exec("SELECT body FROM docs WHERE docs MATCH 'quick'", &[]).unwrap();
    assert_eq!(found.rows, vec![vec![text("the quick brown fox")]]);
    let json = db.exec("SELECT json_extract('{\"a\": [1, 2]}', '$.a[1]')", &[]).unwrap();
    assert_eq!(json.rows, vec![vec![int(2)]]);
    let math = db.exec("SELECT sqrt(16.0), pi() > 3", &[]).unwrap();
    assert_eq!(math.rows, vec![vec![SqlValue::Real(4.0), int(1)]]);
    db.exec("CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1)", &[]).unwrap();
}

fn denied(db: &mut ObjectDb, sql: &str) -> String {
    match db.exec(sql, &[]) {
        Err(Error::NotAuthorized(reason)) => reason,
        other => panic!("`{sql}` should be refused, got {other:?}"),
    }
}

#[test]
fn the_sandbox_refuses_what_guests_may_not_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.put("secret", b"kv").unwrap();
    let other = dir.path().join("other.sqlite");
    for sql in [
        "SELECT * FROM _opendo_kv",
        "SELECT * FROM _OPENDO_KV",
        "SELECT * FROM \"_OpEnDo_kv\"",
        "INSERT INTO _opendo_kv VALUES (x'00', x'00')",
        "DELETE FROM _opendo_kv",
        "DROP TABLE _opendo_kv",
        "CREATE TABLE _opendo_mine (x)",
        "PRAGMA table_info(_opendo_kv)",
    ] {
        let reason = denied(&mut db, sql);
        assert!(reason.contains("reserved"), "{sql}: {reason}");
    }
    db.exec("CREATE TABLE mine (x)", &[]).unwrap();
    assert!(denied(&mut db, "ALTER TABLE mine RENAME TO _opendo_stolen").contains("reserved"));
    assert!(denied(&mut db, &format!("ATTACH DATABASE '{}' AS other", other.display())).contains("ATTACH"));
    assert!(denied(&mut db, "ATTACH DATABASE '/etc/passwd' AS p").contains("ATTACH"));
    let temp = denied(&mut db, "CREATE TEMP TABLE t (x)");
    assert!(temp.contains("TEMP"), "{temp}");
    assert!(denied(&mut db, "CREATE TEMPORARY VIEW v AS SELECT 1").contains("TEMP"));
    assert!(denied(&mut db, "SELECT load_extension('/lib/x.so')").contains("load_extension"));
    for pragma in [
        "PRAGMA journal_mode=DELETE",
        "PRAGMA writable_schema=1",
        "PRAGMA synchronous=OFF",
        "PRAGMA locking_mode=NORMAL",
        "PRAGMA user_version=3",
        // Read once at open for the size check after each write: it must not change.
        "PRAGMA page_size=1024",
    ] {
        assert!(denied(&mut db, pragma).contains("not allowed"), "{pragma}");
    }
    // Guest SQL runs inside a transaction, where SQLite refuses VACUUM: no rewrite of the file
    // with another page size, and no copy of it written elsewhere.
    let copy = dir.path().join("copy.sqlite");
    for sql in ["VACUUM".to_string(), format!("VACUUM INTO '{}'", copy.display())] {
        match db.exec(&sql, &[]) {
            Err(Error::Sql { message, .. }) => assert!(message.contains("VACUUM"), "{sql}: {message}"),
            other => panic!("`{sql}` should fail, got {other:?}"),
        }
    }
    assert!(!copy.exists(), "VACUUM INTO wrote a copy of the database");
    assert_eq!(db.exec("PRAGMA page_size", &[]).unwrap().rows, vec![vec![int(4096)]]);
    for tx in ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT s", "RELEASE s", "BEGIN IMMEDIATE"] {
        assert!(denied(&mut db, tx).contains("transaction API"), "{tx}");
    }
    assert!(denied(&mut db, "CREATE VIRTUAL TABLE f USING fts4(x)").contains("fts4"));
    assert!(!other.exists(), "nothing outside the object's file was created");
    // Allowed PRAGMAs work, and the object's own data is intact.
    let info = db.exec("PRAGMA table_info(mine)", &[]).unwrap();
    assert_eq!(info.rows.len(), 1);
    db.exec("PRAGMA foreign_key_check", &[]).unwrap();
    assert_eq!(db.get("secret").unwrap(), Some(b"kv".to_vec()));
}

#[test]
fn sql_limits_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    let params: Vec<SqlValue> = (0..101).map(int).collect();
    let placeholders = vec!["?"; 101].join(",");
    let many = db.exec(&format!("SELECT {placeholders}"), &params);
    assert!(matches!(many, Err(Error::LimitExceeded(_))), "{many:?}");
    let long = format!("SELECT '{}'", "x".repeat(100_001));
    assert!(matches!(db.exec(&long, &[]), Err(Error::LimitExceeded(_))));
    db.exec("CREATE TABLE b (v BLOB)", &[]).unwrap();
    let big = db.exec("INSERT INTO b VALUES (?)", &[SqlValue::Blob(vec![0; 3 << 20])]);
    assert!(matches!(big, Err(Error::LimitExceeded(_)) | Err(Error::Sql { .. })), "{big:?}");
    let made_big = db.exec("INSERT INTO b VALUES (zeroblob(3145728))", &[]);
    assert!(matches!(made_big, Err(Error::LimitExceeded(_)) | Err(Error::Sql { .. })), "{made_big:?}");
    let columns = (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", ");
    assert!(db.exec(&format!("CREATE TABLE wide ({columns})"), &[]).is_err());
    assert_eq!(db.exec("SELECT count(*) FROM b", &[]).unwrap().rows, vec![vec![int(0)]]);
}

#[test]
fn a_statement_past_the_deadline_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.set_deadline(Some(Instant::now() + Duration::from_millis(50)));
    let endless = db
        .exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n", &[]);
    assert!(matches!(endless, Err(Error::Interrupted)), "{endless:?}");
    db.set_deadline(None);
    assert_eq!(db.exec("SELECT 1", &[]).unwrap().rows, vec![vec![int(1)]]);
}

#[test]
fn transactions_nest_commit_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.exec("CREATE TABLE t (v INTEGER)", &[]).unwrap();
    let outer = db.begin_transaction().unwrap();
    db.exec("INSERT INTO t VALUES (1)", &[]).unwrap();
    let inner = db.begin_transaction().unwrap();
    db.exec("INSERT INTO t VALUES (2)", &[]).unwrap();
    db.put("k", b"inner").unwrap();
    assert!(matches!(db.commit_transaction(outer), Err(Error::Transaction(_))), "inner still open");
    db.rollback_transaction(inner).unwrap();
    assert_eq!(db.get("k").unwrap(), None, "KV and SQL roll back together");
    assert!(matches!(db.commit_transaction(inner), Err(Error::Transaction(_))), "already ended");
    db.commit_transaction(outer).unwrap();
    assert_eq!(db.exec("SELECT v FROM t", &[]).unwrap().rows, vec![vec![int(1)]]);

    // Rolling back an outer transaction ends the inner ones.
    let outer = db.begin_transaction().unwrap();
    let inner = db.begin_transaction().unwrap();
    db.exec("INSERT INTO t VALUES (3)", &[]).unwrap();
    db.rollback_transaction(outer).unwrap();
    assert!(!db.is_transaction_open(inner));
    assert_eq!(db.exec("SELECT count(*) FROM t", &[]).unwrap().rows, vec![vec![int(1)]]);

    // A transaction left open when the event ends is rolled back; the event's other writes stay.
    let _forgotten = db.begin_transaction().unwrap();
    db.exec("INSERT INTO t VALUES (4)", &[]).unwrap();
    assert!(db.finish_event(true).unwrap().is_none());
    db.commit_batch().unwrap();
    assert_eq!(db.exec("SELECT count(*) FROM t", &[]).unwrap().rows, vec![vec![int(1)]]);
}

#[test]
fn delete_all_drops_tables_views_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.put("k", b"v").unwrap();
    db.exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p REFERENCES parent(id));
         INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1);
         CREATE VIEW v AS SELECT * FROM child; CREATE INDEX ci ON child(p);
         CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs VALUES ('x');
         CREATE TABLE \"we\"\"ird\" (x)",
        &[],
    )
    .unwrap();
    db.delete_all().unwrap();
    let left = db.exec("SELECT name FROM sqlite_schema WHERE name NOT LIKE '%opendo%'", &[]);
    assert_eq!(left.unwrap().rows, Vec::<Vec<SqlValue>>::new());
    assert_eq!(db.get("k").unwrap(), None);
    db.exec("CREATE TABLE parent (x)", &[]).unwrap();
}

#[test]
fn foreign_keys_are_enforced_and_deferred_violations_roll_the_event_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(&dir);
    db.exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p REFERENCES parent(id))",
        &[],
    )
    .unwrap();
    assert!(matches!(db.exec("INSERT INTO child VALUES (7)", &[]), Err(Error::Sql { .. })));
    assert!(db.finish_event(true).unwrap().is_none());

    db.begin_event(false).unwrap();
    db.exec("PRAGMA defer_foreign_keys = ON", &[]).unwrap();
    db.exec("INSERT INTO child VALUES (8)", &[]).unwrap();
    let refused = db.finish_event(true).unwrap();
    assert!(matches!(refused, Some(Error::Sql { .. })), "{refused:?}");
    db.begin_event(false).unwrap();
    db.exec("INSERT INTO parent VALUES (1)", &[]).unwrap();
    assert!(db.finish_event(true).unwrap().is_none());
    db.commit_batch().unwrap();
    assert_eq!(db.exec("SELECT count(*) FROM child", &[]).unwrap().rows, vec![vec![int(0)]]);
    assert_eq!(db.exec("SELECT count(*) FROM parent", &[]).unwrap().rows, vec![vec![int(1)]]);
}

#[test]
fn deferred_violations_roll_back_an_event_alone_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = ObjectDb::open(&dir.path().join("object.sqlite"), Durability::Relaxed).unwrap();
    db.begin_batch().unwrap();
    db.begin_event(true).unwrap();
    db.exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p REFERENCES parent(id))",
        &[],
    )
    .unwrap();
    assert!(db.finish_event(true).unwrap().is_none());
    db.commit_batch().unwrap();

    db.begin_batch().unwrap();
    db.begin_event(true).unwrap();
    db.exec("PRAGMA defer_foreign_keys = ON", &[]).unwrap();
    db.exec("INSERT INTO child VALUES (8)", &[]).unwrap();
    let open = db.begin_transaction().unwrap();
    db.exec("INSERT INTO parent VALUES (2)", &[]).unwrap();
    let refused = db.finish_event(true).unwrap();
    assert!(matches!(refused, Some(Error::Sql { .. })), "{refused:?}");
    assert!(db.commit_transaction(open).is_err(), "the guest's transaction ended with the event");
    db.commit_batch().unwrap();
    assert_eq!(db.exec("SELECT count(*) FROM child", &[]).unwrap().rows, vec![vec![int(0)]]);
    assert_eq!(db.exec("SELECT count(*) FROM parent", &[]).unwrap().rows, vec![vec![int(0)]]);
}

#[test]
fn writes_past_the_storage_cap_are_refused_and_nothing_corrupts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped.sqlite");
    let mut db = ObjectDb::open(
        &path,
        Settings { durability: Durability::Relaxed, storage_cap: 256 * 1024, file_locks: false },
    )
    .unwrap();
    db.begin_batch().unwrap();
    db.begin_event(false).unwrap();
    db.exec("CREATE TABLE t (v BLOB)", &[]).unwrap();
    let mut refused = None;
    for _ in 0..100 {
        if let Err(err) = db.exec("INSERT INTO t VALUES (zeroblob(10000))", &[]) {
            refused = Some(err);
            break;
        }
    }
    assert!(matches!(refused, Some(Error::StorageFull(_))), "{refused:?}");
    assert!(matches!(db.put("k", &[0; 100_000]), Err(Error::StorageFull(_))));
    assert!(db.finish_event(true).unwrap().is_none(), "the event itself can still commit");
    db.commit_batch().unwrap();
    db.close().unwrap();
    let db = ObjectDb::open(&path, Durability::Relaxed).unwrap();
    assert_eq!(db.integrity_check().unwrap(), "ok");
}

/// The runtime's own BEGIN/COMMIT/ROLLBACK are prepared and cached on the same connection; a
/// guest statement with the same text must still be refused, not served from the cache.
#[test]
fn guest_sql_never_reuses_the_runtimes_cached_statements() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = ObjectDb::open(&dir.path().join("object.sqlite"), Durability::Relaxed).unwrap();
    for _ in 0..2 {
        db.begin_batch().unwrap();
        db.begin_event(false).unwrap();
        db.put("k", b"v").unwrap();
        assert!(db.finish_event(true).unwrap().is_none());
        db.commit_batch().unwrap();
    }
    db.begin_batch().unwrap();
    db.rollback_batch().unwrap();
    db.begin_batch().unwrap();
    db.begin_event(false).unwrap();
    db.put("uncommitted", b"v").unwrap();
    for sql in ["COMMIT", "BEGIN IMMEDIATE", "ROLLBACK", "COMMIT;", "  COMMIT  "] {
        assert!(denied(&mut db, sql).contains("transaction API"), "{sql}");
        assert!(db.in_transaction(), "{sql} did not end the runtime's transaction");
    }
    assert!(db.finish_event(false).unwrap().is_none());
    db.rollback_batch().unwrap();
    assert_eq!(db.get("uncommitted").unwrap(), None);
}
