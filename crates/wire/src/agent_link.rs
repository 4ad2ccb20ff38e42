//! The agent's side of the protocol: what a work agent (ours, or a test's) uses to receive its
//! consumer's spec events and send statuses back, exactly as OCM work agents do.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use maestro_wire::agent_link::AgentLink;
//! use maestro_wire::mqtt::MqttConfig;
//! use maestro_wire::wire::WorkEvent;
//!
//! let mut link = AgentLink::connect(MqttConfig::new("mqtt://127.0.0.1:1883", "cluster1-agent"), "maestro", "cluster1")?;
//! link.connected(std::time::Duration::from_secs(10)).await?;
//! link.request_resync(&Default::default()).await?; // "send me everything"
//! while let Some(event) = link.next().await {
//!     match event {
//!         Ok(WorkEvent::Spec(spec)) => { /* apply spec.bundle, then publish_status(...) */ }
//!         Ok(WorkEvent::StatusResync { hashes, .. }) => { /* re-send statuses whose hash differs */ }
//!         Ok(_) => {}
//!         Err(bad) => tracing::warn!(error = %bad, "dropped an event"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The link subscribes to `sources/<source>/consumers/<consumer>/sourceevents` and publishes to
//! `.../agentevents`, both at QoS 1. Sessions are clean: after a reconnect (watch
//! [`AgentLink::state`] for a new `generation`) the agent sends `spec.resync_request` with its
//! resource versions, and the hub re-sends whatever is newer or being deleted. Events may come
//! twice: an agent drops a spec whose `resourceversion` is not newer than what it applied.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use super::mqtt::{ConnectionState, MqttConfig, MqttError, MqttLink, Received};
use super::wire::{self, ResourceVersionList, StatusReport, WireError, WorkEvent};

/// How long a publish may wait for the broker's acknowledgement.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Bounds on one `spec.resync_request`, like the hub's (Maestro caps 1000 entries).
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits { max_entries: 1000, max_bytes: 256 * 1024 }
    }
}

/// One consumer's connection to its hub, through the broker.
pub struct AgentLink {
    link: MqttLink,
    incoming: mpsc::Receiver<Received>,
    source: String,
    consumer: String,
    /// The CloudEvents `source` of what this agent sends, as OCM agents name it.
    agent_source: String,
    last_sequence: AtomicU64,
    limits: BatchLimits,
}

impl AgentLink {
    /// Starts connecting to the broker of `source` (e.g. `maestro`) as `consumer`'s agent.
    /// Returns at once; see [`AgentLink::connected`].
    pub fn connect(mqtt: MqttConfig, source: &str, consumer: &str) -> Result<AgentLink, MqttError> {
        let (tx, incoming) = mpsc::channel(1024);
        let link = MqttLink::start(&mqtt, vec![wire::source_events_topic(source, consumer)], tx)?;
        Ok(AgentLink {
            link,
            incoming,
            source: source.to_string(),
            consumer: consumer.to_string(),
            agent_source: format!("{consumer}-work-agent"),
            last_sequence: AtomicU64::new(0),
            limits: BatchLimits::default(),
        })
    }

    pub fn with_limits(mut self, limits: BatchLimits) -> AgentLink {
        self.limits = limits;
        self
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Waits until connected and subscribed.
    pub async fn connected(&self, timeout: Duration) -> Result<(), MqttError> {
        self.link.connected(timeout).await
    }

    /// Connection state; a new `generation` means a reconnect, after which the agent resyncs.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.link.state()
    }

    /// The next event from the hub, decoded; `Err` for one that is not valid (the caller logs
    /// and drops it). `None` once the link is closed.
    pub async fn next(&mut self) -> Option<Result<WorkEvent, WireError>> {
        let received = self.incoming.recv().await?;
        Some(wire::decode(received.message).and_then(|event| WorkEvent::from_event(&event)))
    }

    /// A new sequence id: increasing across calls and restarts (milliseconds since the epoch
    /// in the high bits, like the snowflake ids OCM agents use).
    pub fn next_sequence_id(&self) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0) << 22;
        let mut last = self.last_sequence.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.last_sequence.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Sends a `status.update_request` and waits for the broker's acknowledgement. The status
    /// hash is computed here; `report.sequence_id` should come from [`AgentLink::next_sequence_id`].
    pub async fn publish_status(&self, report: &StatusReport<'_>) -> Result<(), MqttError> {
        let event = wire::status_event(&self.agent_source, report);
        self.send(event).await
    }

    /// Sends `spec.resync_request` with what this agent holds (empty: "send me everything"),
    /// in batches within the limits.
    pub async fn request_resync(&self, versions: &ResourceVersionList) -> Result<(), MqttError> {
        let batches = wire::batches(&versions.resource_versions, self.limits.max_entries, self.limits.max_bytes);
        for batch in batches {
            let list = ResourceVersionList { resource_versions: batch };
            self.send(wire::spec_resync_event(&self.agent_source, &self.consumer, &list)).await?;
        }
        Ok(())
    }

    /// Publishes any event on this consumer's `agentevents` topic (e.g. a hand-made bad one).
    pub async fn send(&self, event: cloudevents::Event) -> Result<(), MqttError> {
        self.send_raw(wire::encode(&event)).await
    }

    /// Publishes a raw message on this consumer's `agentevents` topic.
    pub async fn send_raw(&self, message: wire::MqttMessage) -> Result<(), MqttError> {
        let topic = wire::agent_events_topic(&self.source, &self.consumer);
        self.link.publish(&topic, message).await?.wait(ACK_TIMEOUT).await
    }

    pub async fn close(self) {
        self.link.close().await;
    }
}
