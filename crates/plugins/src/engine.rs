//! The one wasmtime [`Engine`] of the process, shared by the hub and the agent, and the
//! on-disk cache of compiled components.
//!
//! The engine uses the pooling allocator (instantiation is a few microseconds because slots
//! are reused) and epoch interruption: a ticker thread increments the epoch every
//! [`TICK`], and a call's deadline is a number of ticks, so a call that loops forever ends
//! within its deadline plus one tick. The ticker sleeps between increments, so ticks it misses
//! while descheduled are skipped rather than delivered in a burst.
//!
//! Compiling a component takes from 0.1 s (Rust) to 10 s (JavaScript); the machine code is
//! therefore kept in `<cache>/<sha256>-<engine hash>.cwasm` and loaded in about a millisecond
//! the next time the same file is seen by an engine of the same build and settings.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of every plugin deadline.
pub const TICK: Duration = Duration::from_millis(2);

pub use crate::policy::MAX_MEMORY_BYTES;

/// Bytes of each table slot kept resident between instances (see [`config`]).
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The process's engine, created (with its ticker) on first use.
pub fn shared() -> Result<Engine, String> {
    ENGINE.get_or_init(create).clone()
}

fn create() -> Result<Engine, String> {
    let engine = match Engine::new(&config(true)) {
        Ok(engine) => engine,
        Err(err) => {
            // The pool reserves address space up front; a host with a small `ulimit -v`
            // refuses it. Plugins still work, only instantiation is slower.
            tracing::warn!(error = %err, "pooling allocator unavailable, falling back to on-demand instances");
            Engine::new(&config(false)).map_err(|err| format!("cannot create the wasm engine: {err}"))?
        }
    };
    let ticking = engine.clone();
    std::thread::Builder::new()
        .name("maestro-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                ticking.increment_epoch();
            }
        })
        .map_err(|err| format!("cannot start the epoch ticker: {err}"))?;
    Ok(engine)
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.parallel_compilation(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // Sized for dozens of plugins with a few pooled instances each; Python components
        // have tens of core instances and large tables.
        pool.total_component_instances(512)
            .total_core_instances(4096)
            .total_memories(1024)
            .total_tables(2048)
            .max_memory_size(MAX_MEMORY_BYTES)
            .table_elements(100_000)
            .max_core_instances_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_component(64)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(4 << 20)
            // A freed table slot kept resident is cleared with memset instead of madvise, which
            // on a 2-core VM also spares a TLB shootdown: validate fresh-instance p50 30 us
            // with it, 37 us without (`maestro bench plugins`).
            .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
        // No `linear_memory_keep_resident`: memsetting memory costs more than the page faults
        // it saves (p50 31.6 us with 64 KiB, 35 us with 256 KiB, 49 us with 1 MiB).
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Ticks that cover `timeout`, rounded up, at least one.
pub fn ticks_for(timeout: Duration) -> u64 {
    let tick = TICK.as_nanos().max(1);
    (timeout.as_nanos().div_ceil(tick) as u64).max(1)
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot compile: {0}")]
    Compile(String),
    #[error("plugin cache {path}: {source}")]
    Cache { path: String, source: std::io::Error },
}

/// Compiled components on disk, keyed by content digest and engine compatibility.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub fn new(dir: PathBuf) -> Self {
        CompileCache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads `bytes` (whose sha256 is `digest`) compiled: from the cache when an entry for this
    /// engine exists and loads, otherwise compiled now and written to the cache.
    /// Runs for up to seconds: call it off the request path.
    pub fn load(&self, engine: &Engine, digest: &str, bytes: &[u8]) -> Result<(Component, bool), CompileError> {
        let path = self.dir.join(format!("{digest}-{}.cwasm", compatibility(engine)));
        if path.exists() {
            // SAFETY: files in this directory are written only by `store` below from
            // `precompile_component` output, keyed by the engine's compatibility hash;
            // wasmtime also checks the header and refuses a mismatched artifact.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, true)),
                Err(err) => tracing::warn!(path = %path.display(), error = %err, "cached plugin unusable, recompiling"),
            }
        }
        let compiled = engine.precompile_component(bytes).map_err(|err| CompileError::Compile(format!("{err:#}")))?;
        if let Err(err) = self.store(&path, &compiled) {
            // A read-only or full disk costs the next start a compile, nothing more.
            tracing::warn!(error = %err, "compiled plugin not cached");
        }
        // SAFETY: `compiled` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled) }
            .map_err(|err| CompileError::Compile(format!("{err:#}")))?;
        Ok((component, false))
    }

    /// Writes through a temporary file and a rename, so a reader never sees half an artifact.
    fn store(&self, path: &Path, compiled: &[u8]) -> Result<(), CompileError> {
        let cache_error = |source| CompileError::Cache { path: self.dir.display().to_string(), source };
        std::fs::create_dir_all(&self.dir).map_err(cache_error)?;
        // Unique per writer: two threads may compile the same file at once.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, compiled).map_err(cache_error)?;
        std::fs::rename(&tmp, path).map_err(cache_error)
    }
}

/// The engine's compatibility hash as a short hex string.
fn compatibility(engine: &Engine) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        assert_eq!(ticks_for(Duration::ZERO), 1);
        assert_eq!(ticks_for(TICK), 1);
        assert_eq!(ticks_for(TICK + Duration::from_nanos(1)), 2);
        assert_eq!(ticks_for(TICK * 10), 10);
    }
}
