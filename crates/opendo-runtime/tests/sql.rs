//! SQL, the sandbox and transactions through a real Wasm guest (the probe).

mod common;

use common::{config, request, runtime_with, text};
use opendo_runtime::{EventError, Runtime, TrapCause};
use serde_json::{Value, json};

async fn sql(runtime: &Runtime, object: &str, query: &str, params: Value) -> (u16, Value) {
    let body = json!({"query": query, "params": params}).to_string();
    let response = runtime.fetch("probe", object, request("POST", "/sql", body.as_bytes())).await.unwrap();
    (response.status, serde_json::from_slice(&response.body).unwrap())
}

async fn rows(runtime: &Runtime, object: &str, query: &str) -> Value {
    let (status, result) = sql(runtime, object, query, json!([])).await;
    assert_eq!(status, 200, "{query}: {result}");
    result["rows"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_through_wasm() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    let (status, created) = sql(
        &runtime,
        "a",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL, data BLOB);
         INSERT INTO t (name, score, data) VALUES (?, ?, ?)",
        json!(["ada", 1.5, [1, 2, 3]]),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["rows_written"], 1);
    let (status, selected) = sql(
        &runtime,
        "a",
        "SELECT id, name, score, data, NULL AS empty FROM t WHERE name = ?",
        json!(["ada"]),
    )
    .await;
    assert_eq!(status, 200, "{selected}");
    assert_eq!(selected["columns"], json!(["id", "name", "score", "data", "empty"]));
    assert_eq!(selected["rows"], json!([[1, "ada", 1.5, [1, 2, 3], null]]));

    let (status, duplicate) = sql(&runtime, "a", "INSERT INTO t (name) VALUES ('ada')", json!([])).await;
    assert_eq!(status, 400);
    assert_eq!(duplicate["code"], "SqlError");
    assert_eq!(duplicate["sqlite_code"], 2067, "SQLITE_CONSTRAINT_UNIQUE: {duplicate}");
    assert!(duplicate["message"].as_str().unwrap().contains("UNIQUE"));

    let size_before = rows(&runtime, "a", "SELECT 1").await;
    assert_eq!(size_before, json!([[1]]));
    assert_eq!(
        rows(&runtime, "b", "SELECT count(*) FROM sqlite_schema WHERE name = 't'").await,
        json!([[0]]),
        "objects have separate databases"
    );
}

/// One hostile statement per sandbox rule: each is a guest-visible error and the object keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sql_is_refused_and_the_object_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    assert_eq!(text(&runtime, "victim", "PUT", "/kv/secret", b"mine").await.0, 204);
    let victim_file = object_file(dir.path(), "victim");
    let before = walk(dir.path());
    let hostile = [
        (format!("ATTACH DATABASE '{}' AS other", victim_file.display()), "NotAuthorized"),
        ("ATTACH DATABASE '/etc/passwd' AS p".to_string(), "NotAuthorized"),
        ("PRAGMA journal_mode=DELETE".into(), "NotAuthorized"),
        ("PRAGMA writable_schema=1".into(), "NotAuthorized"),
        ("SELECT * FROM _opendo_kv".into(), "NotAuthorized"),
        ("INSERT INTO _opendo_kv VALUES (x'61', x'62')".into(), "NotAuthorized"),
        ("SELECT * FROM _OPENDO_KV".into(), "NotAuthorized"),
        ("DELETE FROM _Opendo_Kv".into(), "NotAuthorized"),
        ("CREATE TEMP TABLE t (x)".into(), "NotAuthorized"),
        ("SELECT load_extension('/tmp/evil.so')".into(), "NotAuthorized"),
        ("BEGIN".into(), "NotAuthorized"),
        ("COMMIT".into(), "NotAuthorized"),
        ("SAVEPOINT x".into(), "NotAuthorized"),
        (format!("SELECT {}", vec!["1"; 101].join(", ")), "SqlError"),
    ];
    for (query, code) in &hostile {
        let (status, refused) = sql(&runtime, "attacker", query, json!([])).await;
        assert_eq!(status, 400, "{query}: {refused}");
        assert_eq!(refused["code"], *code, "{query}: {refused}");
    }
    let (_, begin) = sql(&runtime, "attacker", "BEGIN", json!([])).await;
    assert!(begin["message"].as_str().unwrap().contains("transaction API"), "{begin}");
    let params: Vec<i64> = (0..101).collect();
    let placeholders = vec!["?"; 101].join(",");
    let (status, many) = sql(&runtime, "attacker", &format!("SELECT {placeholders}"), json!(params)).await;
    assert_eq!((status, many["code"].as_str()), (400, Some("LimitExceeded")), "{many}");
    let (status, big) = sql(&runtime, "attacker", "SELECT length(?)", json!(["x".repeat(3 << 20)])).await;
    assert_eq!(status, 400, "a 3 MiB string is refused: {big}");
    let (status, big) = sql(&runtime, "attacker", "SELECT length(zeroblob(3145728))", json!([])).await;
    assert_eq!(status, 400, "a 3 MiB blob is refused: {big}");

    // The attacker still works, the victim's data is intact, and no file appeared or vanished.
    assert_eq!(rows(&runtime, "attacker", "SELECT 40 + 2").await, json!([[42]]));
    assert_eq!(text(&runtime, "victim", "GET", "/kv/secret", b"").await, (200, "mine".into()));
    let mut expected = before;
    expected.insert(object_file(dir.path(), "attacker"));
    assert_eq!(walk(dir.path()), expected);
}

fn object_file(data_dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    opendo_storage::layout::object_db_path(
        data_dir,
        "probe",
        &opendo_storage::ObjectId::from_name("probe", name),
    )
}

/// Every SQLite file under `dir`.
fn walk(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut files = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "sqlite") {
                files.insert(path);
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_roll_back_and_nest() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    let kv = |key: &'static str| {
        let runtime = runtime.clone();
        async move { text(&runtime, "t", "GET", &format!("/kv/{key}"), b"").await.0 }
    };
    assert_eq!(text(&runtime, "t", "POST", "/txn/commit", b"").await, (200, "done".into()));
    assert_eq!(kv("t:commit").await, 200);

    // A rollback keeps the instance: its in-memory hit counter goes on.
    let hits_before: u64 = text(&runtime, "t", "GET", "/hits", b"").await.1.parse().unwrap();
    let (_, hits_in_rollback) = text(&runtime, "t", "POST", "/txn/rollback", b"").await;
    assert_eq!(hits_in_rollback.parse::<u64>().unwrap(), hits_before + 1, "no reset on rollback");
    assert_eq!(kv("t:rollback").await, 404);

    assert_eq!(text(&runtime, "t", "POST", "/txn/nested", b"").await.0, 200);
    assert_eq!(kv("t:outer").await, 200);
    assert_eq!(kv("t:inner").await, 404);

    assert_eq!(text(&runtime, "t", "POST", "/txn/drop", b"").await.0, 200);
    assert_eq!(kv("t:drop").await, 404, "dropped uncommitted = rolled back");

    assert_eq!(text(&runtime, "t", "POST", "/txn/closure-err", b"").await, (200, "true".into()));
    assert_eq!(kv("t:closure").await, 404);

    let (status, misuse) = text(&runtime, "t", "POST", "/txn/misuse", b"").await;
    assert_eq!(status, 400);
    assert!(misuse.contains("Transaction") && misuse.contains("inner transaction is still open"), "{misuse}");

    let outcome = runtime.fetch("probe", "t", request("POST", "/txn/panic", b"")).await;
    assert_eq!(outcome.unwrap_err(), EventError::Trapped(TrapCause::Panic));
    assert_eq!(kv("t:panic").await, 404, "a trap inside a transaction leaves nothing");

    // Only the committed rows of every scenario are in the table (KV and SQL went together).
    assert_eq!(rows(&runtime, "t", "SELECT v FROM log ORDER BY rowid").await, json!([["commit"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_query_is_stopped_by_the_cpu_limit() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(opendo_runtime::Config {
        cpu_limit: std::time::Duration::from_millis(300),
        ..config(dir.path())
    });
    let body = json!({"query": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n", "params": []});
    let outcome = runtime.fetch("probe", "a", request("POST", "/sql", body.to_string().as_bytes())).await;
    assert_eq!(outcome.unwrap_err(), EventError::Trapped(TrapCause::CpuLimit));
    assert_eq!(rows(&runtime, "a", "SELECT 1").await, json!([[1]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_all_wipes_sql_too() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime_with(config(dir.path()));
    rows(&runtime, "a", "CREATE TABLE t (x); INSERT INTO t VALUES (1)").await;
    assert_eq!(text(&runtime, "a", "PUT", "/kv/k", b"v").await.0, 204);
    let response =
        runtime.fetch("probe", "a", request("POST", "/kv-op", br#"{"op": "delete_all"}"#)).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        rows(&runtime, "a", "SELECT count(*) FROM sqlite_schema WHERE name = 't'").await,
        json!([[0]])
    );
    assert_eq!(text(&runtime, "a", "GET", "/kv/k", b"").await.0, 404);
}
