//! `maestro bench operator`: the universal operator measured on a simulated cluster with no
//! readiness delay, the engine running as a child process (`maestro operator run`) so its
//! memory is its own.
//!
//! Figures (targets from the operator issue):
//! 1. **Step latency**: from a step's last object becoming healthy (a Job's `Complete`
//!    condition, as a watch sees it) to the next step's first object (as the same watch sees
//!    it); p50 ≤ 5 ms. The anchor, measured in the same run: the API server's own write-to-watch
//!    latency (a ConfigMap created until its watch event), the floor under any controller.
//!    KUDO's engine takes ~1 s per pass (its requeue).
//! 2. **zookeeper deploy**: Instance created until its `deploy` plan is COMPLETE; ≤ 150 ms.
//! 3. **Fleet**: N zookeeper Instances created at once, until all are COMPLETE (≤ 30 s for 500),
//!    and the engine's resident memory then (≤ 200 MiB).
//!
//! A benchmark, not a test: it prints, and fails only when a plan does not complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::watcher::{self, Event};
use maestro_package::{Limits, Package, read_path};
use maestro_sim::{RunningSim, SimCluster, SimOptions};
use serde_json::{Value, json};

use crate::agent::{percentile, rss_mib};

#[derive(Debug, Clone, clap::Args)]
pub struct OperatorBenchArgs {
    /// Where KUDO's packages are (zookeeper is `<dir>/zookeeper/operator`).
    #[arg(long, default_value = "../shared/conformance/kudo/repository")]
    pub packages: PathBuf,
    /// Serial steps (one Job each) in the step-latency probe.
    #[arg(long, default_value_t = 60)]
    pub steps: usize,
    /// zookeeper deploys measured one after another.
    #[arg(long, default_value_t = 10)]
    pub deploys: usize,
    /// zookeeper Instances created at once for the fleet phase.
    #[arg(long, default_value_t = 500)]
    pub instances: usize,
    /// Bound on every wait of the bench.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub(crate) fn kudo(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "kudo.dev".into(),
        version: "v1beta1".into(),
        api_version: "kudo.dev/v1beta1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub(crate) fn core(kind: &str, plural: &str, group: &str, version: &str) -> ApiResource {
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    ApiResource { group: group.into(), version: version.into(), api_version, kind: kind.into(), plural: plural.into() }
}

/// The engine as a child process, killed when dropped.
pub(crate) struct Engine(Child);

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_engine(kubeconfig: &Path, log: &Path) -> anyhow::Result<Engine> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let log = std::fs::File::create(log)?;
    let child = Command::new(exe)
        .args(["operator", "run", "--kubeconfig"])
        .arg(kubeconfig)
        .env("MAESTRO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting `maestro operator run`")?;
    Ok(Engine(child))
}

/// A simulated cluster with no readiness delay, the engine running against it as a child
/// process, and KUDO's CRDs in place: what the operator benches measure on.
pub(crate) struct EngineCluster {
    pub sim: RunningSim,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub engine: Engine,
    /// Holds the kubeconfig and the engine's log.
    pub dir: tempfile::TempDir,
}

impl EngineCluster {
    pub(crate) async fn start(timeout: Duration) -> anyhow::Result<EngineCluster> {
        let dir = tempfile::tempdir()?;
        let sim = SimCluster::start(SimOptions { ready_delay: Duration::ZERO, ..SimOptions::default() }).await?;
        let client = sim.client()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, sim.kubeconfig())?;
        let engine = spawn_engine(&kubeconfig, &dir.path().join("engine.log"))?;
        wait_for_crds(&client, timeout).await?;
        Ok(EngineCluster { sim, client, kubeconfig, engine, dir })
    }

    /// Kills the engine, then stops the cluster.
    pub(crate) async fn stop(self) {
        drop(self.engine);
        let _ = self.sim.shutdown().await;
    }
}

pub async fn run(args: OperatorBenchArgs) -> anyhow::Result<()> {
    let zookeeper = read_path(&args.packages.join("zookeeper/operator"), &Limits::default())
        .with_context(|| format!("reading zookeeper from --packages {}", args.packages.display()))?;
    let cluster = EngineCluster::start(args.timeout).await?;
    let (client, dir, engine) = (&cluster.client, &cluster.dir, &cluster.engine);
    println!("maestro bench operator: simulated cluster (no readiness delay), engine pid {}", engine.0.id());

    let anchor = watch_latency(client, 200, args.timeout).await?;
    let steps = step_latency(client, dir.path(), args.steps, args.timeout).await?;
    println!(
        "  step to step        p50 {:.2} ms, p99 {:.2} ms over {} step changes (target p50 <= 5 ms; KUDO ~1000 ms per pass)",
        percentile(&steps, 0.5),
        percentile(&steps, 0.99),
        steps.len()
    );
    println!(
        "  anchor              API server write-to-watch p50 {:.2} ms, p99 {:.2} ms: step latency is {:.1}x it",
        percentile(&anchor, 0.5),
        percentile(&anchor, 0.99),
        percentile(&steps, 0.5) / percentile(&anchor, 0.5)
    );
    let deploys = deploy_latency(client, &zookeeper, args.deploys, args.timeout).await?;
    println!(
        "  zookeeper deploy    p50 {:.1} ms, max {:.1} ms over {} Instances, created to COMPLETE (target <= 150 ms)",
        percentile(&deploys, 0.5),
        percentile(&deploys, 1.0),
        deploys.len()
    );
    let idle = rss_mib(engine.0.id())?;
    let fleet = fleet(client, &zookeeper, args.instances, args.timeout.max(Duration::from_secs(300))).await?;
    let loaded = rss_mib(engine.0.id())?;
    println!(
        "  fleet               {} zookeeper Instances COMPLETE in {:.1} s (target <= 30 s for 500)",
        args.instances,
        fleet.as_secs_f64()
    );
    println!("  engine RSS          {idle:.1} MiB before the fleet, {loaded:.1} MiB with it (target <= 200 MiB)");
    cluster.stop().await;
    Ok(())
}

async fn wait_for_crds(client: &kube::Client, timeout: Duration) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kudo("Instance", "instances"));
    let deadline = Instant::now() + timeout;
    while api.list(&Default::default()).await.is_err() {
        if Instant::now() > deadline {
            bail!("the engine did not install KUDO's CRDs within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

pub(crate) async fn namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &core("Namespace", "namespaces", "", "v1"));
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    api.patch(name, &PatchParams::apply("bench"), &Patch::Apply(&object)).await?;
    Ok(())
}

pub(crate) async fn install(client: &kube::Client, package: &Package, ns: &str) -> anyhow::Result<String> {
    namespace(client, ns).await?;
    let (operator, version) = package.resources(ns);
    for (object, plural) in
        [(serde_json::to_value(&operator)?, "operators"), (serde_json::to_value(&version)?, "operatorversions")]
    {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kudo(&kind, plural));
        let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
        api.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&object)).await?;
    }
    Ok(version.metadata.name)
}

fn instance(name: &str, ns: &str, version: &str) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"operatorVersion": {"name": version}},
    }))?)
}

/// What a watch saw, with when: (name, completed, time).
type Seen = Arc<Mutex<Vec<(String, bool, Instant)>>>;

fn watch(
    api: Api<DynamicObject>,
    done: impl Fn(&DynamicObject) -> bool + Send + 'static,
) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher::watcher(api, watcher::Config::default()));
        while let Some(event) = stream.next().await {
            if let Ok(Event::Apply(object) | Event::InitApply(object)) = event {
                let name = object.metadata.name.clone().unwrap_or_default();
                if let Ok(mut seen) = sink.lock() {
                    seen.push((name, done(&object), Instant::now()));
                }
            }
        }
    });
    (seen, task)
}

/// The API server's own write-to-watch latency: ConfigMaps created one by one.
async fn watch_latency(client: &kube::Client, samples: usize, timeout: Duration) -> anyhow::Result<Vec<f64>> {
    namespace(client, "bench-anchor").await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "bench-anchor", &core("ConfigMap", "configmaps", "", "v1"));
    let (seen, task) = watch(api.clone(), |_| true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let name = format!("anchor-{i}");
        let object: DynamicObject = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}),
        )?;
        let start = Instant::now();
        api.create(&PostParams::default(), &object).await?;
        let deadline = start + timeout;
        loop {
            let at = seen.lock().ok().and_then(|s| s.iter().find(|(n, _, _)| *n == name).map(|(_, _, t)| *t));
            if let Some(at) = at {
                latencies.push(at.duration_since(start).as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() > deadline {
                bail!("the watch never saw {name}");
            }
            tokio::task::yield_now().await;
        }
    }
    task.abort();
    Ok(latencies)
}

/// A package of `steps` serial steps, one Job each.
fn probe_package(root: &Path, steps: usize) -> anyhow::Result<Package> {
    let dir = root.join("probe");
    std::fs::create_dir_all(dir.join("templates"))?;
    let mut operator = String::from("apiVersion: kudo.dev/v1beta1\nname: probe\noperatorVersion: \"1.0.0\"\ntasks:\n");
    let mut plan = String::from(
        "plans:\n  deploy:\n    strategy: serial\n    phases:\n      - name: main\n        strategy: serial\n        steps:\n",
    );
    for i in 0..steps {
        operator.push_str(&format!("  - name: t{i}\n    kind: Apply\n    spec:\n      resources: [job{i}.yaml]\n"));
        plan.push_str(&format!("          - name: s{i}\n            tasks: [t{i}]\n"));
        let job = format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{{{ .Name }}}}-s{i}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: c\n          image: busybox\n"
        );
        std::fs::write(dir.join("templates").join(format!("job{i}.yaml")), job)?;
    }
    std::fs::write(dir.join("operator.yaml"), operator + &plan)?;
    std::fs::write(dir.join("params.yaml"), "apiVersion: kudo.dev/v1beta1\nparameters: []\n")?;
    Ok(read_path(&dir, &Limits::default())?)
}

fn job_complete(object: &DynamicObject) -> bool {
    object
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| conditions.iter().any(|c| c["type"] == "Complete" && c["status"] == "True"))
}

fn plan_status(object: &DynamicObject) -> Option<&str> {
    object.data.pointer("/status/planStatus/deploy/status").and_then(Value::as_str)
}

/// Step latency: one Instance of the probe; the watch on its Jobs gives, for each step, when
/// its Job completed and when the next step's Job appeared.
async fn step_latency(client: &kube::Client, root: &Path, steps: usize, timeout: Duration) -> anyhow::Result<Vec<f64>> {
    let package = probe_package(root, steps)?;
    let ns = "bench-steps";
    let version = install(client, &package, ns).await?;
    let jobs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &core("Job", "jobs", "batch", "v1"));
    let (seen, task) = watch(jobs, job_complete);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let instances: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kudo("Instance", "instances"));
    instances.create(&PostParams::default(), &instance("probe", ns, &version)?).await?;
    wait_complete(&instances, &["probe".to_string()], timeout).await?;
    task.abort();
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let first =
        |name: &str, completed: bool| seen.iter().find(|(n, c, _)| n == name && (*c || !completed)).map(|(_, _, t)| *t);
    let mut latencies = Vec::new();
    for i in 0..steps.saturating_sub(1) {
        let (Some(done), Some(next)) =
            (first(&format!("probe-s{i}"), true), first(&format!("probe-s{}", i + 1), false))
        else {
            bail!("the watch missed step {i} or {}", i + 1);
        };
        latencies.push(next.saturating_duration_since(done).as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

/// Waits until every named Instance's deploy plan is COMPLETE; a FATAL_ERROR is an error.
async fn wait_complete(api: &Api<DynamicObject>, names: &[String], timeout: Duration) -> anyhow::Result<()> {
    let mut stream = std::pin::pin!(watcher::watcher(api.clone(), watcher::Config::default()));
    let mut status: BTreeMap<String, String> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if names.iter().all(|n| status.get(n).is_some_and(|s| s == "COMPLETE")) {
            return Ok(());
        }
        let event = tokio::time::timeout_at(deadline, stream.next()).await;
        let Ok(Some(event)) = event else {
            let done = status.values().filter(|s| *s == "COMPLETE").count();
            bail!("{done} of {} Instances COMPLETE within {timeout:?}", names.len());
        };
        if let Ok(Event::Apply(object) | Event::InitApply(object)) = event {
            let name = object.metadata.name.clone().unwrap_or_default();
            if let Some(state) = plan_status(&object) {
                if state == "FATAL_ERROR" {
                    bail!("instance {name}: deploy FATAL_ERROR: {}", object.data["status"]);
                }
                status.insert(name, state.to_string());
            }
        }
    }
}

/// zookeeper deploys one after another, each timed from create to COMPLETE.
async fn deploy_latency(
    client: &kube::Client,
    zookeeper: &Package,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<f64>> {
    let ns = "bench-deploy";
    let version = install(client, zookeeper, ns).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kudo("Instance", "instances"));
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("zk{i}");
        let start = Instant::now();
        api.create(&PostParams::default(), &instance(&name, ns, &version)?).await?;
        wait_complete(&api, &[name], timeout).await?;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

/// `count` zookeeper Instances created at once; the time until all are COMPLETE.
async fn fleet(
    client: &kube::Client,
    zookeeper: &Package,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let ns = "bench-fleet";
    let version = install(client, zookeeper, ns).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kudo("Instance", "instances"));
    let names: Vec<String> = (0..count).map(|i| format!("zk{i}")).collect();
    let start = Instant::now();
    let creates = futures::stream::iter(names.clone()).map(|name| {
        let api = api.clone();
        let object = instance(&name, ns, &version);
        async move { api.create(&PostParams::default(), &object?).await.map_err(anyhow::Error::from) }
    });
    let results: Vec<_> = creates.buffer_unordered(16).collect().await;
    results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    wait_complete(&api, &names, timeout).await?;
    Ok(start.elapsed())
}
