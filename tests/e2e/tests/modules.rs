//! Modules that are not Durable Objects are refused at start, with one clear line.

use std::path::Path;

use opendo_e2e::run_expecting_refusal;
use opendo_test_support::WRONG_WORLD;

fn assert_refused(module: &Path, data: &Path, expected: &str) {
    let (status, stderr) = run_expecting_refusal(module, data, &[]);
    assert!(!status.success(), "non-zero exit for {}", module.display());
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{stderr}");
    assert!(errors[0].contains(expected), "expected `{expected}` in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "no panic trace:\n{stderr}");
}

#[test]
fn a_component_of_another_world_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(
        Path::new(WRONG_WORLD),
        &dir.path().join("data"),
        "does not fit the `durable-object` world: it does not export `opendo:durable-object/handler@0.1.0`",
    );
}

#[test]
fn files_that_are_not_components_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    assert_refused(&core, &data, "is a core WebAssembly module, not a component");
    let text = dir.path().join("readme.wasm");
    std::fs::write(&text, "hello").unwrap();
    assert_refused(&text, &data, "is not a WebAssembly file");
    assert_refused(&dir.path().join("missing.wasm"), &data, "does not exist");
    let empty_dir = dir.path().join("not-a-crate");
    std::fs::create_dir(&empty_dir).unwrap();
    assert_refused(&empty_dir, &data, "without a Cargo.toml");
}
