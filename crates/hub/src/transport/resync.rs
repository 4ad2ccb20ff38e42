//! Resync in both directions, as Maestro does it.
//!
//! - An agent's `spec.resync_request` lists the resource versions it holds. The hub answers with
//!   every bundle of that consumer that is newer, unknown to the agent, or being deleted, and
//!   with a delete for each resource the agent holds that the hub no longer has.
//! - The hub sends `status.resync_request` with its status hashes when it starts serving and
//!   after each reconnect to the broker; agents re-send every status whose hash differs.
//!
//! Lists are split into batches under the configured entry and byte limits. Every event goes out
//! encoded with its consumer's codecs when codecs are in force, like the dispatcher's.

use std::collections::HashMap;
use std::sync::Arc;

use super::codec::Codecs;
use super::dispatcher::{publish_bundle, publish_gone};
use super::error::DispatchError;
use super::metrics::TransportMetrics;
use super::mqtt::MqttLink;
use super::wire::{self, EventAction, ResourceVersionList, StatusHash, StatusHashList};
use maestro_plugins::Subject;
use maestro_store::Store;

/// Bounds on one resync message (Maestro caps 1000 entries; MQTT brokers cap packet sizes).
#[derive(Debug, Clone, Copy)]
pub struct ResyncLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for ResyncLimits {
    fn default() -> Self {
        ResyncLimits { max_entries: 1000, max_bytes: 256 * 1024 }
    }
}

pub struct Resync {
    pub store: Arc<Store>,
    pub link: Arc<MqttLink>,
    pub metrics: TransportMetrics,
    pub source: String,
    pub limits: ResyncLimits,
    pub ack_timeout: std::time::Duration,
    pub codecs: Codecs,
}

impl Resync {
    /// Answers one agent's `spec.resync_request`; returns how many events were sent.
    pub async fn answer_spec_resync(&self, consumer: &str, held: &ResourceVersionList) -> Result<usize, DispatchError> {
        let mut held: HashMap<&str, i64> =
            held.resource_versions.iter().map(|v| (v.resource_id.as_str(), v.resource_version)).collect();
        let mut pending = Vec::new();
        let subject = self.subject(consumer).await?;
        for bundle in self.store.consumer_bundles(consumer).await? {
            let agent_version = held.remove(bundle.id.as_str());
            let newer = agent_version.is_none_or(|v| bundle.version > v);
            if newer || bundle.is_deleting() {
                let action = if agent_version.is_some() { EventAction::Update } else { EventAction::Create };
                pending.push(
                    publish_bundle(&self.link, &self.source, &bundle, action, &self.codecs, &subject)
                        .await
                        .inspect_err(|err| {
                            if matches!(err, DispatchError::Encode { .. }) {
                                self.metrics.encode_failures.inc();
                            }
                        })?,
                );
            }
        }
        // What the agent holds and the hub does not is gone from the hub: tell the agent to delete it.
        for (resource_id, resource_version) in held {
            let sent =
                publish_gone(&self.link, &self.source, consumer, resource_id, resource_version, &self.codecs, &subject)
                    .await
                    .inspect_err(|err| {
                        if matches!(err, DispatchError::Encode { .. }) {
                            self.metrics.encode_failures.inc();
                        }
                    })?;
            pending.push(sent);
        }
        let sent = pending.len();
        for (ack, label) in pending {
            ack.wait(self.ack_timeout).await?;
            self.metrics.sent(label);
        }
        self.metrics.resync("spec_answered");
        tracing::info!(consumer, sent, "answered an agent's resync request");
        Ok(sent)
    }

    /// Sends `status.resync_request` to every consumer's agent, with the hashes of the
    /// statuses the hub holds for it.
    pub async fn request_status_resync(&self) -> Result<usize, DispatchError> {
        let consumers = self.store.consumer_names().await?;
        let mut sent = 0;
        for consumer in &consumers {
            let hashes: Vec<StatusHash> = self
                .store
                .status_hashes(consumer)
                .await?
                .into_iter()
                .map(|(resource_id, status_hash)| StatusHash { resource_id, status_hash })
                .collect();
            let topic = wire::source_events_topic(&self.source, consumer);
            let subject = self.subject(consumer).await?;
            for batch in wire::batches(&hashes, self.limits.max_entries, self.limits.max_bytes) {
                let event = wire::status_resync_event(&self.source, consumer, &StatusHashList { status_hashes: batch });
                let message = self.encode(&subject, "", wire::encode(&event)).await?;
                self.link.publish(&topic, message).await?.wait(self.ack_timeout).await?;
                self.metrics.sent("status.resync");
                sent += 1;
            }
        }
        self.metrics.resync("status_requested");
        tracing::info!(consumers = consumers.len(), messages = sent, "asked agents to resync statuses");
        Ok(sent)
    }

    /// The consumer as codec policies select it; nothing is read without codecs in force.
    async fn subject(&self, consumer: &str) -> Result<Subject, DispatchError> {
        if !self.codecs.active() {
            return Ok(Subject::default());
        }
        Ok(super::consumer_subject(&self.store, consumer).await?)
    }

    async fn encode(
        &self,
        subject: &Subject,
        resource_id: &str,
        message: wire::MqttMessage,
    ) -> Result<wire::MqttMessage, DispatchError> {
        self.codecs.encode(subject, message).await.map_err(|failure| {
            self.metrics.encode_failures.inc();
            DispatchError::Encode { id: resource_id.to_string(), failure }
        })
    }
}
