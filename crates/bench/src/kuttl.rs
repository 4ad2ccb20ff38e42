//! `maestro bench kuttl`: KUDO's zookeeper upgrade test (install, then resize by a parameter
//! change) run by `maestro test` against a simulated cluster with no readiness delay, beside
//! the sum of its steps' minimal times: the same two changes made directly, each timed until
//! the state its assert names holds (as watches see it). The difference is what the
//! runner adds. kuttl looks at its asserts once a second, so a step whose state is not there at
//! its first look takes at least a second: two seconds for this test.
//!
//! The engine runs as a child process (`maestro operator run`), as does each `maestro test`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use maestro_package::{Limits, read_path};
use serde_json::{Value, json};

use crate::agent::percentile;
use crate::operator::{EngineCluster, core, install, kudo, namespace};

#[derive(Debug, Clone, clap::Args)]
pub struct KuttlBenchArgs {
    /// Where KUDO's packages and their tests are (`<dir>/zookeeper/operator`,
    /// `<dir>/zookeeper/tests/zookeeper-upgrade-test`).
    #[arg(long, default_value = "../shared/conformance/kudo/repository")]
    pub packages: PathBuf,
    /// Runs of each.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Bound on every wait of the bench.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// The test's Instance and its parameters in each step (from its 00-install and 01-resize).
const INSTALL: [(&str, &str); 3] = [("NODE_COUNT", "1"), ("MEMORY", "256Mi"), ("CPUS", "0.3")];
const RESIZE: [(&str, &str); 2] = [("MEMORY", "256Mi"), ("CPUS", "0.2")];

pub async fn run(args: KuttlBenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let zookeeper = read_path(&args.packages.join("zookeeper/operator"), &Limits::default())
        .with_context(|| format!("reading zookeeper from --packages {}", args.packages.display()))?;
    let case = args.packages.join("zookeeper/tests/zookeeper-upgrade-test");
    if !case.is_dir() {
        bail!("--packages {}: no zookeeper/tests/zookeeper-upgrade-test", args.packages.display());
    }
    let cluster = EngineCluster::start(args.timeout).await?;
    let (client, dir, kubeconfig) = (&cluster.client, &cluster.dir, &cluster.kubeconfig);
    // The test names its OperatorVersion in `default`.
    let version = install(client, &zookeeper, "default").await?;
    println!("maestro bench kuttl: zookeeper-upgrade-test, simulated cluster (no readiness delay), {} runs", args.runs);

    let mut minimal = Vec::new();
    for run in 0..args.runs {
        let (install, resize) = direct(client, &format!("direct-{run}"), &version, args.timeout).await?;
        minimal.push((install, resize));
    }
    let tests = dir.path().join("tests");
    copy_dir(&case, &tests.join("zookeeper-upgrade-test"))?;
    let mut runner = Vec::new();
    for run in 0..args.runs {
        runner.push(maestro_test(&tests, kubeconfig, &dir.path().join(format!("out-{run}")), args.timeout).await?);
    }
    cluster.stop().await;
    report(&minimal, &runner);
    Ok(())
}

fn report(minimal: &[(f64, f64)], runner: &[Timing]) {
    let sums: Vec<f64> = minimal.iter().map(|(a, b)| a + b).collect();
    let installs: Vec<f64> = minimal.iter().map(|(a, _)| *a).collect();
    let resizes: Vec<f64> = minimal.iter().map(|(_, b)| *b).collect();
    let cases: Vec<f64> = runner.iter().map(|t| t.case).collect();
    let steps: Vec<f64> = runner.iter().map(|t| t.steps).collect();
    let walls: Vec<f64> = runner.iter().map(|t| t.wall).collect();
    println!(
        "  minimal (direct)    p50 {:.1} ms = install {:.1} ms + resize {:.1} ms",
        percentile(&sums, 0.5),
        percentile(&installs, 0.5),
        percentile(&resizes, 0.5)
    );
    println!(
        "  maestro test        steps p50 {:.1} ms, case p50 {:.1} ms (with its namespace made and cleaned up), process p50 {:.1} ms",
        percentile(&steps, 0.5),
        percentile(&cases, 0.5),
        percentile(&walls, 0.5)
    );
    println!(
        "  runner overhead     steps {:.1} ms over the minimal ({:.2}x); kuttl's floor for two polled steps: 2000 ms",
        percentile(&steps, 0.5) - percentile(&sums, 0.5),
        percentile(&steps, 0.5) / percentile(&sums, 0.5)
    );
}

/// The test's two changes made directly in namespace `ns`, each timed until its assert holds.
async fn direct(client: &kube::Client, ns: &str, version: &str, timeout: Duration) -> anyhow::Result<(f64, f64)> {
    namespace(client, ns).await?;
    let instances: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kudo("Instance", "instances"));
    let sets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &core("StatefulSet", "statefulsets", "apps", "v1"));
    let parameters = |pairs: &[(&str, &str)]| {
        pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()
    };
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
        "metadata": {"name": "zk", "namespace": ns},
        "spec": {"operatorVersion": {"name": version, "namespace": "default"}, "parameters": parameters(&INSTALL)},
    }))?;
    let started = Instant::now();
    instances.create(&PostParams::default(), &object).await?;
    let first = settled(&instances, &sets, "300m", None, timeout).await?;
    let install = started.elapsed();
    let patch = json!({"spec": {"parameters": parameters(&RESIZE)}});
    let started = Instant::now();
    instances.patch("zk", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    settled(&instances, &sets, "200m", Some(&first), timeout).await?;
    Ok((install.as_secs_f64() * 1e3, started.elapsed().as_secs_f64() * 1e3))
}

/// Watches until deploy is COMPLETE under a uid other than `after` and the StatefulSet asks
/// for `cpu` with one ready replica, as the test's asserts say; returns the uid.
async fn settled(
    instances: &Api<DynamicObject>,
    sets: &Api<DynamicObject>,
    cpu: &str,
    after: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let config = watcher::Config::default().fields("metadata.name=zk");
    let set_config = watcher::Config::default().fields("metadata.name=zk-zookeeper");
    let instance_events = watcher::watcher(instances.clone(), config).map(|e| (true, e));
    let set_events = watcher::watcher(sets.clone(), set_config).map(|e| (false, e));
    let mut events = std::pin::pin!(futures::stream::select(instance_events, set_events));
    let (mut instance, mut set) = (Value::Null, Value::Null);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let Ok(Some((is_instance, event))) = next else {
            bail!("zookeeper did not reach cpu {cpu} within {timeout:?}")
        };
        if let Ok(Event::Apply(object) | Event::InitApply(object)) = event {
            let value = serde_json::to_value(object).unwrap_or(Value::Null);
            if is_instance { instance = value } else { set = value }
        }
        let deploy = instance.pointer("/status/planStatus/deploy");
        let status = deploy.and_then(|d| d.get("status")).and_then(Value::as_str);
        let uid = deploy.and_then(|d| d.get("uid")).and_then(Value::as_str).unwrap_or_default();
        let ready = set.pointer("/status/readyReplicas").and_then(Value::as_i64) == Some(1);
        let asked = set.pointer("/spec/template/spec/containers/0/resources/requests/cpu").and_then(Value::as_str);
        if status == Some("COMPLETE") && after != Some(uid) && ready && asked == Some(cpu) {
            return Ok(uid.to_string());
        }
    }
}

/// What one `maestro test` run took, in ms: the steps, the case, the process.
struct Timing {
    steps: f64,
    case: f64,
    wall: f64,
}

async fn maestro_test(tests: &Path, kubeconfig: &Path, out: &Path, timeout: Duration) -> anyhow::Result<Timing> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let started = Instant::now();
    let run = tokio::process::Command::new(exe)
        .arg("test")
        .arg(tests)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--report", "json", "--artifacts-dir"])
        .arg(out)
        .env("MAESTRO_LOG", "warn")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(timeout, run).await.context("maestro test did not finish")??;
    let wall = started.elapsed().as_secs_f64() * 1e3;
    if !output.status.success() {
        bail!("maestro test failed:\n{}", String::from_utf8_lossy(&output.stdout));
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("kuttl-report.json"))?)?;
    let case = &report["cases"][0];
    let steps: f64 = case["steps"].as_array().into_iter().flatten().filter_map(|s| s["duration"].as_f64()).sum();
    Ok(Timing { steps: steps * 1e3, case: case["duration"].as_f64().unwrap_or_default() * 1e3, wall })
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
