//! The project file (`opendo.toml`): several namespaces in one server, each with its module and
//! its own limits; and one clear line for each kind of mistake.

use std::path::Path;

use opendo_e2e::{Server, run_project_expecting_refusal};
use opendo_test_support::{EXAMPLE_COUNTER, PROBE};

/// A project folder holding the test guests as `probe.wasm` and `counter.wasm`, and `toml` as
/// its `opendo.toml`.
fn project(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(PROBE, dir.path().join("probe.wasm")).unwrap();
    std::fs::copy(EXAMPLE_COUNTER, dir.path().join("counter.wasm")).unwrap();
    std::fs::write(dir.path().join("opendo.toml"), toml).unwrap();
    dir
}

#[test]
fn a_project_serves_each_namespace_under_its_own_limits() {
    let dir = project(
        r#"
        idle-timeout = "5s"

        [[namespace]]
        name = "small"
        module = "probe.wasm"
        storage-cap = "64KiB"
        max-response-size = "1KiB"

        [[namespace]]
        name = "big"
        module = "probe.wasm"
        env = { GREETING = "hello big" }

        [[namespace]]
        name = "counter"
        module = "counter.wasm"
        "#,
    );
    let server = Server::start_project(dir.path(), &[]);
    let value = vec![b'x'; 100 * 1024];
    let small = server.send("PUT", "/small/a/kv/k", &value);
    assert_eq!(small.status, 400, "over small's cap: {}", small.body);
    assert!(small.body.contains("storage cap"), "{}", small.body);
    assert_eq!(server.send("PUT", "/big/a/kv/k", &value).status, 204, "big has the server's cap");
    assert_eq!(server.get("/big/a/kv/k").body.len(), value.len());
    assert_eq!(server.send("PUT", "/small/a/kv/k", b"tiny").status, 204);
    let long = vec![b'y'; 2048];
    assert_eq!(server.send("PUT", "/small/b/kv/k", &long).status, 204);
    assert_eq!(server.get("/small/b/kv/k").status, 500, "a response over small's 1 KiB fails the event");
    assert_eq!(server.send("PUT", "/big/b/kv/k", &long).status, 204);
    assert_eq!(server.get("/big/b/kv/k").body.len(), 2048);
    assert_eq!(server.post("/counter/c/increment").body, "1");
    assert_eq!(server.get("/big/a/env?name=GREETING").body, "hello big", "a namespace's env");
    assert_eq!(server.get("/small/a/env?name=GREETING").status, 404, "only its own");
    assert_eq!(server.get("/nowhere/a/").status, 404);
    let log = server.log();
    for name in ["small", "big", "counter"] {
        assert!(
            log.contains(&format!("namespace={name}")) && log.contains("loaded in"),
            "progress for {name}: {log}"
        );
    }
}

#[test]
fn each_mistake_in_a_project_file_is_one_line_naming_it() {
    let cases = [
        (
            "[[namespace]]\nname = \"a\"\nmodule = \"probe.wasm\"\nmemry-limit = \"1MiB\"",
            &["opendo.toml: namespace `a`: `memry-limit`: unknown field"][..],
        ),
        (
            "[[namespace]]\nname = \"a\"\nmodule = \"probe.wasm\"\n[[namespace]]\nname = \"a\"\nmodule = \"counter.wasm\"",
            &["opendo.toml: namespace `a` is defined twice"],
        ),
        (
            "[[namespace]]\nname = \"a\"\nmodule = \"gone.wasm\"",
            &["namespace `a`: `module`:", "gone.wasm does not exist"],
        ),
        ("[[namespace]]\nmodule = \"probe.wasm\"", &["namespace number 1: missing field `name`"]),
        (
            "[[namespace]]\nname = \"a b\"\nmodule = \"probe.wasm\"",
            &["namespace `a b`: invalid namespace name"],
        ),
        (
            "[[namespace]]\nname = \"a\"\nmodule = \"probe.wasm\"\ncpu-limit = \"soon\"",
            &["namespace `a`: `cpu-limit`:"],
        ),
        ("listn = \"127.0.0.1:1\"", &["opendo.toml: unknown setting `listn`"]),
        ("idle-timeout = \"2s\"", &["opendo.toml has no [[namespace]] table"]),
        ("[front]\nmodule = \"probe.wasm\"", &["has no [[namespace]] table"]),
        (
            "[[namespace]]\nname = \"a\"\nmodule = \"opendo.toml\"",
            &["namespace `a`", "is not a WebAssembly file"],
        ),
    ];
    for (toml, expected) in cases {
        let dir = project(toml);
        let (status, log) = run_project_expecting_refusal(dir.path());
        assert!(!status.success(), "{toml}: started");
        let errors: Vec<&str> = log.lines().filter(|line| line.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{toml}: one error line in:\n{log}");
        for part in expected {
            assert!(errors[0].contains(part), "{toml}: `{part}` missing from: {}", errors[0]);
        }
    }
    let empty = tempfile::tempdir().unwrap();
    let (status, log) = run_project_expecting_refusal(empty.path());
    assert!(!status.success() && log.contains("no MODULE given and no opendo.toml here"), "{log}");
}

#[test]
fn a_module_and_a_project_file_with_namespaces_do_not_mix() {
    let dir = project("[[namespace]]\nname = \"a\"\nmodule = \"probe.wasm\"");
    let (status, log) = opendo_e2e::run_expecting_refusal(
        Path::new(PROBE),
        &dir.path().join("data"),
        &["--config", dir.path().join("opendo.toml").to_str().unwrap()],
    );
    assert!(!status.success() && log.contains("give one or the other"), "{log}");
}
