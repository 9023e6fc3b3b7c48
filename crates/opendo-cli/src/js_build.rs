//! `opendo run <file.js | file.ts | folder with package.json>`: building a JavaScript or
//! TypeScript object into a component first.
//!
//! The SDK (`sdk/js`: open-do's `cloudflare:workers`), its build script and the pinned toolchain
//! (esbuild, componentize-js) are part of this binary. On first use they are written to the
//! cache folder and the toolchain is installed there with `npm ci`. A build bundles the source
//! with esbuild, then componentizes the bundle unless a component of the same bundle is cached.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// The files of the build kit, by their path inside it.
const KIT: &[(&str, &str)] = &[
    ("build.mjs", include_str!("../../../sdk/js/build.mjs")),
    ("package.json", include_str!("../../../sdk/js/package.json")),
    ("src/index.js", include_str!("../../../sdk/js/src/index.js")),
    ("src/encoding.js", include_str!("../../../sdk/js/src/encoding.js")),
    ("src/entrypoint.js", include_str!("../../../sdk/js/src/entrypoint.js")),
    ("src/errors.js", include_str!("../../../sdk/js/src/errors.js")),
    ("src/front.js", include_str!("../../../sdk/js/src/front.js")),
    ("src/front-index.js", include_str!("../../../sdk/js/src/front-index.js")),
    ("src/handler.js", include_str!("../../../sdk/js/src/handler.js")),
    ("src/http.js", include_str!("../../../sdk/js/src/http.js")),
    ("src/namespaces.js", include_str!("../../../sdk/js/src/namespaces.js")),
    ("src/object.js", include_str!("../../../sdk/js/src/object.js")),
    ("src/sql.js", include_str!("../../../sdk/js/src/sql.js")),
    ("src/storage.js", include_str!("../../../sdk/js/src/storage.js")),
    ("src/websockets.js", include_str!("../../../sdk/js/src/websockets.js")),
    ("toolchain/package.json", include_str!("../../../sdk/js/toolchain/package.json")),
    ("toolchain/package-lock.json", include_str!("../../../sdk/js/toolchain/package-lock.json")),
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    ("wit/kv.wit", include_str!("../../../wit/kv.wit")),
    ("wit/sql.wit", include_str!("../../../wit/sql.wit")),
    ("wit/transaction.wit", include_str!("../../../wit/transaction.wit")),
    ("wit/alarms.wit", include_str!("../../../wit/alarms.wit")),
    ("wit/state.wit", include_str!("../../../wit/state.wit")),
    ("wit/objects.wit", include_str!("../../../wit/objects.wit")),
    ("wit/websockets.wit", include_str!("../../../wit/websockets.wit")),
    ("wit/handler.wit", include_str!("../../../wit/handler.wit")),
    ("wit/js.wit", include_str!("../../../sdk/js/wit/js.wit")),
    ("wit/deps/cli/environment.wit", include_str!("../../../sdk/js/wit/deps/cli/environment.wit")),
    ("wit/front.wit", include_str!("../../../wit/front.wit")),
    ("wit/world.wit", include_str!("../../../wit/world.wit")),
];

const SOURCE_EXTENSIONS: &[&str] = &["js", "mjs", "ts", "mts"];

/// Whether `path` is a JavaScript or TypeScript object: a source file, or a folder with a
/// `package.json` (and no `Cargo.toml`).
pub fn is_js(path: &Path) -> bool {
    if path.is_dir() {
        return path.join("package.json").is_file() && !path.join("Cargo.toml").is_file();
    }
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| SOURCE_EXTENSIONS.contains(&e))
}

/// What a module is built into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A namespace's objects: the module's Durable Object class.
    Object,
    /// The front: the module's Worker (`export default`).
    Front,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Object => "object",
            Role::Front => "front",
        }
    }
}

/// The component built from the JavaScript or TypeScript module at `path` for `role`, using (and
/// filling) the cache folder `cache`.
pub fn build(path: &Path, cache: &Path, role: Role) -> anyhow::Result<PathBuf> {
    let source = entry_of(path)?;
    check_node()?;
    let kit = Kit::prepare(cache)?;
    kit.component_of(&source, role)
}

/// The file to bundle: `path` itself, or a folder's `main` (from `package.json`), `index.*` or
/// `src/index.*`.
fn entry_of(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let manifest = path.join("package.json");
    let text =
        std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let manifest_json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", manifest.display()))?;
    let has_dependencies = ["dependencies", "devDependencies"]
        .iter()
        .any(|key| manifest_json.get(key).and_then(|v| v.as_object()).is_some_and(|deps| !deps.is_empty()));
    if has_dependencies && !path.join("node_modules").is_dir() {
        bail!("{} has dependencies but no node_modules: run `npm install` there first", path.display());
    }
    if let Some(main) = manifest_json.get("main").and_then(|v| v.as_str()) {
        let main = path.join(main);
        if !main.is_file() {
            bail!("{}: `main` names {}, which does not exist", manifest.display(), main.display());
        }
        return Ok(main);
    }
    let candidates = ["index", "src/index"]
        .iter()
        .flat_map(|stem| SOURCE_EXTENSIONS.iter().map(move |ext| path.join(format!("{stem}.{ext}"))));
    candidates.into_iter().find(|file| file.is_file()).with_context(|| {
        format!(
            "{} has no `main` in package.json and no index.js or src/index.ts: say which file is the object",
            path.display()
        )
    })
}

fn check_node() -> anyhow::Result<()> {
    let found = |program: &str| {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !found("node") || !found("npm") {
        bail!(
            "building a JavaScript object needs Node.js (18 or later) and npm: install them (https://nodejs.org, or your system's `nodejs` and `npm` packages) and retry"
        );
    }
    Ok(())
}

/// The build kit of this binary, written out in the cache and its toolchain installed.
struct Kit {
    dir: PathBuf,
    /// Held while this process builds: installs and builds of one kit never overlap.
    _lock: File,
}

impl Kit {
    fn prepare(cache: &Path) -> anyhow::Result<Kit> {
        let mut hasher = Sha256::new();
        for (path, text) in KIT {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
        }
        let version = &hex::encode(hasher.finalize())[..16];
        let root = cache.join("js");
        let dir = root.join(version);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock_path = root.join(format!("{version}.lock"));
        // Creating the lock file also marks when this kit was last used.
        let lock = File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
        lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
        evict_unused_kits(&root, version, UNUSED_KIT_AGE);
        let kit = Kit { dir, _lock: lock };
        kit.install()?;
        Ok(kit)
    }

    fn install(&self) -> anyhow::Result<()> {
        let installed = self.dir.join("toolchain/node_modules/.opendo-installed");
        if installed.is_file() {
            return Ok(());
        }
        for (path, text) in KIT {
            let file = self.dir.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        }
        let toolchain = self.dir.join("toolchain");
        eprintln!(
            "Installing the JavaScript toolchain (esbuild, componentize-js) into {} with npm: once, about 400 MB...",
            toolchain.display()
        );
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&toolchain)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .context("cannot run npm")?;
        if !status.success() {
            bail!(
                "`npm ci` in {} failed (npm's errors are above): check the network to the npm registry and retry",
                toolchain.display()
            );
        }
        std::fs::write(&installed, "").with_context(|| format!("writing {}", installed.display()))?;
        Ok(())
    }

    fn node(&self, args: &[&Path]) -> anyhow::Result<()> {
        let status = Command::new("node")
            .arg(self.dir.join("build.mjs"))
            .args(args)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .context("cannot run node")?;
        if !status.success() {
            bail!("the JavaScript build failed (its errors are above)");
        }
        Ok(())
    }

    fn component_of(&self, source: &Path, role: Role) -> anyhow::Result<PathBuf> {
        let work = self.dir.join("work");
        std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let bundle = work.join("bundle.js");
        let role_arg = Path::new(role.as_str());
        self.node(&[Path::new("bundle"), role_arg, source, &bundle])
            .with_context(|| format!("bundling {}", source.display()))?;
        let bundled = std::fs::read(&bundle).with_context(|| format!("reading {}", bundle.display()))?;
        let components = self.dir.join("components");
        std::fs::create_dir_all(&components).with_context(|| format!("creating {}", components.display()))?;
        // One component per source file and role, replaced when its bundle changes: the runtime's
        // compiled cache then also keeps one entry for each (see `opendo-runtime`'s component.rs).
        let source_path = source.canonicalize().unwrap_or_else(|_| source.to_path_buf());
        let mut identity = source_path.as_os_str().as_encoded_bytes().to_vec();
        identity.extend_from_slice(role.as_str().as_bytes());
        let key = &hex::encode(Sha256::digest(&identity))[..32];
        let component = components.join(format!("{key}.wasm"));
        let built_from = components.join(format!("{key}.bundle-sha256"));
        let bundle_hash = hex::encode(Sha256::digest(&bundled));
        let cached_hash = std::fs::read_to_string(&built_from).unwrap_or_default();
        if component.is_file() && cached_hash == bundle_hash {
            return Ok(component);
        }
        eprintln!("Componentizing {} (componentize-js, some seconds)...", source.display());
        let partial = work.join("component.wasm");
        self.node(&[Path::new("componentize"), role_arg, &bundle, &self.dir.join("wit"), &partial])
            .with_context(|| format!("componentizing {}", source.display()))?;
        std::fs::rename(&partial, &component).with_context(|| format!("writing {}", component.display()))?;
        // Written after the component: a crash in between only costs a rebuild.
        std::fs::write(&built_from, bundle_hash)
            .with_context(|| format!("writing {}", built_from.display()))?;
        Ok(component)
    }
}

/// How long a kit of another version (about 400 MB with its toolchain) stays unused before a
/// build removes it: long enough that two opendo versions used in turn do not reinstall.
const UNUSED_KIT_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Removes the kits in `root` other than `keep` that no process holds and that were last used
/// more than `age` ago.
fn evict_unused_kits(root: &Path, keep: &str, age: Duration) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let lock_path = entry.path();
        let Some(version) =
            lock_path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".lock"))
        else {
            continue;
        };
        let unused_for = lock_path.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        if version == keep || unused_for.is_none_or(|unused| unused < age) {
            continue;
        }
        // Opening does not truncate, so the last-used time stays if the kit is busy.
        let Ok(lock) = File::options().write(true).open(&lock_path) else { continue };
        if lock.try_lock().is_err() {
            continue;
        }
        let dir = root.join(version);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                let _ = std::fs::remove_file(&lock_path);
                eprintln!(
                    "Removed the JavaScript build kit {} (unused for over {} days)",
                    dir.display(),
                    age.as_secs() / 86_400
                );
            }
            Err(err) => {
                eprintln!("Could not remove the unused JavaScript build kit {}: {err}", dir.display())
            }
        }
    }
}

/// The cache folder: `$OPENDO_CACHE_DIR`, else `$XDG_CACHE_HOME/opendo`, else `~/.cache/opendo`.
pub fn default_cache_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("XDG_CACHE_HOME")
        .map(|dir| dir.join("opendo"))
        .or_else(|| var("HOME").map(|home| home.join(".cache/opendo")))
        .unwrap_or_else(|| PathBuf::from(".opendo-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kit(root: &Path, version: &str, last_used: std::time::SystemTime) {
        std::fs::create_dir_all(root.join(version).join("toolchain")).unwrap();
        let lock = File::create(root.join(format!("{version}.lock"))).unwrap();
        lock.set_modified(last_used).unwrap();
    }

    #[test]
    fn only_kits_of_other_versions_unused_for_long_and_not_held_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(30 * 86_400);
        kit(root, "current", long_ago);
        kit(root, "old", long_ago);
        kit(root, "recent", std::time::SystemTime::now());
        kit(root, "busy", long_ago);
        let busy = File::options().write(true).open(root.join("busy.lock")).unwrap();
        busy.lock().unwrap();

        evict_unused_kits(root, "current", UNUSED_KIT_AGE);
        let exists = |name: &str| root.join(name).exists();
        assert!(exists("current") && exists("current.lock"), "the kit in use stays");
        assert!(!exists("old") && !exists("old.lock"), "an old unused kit goes");
        assert!(exists("recent"), "a kit used lately stays");
        assert!(exists("busy"), "a kit another process holds stays");
    }
}
