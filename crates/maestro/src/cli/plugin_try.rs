//! `maestro plugin check|run|bench FILE`: a plugin file through the same loader and bounded
//! calls the hub and agent use (`maestro_plugins`), without a hub, a database or a policy.
//!
//! `check` says whether this host would accept the file and why not; `run` makes one call as
//! the extension point would and prints the answer as JSON; `bench` measures compile,
//! instantiation and call latency. Compiled components are cached on disk like the hub does,
//! so only the first run of a Python or JavaScript plugin pays the seconds of compiling.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde_json::{Map, Value, json};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use maestro_plugins::calls::{self, Bounds, CallError, Called, Hook, HookAnswer, WarmValidator};
use maestro_plugins::engine::{self, CompileCache};
use maestro_plugins::host_api::{self, HostState};
use maestro_plugins::policy::Limits;
use maestro_plugins::registry::{Loaded, Loader};
use maestro_plugins::types::{
    BeforeApplyOutcome, BeforeDeleteOutcome, Context, HookBundle, Operation, PluginViolation as Violation, Verdict,
};
use maestro_plugins::{PluginConfig, SUPPORTED_WIT, World};

use super::client::{parse_documents, read_input};

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The plugin file (`.wasm`).
    pub file: PathBuf,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CacheArgs {
    /// Where compiled components are cached [default: $XDG_CACHE_HOME/maestro/plugins or
    /// ~/.cache/maestro/plugins].
    #[arg(long, env = "MAESTRO_PLUGIN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// The plugin file (`.wasm`).
    pub file: PathBuf,
    /// YAML or JSON documents (`-` for stdin): manifests for a validator (each validated),
    /// the live object for status feedback, the bundle's manifests for a hook, any bytes for a codec.
    #[arg(long, short = 'i')]
    pub input: String,
    /// The policy settings, a JSON file.
    #[arg(long)]
    pub settings: Option<PathBuf>,
    /// Status feedback: the desired manifest (default: the input).
    #[arg(long)]
    pub desired: Option<String>,
    /// The consumer the call is for.
    #[arg(long, default_value = "cluster1")]
    pub consumer: String,
    /// A consumer label, KEY=VALUE; repeat for more.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Validators: the operation.
    #[arg(long, value_enum, default_value = "create")]
    pub operation: OperationArg,
    /// The host clock the plugin sees, Unix milliseconds [default: now].
    #[arg(long)]
    pub now_unix_ms: Option<i64>,
    /// Hooks: when the bundle version was written, Unix milliseconds [default: the clock].
    #[arg(long)]
    pub updated_unix_ms: Option<i64>,
    /// The call's deadline, as a policy's `limits.timeout_ms`.
    #[arg(long, default_value_t = Limits::DEFAULT.timeout.as_millis() as u64)]
    pub timeout_ms: u64,
    /// The call's memory cap, as a policy's `limits.memory_mb`.
    #[arg(long, default_value_t = (Limits::DEFAULT.memory_bytes >> 20) as u64)]
    pub memory_mb: u64,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub call: CallArgs,
    /// Calls to time per measurement.
    #[arg(long, default_value_t = 1000)]
    pub iterations: u32,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OperationArg {
    Create,
    Update,
    Delete,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("--label {text:?}: expected KEY=VALUE"))?;
    Ok((key.to_string(), value.to_string()))
}

/// A plugin file loaded as the hub would, plus what `check` reports about it.
struct Opened {
    engine: Engine,
    loaded: Result<Loaded, String>,
    exports: Vec<String>,
    imports: Vec<String>,
    size: usize,
    digest: String,
    compile: Duration,
}

fn cache_dir(args: &CacheArgs) -> PathBuf {
    if let Some(dir) = &args.cache_dir {
        return dir.clone();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("maestro/plugins")
}

fn open(file: &Path, cache: &CacheArgs) -> anyhow::Result<Opened> {
    let engine = engine::shared().map_err(anyhow::Error::msg)?;
    let linker: Linker<HostState> = host_api::linker(&engine).map_err(anyhow::Error::msg)?;
    let cache = CompileCache::new(cache_dir(cache));
    let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin").to_string();
    let loader = Loader {
        engine: &engine,
        linker: &linker,
        cache: &cache,
        max_file_bytes: PluginConfig::new(PathBuf::new()).max_file_bytes,
    };
    let bytes = loader.read(file).map_err(|err| anyhow::anyhow!("{err}"))?;
    let started = Instant::now();
    // Listing the component's imports and exports needs it compiled; a file that does not
    // compile is reported by `load` below with the loader's own words.
    let (exports, imports) = match cache.load(&engine, &bytes.digest, &bytes.bytes) {
        Ok((component, _)) => interfaces(&engine, &component),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let compile = started.elapsed();
    let loaded = loader.load(&name, file, &bytes).map_err(|err| err.to_string());
    Ok(Opened { engine, loaded, exports, imports, size: bytes.bytes.len(), digest: bytes.digest, compile })
}

fn interfaces(engine: &Engine, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let exports = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    let imports = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    (exports, imports)
}

fn world_name(world: World) -> &'static str {
    match world {
        World::Validator => "validator",
        World::StatusFeedback => "status-feedback",
        World::Codec => "codec",
        World::ReconcileHook => "reconcile-hook",
    }
}

/// Prints what the file is and whether this host accepts it; an error when it does not.
pub fn check(args: CheckArgs) -> anyhow::Result<()> {
    let opened = open(&args.file, &args.cache)?;
    let plugin_exports: Vec<&String> = opened.exports.iter().filter(|e| e.starts_with("maestro:plugin/")).collect();
    let version = plugin_exports
        .first()
        .and_then(|e| e.split_once('@'))
        .map(|(_, v)| format!("maestro:plugin@{v}"))
        .unwrap_or_else(|| "none".into());
    println!("file      {} ({} KiB, sha256 {})", args.file.display(), opened.size.div_ceil(1024), opened.digest);
    match &opened.loaded {
        Ok(loaded) => println!("world     {}", world_name(loaded.world)),
        Err(_) => println!("world     unknown"),
    }
    println!("version   {version}");
    let exports: Vec<&str> = opened.exports.iter().map(String::as_str).collect();
    println!("exports   {}", if exports.is_empty() { "-".into() } else { exports.join(", ") });
    println!("imports   {}", if opened.imports.is_empty() { "-".into() } else { opened.imports.join(", ") });
    if !opened.exports.is_empty() {
        println!("compiled  in {:.1?} (cached for next time)", opened.compile);
    }
    match opened.loaded {
        Ok(_) => {
            println!("accepted  yes: this host runs maestro:plugin@{SUPPORTED_WIT}.x and links every import");
            Ok(())
        }
        Err(reason) => {
            println!("accepted  no: {reason}");
            bail!("{} would be refused: {reason}", args.file.display())
        }
    }
}

/// One plugin call's inputs, resolved from the command line.
struct Prepared {
    opened: Opened,
    ctx: Context,
    settings: String,
    documents: Vec<Value>,
    raw_input: Vec<u8>,
    bounds: Bounds,
}

fn prepare(args: &CallArgs) -> anyhow::Result<Prepared> {
    let opened = open(&args.file, &args.cache)?;
    if let Err(reason) = &opened.loaded {
        bail!("{} would be refused: {reason}", args.file.display());
    }
    let settings = match &args.settings {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let value: Value =
                serde_json::from_str(&text).with_context(|| format!("--settings {}: not JSON", path.display()))?;
            value.to_string()
        }
        None => "{}".to_string(),
    };
    let (label, text) = read_input(&args.input)?;
    let documents = if is_codec(&opened) {
        Vec::new()
    } else {
        parse_documents(&label, &text)?.into_iter().map(|d| d.value).collect()
    };
    let now = args.now_unix_ms.unwrap_or_else(now_unix_ms);
    let ctx = Context {
        consumer: args.consumer.clone(),
        consumer_labels: args.labels.clone(),
        resource_id: String::new(),
        resource_version: 0,
        now_unix_ms: now,
    };
    let limits = Limits {
        timeout: Duration::from_millis(args.timeout_ms.clamp(1, Limits::MAX.timeout.as_millis() as u64)),
        memory_bytes: (args.memory_mb as usize).saturating_mul(1 << 20).clamp(1 << 20, Limits::MAX.memory_bytes),
    };
    let bounds = Bounds { limits, max_result_bytes: PluginConfig::new(PathBuf::new()).max_result_bytes };
    Ok(Prepared { opened, ctx, settings, documents, raw_input: text.into_bytes(), bounds })
}

fn is_codec(opened: &Opened) -> bool {
    matches!(&opened.loaded, Ok(loaded) if loaded.world == World::Codec)
}

fn now_unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn loaded(prepared: &Prepared) -> &Loaded {
    match &prepared.opened.loaded {
        Ok(loaded) => loaded,
        Err(_) => unreachable!("prepare refuses files that do not load"),
    }
}

fn answer<R>(called: Called<R>, what: &str) -> anyhow::Result<R> {
    called.result.map_err(|err: CallError| anyhow::anyhow!("{what}: the plugin {err}"))
}

/// Runs the plugin once as its extension point would and prints the answer as JSON.
/// A validator that denies, a codec that does not round-trip or a hook that fails is an
/// error (exit status 1), so `run` can gate a CI job.
pub fn run(args: CallArgs) -> anyhow::Result<()> {
    let prepared = prepare(&args)?;
    let loaded = loaded(&prepared);
    let engine = &prepared.opened.engine;
    let checked = answer(
        calls::validate_settings(engine, loaded, &prepared.settings, prepared.bounds.limits),
        "validate-settings",
    )?;
    if let Err(reason) = checked {
        bail!("the plugin refuses these settings: {reason}");
    }
    let (output, failed) = match loaded.world {
        World::Validator => run_validator(&prepared, args.operation)?,
        World::StatusFeedback => run_feedback(&prepared, args.desired.as_deref())?,
        World::Codec => run_codec(&prepared)?,
        World::ReconcileHook => run_hook(&prepared, args.updated_unix_ms)?,
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    if let Some(reason) = failed {
        bail!(reason);
    }
    Ok(())
}

fn operation(op: OperationArg) -> Operation {
    match op {
        OperationArg::Create => Operation::Create,
        OperationArg::Update => Operation::Update,
        OperationArg::Delete => Operation::Delete,
    }
}

fn violations_json(violations: &[Violation]) -> Value {
    violations.iter().map(|v| json!({"path": v.path, "message": v.message})).collect()
}

type RunOutput = (Value, Option<String>);

fn run_validator(prepared: &Prepared, op: OperationArg) -> anyhow::Result<RunOutput> {
    let loaded = loaded(prepared);
    let mut results = Vec::new();
    let mut denied = 0;
    for (index, manifest) in prepared.documents.iter().enumerate() {
        let text = manifest.to_string();
        let called = calls::validate(
            &prepared.opened.engine,
            loaded,
            &prepared.ctx,
            operation(op),
            &text,
            &prepared.settings,
            prepared.bounds,
        );
        let mut result = Map::new();
        result.insert("document".into(), json!(index + 1));
        result.insert("kind".into(), manifest.get("kind").cloned().unwrap_or(Value::Null));
        result.insert("name".into(), manifest.pointer("/metadata/name").cloned().unwrap_or(Value::Null));
        match answer(called, "validate")? {
            Verdict::Allow => {
                result.insert("verdict".into(), json!("allow"));
            }
            Verdict::Deny(violations) => {
                denied += 1;
                result.insert("verdict".into(), json!("deny"));
                result.insert("violations".into(), violations_json(&violations));
            }
            Verdict::Mutate(changed) => {
                let changed: Value = serde_json::from_str(&changed).map_err(|err| {
                    anyhow::anyhow!("validate: the plugin returned a mutation that is not JSON: {err}")
                })?;
                result.insert("verdict".into(), json!("mutate"));
                result.insert("manifest".into(), changed);
            }
        }
        results.push(Value::Object(result));
    }
    let failed = (denied > 0).then(|| format!("{denied} of {} document(s) denied", prepared.documents.len()));
    Ok((Value::Array(results), failed))
}

fn run_feedback(prepared: &Prepared, desired: Option<&str>) -> anyhow::Result<RunOutput> {
    use maestro_plugins::types::{HealthState, Value as FeedbackValue};
    let live = prepared.documents.first().cloned().unwrap_or(Value::Null);
    let desired = match desired {
        Some(path) => {
            let (label, text) = read_input(path)?;
            parse_documents(&label, &text)?.into_iter().next().map(|d| d.value).unwrap_or(Value::Null)
        }
        None => live.clone(),
    };
    let called = calls::status(
        &prepared.opened.engine,
        loaded(prepared),
        &prepared.ctx,
        &live.to_string(),
        &desired.to_string(),
        &prepared.settings,
        prepared.bounds,
    );
    let report = answer(called, "status")?;
    let mut values = Map::new();
    for value in report.values {
        let value_json = match value.value {
            FeedbackValue::Integer(n) => json!(n),
            FeedbackValue::Boolean(b) => json!(b),
            FeedbackValue::Text(t) => json!(t),
            FeedbackValue::JsonRaw(raw) => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
        };
        values.insert(value.name, value_json);
    }
    let health = report.health.map(|h| {
        let state = match h.state {
            HealthState::Healthy => "healthy",
            HealthState::Progressing => "progressing",
            HealthState::Degraded => "degraded",
            HealthState::Failed => "failed",
            HealthState::Unknown => "unknown",
        };
        json!({"state": state, "message": h.message})
    });
    Ok((json!({"values": values, "health": health}), None))
}

fn run_codec(prepared: &Prepared) -> anyhow::Result<RunOutput> {
    let loaded = loaded(prepared);
    let engine = &prepared.opened.engine;
    let input = &prepared.raw_input;
    let encoded = answer(
        calls::transcode(engine, loaded, &prepared.ctx, true, input, &prepared.settings, prepared.bounds),
        "encode",
    )?;
    let decoded = answer(
        calls::transcode(engine, loaded, &prepared.ctx, false, &encoded, &prepared.settings, prepared.bounds),
        "decode",
    )?;
    let round_trip = &decoded == input;
    let output = json!({
        "input_bytes": input.len(),
        "encoded_bytes": encoded.len(),
        "round_trip": round_trip,
    });
    Ok((output, (!round_trip).then(|| "decode(encode(input)) is not the input".to_string())))
}

fn run_hook(prepared: &Prepared, updated_unix_ms: Option<i64>) -> anyhow::Result<RunOutput> {
    let loaded = loaded(prepared);
    let engine = &prepared.opened.engine;
    let bundle = HookBundle {
        manifests: prepared.documents.iter().map(Value::to_string).collect(),
        updated_unix_ms: updated_unix_ms.unwrap_or(prepared.ctx.now_unix_ms),
    };
    let call = |which| calls::hook(engine, loaded, &prepared.ctx, which, &bundle, &prepared.settings, prepared.bounds);
    let mut failed = None;
    let before_apply = match answer(call(Hook::BeforeApply), "before-apply")? {
        HookAnswer::BeforeApply(BeforeApplyOutcome::Proceed(manifests)) => {
            let manifests: Vec<Value> =
                manifests.iter().map(|m| serde_json::from_str(m).unwrap_or(Value::String(m.clone()))).collect();
            json!({"outcome": "proceed", "manifests": manifests})
        }
        HookAnswer::BeforeApply(BeforeApplyOutcome::Skip(reason)) => json!({"outcome": "skip", "reason": reason}),
        HookAnswer::BeforeApply(BeforeApplyOutcome::Requeue(ms)) => json!({"outcome": "requeue", "after_ms": ms}),
        HookAnswer::BeforeApply(BeforeApplyOutcome::Fail(reason)) => {
            failed = Some(format!("before-apply failed: {reason}"));
            json!({"outcome": "fail", "reason": reason})
        }
        _ => bail!("before-apply: the plugin answered another hook"),
    };
    let before_delete = match answer(call(Hook::BeforeDelete), "before-delete")? {
        HookAnswer::BeforeDelete(BeforeDeleteOutcome::Proceed) => json!({"outcome": "proceed"}),
        HookAnswer::BeforeDelete(BeforeDeleteOutcome::Requeue(ms)) => json!({"outcome": "requeue", "after_ms": ms}),
        HookAnswer::BeforeDelete(BeforeDeleteOutcome::Fail(reason)) => json!({"outcome": "fail", "reason": reason}),
        _ => bail!("before-delete: the plugin answered another hook"),
    };
    Ok((json!({"before_apply": before_apply, "before_delete": before_delete}), failed))
}

/// Prints how long the plugin takes to compile, to instantiate and to answer.
pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let prepared = prepare(&args.call)?;
    let loaded = loaded(&prepared);
    let engine = &prepared.opened.engine;
    let iterations = args.iterations.max(1);
    let bytes = std::fs::read(&args.call.file).with_context(|| format!("reading {}", args.call.file.display()))?;
    let started = Instant::now();
    Component::new(engine, &bytes).map_err(|err| anyhow::anyhow!("compiling: {err:#}"))?;
    let compile = started.elapsed();
    println!(
        "plugin     {} ({}, {} KiB)",
        args.call.file.display(),
        world_name(loaded.world),
        bytes.len().div_ceil(1024)
    );
    println!("compile    {:.1?} (once per file and host build; cached on disk)", compile);
    let op = operation(args.call.operation);
    let manifest = prepared.documents.first().map(Value::to_string).unwrap_or_else(|| "{}".into());
    let per_call = time_calls(iterations, || -> anyhow::Result<()> {
        match loaded.world {
            World::Validator => {
                let called =
                    calls::validate(engine, loaded, &prepared.ctx, op, &manifest, &prepared.settings, prepared.bounds);
                answer(called, "validate").map(drop)
            }
            World::StatusFeedback => {
                let called = calls::status(
                    engine,
                    loaded,
                    &prepared.ctx,
                    &manifest,
                    &manifest,
                    &prepared.settings,
                    prepared.bounds,
                );
                answer(called, "status").map(drop)
            }
            World::Codec => {
                let called = calls::transcode(
                    engine,
                    loaded,
                    &prepared.ctx,
                    true,
                    &prepared.raw_input,
                    &prepared.settings,
                    prepared.bounds,
                );
                answer(called, "encode").map(drop)
            }
            World::ReconcileHook => {
                let bundle =
                    HookBundle { manifests: vec![manifest.clone()], updated_unix_ms: prepared.ctx.now_unix_ms };
                let called = calls::hook(
                    engine,
                    loaded,
                    &prepared.ctx,
                    Hook::BeforeApply,
                    &bundle,
                    &prepared.settings,
                    prepared.bounds,
                );
                answer(called, "before-apply").map(drop)
            }
        }
    })?;
    let how = match loaded.world {
        World::Validator | World::ReconcileHook => "fresh instance per call, as the hub and agent run it",
        World::StatusFeedback | World::Codec => "warm pooled instance, as the agent runs it",
    };
    println!("call       {} ({how}, {iterations} calls)", per_call);
    if loaded.world == World::Validator {
        let mut warm = WarmValidator::new(engine, loaded, prepared.bounds.limits)
            .map_err(|err| anyhow::anyhow!("instantiating: the plugin {err}"))?;
        let warm_calls = time_calls(iterations, || -> anyhow::Result<()> {
            warm.validate(&prepared.ctx, op, &manifest, &prepared.settings)
                .map(drop)
                .map_err(|err| anyhow::anyhow!("validate: the plugin {err}"))
        })?;
        println!("warm call  {warm_calls} (one instance reused: the cost of the plugin's own work)");
    }
    Ok(())
}

/// Latency percentiles of `iterations` calls of `call`.
struct Percentiles {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {:.1?}  p99 {:.1?}  max {:.1?}", self.p50, self.p99, self.max)
    }
}

fn time_calls(iterations: u32, mut call: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Percentiles> {
    call()?; // warm caches and pools; not counted
    let mut samples = Vec::with_capacity(iterations as usize);
    for _ in 0..iterations {
        let started = Instant::now();
        call()?;
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok(Percentiles { p50: at(0.5), p99: at(0.99), max: at(1.0) })
}
