//! `maestro sim-cluster`: serves simulated Kubernetes clusters (see `crate::sim`) until stopped,
//! writing a kubeconfig for each so `kubectl` and the agent can use them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::sim::{RunningSim, SimCluster, SimOptions};

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
