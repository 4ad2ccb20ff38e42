//! The transport: connects the hub to its agents with CloudEvents over MQTT 5, in exactly the
//! protocol of open-cluster-management's Maestro and its work agents.
//!
//! ```text
//! REST write ─▶ bundle + outbox row (one transaction) ─▶ NOTIFY / in-process poke
//!     dispatcher: claim rows (FOR UPDATE SKIP LOCKED) ─▶ publish the bundle's current state
//!                 to sources/<source>/consumers/<consumer>/sourceevents (QoS 1)
//!                 ─▶ every PUBACK in ─▶ delete the rows, commit
//!     agent applies, publishes status to .../agentevents (QoS 1)
//!     ingest ($share/<group>/sources/<source>/consumers/+/agentevents): newer sequence id and
//!            current version only ─▶ resource_bundles.status; `Deleted` ─▶ purge (two-phase delete)
//!     resync: agent's spec.resync_request ─▶ re-send what is newer or deleting;
//!             hub's status.resync_request (start, reconnect) ─▶ agents re-send differing statuses
//!     confirm: a change unconfirmed past --confirm-after ─▶ asked again (status, delete)
//!     plugin policies (Maestro's own types): agent's policies.resync_request, or a row of the
//!             policy outbox (queued with a policy or consumer-label change) ─▶
//!             policies.update_request to the consumers concerned (`policies`)
//! ```
//!
//! Modules: [`wire`] (event types, topics, payloads, the MQTT 5 binding of `cloudevents-sdk`),
//! [`mqtt`] (one connection with awaitable acks and reconnects), [`agent_link`] (the agent's
//! API), [`broker`] (the embedded broker), [`codec`] (codec plugins around event data, named
//! in `maestrocodec`), and the hub's [`dispatcher`], [`ingest`], [`resync`], [`confirm`].
//!
//! Delivery is at least once and duplicates are harmless: both sides compare
//! `resourceversion` (spec) and `sequenceid` (status) and drop what is not newer.

pub mod confirm;
pub mod dispatcher;
pub mod error;
pub mod ingest;
pub mod metrics;
pub mod policies;
pub mod resync;

/// The protocol and the connection are the wire crate's; the hub's side of the transport
/// (dispatcher, ingest, resyncs, policy pushes) is here.
pub use maestro_wire::{agent_link, broker, codec, mqtt, wire};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use broker::{BrokerError, EmbeddedBroker};
use dispatcher::{DispatchOptions, Dispatcher};
use ingest::Ingest;
use maestro_store::Store;
use metrics::TransportMetrics;
use mqtt::{MqttConfig, MqttError, MqttLink};
use policies::PolicyPush;
use resync::{Resync, ResyncLimits};

/// The hubs' shared-subscription group when none is configured. Well known, so any client
/// allowed to subscribe could join it: deployments with credentials set a secret one.
pub const DEFAULT_SHARE_GROUP: &str = "maestro-hubs";

/// The user the hub logs in to its embedded broker as; no consumer may have this name.
pub const EMBEDDED_HUB_USER: &str = "maestro-hub";

/// The embedded broker's users: the agents', and the hub's own with a fresh random password
/// (never stored or logged; it lives as long as the process).
fn embedded_access(mut users: std::collections::HashMap<String, String>) -> maestro_wire::broker::BrokerAccess {
    let password = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    users.insert(EMBEDDED_HUB_USER.to_string(), password);
    maestro_wire::broker::BrokerAccess { users, hub_user: EMBEDDED_HUB_USER.to_string() }
}

/// What the hub subscribes to for agent events: a shared subscription among the hubs of
/// `group`, or (empty group, one hub) a plain one, which no other client can take a share of.
pub fn agent_events_subscription(group: &str, source: &str) -> String {
    let topics = wire::all_agent_events_filter(source);
    if group.is_empty() { topics } else { format!("$share/{group}/{topics}") }
}

/// How the hub reaches its agents.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// An external broker; `None` runs the embedded one.
    pub mqtt: Option<MqttConfig>,
    /// Where the embedded broker listens; `None` picks a free loopback port.
    pub listen: Option<SocketAddr>,
    /// The embedded broker's agents (consumer name to password): with it the broker requires a
    /// login and keeps each agent to its own consumer's topics (the hub logs in with a password
    /// of its own, made at start); without it the broker is anonymous and open.
    pub embedded_users: Option<std::collections::HashMap<String, String>>,
    /// The `<source>` of the topics (Maestro's default is `maestro`).
    pub source: String,
    /// Shared-subscription group of the hubs that split agent events between them.
    pub share_group: String,
    pub resync: ResyncLimits,
    pub dispatch_batch: i64,
    /// Agent events with a larger payload are dropped unread.
    pub max_status_bytes: usize,
    pub poll_interval: Duration,
    pub ack_timeout: Duration,
    /// Besides every (re)connect, the hub asks agents for statuses this often: a status that
    /// was in flight to a hub that died is recovered by the next request of a live one.
    pub status_resync_interval: Duration,
    /// A change an agent has not confirmed for this long is asked for again (`confirm`); zero
    /// turns that off.
    pub confirm_after: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            mqtt: None,
            listen: None,
            embedded_users: None,
            source: "maestro".into(),
            share_group: DEFAULT_SHARE_GROUP.into(),
            resync: ResyncLimits::default(),
            dispatch_batch: 500,
            max_status_bytes: 4 * 1024 * 1024,
            poll_interval: Duration::from_secs(2),
            ack_timeout: Duration::from_secs(30),
            status_resync_interval: Duration::from_secs(300),
            confirm_after: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("MQTT: {0}")]
    Mqtt(#[from] MqttError),
}

/// The running transport of one hub.
pub struct Transport {
    /// The broker this hub uses, as `mqtt://host:port` (agents connect to the same one).
    pub broker_url: String,
    link: Arc<MqttLink>,
    broker: Option<EmbeddedBroker>,
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
    others: Vec<JoinHandle<()>>,
}

impl Transport {
    pub async fn start(
        config: &TransportConfig,
        store: Arc<Store>,
        metrics: TransportMetrics,
        codecs: codec::Codecs,
    ) -> Result<Transport, TransportError> {
        let client_id = format!("maestro-hub-{}-{}", config.source, &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let (broker, mqtt) = match &config.mqtt {
            Some(mqtt) => (None, MqttConfig { client_id: client_id.clone(), ..mqtt.clone() }),
            None => {
                let access = config.embedded_users.clone().map(embedded_access);
                let broker = EmbeddedBroker::start(config.listen, access.clone()).await?;
                let mut mqtt = MqttConfig::new(broker.url(), client_id.clone());
                if let Some(access) = access {
                    mqtt.password = access.users.get(&access.hub_user).cloned();
                    mqtt.username = Some(access.hub_user);
                }
                (Some(broker), mqtt)
            }
        };
        let filter = agent_events_subscription(&config.share_group, &config.source);
        if config.share_group == DEFAULT_SHARE_GROUP && config.mqtt.as_ref().is_some_and(|m| m.username.is_some()) {
            tracing::warn!(
                group = DEFAULT_SHARE_GROUP,
                "the hubs' shared-subscription group is the well-known default: \
                a client that may subscribe can join it and take a share of every consumer's statuses; \
                set --mqtt-share-group-file to a secret (or --mqtt-share-group \"\" with a single hub)"
            );
        }
        let (tx, rx) = mpsc::channel(1024);
        let link = Arc::new(MqttLink::start(&mqtt, vec![filter], tx)?);
        let resync = Arc::new(Resync {
            spec_requests: Default::default(),
            store: store.clone(),
            link: link.clone(),
            metrics: metrics.clone(),
            source: config.source.clone(),
            limits: config.resync,
            ack_timeout: config.ack_timeout,
            codecs: codecs.clone(),
        });
        let policies = Arc::new(PolicyPush {
            store: store.clone(),
            link: link.clone(),
            metrics: metrics.clone(),
            source: config.source.clone(),
            ack_timeout: config.ack_timeout,
            turn: Default::default(),
        });
        let ingest = Ingest {
            policies: policies.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            resync: resync.clone(),
            source: config.source.clone(),
            max_payload_bytes: config.max_status_bytes,
            codecs: codecs.clone(),
        };
        let dispatcher = Dispatcher {
            store,
            link: link.clone(),
            policies: policies.clone(),
            metrics: metrics.clone(),
            options: DispatchOptions {
                source: config.source.clone(),
                batch: config.dispatch_batch,
                ack_timeout: config.ack_timeout,
                poll_interval: config.poll_interval,
            },
            codecs,
        };
        let (stop, stopped) = watch::channel(false);
        let dispatcher = tokio::spawn(dispatcher.run(stopped));
        let mut others = vec![tokio::spawn(ingest.run(rx))];
        if !config.confirm_after.is_zero() {
            let confirm = confirm::Confirm { resync: resync.clone(), after: config.confirm_after };
            others.push(tokio::spawn(confirm.run(link.state())));
        }
        others.push(tokio::spawn(watch_connection(link.clone(), resync, metrics, config.status_resync_interval)));
        tracing::info!(broker = %mqtt.url, source = %config.source, client_id, "transport started");
        Ok(Transport { broker_url: mqtt.url, link, broker, stop, dispatcher, others })
    }

    /// The broker connection's state; a new `generation` is a reconnect.
    pub fn state(&self) -> watch::Receiver<mqtt::ConnectionState> {
        self.link.state()
    }

    /// Waits until connected and subscribed to the broker.
    pub async fn connected(&self, timeout: Duration) -> Result<(), MqttError> {
        self.link.connected(timeout).await
    }

    /// Lets the dispatcher finish or give back its claim, then disconnects and stops the
    /// embedded broker. Rows not dispatched stay in the outbox for the next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut dispatcher = self.dispatcher;
        if tokio::time::timeout(Duration::from_secs(10), &mut dispatcher).await.is_err() {
            dispatcher.abort();
        }
        for task in &self.others {
            task.abort();
        }
        match Arc::try_unwrap(self.link) {
            Ok(link) => link.close().await,
            Err(link) => drop(link),
        }
        if let Some(broker) = self.broker {
            broker.stop();
        }
    }
}

/// After every (re)connect and every `interval`: the connection metrics, and a status resync
/// so that statuses sent while the hub was away (or to a hub that died) are not lost.
async fn watch_connection(link: Arc<MqttLink>, resync: Arc<Resync>, metrics: TransportMetrics, interval: Duration) {
    let interval = interval.max(Duration::from_secs(1));
    let mut state = link.state();
    let mut seen = 0;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = *state.borrow_and_update();
        metrics.broker_connected.set(i64::from(now.connected));
        let reconnected = now.connected && now.generation != seen;
        if reconnected {
            seen = now.generation;
            metrics.broker_connects.inc();
        }
        if reconnected {
            let resync = resync.clone();
            tokio::spawn(async move {
                if let Err(err) = resync.request_status_resync().await {
                    tracing::warn!(error = %err, "status resync request failed; retried after the next reconnect");
                }
            });
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            _ = ticker.tick() => {
                if state.borrow().connected
                    && let Err(err) = resync.request_status_resync().await
                {
                    tracing::warn!(error = %err, "periodic status resync request failed");
                }
            }
        }
    }
}

pub use crate::service::consumer_subject;
