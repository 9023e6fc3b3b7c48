//! Builds the test guests (`tests/guests`) and the example objects (`guest-examples`) for
//! wasm32-wasip2 and writes a const with the path of each `.wasm` into `$OUT_DIR/guests.rs`.
//!
//! The nested cargo uses its own target dir inside `OUT_DIR` (sharing the outer one would
//! deadlock on its lock) and none of the outer build's compiler flags or wrappers.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..").canonicalize().expect("repository root");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = out_dir.join("wasm-target");
    ensure_target_installed();

    let mut consts = String::new();
    for (prefix, workspace) in [("", root.join("tests/guests")), ("EXAMPLE_", root.join("guest-examples"))] {
        println!("cargo:rerun-if-changed={}", workspace.join("Cargo.toml").display());
        println!("cargo:rerun-if-changed={}", workspace.join("Cargo.lock").display());
        for wasm in build_workspace(&workspace, &target_dir) {
            let stem = wasm.file_stem().and_then(|s| s.to_str()).expect("artifact name").to_uppercase();
            writeln!(
                consts,
                "pub const {prefix}{}: &str = {:?};",
                stem.replace('-', "_"),
                wasm.display().to_string()
            )
            .expect("write to string");
            rerun_on_sources(&wasm.with_extension("d"));
        }
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    std::fs::write(out_dir.join("guests.rs"), consts).expect("write guests.rs");
}

fn ensure_target_installed() {
    let sysroot = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    if sysroot.is_some_and(|root| root.join("lib/rustlib").join(TARGET).is_dir()) {
        return;
    }
    let status = Command::new("rustup").args(["target", "add", TARGET]).status();
    if !status.is_ok_and(|s| s.success()) {
        panic!(
            "the {TARGET} standard library is missing and `rustup target add {TARGET}` failed: install it and retry"
        );
    }
}

fn build_workspace(workspace: &Path, target_dir: &Path) -> Vec<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    let output =
        command.output().unwrap_or_else(|e| panic!("cannot run cargo for {}: {e}", workspace.display()));
    if !output.status.success() {
        panic!("building the guests in {} for {TARGET} failed (errors above)", workspace.display());
    }
    let mut artifacts = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let files = message["filenames"].as_array().into_iter().flatten();
        artifacts
            .extend(files.filter_map(|f| f.as_str()).filter(|f| f.ends_with(".wasm")).map(PathBuf::from));
    }
    artifacts
}

/// Asks cargo to rerun this script when any source a guest was built from changes (the SDK, the
/// WIT files, the guest itself), as listed by the `.d` file next to the artifact.
fn rerun_on_sources(dep_info: &Path) {
    let Ok(text) = std::fs::read_to_string(dep_info) else { return };
    let Some((_, deps)) = text.lines().next().and_then(|line| line.split_once(": ")) else { return };
    for dep in deps.split_whitespace() {
        println!("cargo:rerun-if-changed={dep}");
    }
}
