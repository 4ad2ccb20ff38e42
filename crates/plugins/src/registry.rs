//! Loaded plugins and how a file becomes one.
//!
//! A plugin is served from an immutable [`Loaded`] behind an `Arc`; the map of serving plugins
//! is swapped whole ([`ArcSwap`]), so a call that already holds an `Arc<Loaded>` finishes on
//! that version while new calls get the new one. What `GET /plugins` shows ([`PluginInfo`])
//! is kept beside it, including files that were rejected.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

use super::bindings::ValidatorPre;
use super::bindings::codec::{Codec, CodecPre};
use super::bindings::feedback::{StatusFeedback, StatusFeedbackPre};
use super::bindings::hooks::ReconcileHookPre;
use super::engine::CompileCache;
use super::host_api::{HostState, LogBudget};
use super::pool::Pool;
use super::{SUPPORTED_WIT, World};

/// The instantiation recipe of a plugin, typed by its world (generated types: crate-private).
pub(crate) enum Pre {
    Validator(ValidatorPre<HostState>),
    StatusFeedback(StatusFeedbackPre<HostState>),
    Codec(CodecPre<HostState>),
    ReconcileHook(ReconcileHookPre<HostState>),
}

/// One version of a plugin, ready to call. Never changed after it is built.
pub struct Loaded {
    pub name: Arc<str>,
    pub version: String,
    pub description: String,
    pub world: World,
    pub digest: String,
    pub size: u64,
    pub(crate) pre: Pre,
    pub log_budget: Arc<LogBudget>,
    /// Warm instances for the high-rate worlds (status feedback, codecs).
    pub(crate) feedback_pool: Pool<StatusFeedback>,
    pub(crate) codec_pool: Pool<Codec>,
}

impl Loaded {
    /// Instances kept warm between calls (status feedback and codecs), idle now.
    pub fn warm_instances(&self) -> usize {
        self.feedback_pool.idle() + self.codec_pool.idle()
    }
}

/// A plugin as `GET /plugins` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginInfo {
    pub name: String,
    /// Of the version serving; empty when none is.
    pub version: String,
    pub description: String,
    pub world: Option<World>,
    /// sha256 of the file serving, empty when none is.
    pub digest: String,
    /// `ready` (serving the newest file), `stale` (serving an older version because the
    /// newest file was rejected) or `rejected` (nothing serving).
    pub state: &'static str,
    pub last_error: Option<String>,
    /// sha256 of the rejected file, when the last load failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_digest: Option<String>,
    pub size: u64,
}

#[derive(Default)]
pub struct Registry {
    serving: ArcSwap<HashMap<String, Arc<Loaded>>>,
    infos: Mutex<BTreeMap<String, PluginInfo>>,
}

impl Registry {
    pub fn get(&self, name: &str) -> Option<Arc<Loaded>> {
        self.serving.load().get(name).cloned()
    }

    pub fn serving(&self) -> Arc<HashMap<String, Arc<Loaded>>> {
        self.serving.load_full()
    }

    pub fn infos(&self) -> Vec<PluginInfo> {
        self.lock_infos().values().cloned().collect()
    }

    fn lock_infos(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PluginInfo>> {
        self.infos.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Serves `loaded` from now on; calls holding the previous version finish on it.
    pub fn install(&self, loaded: Arc<Loaded>) {
        let info = PluginInfo {
            name: loaded.name.to_string(),
            version: loaded.version.clone(),
            description: loaded.description.clone(),
            world: Some(loaded.world),
            digest: loaded.digest.clone(),
            state: "ready",
            last_error: None,
            rejected_digest: None,
            size: loaded.size,
        };
        self.serving.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(loaded.name.to_string(), loaded.clone());
            next
        });
        self.lock_infos().insert(info.name.clone(), info);
    }

    /// Records a rejected file; the version serving, if any, goes on serving.
    pub fn reject(&self, name: &str, digest: Option<String>, reason: String) {
        let serving = self.get(name);
        let mut infos = self.lock_infos();
        let info = infos.entry(name.to_string()).or_insert_with(|| PluginInfo {
            name: name.to_string(),
            version: String::new(),
            description: String::new(),
            world: None,
            digest: String::new(),
            state: "rejected",
            last_error: None,
            rejected_digest: None,
            size: 0,
        });
        info.state = if serving.is_some() { "stale" } else { "rejected" };
        info.last_error = Some(reason);
        info.rejected_digest = digest;
    }

    /// Stops serving `name` (its file is gone); calls in flight finish.
    pub fn remove(&self, name: &str) {
        self.serving.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.remove(name);
            next
        });
        self.lock_infos().remove(name);
    }

    pub fn names(&self) -> Vec<String> {
        self.lock_infos().keys().cloned().collect()
    }
}

/// Optional `<name>.toml` beside `<name>.wasm`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// Reasons a file is refused, each phrased for the operator who dropped it in.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("file is {size} bytes, more than the {max} allowed")]
    TooLarge { size: u64, max: u64 },
    #[error("not a WebAssembly component: {0}")]
    NotComponent(&'static str),
    #[error("{0}")]
    Compile(String),
    #[error(
        "exports no maestro:plugin interface (a plugin exports exactly one of validate, feedback, transcode, hooks)"
    )]
    NoWorld,
    #[error("built against {found}; this host supports maestro:plugin@{SUPPORTED_WIT}.x")]
    Version { found: String },
    #[error("cannot be linked: {0}")]
    Link(String),
    #[error("sidecar {path}: {message}")]
    Sidecar { path: String, message: String },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks the 8-byte header: components are layer 1, core modules layer 0 version 1.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0x00, 0x01, 0x00]) => Ok(()),
        Some([0, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00]) => Err(LoadError::NotComponent(
            "this is a core WebAssembly module; build for wasm32-wasip2 or wrap it with `wasm-tools component new`",
        )),
        Some([0, b'a', b's', b'm', ..]) => Err(LoadError::NotComponent("unknown WebAssembly version or layer")),
        _ => Err(LoadError::NotComponent("the file does not start with the WebAssembly magic number")),
    }
}

/// Which world a component targets, from the one `maestro:plugin/<interface>@<version>` it exports.
fn world_of(engine: &Engine, component: &Component) -> Result<World, LoadError> {
    let mut found = None;
    for (name, _) in component.component_type().exports(engine) {
        let Some(rest) = name.strip_prefix("maestro:plugin/") else { continue };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        let supported = version.split('.').take(2).eq(SUPPORTED_WIT.split('.'));
        if !supported {
            return Err(LoadError::Version { found: format!("maestro:plugin@{version} ({interface})") });
        }
        found = World::from_interface(interface);
        if found.is_some() {
            break;
        }
    }
    found.ok_or(LoadError::NoWorld)
}

fn pre_for(world: World, pre: InstancePre<HostState>) -> Result<Pre, LoadError> {
    let link = |err: wasmtime::Error| LoadError::Link(format!("{err:#}"));
    Ok(match world {
        World::Validator => Pre::Validator(ValidatorPre::new(pre).map_err(link)?),
        World::StatusFeedback => Pre::StatusFeedback(StatusFeedbackPre::new(pre).map_err(link)?),
        World::Codec => Pre::Codec(CodecPre::new(pre).map_err(link)?),
        World::ReconcileHook => Pre::ReconcileHook(ReconcileHookPre::new(pre).map_err(link)?),
    })
}

fn read_sidecar(path: &Path) -> Result<Sidecar, LoadError> {
    let sidecar = path.with_extension("toml");
    match std::fs::read_to_string(&sidecar) {
        Ok(text) => toml::from_str(&text)
            .map_err(|err| LoadError::Sidecar { path: sidecar.display().to_string(), message: err.to_string() }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Sidecar::default()),
        Err(source) => Err(LoadError::Read { path: sidecar.display().to_string(), source }),
    }
}

/// What the loader needs from the runtime.
pub struct Loader<'a> {
    pub engine: &'a Engine,
    pub linker: &'a Linker<HostState>,
    pub cache: &'a CompileCache,
    pub max_file_bytes: u64,
}

/// A file read and hashed, before compiling.
pub struct FileBytes {
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Loader<'_> {
    pub fn read(&self, path: &Path) -> Result<FileBytes, LoadError> {
        let read_error = |source| LoadError::Read { path: path.display().to_string(), source };
        let size = std::fs::metadata(path).map_err(read_error)?.len();
        if size > self.max_file_bytes {
            return Err(LoadError::TooLarge { size, max: self.max_file_bytes });
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        let digest = sha256_hex(&bytes);
        Ok(FileBytes { bytes, digest })
    }

    /// Checks, compiles (or loads from the cache) and links a plugin file. Slow: off the request path.
    pub fn load(&self, name: &str, path: &Path, file: &FileBytes) -> Result<Loaded, LoadError> {
        check_header(&file.bytes)?;
        let sidecar = read_sidecar(path)?;
        let (component, cached) = self
            .cache
            .load(self.engine, &file.digest, &file.bytes)
            .map_err(|err| LoadError::Compile(err.to_string()))?;
        let world = world_of(self.engine, &component)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|err| LoadError::Link(format!("{err:#}")))?;
        let pre = pre_for(world, pre)?;
        tracing::debug!(plugin = name, digest = %file.digest, cached, "plugin compiled");
        Ok(Loaded {
            name: Arc::from(name),
            version: sidecar.version.unwrap_or_else(|| "unversioned".into()),
            description: sidecar.description.unwrap_or_default(),
            world,
            digest: file.digest.clone(),
            size: file.bytes.len() as u64,
            pre,
            log_budget: Arc::new(LogBudget::default()),
            feedback_pool: Pool::default(),
            codec_pool: Pool::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_tells_components_from_modules_and_other_files() {
        assert!(check_header(b"\0asm\x0d\x00\x01\x00rest").is_ok());
        assert!(
            matches!(check_header(b"\0asm\x01\x00\x00\x00"), Err(LoadError::NotComponent(m)) if m.contains("core"))
        );
        assert!(check_header(b"hello world").is_err());
        assert!(check_header(b"").is_err());
    }
}
