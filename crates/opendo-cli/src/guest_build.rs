//! `opendo run <crate dir>`: building a Rust guest crate into a component first (and choosing
//! the JavaScript build for JavaScript objects).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use cargo_metadata::Message;

const TARGET: &str = "wasm32-wasip2";

/// The component to serve: `path` itself if it is a component, or the component built from the
/// Rust crate in folder `path`, or from the JavaScript module at `path` for `role` (cached in
/// `cache`).
pub fn resolve_module(path: &Path, cache: &Path, role: crate::js_build::Role) -> anyhow::Result<PathBuf> {
    if path.exists() && crate::js_build::is_js(path) {
        return crate::js_build::build(path, cache, role);
    }
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.exists() {
        bail!(
            "{} does not exist: pass a .wasm component, a guest crate folder or a .js/.ts file",
            path.display()
        );
    }
    let manifest = path.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} is a folder without a Cargo.toml or package.json: pass a .wasm component, a guest crate folder or a JavaScript object",
            path.display()
        );
    }
    ensure_target_installed()?;
    build(&manifest)
}

fn ensure_target_installed() -> anyhow::Result<()> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("cannot run rustc: building a guest crate needs the Rust toolchain")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return Ok(());
    }
    eprintln!("Installing the {TARGET} target (rustup target add {TARGET})...");
    let status =
        Command::new("rustup").args(["target", "add", TARGET]).status().context("cannot run rustup")?;
    if !status.success() {
        bail!("`rustup target add {TARGET}` failed: install the target and retry");
    }
    Ok(())
}

fn build(manifest: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("Building {} for {TARGET}...", manifest.parent().unwrap_or(manifest).display());
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", TARGET, "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(manifest)
        // Cargo's progress and errors go straight to the terminal.
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!("building {} failed (cargo's errors are above)", manifest.display());
    }
    let manifest = manifest.canonicalize().with_context(|| format!("resolving {}", manifest.display()))?;
    let mut found = Vec::new();
    for message in Message::parse_stream(output.stdout.as_slice()) {
        let message = message.context("reading cargo's build messages")?;
        let Message::CompilerArtifact(artifact) = message else { continue };
        if artifact.manifest_path.as_std_path() != manifest {
            continue;
        }
        let files = artifact.filenames.into_iter().map(|file| file.into_std_path_buf());
        found.extend(files.filter(|file| file.extension().is_some_and(|e| e == "wasm")));
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "building {} produced no .wasm: a guest crate needs `[lib] crate-type = [\"cdylib\"]`",
            manifest.display()
        ),
        _ => bail!("building {} produced several .wasm files: pass the one to run", manifest.display()),
    }
}
