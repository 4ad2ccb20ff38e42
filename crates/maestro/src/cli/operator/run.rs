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
    /// Serve Prometheus `/metrics` on this address (e.g. 0.0.0.0:8082 in a pod); off unless
    /// set. Unauthenticated.
    #[arg(long, env = "MAESTRO_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
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
    if let Some(addr) = args.metrics_listen {
        let served = serve_metrics(addr, &options.metrics).await?;
        eprintln!("metrics on http://{served}/metrics");
    }
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
    /// Starts the engine for the cluster `client` reaches, with the default options, counting
    /// into `metrics`.
    pub fn start(client: kube::Client, cluster: &str, metrics: maestro_engine::metrics::Metrics) -> EngineTask {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let cluster = cluster.to_string();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let options = maestro_engine::Options { metrics, ..maestro_engine::Options::default() };
            if let Err(error) = maestro_engine::run(client, options, shutdown).await {
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

/// Serves the engine's metrics on `addr` until the process ends; returns the bound address.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: &maestro_engine::metrics::Metrics,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("--metrics-listen {addr}"))?;
    let bound = listener.local_addr()?;
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let registry = std::sync::Arc::new(registry);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &registry) {
                    Ok(()) => (
                        axum::http::StatusCode::OK,
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    ),
                    Err(err) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(axum::http::header::CONTENT_TYPE, "text/plain")],
                        err.to_string(),
                    ),
                }
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the operator engine's metrics endpoint stopped");
        }
    });
    Ok(bound)
}
