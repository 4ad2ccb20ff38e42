//! `maestro agent`, and the simulated clusters with their agents that `maestro dev` runs.

use std::path::{Path, PathBuf};

use anyhow::Context;

use maestro_agent::{Agent, AgentConfig, RunningAgent};

use super::operator::run::EngineTask;
use maestro_sim::{RunningSim, SimCluster, SimOptions};
use maestro_wire::mqtt::MqttConfig;

/// Runs one consumer's agent against a cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The consumer (cluster) this agent serves, as created on the hub.
    #[arg(long, env = "MAESTRO_CONSUMER")]
    pub consumer: String,
    /// Kubeconfig of the cluster [default: $KUBECONFIG, ~/.kube/config, or the pod's service
    /// account when running in a cluster].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The hub's MQTT 5 broker, mqtt://host:port or mqtts://host:port.
    #[arg(long, env = "MAESTRO_MQTT_URL", default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    #[command(flatten)]
    pub auth: crate::config::MqttAuthArgs,
    /// The `<source>` of the topics: the hub's --source.
    #[arg(long, env = "MAESTRO_SOURCE", default_value = "maestro")]
    pub source: String,
    /// Where the agent keeps its local store [default: $XDG_DATA_HOME/maestro or ~/.local/share/maestro].
    #[arg(long, env = "MAESTRO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory of WebAssembly plugins (status feedback, hooks, codecs), watched for changes.
    /// The hub's policies say which of them run for this consumer. Without it no plugin runs.
    #[arg(long, env = "MAESTRO_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Serve Prometheus `/metrics` and the `/healthz` and `/readyz` probes on this address
    /// (e.g. 0.0.0.0:8081 in a pod, as deploy/agent does). Off unless set, so several agents
    /// can run on one host; the endpoints are unauthenticated.
    #[arg(long, env = "MAESTRO_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Also run the universal operator for this cluster: Instances of KUDO packages (arriving
    /// as any manifest does) run their plans here, and their status flows back as feedback.
    #[arg(long, env = "MAESTRO_OPERATORS")]
    pub operators: bool,
}

impl AgentArgs {
    pub async fn agent_config(&self) -> anyhow::Result<AgentConfig> {
        let kube = super::operator::cluster::kube_config(self.kubeconfig.as_deref()).await?;
        let mqtt = self.auth.mqtt_config(self.mqtt_url.clone())?;
        let data_dir = self.data_dir.clone().unwrap_or_else(crate::config::default_data_dir);
        let mut config = AgentConfig::new(&self.consumer, mqtt, kube, data_dir);
        config.source = self.source.clone();
        config.plugins = self.plugin_dir.clone().map(maestro_plugins::PluginConfig::new);
        config.metrics_listen = self.metrics_listen;
        Ok(config)
    }
}

/// A fresh password for each of `maestro dev`'s agents, `cluster1..N`.
pub fn dev_broker_users(count: usize) -> std::collections::HashMap<String, String> {
    (1..=count).map(|i| (format!("cluster{i}"), uuid::Uuid::new_v4().simple().to_string())).collect()
}

/// Writes `maestro dev`'s broker users where an agent started by hand can read its password
/// (`<data-dir>/dev-broker-users`, `consumer:password` lines, readable by the owner only).
pub fn write_broker_users(
    data_dir: &Path,
    users: &std::collections::HashMap<String, String>,
) -> anyhow::Result<std::path::PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join("dev-broker-users");
    let mut lines: Vec<String> = users.iter().map(|(user, password)| format!("{user}:{password}\n")).collect();
    lines.sort();
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(lines.concat().as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The simulated clusters of `maestro dev`, each with its consumer and agent.
pub struct DevClusters {
    pub clusters: Vec<(RunningSim, RunningAgent)>,
    /// Each cluster's operator engine.
    engines: Vec<EngineTask>,
    /// Where each cluster's kubeconfig is (`<consumer>.kubeconfig`).
    kubeconfigs: PathBuf,
}

impl DevClusters {
    /// Starts `count` simulated clusters, creates consumers `cluster1..N` on the hub's store
    /// (keeping those that exist), and starts an agent for each on `broker`.
    pub async fn start(
        store: &maestro_store::Store,
        broker: &str,
        users: &std::collections::HashMap<String, String>,
        count: usize,
        data_dir: &Path,
    ) -> anyhow::Result<DevClusters> {
        let options = SimOptions { name: "cluster".into(), ..Default::default() };
        let sims = SimCluster::start_many(count, options).await.context("starting simulated clusters")?;
        let mut clusters = Vec::new();
        let mut engines = Vec::new();
        // kubectl and `maestro operator` reach each simulated cluster through these files.
        let kubeconfigs = data_dir.join("dev-clusters");
        std::fs::create_dir_all(&kubeconfigs).with_context(|| format!("creating {}", kubeconfigs.display()))?;
        for (i, sim) in sims.into_iter().enumerate() {
            let consumer = format!("cluster{}", i + 1);
            if store.get_consumer(&consumer).await.is_err() {
                let id = uuid::Uuid::new_v4().to_string();
                store.create_consumer(&id, &consumer, &Default::default()).await.context("creating consumer")?;
            }
            let mqtt = MqttConfig {
                username: Some(consumer.clone()),
                password: users.get(&consumer).cloned(),
                ..MqttConfig::new(broker.to_owned(), String::new())
            };
            let config = AgentConfig::new(&consumer, mqtt, sim.config()?, data_dir.join("dev-agents"));
            let agent = Agent::start(config).await.with_context(|| format!("starting the agent of {consumer}"))?;
            engines.push(EngineTask::start(sim.client()?, &consumer, Default::default()));
            let kubeconfig = kubeconfigs.join(format!("{consumer}.kubeconfig"));
            std::fs::write(&kubeconfig, sim.kubeconfig())
                .with_context(|| format!("writing {}", kubeconfig.display()))?;
            clusters.push((sim, agent));
        }
        Ok(DevClusters { clusters, engines, kubeconfigs })
    }

    /// Lines for the banner: each cluster's API server and kubeconfig hint.
    pub fn describe(&self) -> String {
        self.clusters
            .iter()
            .map(|(sim, agent)| {
                let kubeconfig = self.kubeconfigs.join(format!("{}.kubeconfig", agent.consumer()));
                format!(
                    "  {:<9} {}  (simulated Kubernetes API; agent and operator engine running)\n            kubeconfig {}\n",
                    agent.consumer(),
                    sim.url(),
                    kubeconfig.display()
                )
            })
            .collect()
    }

    pub async fn shutdown(self) {
        for engine in self.engines {
            engine.shutdown().await;
        }
        for (sim, agent) in self.clusters {
            agent.shutdown().await;
            let _ = sim.shutdown().await;
        }
    }
}
