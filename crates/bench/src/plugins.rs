//! `maestro bench plugins`: what a plugin call costs at each extension point, beside the same
//! check written as native Rust; how long a replaced plugin file takes to serve; and the memory
//! a loaded plugin holds. Uses the test components built by `scripts/build-plugins`.
//!
//! A benchmark, not a test: it prints figures and fails only when a plugin answers wrongly or
//! a call fails during a reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use maestro_plugins::calls::{self, Bounds, WarmValidator};
use maestro_plugins::policy::{Limits, PolicySpec};
use maestro_plugins::types::{Context, HookBundle, Operation, Verdict};
use maestro_plugins::{PluginConfig, PluginRuntime, Subject, engine};

#[derive(Debug, Clone, clap::Args)]
pub struct PluginBenchArgs {
    /// Directory of the built test components (`scripts/build-plugins`).
    #[arg(long, default_value = "target/plugins")]
    pub components: PathBuf,
    /// Calls measured per figure (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 20_000)]
    pub calls: usize,
    /// Size of the manifest validated, as compact JSON.
    #[arg(long, default_value_t = 2048)]
    pub manifest_bytes: usize,
    /// Plugin file replacements timed in the reload figure.
    #[arg(long, default_value_t = 20)]
    pub reloads: usize,
    /// Copies of the validator loaded for the memory figure.
    #[arg(long, default_value_t = 50)]
    pub copies: usize,
}

const VALIDATOR_SETTINGS: &str = r#"{"forbidden_tags":["latest"],"require_team_label":true}"#;

pub async fn run(args: PluginBenchArgs) -> anyhow::Result<()> {
    if args.calls == 0 || args.reloads == 0 || args.copies == 0 {
        bail!("--calls, --reloads and --copies must be at least 1");
    }
    for name in ["image-policy", "feedback-basic", "codec-basic", "hooks-basic"] {
        let path = args.components.join(format!("{name}.wasm"));
        if !path.is_file() {
            bail!("{} is missing: run scripts/build-plugins first (or pass --components)", path.display());
        }
    }
    let dir = tempfile::tempdir().context("temp dir")?;
    for name in ["image-policy", "feedback-basic", "codec-basic", "hooks-basic"] {
        std::fs::copy(args.components.join(format!("{name}.wasm")), dir.path().join(format!("{name}.wasm")))?;
    }
    let started = Instant::now();
    let runtime = PluginRuntime::start(PluginConfig::new(dir.path().to_path_buf())).await?;
    println!("loaded 4 plugins (compiled, cache empty) in {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    runtime.set_stored_policies(vec![serde_json::from_value::<PolicySpec>(json!({
        "name": "bench",
        "limits": {"timeout_ms": 1000},
        "validate": {"plugins": [{"plugin": "image-policy", "settings": serde_json::from_str::<Value>(VALIDATOR_SETTINGS)?}]},
        "status-feedback": {"plugins": [{"plugin": "feedback-basic"}]},
        "codec": {"plugins": [{"plugin": "codec-basic", "settings": {"key": 42}}]},
        "reconcile-hook": {"plugins": [{"plugin": "hooks-basic"}]},
    }))?]);

    let manifest = padded_deployment(args.manifest_bytes);
    let text = manifest.to_string();
    println!("\nmanifest: {} bytes; {} calls per figure; one thread; latencies per call\n", text.len(), args.calls);
    println!("{:<34} {:>10} {:>10} {:>12}", "", "p50", "p99", "vs native");
    let rt = runtime.clone();
    let calls = args.calls;
    tokio::task::spawn_blocking(move || latency_figures(&rt, &text, calls)).await??;

    let rt = runtime.clone();
    let reloads = args.reloads;
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || reload_figure(&rt, &path, reloads)).await??;
    memory_figure(&args).await?;
    Ok(())
}

/// A Deployment with two containers and a team label, padded with annotations to `target` bytes.
fn padded_deployment(target: usize) -> Value {
    let mut manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "team": "payments"}, "annotations": {}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "side", "image": "envoy:1.31"}]}}}
    });
    let mut i = 0;
    while manifest.to_string().len() < target {
        let missing = target - manifest.to_string().len();
        let value = "x".repeat(missing.saturating_sub(12).clamp(1, 200));
        manifest["metadata"]["annotations"][format!("a{i}")] = Value::String(value);
        i += 1;
    }
    manifest
}

/// The image-policy check as native Rust, parsing the same text as the plugin does.
fn native_validate(text: &str) -> usize {
    let Ok(manifest) = serde_json::from_str::<Value>(text) else { return 1 };
    let mut violations = 0;
    if let Some(containers) = manifest.pointer("/spec/template/spec/containers").and_then(Value::as_array) {
        for container in containers {
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            let name = image.rsplit('/').next().unwrap_or(image);
            match name.split_once(':') {
                None => violations += 1,
                Some((_, "latest")) => violations += 1,
                Some(_) => {}
            }
        }
    }
    if manifest.pointer("/metadata/labels/team").is_none() {
        violations += 1;
    }
    violations
}

fn time(calls: usize, mut call: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<Duration>> {
    for _ in 0..calls / 10 {
        call()?;
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call()?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(samples)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied().unwrap_or_default()
}

fn print_row(label: &str, samples: &[Duration], native: Option<&[Duration]>) {
    let p50 = percentile(samples, 50.0);
    let ratio =
        native.map_or_else(String::new, |n| format!("{:.1}x", p50.as_secs_f64() / percentile(n, 50.0).as_secs_f64()));
    println!(
        "{label:<34} {:>7.1} us {:>7.1} us {ratio:>12}",
        p50.as_secs_f64() * 1e6,
        percentile(samples, 99.0).as_secs_f64() * 1e6
    );
}

fn latency_figures(runtime: &Arc<PluginRuntime>, text: &str, calls: usize) -> anyhow::Result<()> {
    let engine = engine::shared().map_err(anyhow::Error::msg)?;
    let loaded = runtime.plugin("image-policy").context("image-policy loaded")?;
    let ctx = Context {
        consumer: "c1".into(),
        consumer_labels: vec![],
        resource_id: String::new(),
        resource_version: 0,
        now_unix_ms: 0,
    };
    let bounds = Bounds { limits: Limits::DEFAULT, max_result_bytes: 4 << 20 };
    let (text, settings) = (text.to_string(), VALIDATOR_SETTINGS.to_string());
    let text = &text;
    let allowed = |verdict: Verdict| match verdict {
        Verdict::Allow => Ok(()),
        other => bail!("the validator did not allow the benchmark manifest: {other:?}"),
    };

    let native = time(calls, || {
        anyhow::ensure!(native_validate(text) == 0, "native check denied");
        Ok(())
    })?;
    print_row("validate: native Rust", &native, None);
    let mut warm = WarmValidator::new(&engine, &loaded, Limits::DEFAULT)?;
    let warm_samples = time(calls, || allowed(warm.validate(&ctx, Operation::Create, text, &settings)?))?;
    print_row("validate: warm instance", &warm_samples, Some(&native));
    let fresh = time(calls, || {
        allowed(calls::validate(&engine, &loaded, &ctx, Operation::Create, text, &settings, bounds).result?)
    })?;
    print_row("validate: fresh instance", &fresh, Some(&native));
    let subject = Subject { consumer: "c1".into(), ..Subject::default() };
    let manifest: Value = serde_json::from_str(text)?;
    let through_runtime = time(calls, || {
        let outcome = runtime.validate_blocking(&subject, maestro_plugins::Operation::Create, vec![manifest.clone()]);
        anyhow::ensure!(outcome.violations.is_empty(), "denied: {:?}", outcome.violations);
        Ok(())
    })?;
    print_row("validate: runtime (policy+fresh)", &through_runtime, Some(&native));

    let live = json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"image": "nginx:1.27"}]}}},
                      "status": {"readyReplicas": 3}});
    let desired = json!({"spec": {"replicas": 3}});
    let (live_text, desired_text) = (live.to_string(), desired.to_string());
    let native_status = time(calls, || {
        let live: Value = serde_json::from_str(&live_text)?;
        let desired: Value = serde_json::from_str(&desired_text)?;
        let ready = live.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
        let wanted = desired.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        std::hint::black_box((ready >= wanted, format!("{ready}/{wanted} replicas ready")));
        Ok(())
    })?;
    print_row("status-feedback: native Rust", &native_status, None);
    let pooled_status = time(calls, || {
        let report = runtime.status_feedback_blocking(&subject, &live, &desired)?;
        anyhow::ensure!(report.health.is_some(), "no health");
        Ok(())
    })?;
    print_row("status-feedback: pooled instance", &pooled_status, Some(&native_status));

    let data = text.as_bytes().to_vec();
    let native_codec = time(calls, || {
        let encoded: Vec<u8> = b"mz1:".iter().copied().chain(data.iter().map(|b| b ^ 42)).collect();
        std::hint::black_box(encoded);
        Ok(())
    })?;
    print_row("codec encode: native Rust", &native_codec, None);
    let pooled_codec = time(calls, || {
        runtime.encode_blocking(&subject, data.clone())?;
        Ok(())
    })?;
    print_row("codec encode: pooled instance", &pooled_codec, Some(&native_codec));

    let bundle = HookBundle { manifests: vec![text.to_string()], updated_unix_ms: 0 };
    let native_hook = time(calls, || {
        let mut manifest: Value = serde_json::from_str(text)?;
        manifest["metadata"]["labels"]["maestro.io/hooked"] = json!("true");
        std::hint::black_box(manifest.to_string());
        Ok(())
    })?;
    print_row("before-apply: native Rust", &native_hook, None);
    let fresh_hook = time(calls, || match runtime.before_apply_blocking(&subject, bundle.clone()) {
        maestro_plugins::types::BeforeApplyOutcome::Proceed(_) => Ok(()),
        other => bail!("hook did not proceed: {other:?}"),
    })?;
    print_row("before-apply: fresh instance", &fresh_hook, Some(&native_hook));
    Ok(())
}

/// A copy of a component with a different digest: the same code plus a custom section.
fn variant(bytes: &[u8], n: usize) -> Vec<u8> {
    let tag = format!("maestro-bench-{n:08}");
    let mut out = bytes.to_vec();
    out.push(0);
    out.push((1 + tag.len()) as u8);
    out.push(tag.len() as u8);
    out.extend_from_slice(tag.as_bytes());
    out
}

/// Time from a replaced file landing (rename) to the new digest serving, with the variants
/// precompiled, while another thread validates without pause; any failed call is an error.
fn reload_figure(runtime: &Arc<PluginRuntime>, dir: &Path, reloads: usize) -> anyhow::Result<()> {
    let original = std::fs::read(dir.join("image-policy.wasm"))?;
    let variants: Vec<Vec<u8>> = (0..reloads).map(|n| variant(&original, n)).collect();
    // Precompile each variant into the cache, as a deployment pipeline would before rollout.
    let engine = engine::shared().map_err(anyhow::Error::msg)?;
    let cache = engine::CompileCache::new(runtime.config().cache_dir.clone());
    for bytes in &variants {
        cache.load(&engine, &maestro_plugins::registry::sha256_hex(bytes), bytes)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let caller = {
        let (runtime, stop, served, failed) = (runtime.clone(), stop.clone(), served.clone(), failed.clone());
        let manifest = padded_deployment(2048);
        std::thread::spawn(move || {
            let subject = Subject { consumer: "c1".into(), ..Subject::default() };
            while !stop.load(Ordering::Relaxed) {
                let outcome =
                    runtime.validate_blocking(&subject, maestro_plugins::Operation::Create, vec![manifest.clone()]);
                let counter = if outcome.violations.is_empty() { &served } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let mut took = Vec::with_capacity(reloads);
    for bytes in &variants {
        let digest = maestro_plugins::registry::sha256_hex(bytes);
        let tmp = dir.join(".image-policy.wasm.tmp");
        std::fs::write(&tmp, bytes)?;
        let landed = Instant::now();
        std::fs::rename(&tmp, dir.join("image-policy.wasm"))?;
        while runtime.plugin("image-policy").is_none_or(|p| p.digest != digest) {
            if landed.elapsed() > Duration::from_secs(30) {
                bail!("the new version was not serving after 30 s");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        took.push(landed.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let _ = caller.join();
    took.sort();
    println!(
        "\nreload (precompiled, scan every {} ms): p50 {:.1} ms, max {:.1} ms over {reloads} replacements; \
         {} validations served during the swaps, {} failed",
        runtime.config().scan_interval.as_millis(),
        percentile(&took, 50.0).as_secs_f64() * 1e3,
        took.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        served.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    if failed.load(Ordering::Relaxed) > 0 {
        bail!("validations failed during reloads");
    }
    Ok(())
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// Resident memory added by loading `copies` validators (distinct files, each its own code).
async fn memory_figure(args: &PluginBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bytes = std::fs::read(args.components.join("image-policy.wasm"))?;
    for n in 0..args.copies {
        std::fs::write(dir.path().join(format!("v{n}.wasm")), variant(&bytes, 1_000_000 + n))?;
    }
    // Compile into the cache first, so the figure is what a loaded plugin holds, not the compiler.
    let mut config = PluginConfig::new(dir.path().to_path_buf());
    drop(PluginRuntime::start(config.clone()).await?);
    config.scan_interval = Duration::from_secs(3600);
    let before = rss_bytes().unwrap_or(0);
    let runtime = PluginRuntime::start(config).await?;
    let after = rss_bytes().unwrap_or(0);
    let loaded = runtime.plugins().iter().filter(|p| p.state == "ready").count();
    println!(
        "memory: {loaded} validators loaded from the cache added {:.0} KiB resident, {:.0} KiB per plugin ({} KiB file each)",
        after.saturating_sub(before) as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0 / loaded.max(1) as f64,
        bytes.len() / 1024,
    );
    Ok(())
}
