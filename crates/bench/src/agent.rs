//! `maestro bench agent`: the agent measured end to end, through a hub on SQLite with the
//! embedded broker and a simulated cluster. The agent runs as a child process (this binary's
//! `maestro agent`), so its memory is its own.
//!
//! Figures: apply throughput (manifests per second from the first POST until the last object
//! exists in the cluster), create-to-Available latency of single Deployments (POST until the
//! REST API shows `Available=True`, including the simulated readiness delay), and the agent's
//! resident memory idle and with all objects applied. A benchmark, not a test: it prints.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::api::ListParams;
use serde_json::{Value, json};

use maestro_hub::HubConfig;
use maestro_hub::api::auth::AuthConfig;
use maestro_hub::transport::TransportConfig;
use maestro_sim::{SimCluster, SimOptions};
use maestro_store::DbOptions;

const CONSUMER: &str = "bench1";
const API: &str = "/api/maestro/v1";

#[derive(Debug, Clone, clap::Args)]
pub struct AgentBenchArgs {
    /// Objects (ConfigMaps) applied for the throughput phase.
    #[arg(long, default_value_t = 1000)]
    pub objects: usize,
    /// Manifests per bundle in the throughput phase.
    #[arg(long, default_value_t = 10)]
    pub per_bundle: usize,
    /// Deployments created one after another for the latency phase.
    #[arg(long, default_value_t = 50)]
    pub latency_samples: usize,
    /// How long the simulated cluster takes to make a Deployment ready.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub ready_delay: Duration,
    /// Bound on every wait of the bench.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// A scratch directory removed when the bench ends.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let path = std::env::temp_dir().join(format!("maestro-bench-agent-{}", &unique[..12]));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the agent child when the bench ends, however it ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(args: AgentBenchArgs) -> anyhow::Result<()> {
    if args.objects == 0 || args.per_bundle == 0 || args.latency_samples == 0 {
        bail!("--objects, --per-bundle and --latency-samples must be at least 1");
    }
    let dir = TempDir::new()?;
    let hub_config = HubConfig {
        bind: ([127, 0, 0, 1], 0).into(),
        database_url: format!("sqlite://{}", dir.path().join("hub.db").display()),
        db: DbOptions { max_connections: 1, timeout: Duration::from_secs(30) },
        limits: Default::default(),
        auth: AuthConfig::default(),
        plugins: None,
    };
    let hub = maestro_hub::start_with_transport(hub_config, Some(TransportConfig::default())).await?;
    let broker = hub.broker_url().context("the hub runs the embedded broker")?.to_owned();
    hub.store.create_consumer(&uuid::Uuid::new_v4().to_string(), CONSUMER, &Default::default()).await?;
    let sim = SimCluster::start(SimOptions { ready_delay: args.ready_delay, ..Default::default() }).await?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig())?;
    let agent = ChildGuard(spawn_agent(&broker, &kubeconfig, dir.path())?);
    let pid = agent.0.id();
    let http = reqwest::Client::builder().tcp_nodelay(true).timeout(args.timeout).build()?;
    let base = format!("{}{API}", hub.url());

    // Idle: connected, resynced, nothing applied.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_mib(pid)?;

    let latencies = latency_phase(&http, &base, &args).await?;
    let (applied, elapsed) = throughput_phase(&http, &base, &sim, &args).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let loaded = rss_mib(pid)?;

    println!(
        "agent bench: hub on SQLite, embedded broker, one simulated cluster (ready delay {:?}), agent pid {pid}",
        args.ready_delay
    );
    println!(
        "  apply throughput     {:.0} manifests/s ({applied} ConfigMaps in {} bundles, {:.2} s from first POST to last object in the cluster)",
        applied as f64 / elapsed.as_secs_f64(),
        args.objects.div_ceil(args.per_bundle),
        elapsed.as_secs_f64()
    );
    println!(
        "  create-to-Available  p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} Deployments (readiness delay {:?} included)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 1.0),
        latencies.len(),
        args.ready_delay
    );
    println!(
        "  agent RSS            idle {idle:.1} MiB; with {} applied objects {loaded:.1} MiB",
        applied + args.latency_samples
    );
    drop(agent);
    let _ = sim.shutdown().await;
    hub.shutdown().await?;
    Ok(())
}

fn spawn_agent(broker: &str, kubeconfig: &Path, dir: &Path) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let log = std::fs::File::create(dir.join("agent.log"))?;
    Command::new(exe)
        .args(["agent", "--consumer", CONSUMER, "--mqtt-url", broker])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--data-dir")
        .arg(dir.join("agent"))
        .env("MAESTRO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting `maestro agent`")
}

/// Resident memory of a process, from /proc (Linux).
pub(crate) fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")?;
    Ok(kib / 1024.0)
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let reply = http.post(url).json(body).send().await?;
    let status = reply.status();
    let body: Value = reply.json().await?;
    if status.as_u16() != 201 {
        bail!("POST {url} answered {status}: {body}");
    }
    Ok(body)
}

/// One Deployment at a time: POST, then poll the resource until Available is True.
async fn latency_phase(http: &reqwest::Client, base: &str, args: &AgentBenchArgs) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(args.latency_samples);
    for i in 0..args.latency_samples {
        let name = format!("latency-{i}");
        let manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let started = Instant::now();
        let created =
            post(http, &format!("{base}/resources"), &json!({"consumer_name": CONSUMER, "manifest": manifest})).await?;
        let id = created["id"].as_str().context("id")?.to_owned();
        let url = format!("{base}/resources/{id}");
        loop {
            let resource: Value = http.get(&url).send().await?.json().await?;
            let conditions = &resource["status"]["ReconcileStatus"]["Conditions"];
            let available = conditions
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Available" && c["status"] == "True"));
            if available {
                break;
            }
            if started.elapsed() > args.timeout {
                bail!("{name} never became Available");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

/// Bundles of ConfigMaps, posted by 8 tasks; done when the cluster holds all of them.
async fn throughput_phase(
    http: &reqwest::Client,
    base: &str,
    sim: &maestro_sim::RunningSim,
    args: &AgentBenchArgs,
) -> anyhow::Result<(usize, Duration)> {
    let bundles: Vec<Value> = (0..args.objects)
        .collect::<Vec<_>>()
        .chunks(args.per_bundle)
        .enumerate()
        .map(|(b, items)| {
            let manifests: Vec<Value> = items
                .iter()
                .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("bench-{i}"), "namespace": "default"}, "data": {"i": i.to_string()}}))
                .collect();
            json!({"consumer_name": CONSUMER, "name": format!("bundle-{b}"), "manifests": manifests})
        })
        .collect();
    let config_maps = sim.config_maps("default")?;
    let started = Instant::now();
    let url = format!("{base}/resource-bundles");
    let posting = futures::stream::iter(bundles.into_iter().map(|bundle| {
        let (http, url) = (http.clone(), url.clone());
        async move { post(&http, &url, &bundle).await }
    }));
    use futures::StreamExt;
    let results: Vec<anyhow::Result<Value>> = posting.buffer_unordered(8).collect().await;
    for result in results {
        result?;
    }
    loop {
        let listed = config_maps.list_metadata(&ListParams::default()).await?;
        let ours =
            listed.items.iter().filter(|o| o.metadata.name.as_deref().is_some_and(|n| n.starts_with("bench-"))).count();
        if ours >= args.objects {
            return Ok((args.objects, started.elapsed()));
        }
        if started.elapsed() > args.timeout {
            bail!("only {ours} of {} ConfigMaps reached the cluster", args.objects);
        }
        // Listing a thousand objects costs the simulator too; 200 ms keeps that small.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}
