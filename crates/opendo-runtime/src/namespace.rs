use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::bindings::DurableObjectPre;
use crate::host::Host;
use crate::{Error, component};

/// One loaded Durable Object class: its component, ready to instantiate, and its folder.
pub(crate) struct Namespace {
    pub(crate) name: Arc<str>,
    pub(crate) dir: PathBuf,
    pub(crate) pre: DurableObjectPre<Host>,
}

impl Namespace {
    pub(crate) fn load(
        engine: &Engine,
        linker: &Linker<Host>,
        data_dir: &Path,
        name: &str,
        module: &Path,
    ) -> Result<Self, Error> {
        opendo_storage::layout::validate_namespace(name).map_err(|e| Error::InvalidConfig(e.to_string()))?;
        let cache_dir = data_dir.join(".cache").join("components");
        let component = component::load(engine, module, &cache_dir)?;
        let pre = component::fit_world(linker, &component, module)?;
        let dir = opendo_storage::layout::namespace_dir(data_dir, name);
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        Ok(Namespace { name: name.into(), dir, pre })
    }
}
