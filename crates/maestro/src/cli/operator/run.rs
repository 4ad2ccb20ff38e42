//! `maestro operator run`: the engine as a process of its own (KUDO's manager), against the
//! cluster of `--kubeconfig`, until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig of the cluster [default: $KUBECONFIG, ~/.kube/config, or the pod's service
    /// account].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Only the Instances of this namespace [default: all].
    #[arg(long, value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Leave KUDO's CRDs alone (they must exist).
    #[arg(long)]
    pub no_install_crds: bool,
    /// The longest a running plan goes without a pass when no watch event comes.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub resync: Duration,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let cluster = super::cluster::ClusterArgs { kubeconfig: args.kubeconfig.clone(), namespace: String::new() };
    let client = cluster.client().await?;
    let options = maestro_engine::Options {
        namespace: args.watch_namespace.clone(),
        install_crds: !args.no_install_crds,
        resync: args.resync,
        ..Default::default()
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    eprintln!("operator engine running; stop with Ctrl-C");
    maestro_engine::run(client, options, shutdown).await.context("the operator engine stopped")
}

/// The engine running beside something else (an agent, `maestro dev`'s clusters), stopped
/// with it.
pub struct EngineTask {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl EngineTask {
    /// Starts the engine for the cluster `client` reaches, with the default options.
    pub fn start(client: kube::Client, cluster: &str) -> EngineTask {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let cluster = cluster.to_string();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = maestro_engine::run(client, maestro_engine::Options::default(), shutdown).await {
                tracing::error!(%error, cluster, "the operator engine stopped");
            }
        });
        EngineTask { stop: Some(stop), task }
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.task.abort();
    }
}
