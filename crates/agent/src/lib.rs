//! The agent: runs on (or beside) a managed cluster, receives its consumer's bundles from the
//! hub and applies them through the Kubernetes API, then reports their status back.
//!
//! - `maestro_model::config` reads a bundle (strategies, feedback rules, drift policy, delete option);
//! - [`apply`] writes manifests with `kube` (discovery, then the dynamic API: any kind works);
//! - [`watch`] watches what was applied; [`reconcile`] turns spec events, watch events and
//!   retries into writes and statuses; [`status`] and [`jsonpath`] build the status OCM's work
//!   agent would send; [`drift`] decides whether a live object still matches its manifest;
//! - [`local`] is the durable local store (SQLite): what was applied, statuses not yet sent;
//! - [`link`] connects it all to the hub through the transport (MQTT 5, CloudEvents).

pub mod apply;
pub mod drift;
pub mod jsonpath;
pub mod link;
pub mod local;
pub mod metrics;
pub mod reconcile;
pub mod shared;
pub mod status;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tracing::Instrument;

use link::{Identity, LinkCounters};
use local::{LocalError, LocalStore};
use maestro_plugins::PluginRuntime;
use maestro_wire::mqtt::{MqttConfig, MqttError, MqttLink};
use maestro_wire::wire;
use reconcile::{Counters, Reconciler};

/// How `maestro agent` (or a test, or `maestro dev`) runs one agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The consumer (cluster) this agent serves; its topics carry this name.
    pub consumer: String,
    /// The `<source>` of the topics, `maestro` unless the hub says otherwise.
    pub source: String,
    /// The broker; an empty `client_id` gets a unique one.
    pub mqtt: MqttConfig,
    /// The cluster's API server.
    pub kube: kube::Config,
    /// Where the local store lives (`agent-<consumer>.db`).
    pub data_dir: PathBuf,
    /// Feedback values longer than this many bytes are cut (see [`status::TRUNCATION_MARKER`]).
    pub value_cap: usize,
    /// The agent's plugin directory; without it no plugin runs on this agent.
    pub plugins: Option<maestro_plugins::PluginConfig>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; none when `None`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Series of what runs beside the agent, served on its `/metrics` too.
    pub metrics_beside: Option<metrics::Beside>,
}

impl AgentConfig {
    pub fn new(consumer: &str, mqtt: MqttConfig, kube: kube::Config, data_dir: PathBuf) -> AgentConfig {
        AgentConfig {
            consumer: consumer.to_owned(),
            source: "maestro".to_owned(),
            mqtt,
            kube,
            data_dir,
            value_cap: status::DEFAULT_VALUE_CAP,
            plugins: None,
            metrics_listen: None,
            metrics_beside: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("consumer name {0:?} must be non-empty and free of '/', '+' and '#' (it is part of MQTT topics)")]
    Consumer(String),
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("MQTT: {0}")]
    Mqtt(#[from] MqttError),
    #[error("--metrics-listen {addr}: {source}")]
    Metrics { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("plugins: {0}")]
    Plugins(#[from] maestro_plugins::PluginError),
}

pub struct Agent;

impl Agent {
    /// Opens the local store, connects to the cluster and the broker, and starts serving:
    /// stored bundles are applied again, then the hub is asked to resync.
    pub async fn start(config: AgentConfig) -> Result<RunningAgent, AgentError> {
        let consumer = config.consumer.clone();
        if consumer.is_empty() || consumer.contains(['/', '+', '#']) {
            return Err(AgentError::Consumer(consumer));
        }
        let client = kube::Client::try_from(config.kube)?;
        // Bound first, so a taken address stops the start before anything connects.
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some((
                addr,
                tokio::net::TcpListener::bind(addr).await.map_err(|source| AgentError::Metrics { addr, source })?,
            )),
            None => None,
        };
        // Status feedback, hooks and codecs run here when the agent has a plugin directory.
        let plugins = match &config.plugins {
            Some(plugin_config) => Some(PluginRuntime::start(plugin_config.clone()).await?),
            None => None,
        };
        let local = LocalStore::open(&config.data_dir.join(format!("agent-{consumer}.db"))).await?;
        let outbox = Arc::new(Notify::new());
        let counters = Arc::new(Counters::default());
        let link_counters = Arc::new(LinkCounters::default());
        let span = tracing::info_span!("agent", consumer = %consumer);

        let (mut reconciler, feeds) =
            Reconciler::new(client.clone(), local.clone(), outbox.clone(), config.value_cap, counters.clone());
        let agent_plugins = plugins.as_ref().map(|runtime| link::AgentPlugins {
            runtime: runtime.clone(),
            saved: config.data_dir.join(format!("agent-{consumer}.policies.json")),
        });
        let consumer_labels = link::ConsumerLabels::default();
        if let Some(agent_plugins) = &agent_plugins {
            if let Some(saved) = agent_plugins.load().await {
                agent_plugins.runtime.set_stored_policies(saved.policies);
                consumer_labels.set(saved.consumer_labels.into_iter().collect());
            }
            reconciler = reconciler.with_plugins(&consumer, agent_plugins.runtime.clone(), consumer_labels.clone());
        }
        let (inputs_tx, inputs_rx) = mpsc::channel(1024);
        let reconcile = tokio::spawn(reconciler.run(inputs_rx, feeds).instrument(span.clone()));

        let mut mqtt = config.mqtt;
        if mqtt.client_id.is_empty() {
            let unique = uuid::Uuid::new_v4().simple().to_string();
            mqtt.client_id = format!("{consumer}-agent-{}", &unique[..12]);
        }
        let codecs = maestro_wire::codec::Codecs::new(plugins.clone());
        let identity =
            Identity { source: config.source.clone(), consumer: consumer.clone(), codecs, labels: consumer_labels };
        let (incoming_tx, incoming) = mpsc::channel(1024);
        let topic = wire::source_events_topic(&config.source, &consumer);
        let link = Arc::new(MqttLink::start(&mqtt, vec![topic], incoming_tx)?);
        let metrics = metrics_listener.map(|(addr, listener)| {
            let sources = metrics::Sources {
                beside: config.metrics_beside.clone(),
                counters: counters.clone(),
                link_counters: link_counters.clone(),
                connection: link.state(),
                local: local.clone(),
                client,
            };
            let _entered = span.enter();
            metrics::MetricsServer::start(listener, sources).map_err(|source| AgentError::Metrics { addr, source })
        });
        let metrics = metrics.transpose()?;
        let receive = tokio::spawn(
            link::receive(identity.clone(), incoming, inputs_tx, link_counters.clone(), agent_plugins)
                .instrument(span.clone()),
        );
        let publish = tokio::spawn(
            link::publish(identity, link.clone(), local.clone(), outbox, link_counters.clone(), plugins.is_some())
                .instrument(span),
        );
        tracing::info!(consumer = %consumer, broker = %mqtt.url, source = %config.source, "agent started");
        Ok(RunningAgent {
            consumer,
            link,
            local,
            receive,
            publish,
            reconcile,
            counters,
            link_counters,
            plugins,
            metrics,
        })
    }
}

/// A running agent; [`RunningAgent::shutdown`] stops it (what it applied stays applied).
pub struct RunningAgent {
    consumer: String,
    link: Arc<MqttLink>,
    local: LocalStore,
    receive: JoinHandle<()>,
    publish: JoinHandle<()>,
    reconcile: JoinHandle<()>,
    counters: Arc<Counters>,
    link_counters: Arc<LinkCounters>,
    plugins: Option<Arc<PluginRuntime>>,
    metrics: Option<metrics::MetricsServer>,
}

impl RunningAgent {
    /// Where `/metrics`, `/healthz` and `/readyz` are served, when they are.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(metrics::MetricsServer::addr)
    }

    /// The agent's plugin runtime, when it has a plugin directory.
    pub fn plugins(&self) -> Option<&Arc<PluginRuntime>> {
        self.plugins.as_ref()
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Waits until connected and subscribed to the broker.
    pub async fn connected(&self, timeout: Duration) -> Result<(), MqttError> {
        self.link.connected(timeout).await
    }

    /// Spec events dropped because they could not be read.
    pub fn malformed_events(&self) -> u64 {
        self.link_counters.malformed_events.load(Ordering::Relaxed)
    }

    /// Plugin policy updates received from the hub and put in force.
    pub fn policy_updates(&self) -> u64 {
        self.link_counters.policy_updates.load(Ordering::Relaxed)
    }

    pub fn statuses_sent(&self) -> u64 {
        self.link_counters.statuses_sent.load(Ordering::Relaxed)
    }

    /// Writes to the API server so far (each manifest apply, including drift corrections).
    pub fn applies(&self) -> u64 {
        self.counters.applies.load(Ordering::Relaxed)
    }

    pub fn drift_corrections(&self) -> u64 {
        self.counters.drift_corrections.load(Ordering::Relaxed)
    }

    /// Stops receiving, lets the reconciler finish what it is doing (up to 10 s), then
    /// disconnects. Statuses not yet acknowledged stay in the local store for the next start.
    pub async fn shutdown(self) {
        if let Some(metrics) = self.metrics {
            metrics.stop().await;
        }
        self.receive.abort();
        let _ = self.receive.await;
        let mut reconcile = self.reconcile;
        if tokio::time::timeout(Duration::from_secs(10), &mut reconcile).await.is_err() {
            reconcile.abort();
        }
        self.publish.abort();
        let _ = self.publish.await;
        match Arc::try_unwrap(self.link) {
            Ok(link) => link.close().await,
            Err(link) => drop(link),
        }
        self.local.close().await;
        tracing::info!(consumer = %self.consumer, "agent stopped");
    }
}
