//! Loading a namespace's component: header checks, the compiled-artifact cache, and checking
//! that it fits the `durable-object` world, each failure as one message naming what is wrong.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

use crate::bindings::front::FrontPre;
use crate::bindings::{DurableObjectPre, on_fiber};
use crate::error::Error;
use crate::host::{FrontHost, Host};

/// The export every object must provide.
pub(crate) const HANDLER_EXPORT: &str = "opendo:durable-object/handler@0.1.0";
/// The import through which a component calls other objects.
const OBJECTS_IMPORT: &str = "opendo:durable-object/objects@0.1.0";
/// The export every front must provide.
const FRONT_EXPORT: &str = "opendo:durable-object/front-handler@0.1.0";

const MAGIC: &[u8; 4] = b"\0asm";
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];

/// Reads `path`, checks it is a component, and compiles it (or loads it from `cache_dir`).
pub(crate) fn load(engine: &Engine, path: &Path, cache_dir: &Path) -> Result<Component, Error> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    check_header(path, &bytes)?;
    let module = module_key(path);
    let cached = cache_dir.join(format!("{module}-{}.cwasm", cache_key(engine, &bytes)));
    if cached.is_file() {
        // SAFETY: the cache lives in the runtime's data directory, written only by
        // `store_in_cache` below from a component this engine compiled; the key includes the
        // engine's compatibility hash, and a file that fails to load is recompiled.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(err) => {
                tracing::warn!(path = %cached.display(), "ignoring unusable compiled cache entry: {err:#}")
            }
        }
    }
    let component = Component::new(engine, &bytes).map_err(|err| {
        Error::InvalidModule(format!("{} is not a valid WebAssembly component: {err:#}", path.display()))
    })?;
    match store_in_cache(&component, cache_dir, &cached) {
        Ok(()) => evict_other_versions(cache_dir, &module, &cached),
        Err(err) => tracing::warn!(path = %cached.display(), "could not cache the compiled component: {err}"),
    }
    Ok(component)
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let shown = path.display();
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(Error::InvalidModule(format!("{shown} is not a WebAssembly file (no `\\0asm` header)")));
    }
    let version: [u8; 4] = [bytes[4], bytes[5], bytes[6], bytes[7]];
    if version == CORE_MODULE_VERSION {
        return Err(Error::InvalidModule(format!(
            "{shown} is a core WebAssembly module, not a component: build the object for the \
             wasm32-wasip2 target (`cargo build --target wasm32-wasip2`), which produces a component"
        )));
    }
    if version != COMPONENT_VERSION {
        return Err(Error::InvalidModule(format!(
            "{shown} has an unsupported WebAssembly version/layer {version:02x?}"
        )));
    }
    Ok(())
}

/// Which module a cache entry belongs to: a hash of the module's path, so that a new version
/// of the file (or a new engine) replaces its entry instead of adding one (about 35 MB for a
/// JavaScript object).
fn module_key(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    hex::encode(&Sha256::digest(path.as_os_str().as_encoded_bytes())[..8])
}

/// Removes the cache entries of `module` other than `keep`, and entries named as before entries
/// carried their module (`{content}-{engine}.cwasm`), which nothing would ever replace. A
/// process still running an older version keeps its mapping of the removed file.
fn evict_other_versions(cache_dir: &Path, module: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".cwasm"))
        else {
            continue;
        };
        let parts: Vec<&str> = stem.split('-').collect();
        let unowned = parts.len() == 2 && parts[0].len() == 64;
        let other_version = parts.len() == 3 && parts[0] == module && path != keep;
        if unowned || other_version {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "removed a compiled component of another version")
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), "could not remove an old compiled component: {err}")
                }
            }
        }
    }
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut engine_hash = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut engine_hash);
    format!("{}-{:016x}", hex::encode(Sha256::digest(bytes)), engine_hash.finish())
}

fn store_in_cache(component: &Component, cache_dir: &Path, target: &PathBuf) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    std::fs::create_dir_all(cache_dir).map_err(|e| e.to_string())?;
    // Write then rename, so a crash never leaves a truncated artifact under the final name.
    let partial = target.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&partial, target).map_err(|e| e.to_string())
}

/// A namespace's component, ready to instantiate: its handlers called directly, or on a fiber
/// if it imports `objects.fetch` (see `bindings.rs`).
pub(crate) enum ObjectPre {
    Direct(DurableObjectPre<Host>),
    OnFiber(on_fiber::DurableObjectPre<Host>),
}

/// Checks that `component` fits the `durable-object` world and prepares it for instantiation.
pub(crate) fn fit_world(
    linker: &Linker<Host>,
    component: &Component,
    path: &Path,
) -> Result<ObjectPre, Error> {
    let mismatch = mismatch(path, "durable-object");
    check_export(component, HANDLER_EXPORT, "", &mismatch)?;
    let pre = linker.instantiate_pre(component).map_err(|err| mismatch(format!("{err:#}")))?;
    let checked = match imports_fetch(component) {
        true => on_fiber::DurableObjectPre::new(pre).map(ObjectPre::OnFiber),
        false => DurableObjectPre::new(pre).map(ObjectPre::Direct),
    };
    checked.map_err(|err| mismatch(format!("{err:#}")))
}

/// The error for a component at `path` that does not fit `world`, saying what does not.
fn mismatch(path: &Path, world: &'static str) -> impl Fn(String) -> Error {
    let shown = path.display().to_string();
    move |what| Error::InvalidModule(format!("{shown} does not fit the `{world}` world: {what}"))
}

/// Fails unless `component` exports `export`; the error lists what it exports, with
/// `object_hint` if it exports an object's handler instead.
fn check_export(
    component: &Component,
    export: &str,
    object_hint: &str,
    mismatch: &impl Fn(String) -> Error,
) -> Result<(), Error> {
    let engine = component.engine();
    let exports: Vec<String> =
        component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
    if exports.iter().any(|name| name == export) {
        return Ok(());
    }
    let found = if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") };
    let hint = if exports.iter().any(|name| name == HANDLER_EXPORT) { object_hint } else { "" };
    Err(mismatch(format!("it does not export `{export}` (it exports {found}){hint}")))
}

/// Whether `component` imports `objects.fetch`: its handlers may wait for another object.
fn imports_fetch(component: &Component) -> bool {
    let engine = component.engine();
    component.component_type().imports(engine).any(|(name, item)| match item.ty {
        ComponentItem::ComponentInstance(instance) if name == OBJECTS_IMPORT => {
            instance.exports(engine).any(|(function, _)| function == "fetch")
        }
        _ => false,
    })
}

/// Checks that `component` fits the `front` world and prepares it for instantiation.
pub(crate) fn fit_front_world(
    linker: &Linker<FrontHost>,
    component: &Component,
    path: &Path,
) -> Result<FrontPre<FrontHost>, Error> {
    let mismatch = mismatch(path, "front");
    let hint = " (it is an object: a front is built with `export_front!`, not `export_durable_object!`)";
    check_export(component, FRONT_EXPORT, hint, &mismatch)?;
    let pre = linker.instantiate_pre(component).map_err(|err| mismatch(format!("{err:#}")))?;
    FrontPre::new(pre).map_err(|err| mismatch(format!("{err:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_components_that_import_fetch_are_called_on_fibers() {
        let engine = Engine::default();
        let compile = |path: &str| Component::from_file(&engine, path).expect("a test guest compiles");
        assert!(imports_fetch(&compile(opendo_test_support::PROBE)), "the probe calls objects");
        assert!(!imports_fetch(&compile(opendo_test_support::EXAMPLE_COUNTER)), "the counter never does");
    }

    #[test]
    fn headers_are_told_apart() {
        let path = Path::new("m.wasm");
        let err = |bytes: &[u8]| check_header(path, bytes).unwrap_err().to_string();
        assert!(err(b"hello world").contains("not a WebAssembly file"));
        assert!(err(b"\0asm").contains("not a WebAssembly file"));
        assert!(err(b"\0asm\x01\0\0\0").contains("core WebAssembly module, not a component"));
        assert!(err(b"\0asm\x02\0\0\0").contains("unsupported"));
        assert!(check_header(path, b"\0asm\x0d\0\x01\0").is_ok());
    }
}
