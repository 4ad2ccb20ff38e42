//! The plugin runtime, one module used by the hub and the agent: WebAssembly components
//! (wasmtime component model, contract in `wit/maestro-plugin.wit`) loaded from a plugin
//! directory and run at four extension points, as the consumer's policies say.
//!
//! - [`engine`]: the process's one engine (pooling allocator, epoch ticker) and the on-disk
//!   cache of compiled components.
//! - [`registry`]: loaded plugins, swapped atomically; [`watch`] keeps it in step with the
//!   directory without a restart.
//! - [`calls`]: one bounded call (time, memory, sizes); [`host_api`]: what a plugin can reach.
//! - [`policy`]: which plugins run for which consumer, with which settings and failure mode.
//!
//! A plugin that traps, loops, allocates without bound or answers nonsense costs the request
//! at most its deadline plus one tick; the step's failure mode then decides the outcome, and
//! every other request goes on being served.

mod bindings;
pub mod calls;
mod convert;
pub mod engine;
pub mod host_api;
pub mod observe;
mod points;
pub mod pool;
pub mod registry;
pub mod types;
mod watch;

/// Policies are model (stored by the hub, carried to agents); the runtime enforces them.
pub use maestro_model::policy::{self, World};

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use serde_json::Value;
use wasmtime::Engine;
use wasmtime::component::Linker;

use calls::{Bounds, CallError, Called, Hook, HookAnswer};
use engine::CompileCache;
use host_api::HostState;
use maestro_model::validate::Violation;
use observe::PluginMetrics;
use policy::{FailureMode, Limits, PolicySpec, ResolvedStep};
use registry::{Loaded, PluginInfo, Registry};
use types::{Applied, BeforeApplyOutcome, BeforeDeleteOutcome, Context, HookBundle, Report};

/// The `maestro:plugin` versions this host runs (major.minor: before 1.0 a minor is a major).
pub const SUPPORTED_WIT: &str = "0.1";

/// The write a validator is asked about. The runtime's own type, so that callers never name a
/// generated binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// Where plugins come from and the bounds every call shares.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// The directory watched for `<name>.wasm` (and `<name>.toml`, `policies.toml`).
    pub dir: PathBuf,
    /// Compiled components; `<dir>/.cache` unless set.
    pub cache_dir: PathBuf,
    /// How often the directory is looked at.
    pub scan_interval: Duration,
    pub max_file_bytes: u64,
    /// Largest document passed to a plugin.
    pub max_arg_bytes: usize,
    /// Largest answer accepted from a plugin.
    pub max_result_bytes: usize,
}

impl PluginConfig {
    pub fn new(dir: PathBuf) -> Self {
        PluginConfig {
            cache_dir: dir.join(".cache"),
            dir,
            scan_interval: Duration::from_millis(25),
            max_file_bytes: 100 << 20,
            max_arg_bytes: 4 << 20,
            max_result_bytes: 4 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin directory {0}: {1}")]
    Dir(String, std::io::Error),
    #[error("{0}")]
    Engine(String),
}

/// Who and what a call is about.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub consumer: String,
    pub labels: Vec<(String, String)>,
    pub resource_id: String,
    pub resource_version: i64,
}

impl Subject {
    pub fn consumer(name: &str, labels: &serde_json::Map<String, Value>) -> Self {
        Subject { consumer: name.to_string(), labels: policy::label_pairs(labels), ..Subject::default() }
    }

    fn context(&self) -> Context {
        Context {
            consumer: self.consumer.clone(),
            consumer_labels: self.labels.clone(),
            resource_id: self.resource_id.clone(),
            resource_version: self.resource_version,
            now_unix_ms: chrono::Utc::now().timestamp_millis(),
        }
    }
}

/// A plugin whose failure refused the operation (a fail-closed step).
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin '{plugin}' {error}")]
pub struct PluginFailure {
    pub plugin: String,
    pub error: CallError,
}

/// What the validators made of a write.
#[derive(Debug, Clone, Default)]
pub struct ValidationOutcome {
    /// The manifests to store: the ones sent, or as the validators mutated them.
    pub manifests: Vec<Value>,
    /// Every violation (empty: accept), each naming `manifests[i].<path>` and the plugin.
    pub violations: Vec<Violation>,
    pub mutated: bool,
}

/// Encoded data and the codecs that encoded it, in order (for the `maestrocodec` extension).
#[derive(Debug, Clone)]
pub struct Encoded {
    pub data: Vec<u8>,
    pub codecs: Vec<String>,
}

pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: CompileCache,
    config: PluginConfig,
    registry: Registry,
    stored_policies: ArcSwap<Vec<PolicySpec>>,
    file_policies: ArcSwap<Vec<PolicySpec>>,
    /// Stored and file policies together, sorted by name: what calls read.
    policies: ArcSwap<Vec<PolicySpec>>,
    metrics: PluginMetrics,
    scan: Mutex<watch::ScanState>,
}

impl PluginRuntime {
    /// Loads every plugin of `config.dir` (compiling those not cached), then keeps watching it.
    pub async fn start(config: PluginConfig) -> Result<Arc<PluginRuntime>, PluginError> {
        let dir = config.dir.display().to_string();
        let meta = tokio::fs::metadata(&config.dir).await.map_err(|err| PluginError::Dir(dir.clone(), err))?;
        if !meta.is_dir() {
            return Err(PluginError::Dir(dir, std::io::Error::other("not a directory")));
        }
        let engine = engine::shared().map_err(PluginError::Engine)?;
        let linker = host_api::linker(&engine).map_err(PluginError::Engine)?;
        let runtime = Arc::new(PluginRuntime {
            cache: CompileCache::new(config.cache_dir.clone()),
            engine,
            linker,
            config,
            registry: Registry::default(),
            stored_policies: ArcSwap::default(),
            file_policies: ArcSwap::default(),
            policies: ArcSwap::default(),
            metrics: PluginMetrics::default(),
            scan: Mutex::new(watch::ScanState::default()),
        });
        runtime.rescan().await;
        tokio::spawn(watch::run(Arc::downgrade(&runtime), runtime.config.scan_interval));
        Ok(runtime)
    }

    pub fn config(&self) -> &PluginConfig {
        &self.config
    }

    pub fn metrics(&self) -> &PluginMetrics {
        &self.metrics
    }

    /// Looks at the plugin directory now, off the async threads.
    pub async fn rescan(self: &Arc<Self>) {
        let runtime = self.clone();
        if let Err(err) = tokio::task::spawn_blocking(move || runtime.scan_blocking()).await {
            tracing::error!(error = %err, "plugin directory scan failed");
        }
    }

    /// Every plugin file seen, serving or rejected.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.registry.infos()
    }

    /// The plugin serving under `name`, if any.
    pub fn plugin(&self, name: &str) -> Option<Arc<Loaded>> {
        self.registry.get(name)
    }

    /// Replaces the policies read from the database.
    pub fn set_stored_policies(&self, policies: Vec<PolicySpec>) {
        self.stored_policies.store(Arc::new(policies));
        self.merge_policies();
    }

    fn set_file_policies(&self, policies: Vec<PolicySpec>) {
        self.file_policies.store(Arc::new(policies));
        self.merge_policies();
    }

    fn merge_policies(&self) {
        let merged = merge_policies(&self.stored_policies.load(), &self.file_policies.load());
        self.policies.store(Arc::new(merged));
    }

    /// Policies in force (stored and from the policy file).
    pub fn policies(&self) -> Arc<Vec<PolicySpec>> {
        self.policies.load_full()
    }

    pub fn file_policies(&self) -> Arc<Vec<PolicySpec>> {
        self.file_policies.load_full()
    }

    /// Whether any policy has plugins at `world`'s point: when none has, callers skip the
    /// work of building a [`Subject`].
    pub fn has_point(&self, world: World) -> bool {
        self.policies.load().iter().any(|p| p.point(world).is_some_and(|point| !point.plugins.is_empty()))
    }

    /// The steps of `world` that apply to the consumer: what an agent receives and runs.
    pub fn steps_for(&self, world: World, subject: &Subject) -> Vec<ResolvedStep> {
        policy::steps_for(&self.policies.load(), world, &subject.consumer, &subject.labels)
    }

    /// Why `spec` cannot be stored: its shape, plugins missing or of another world, pins that
    /// do not match, settings the plugin's `validate-settings` refuses. Each is (field, message).
    pub async fn check_policy(self: &Arc<Self>, spec: PolicySpec) -> Vec<(String, String)> {
        let runtime = self.clone();
        tokio::task::spawn_blocking(move || runtime.check_policy_blocking(&spec))
            .await
            .unwrap_or_else(|err| vec![("".into(), format!("policy check failed: {err}"))])
    }

    fn check_policy_blocking(&self, spec: &PolicySpec) -> Vec<(String, String)> {
        let mut problems = spec.check_shape();
        for world in World::ALL {
            let Some(point) = spec.point(world) else { continue };
            for (i, step) in point.plugins.iter().enumerate() {
                let field = format!("{}.plugins[{i}]", world.point());
                let Some(loaded) = self.registry.get(&step.plugin) else {
                    problems.push((format!("{field}.plugin"), format!("no plugin named '{}' is loaded", step.plugin)));
                    continue;
                };
                if loaded.world != world {
                    problems.push((
                        format!("{field}.plugin"),
                        format!("'{}' is a {} plugin, not a {} one", step.plugin, loaded.world.point(), world.point()),
                    ));
                    continue;
                }
                if let Some(pin) = &step.sha256
                    && !pin.eq_ignore_ascii_case(&loaded.digest)
                {
                    problems.push((format!("{field}.sha256"), format!("the loaded file has sha256 {}", loaded.digest)));
                }
                if let Err(message) = self.settings_verdict(&loaded, step.settings.to_string()) {
                    problems.push((format!("{field}.settings"), message));
                }
            }
        }
        problems
    }

    /// The plugin's own opinion of `settings` (its `validate-settings`).
    fn settings_verdict(&self, loaded: &Loaded, settings: String) -> Result<(), String> {
        let started = Instant::now();
        let called = calls::validate_settings(&self.engine, loaded, &settings, Limits::DEFAULT);
        let outcome = match &called.result {
            Ok(Ok(())) => "ok",
            Ok(Err(_)) => "deny",
            Err(err) => err.outcome(),
        };
        self.metrics.call(&loaded.name, "settings", outcome, started.elapsed().as_secs_f64(), called.memory_peak);
        match called.result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(format!("plugin '{}' refuses these settings: {message}", loaded.name)),
            Err(err) => Err(format!("plugin '{}' could not check these settings: it {err}", loaded.name)),
        }
    }

    /// Finds the plugin a step names, checking its world and pin.
    fn resolve(&self, step: &ResolvedStep, world: World) -> Result<Arc<Loaded>, CallError> {
        let loaded = self.registry.get(&step.plugin).ok_or(CallError::Missing)?;
        if loaded.world != world {
            return Err(CallError::WrongWorld { found: loaded.world.point(), wanted: world.point() });
        }
        if let Some(pin) = &step.sha256
            && !pin.eq_ignore_ascii_case(&loaded.digest)
        {
            return Err(CallError::Pinned { found: loaded.digest.clone(), pinned: pin.clone() });
        }
        Ok(loaded)
    }

    fn bounds(&self, step: &ResolvedStep) -> Bounds {
        Bounds { limits: step.limits, max_result_bytes: self.config.max_result_bytes }
    }

    /// Runs one step: resolves its plugin, calls it inside a span, records the metrics.
    /// `label` names a successful answer for the `outcome` label.
    fn run_step<R>(
        &self,
        step: &ResolvedStep,
        world: World,
        subject: &Subject,
        label: impl Fn(&R) -> &'static str,
        call: impl FnOnce(&Engine, &Loaded, Bounds) -> Called<R>,
    ) -> Result<R, CallError> {
        let point = world.point();
        let loaded = match self.resolve(step, world) {
            Ok(loaded) => loaded,
            Err(err) => {
                self.metrics.call(&step.plugin, point, err.outcome(), 0.0, 0);
                tracing::warn!(plugin = %step.plugin, policy = %step.policy, consumer = %subject.consumer, point, error = %err, "plugin step cannot run");
                return Err(err);
            }
        };
        let span = tracing::info_span!("plugin", plugin = %loaded.name, version = %loaded.version, digest = %loaded.digest,
            consumer = %subject.consumer, resource_id = %subject.resource_id, point);
        let _entered = span.enter();
        let started = Instant::now();
        let called = call(&self.engine, &loaded, self.bounds(step));
        let outcome = match &called.result {
            Ok(answer) => label(answer),
            Err(err) => err.outcome(),
        };
        let mode = match (&called.result, step.failure_mode) {
            (Ok(_), FailureMode::Monitor) if outcome != "ok" && outcome != "allow" => "monitor_deny",
            _ => outcome,
        };
        self.metrics.call(&loaded.name, point, mode, started.elapsed().as_secs_f64(), called.memory_peak);
        if let Err(err) = &called.result {
            tracing::warn!(policy = %step.policy, failure_mode = step.failure_mode.as_str(), error = %err, "plugin call failed");
        }
        called.result
    }

    /// Runs the validators of the consumer's policies over each manifest, in policy order.
    /// Mutations feed the next validator; denials and fail-closed failures become violations;
    /// steps in monitor mode are recorded only.
    pub async fn validate(
        self: &Arc<Self>,
        subject: Subject,
        op: Operation,
        manifests: Vec<Value>,
    ) -> ValidationOutcome {
        let runtime = self.clone();
        let fallback = manifests.clone();
        tokio::task::spawn_blocking(move || runtime.validate_blocking(&subject, op, manifests)).await.unwrap_or_else(
            |err| ValidationOutcome {
                manifests: fallback,
                violations: vec![Violation { field: "manifests".into(), message: format!("validators failed: {err}") }],
                mutated: false,
            },
        )
    }
}

/// The async entry points: each runs its `_blocking` twin on a blocking thread, because plugin
/// calls are synchronous (bounded by their deadline) and WASI's synchronous bindings must not
/// run on an async worker thread. Callers on a thread of their own may call `_blocking` directly.
impl PluginRuntime {
    async fn on_blocking_thread<R: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&PluginRuntime) -> R + Send + 'static,
        failed: impl FnOnce(String) -> R,
    ) -> R {
        let runtime = self.clone();
        match tokio::task::spawn_blocking(move || work(&runtime)).await {
            Ok(answer) => answer,
            Err(err) => failed(format!("the plugin task failed: {err}")),
        }
    }

    pub async fn status_feedback(
        self: &Arc<Self>,
        subject: Subject,
        live: Value,
        desired: Value,
    ) -> Result<Report, PluginFailure> {
        self.on_blocking_thread(move |rt| rt.status_feedback_blocking(&subject, &live, &desired), host_failure).await
    }

    pub async fn encode(self: &Arc<Self>, subject: Subject, data: Vec<u8>) -> Result<Encoded, PluginFailure> {
        self.on_blocking_thread(move |rt| rt.encode_blocking(&subject, data), host_failure).await
    }

    pub async fn decode(
        self: &Arc<Self>,
        subject: Subject,
        codecs: Vec<String>,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, PluginFailure> {
        self.on_blocking_thread(move |rt| rt.decode_blocking(&subject, &codecs, data), host_failure).await
    }

    pub async fn before_apply(self: &Arc<Self>, subject: Subject, bundle: HookBundle) -> BeforeApplyOutcome {
        self.on_blocking_thread(move |rt| rt.before_apply_blocking(&subject, bundle), BeforeApplyOutcome::Fail).await
    }

    pub async fn after_apply(
        self: &Arc<Self>,
        subject: Subject,
        bundle: HookBundle,
        results: Vec<Applied>,
    ) -> Result<(), String> {
        self.on_blocking_thread(move |rt| rt.after_apply_blocking(&subject, &bundle, &results), Err).await
    }

    pub async fn before_delete(self: &Arc<Self>, subject: Subject, bundle: HookBundle) -> BeforeDeleteOutcome {
        self.on_blocking_thread(move |rt| rt.before_delete_blocking(&subject, &bundle), BeforeDeleteOutcome::Fail).await
    }
}

fn host_failure<R>(message: String) -> Result<R, PluginFailure> {
    Err(PluginFailure { plugin: String::new(), error: CallError::Trap(message) })
}

/// Keeps a weak handle so the watcher ends with the runtime.
pub(crate) type RuntimeRef = Weak<PluginRuntime>;

/// Stored and file policies in name order. A file policy shadows a stored one of the same name:
/// an agent that receives the hub's policy `wire` and has its own `wire` in `policies.toml`
/// (say, with its local codec key) must run it once, not twice.
fn merge_policies(stored: &[PolicySpec], file: &[PolicySpec]) -> Vec<PolicySpec> {
    let shadowed = |spec: &PolicySpec| file.iter().any(|f| f.name == spec.name);
    let mut all: Vec<PolicySpec> = stored.iter().filter(|spec| !shadowed(spec)).cloned().collect();
    all.extend(file.iter().cloned());
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, consumer: &str) -> PolicySpec {
        serde_json::from_value(serde_json::json!({"name": name, "selector": {"consumers": [consumer]}}))
            .unwrap_or_else(|err| panic!("policy: {err}"))
    }

    #[test]
    fn a_file_policy_shadows_the_stored_policy_of_the_same_name() {
        let stored = [named("wire", "from-hub"), named("audit", "from-hub")];
        let file = [named("wire", "from-file")];
        let merged = merge_policies(&stored, &file);
        let names: Vec<&str> = merged.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["audit", "wire"]);
        assert!(merged[1].selector.matches("from-file", &[]), "the file's version wins");
        assert!(!merged[1].selector.matches("from-hub", &[]));
    }
}
