//! `maestro sim-cluster`: serves simulated Kubernetes clusters (see `maestro_sim`) until stopped,
//! writing a kubeconfig for each so `kubectl` and the agent can use them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use maestro_sim::{RunningSim, SimCluster, SimOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct SimClusterArgs {
    /// Address of the first cluster's API; port 0 picks free ports. With --clusters N and a
    /// fixed port P, the clusters listen on P, P+1, ... P+N-1.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// How many clusters to simulate in this process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub clusters: u32,
    /// How long Deployments, StatefulSets and DaemonSets take to become ready after each
    /// change, and Jobs to finish (e.g. 2s, 500ms, 0s).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub ready_delay: Duration,
    /// Write one kubeconfig per cluster here, named <cluster>.kubeconfig (the directory is created).
    #[arg(long)]
    pub kubeconfig_dir: Option<PathBuf>,
    /// Cluster name (with several clusters, the prefix of sim-1, sim-2, ...).
    #[arg(long, default_value = "sim")]
    pub name: String,
    /// Events each cluster keeps for watches to resume from; older resourceVersions get 410 Expired.
    #[arg(long, default_value_t = 10_000)]
    pub watch_history: usize,
    /// Instead of serving, measure: server-side apply this many Deployments into every cluster
    /// through `kube`, wait until all are ready, print the figures and exit.
    #[arg(long, value_name = "DEPLOYMENTS_PER_CLUSTER")]
    pub bench: Option<usize>,
    /// Concurrent applies during --bench.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub bench_concurrency: u32,
}

impl SimClusterArgs {
    fn options(&self) -> SimOptions {
        SimOptions {
            bind: self.listen,
            name: self.name.clone(),
            ready_delay: self.ready_delay,
            watch_history: self.watch_history,
            ..SimOptions::default()
        }
    }
}

async fn start(args: &SimClusterArgs) -> anyhow::Result<Vec<RunningSim>> {
    let options = args.options();
    if args.clusters == 1 {
        return Ok(vec![SimCluster::start(options).await?]);
    }
    if args.listen.port() == 0 {
        return Ok(SimCluster::start_many(args.clusters as usize, options).await?);
    }
    let mut clusters = Vec::new();
    for i in 0..args.clusters {
        let port = u16::try_from(u32::from(args.listen.port()) + i).map_err(|_| {
            anyhow::anyhow!("--listen port {} + {} clusters runs past 65535", args.listen.port(), args.clusters)
        })?;
        let bind = SocketAddr::new(args.listen.ip(), port);
        let options = SimOptions { bind, name: format!("{}-{}", args.name, i + 1), ..options.clone() };
        match SimCluster::start(options).await {
            Ok(sim) => clusters.push(sim),
            Err(err) => {
                for sim in clusters {
                    let _ = sim.shutdown().await;
                }
                return Err(err.into());
            }
        }
    }
    Ok(clusters)
}

/// Starts the clusters, prints one line per cluster (`<name> <url> [<kubeconfig>]`), and serves
/// until `stop` completes.
pub async fn run(args: SimClusterArgs, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    if let Some(per_cluster) = args.bench {
        return bench(&args, per_cluster).await;
    }
    let clusters = start(&args).await?;
    if let Some(dir) = &args.kubeconfig_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("--kubeconfig-dir {}", dir.display()))?;
    }
    for sim in &clusters {
        let mut line = format!("{} {}", sim.name(), sim.url());
        if let Some(dir) = &args.kubeconfig_dir {
            let path = dir.join(format!("{}.kubeconfig", sim.name()));
            std::fs::write(&path, sim.kubeconfig()).with_context(|| format!("writing {}", path.display()))?;
            line.push_str(&format!(" {}", path.display()));
        }
        println!("{line}");
    }
    eprintln!(
        "{} simulated cluster(s) serving; ready delay {}. Stop with Ctrl-C.",
        clusters.len(),
        humantime::format_duration(args.ready_delay)
    );
    stop.await;
    for sim in clusters {
        sim.shutdown().await.context("stopping a simulated cluster")?;
    }
    Ok(())
}

fn deployment(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0", "ports": [{"containerPort": 8080}]}]}
            }
        }
    })
}

fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `--bench`: start the clusters, apply Deployments into each over HTTP, wait for readiness.
async fn bench(args: &SimClusterArgs, per_cluster: usize) -> anyhow::Result<()> {
    use futures::StreamExt;
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};
    use std::time::Instant;

    let rss_before = resident_mib().unwrap_or(0.0);
    let started = Instant::now();
    let clusters = start(args).await?;
    let start_time = started.elapsed();
    let rss_started = resident_mib().unwrap_or(0.0);
    let clients = clusters.iter().map(RunningSim::client).collect::<Result<Vec<_>, _>>()?;
    let jobs: Vec<(usize, usize)> = (0..clusters.len()).flat_map(|c| (0..per_cluster).map(move |i| (c, i))).collect();
    let total = jobs.len();
    let applying = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = futures::stream::iter(jobs)
        .map(|(c, i)| {
            let api: Api<Deployment> = Api::namespaced(clients[c].clone(), "default");
            async move {
                let name = format!("app-{i}");
                let one = Instant::now();
                let patch = Patch::Apply(deployment(&name));
                tokio::time::timeout(Duration::from_secs(30), api.patch(&name, &PatchParams::apply("bench"), &patch))
                    .await
                    .context("apply timed out")??;
                Ok(one.elapsed())
            }
        })
        .buffer_unordered(args.bench_concurrency as usize)
        .collect()
        .await;
    let apply_time = applying.elapsed();
    let mut latencies = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    latencies.sort();
    let deadline = Instant::now() + Duration::from_secs(300);
    for client in &clients {
        let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
        loop {
            let list = api.list(&Default::default()).await?;
            let ready =
                list.items.iter().filter(|d| d.status.as_ref().and_then(|s| s.ready_replicas) == Some(2)).count();
            if ready == per_cluster {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "Deployments not ready after 5 minutes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let all_ready = applying.elapsed();
    let rss_end = resident_mib().unwrap_or(0.0);
    println!("clusters                 {}", clusters.len());
    println!(
        "start                    {:.1} ms ({:.2} ms per cluster)",
        start_time.as_secs_f64() * 1e3,
        start_time.as_secs_f64() * 1e3 / clusters.len() as f64
    );
    println!(
        "memory, started          {:.1} MiB ({:.1} KiB per idle cluster)",
        rss_started,
        (rss_started - rss_before) * 1024.0 / clusters.len() as f64
    );
    println!(
        "server-side applies      {total} in {:.2} s: {:.0}/s with {} concurrent",
        apply_time.as_secs_f64(),
        total as f64 / apply_time.as_secs_f64(),
        args.bench_concurrency
    );
    println!(
        "apply latency            p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 1.0).as_secs_f64() * 1e3
    );
    println!(
        "all ready after          {:.2} s (ready delay {})",
        all_ready.as_secs_f64(),
        humantime::format_duration(args.ready_delay)
    );
    println!("memory, end              {:.1} MiB", rss_end);
    for sim in clusters {
        sim.shutdown().await.context("stopping a simulated cluster")?;
    }
    Ok(())
}
