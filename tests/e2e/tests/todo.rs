//! The todo example over the real binary.

use std::path::Path;

use opendo_e2e::Server;
use opendo_test_support::EXAMPLE_TODO;

/// The todo list's HTTP contract, which the Rust and the JavaScript example both keep.
fn todo_list_works_and_persists_across_a_restart(module: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(module, &data, &["--namespace", "todo"]);
    let created = server.send("POST", "/todo/mine/todos", b"buy milk");
    assert_eq!(created.status, 201);
    assert_eq!(created.body, r#"{"id":1,"title":"buy milk","done":false}"#);
    assert_eq!(server.send("POST", "/todo/mine/todos", b"write docs").status, 201);
    assert_eq!(server.send("POST", "/todo/mine/todos", b"  ").status, 400, "empty title");
    let toggled = server.send("PATCH", "/todo/mine/todos/1", b"");
    assert_eq!(toggled.body, r#"{"id":1,"title":"buy milk","done":true}"#);
    assert_eq!(server.send("PATCH", "/todo/mine/todos/99", b"").status, 404);
    assert_eq!(server.send("DELETE", "/todo/mine/todos/99", b"").status, 404);
    assert_eq!(server.get("/todo/other/todos").body, "[]", "each object has its own list");
    assert!(server.interrupt().success());

    let server = Server::start(module, &data, &["--namespace", "todo"]);
    assert_eq!(
        server.get("/todo/mine/todos").body,
        r#"[{"id":1,"title":"buy milk","done":true},{"id":2,"title":"write docs","done":false}]"#
    );
    assert_eq!(server.send("DELETE", "/todo/mine/todos/1", b"").status, 204);
    assert_eq!(server.get("/todo/mine/todos").body, r#"[{"id":2,"title":"write docs","done":false}]"#);
    let again = server.send("POST", "/todo/mine/todos", b"again");
    assert_eq!(again.body, r#"{"id":3,"title":"again","done":false}"#, "ids are never reused");
}

#[test]
fn the_rust_todo_list_works_and_persists_across_a_restart() {
    todo_list_works_and_persists_across_a_restart(Path::new(EXAMPLE_TODO));
}

#[test]
fn the_javascript_todo_list_works_and_persists_across_a_restart() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-examples/js/todo/todo.js");
    todo_list_works_and_persists_across_a_restart(&js);
}
