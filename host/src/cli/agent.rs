//! `maestro agent`, and the simulated clusters with their agents that `maestro dev` runs.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::agent::{Agent, AgentConfig, RunningAgent};
use crate::sim::{RunningSim, SimCluster, SimOptions};
use crate::transport::mqtt::MqttConfig;

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
    /// Username at the broker.
    #[arg(long, env = "MAESTRO_MQTT_USERNAME")]
    pub mqtt_username: Option<String>,
    /// File holding the broker password (first line); never logged.
    #[arg(long, env = "MAESTRO_MQTT_PASSWORD_FILE")]
    pub mqtt_password_file: Option<PathBuf>,
    /// PEM CA bundle that signs the broker's certificate (mqtts://).
    #[arg(long, env = "MAESTRO_MQTT_CA_FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that require one (with --mqtt-key-file).
    #[arg(long, env = "MAESTRO_MQTT_CERT_FILE")]
    pub mqtt_cert_file: Option<PathBuf>,
    /// PEM key of --mqtt-cert-file.
    #[arg(long, env = "MAESTRO_MQTT_KEY_FILE")]
    pub mqtt_key_file: Option<PathBuf>,
    /// The `<source>` of the topics: the hub's --source.
    #[arg(long, env = "MAESTRO_SOURCE", default_value = "maestro")]
    pub source: String,
    /// Where the agent keeps its local store [default: $XDG_DATA_HOME/maestro or ~/.local/share/maestro].
    #[arg(long, env = "MAESTRO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl AgentArgs {
    pub async fn agent_config(&self) -> anyhow::Result<AgentConfig> {
        let kube = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("--kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .with_context(|| format!("--kubeconfig {}", path.display()))?
            }
            None => kube::Config::infer()
                .await
                .context("no cluster found: set --kubeconfig or KUBECONFIG, or run in a pod")?,
        };
        let password = match &self.mqtt_password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("--mqtt-password-file {}", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => None,
        };
        let mqtt = MqttConfig {
            username: self.mqtt_username.clone(),
            password,
            ca_file: self.mqtt_ca_file.clone(),
            cert_file: self.mqtt_cert_file.clone(),
            key_file: self.mqtt_key_file.clone(),
            ..MqttConfig::new(self.mqtt_url.clone(), String::new())
        };
        let data_dir = self.data_dir.clone().unwrap_or_else(crate::config::default_data_dir);
        let mut config = AgentConfig::new(&self.consumer, mqtt, kube, data_dir);
        config.source = self.source.clone();
        Ok(config)
    }
}

/// The simulated clusters of `maestro dev`, each with its consumer and agent.
pub struct DevClusters {
    pub clusters: Vec<(RunningSim, RunningAgent)>,
}

impl DevClusters {
    /// Starts `count` simulated clusters, creates consumers `cluster1..N` on the hub's store
    /// (keeping those that exist), and starts an agent for each on `broker`.
    pub async fn start(
        store: &crate::store::Store,
        broker: &str,
        count: usize,
        data_dir: &Path,
    ) -> anyhow::Result<DevClusters> {
        let options = SimOptions { name: "cluster".into(), ..Default::default() };
        let sims = SimCluster::start_many(count, options).await.context("starting simulated clusters")?;
        let mut clusters = Vec::new();
        for (i, sim) in sims.into_iter().enumerate() {
            let consumer = format!("cluster{}", i + 1);
            if store.get_consumer(&consumer).await.is_err() {
                let id = uuid::Uuid::new_v4().to_string();
                store.create_consumer(&id, &consumer, &Default::default()).await.context("creating consumer")?;
            }
            let config = AgentConfig::new(
                &consumer,
                MqttConfig::new(broker.to_owned(), String::new()),
                sim.config()?,
                data_dir.join("dev-agents"),
            );
            let agent = Agent::start(config).await.with_context(|| format!("starting the agent of {consumer}"))?;
            clusters.push((sim, agent));
        }
        Ok(DevClusters { clusters })
    }

    /// Lines for the banner: each cluster's API server and kubeconfig hint.
    pub fn describe(&self) -> String {
        self.clusters
            .iter()
            .map(|(sim, agent)| {
                format!("  {:<9} {}  (simulated Kubernetes API; agent running)\n", agent.consumer(), sim.url())
            })
            .collect()
    }

    pub async fn shutdown(self) {
        for (sim, agent) in self.clusters {
            agent.shutdown().await;
            let _ = sim.shutdown().await;
        }
    }
}
