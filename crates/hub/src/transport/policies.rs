//! Plugin policies to agents: each agent is told which stored policies apply to its consumer
//! (`policies.update_request` on its `sourceevents` topic) and its consumer's labels.
//!
//! An update is sent when an agent asks (`policies.resync_request`, on every (re)connect), and
//! for every push queued in the policy outbox: the store queues one, in the change's own
//! transaction, for every consumer a created, replaced or deleted policy selected before or
//! selects after, and for a consumer whose labels changed. The dispatcher drains that queue
//! before each claim of the bundle outbox (same wake-ups), at least once: rows leave only after the broker's
//! acknowledgement. Every update is read from the database when it is sent, so a late or
//! duplicate one still carries the current list. Failures are logged and counted
//! (`maestro_transport_policy_updates{outcome="failed"}`) and retried; no REST request waits
//! for any of this.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::error::DispatchError;
use super::metrics::TransportMetrics;
use super::mqtt::MqttLink;
use super::wire::{self, PoliciesUpdate};
use maestro_model::Consumer;
use maestro_model::policy::{PolicySpec, label_pairs};
use maestro_store::{Store, StoreError};

pub struct PolicyPush {
    pub store: Arc<Store>,
    pub link: Arc<MqttLink>,
    pub metrics: TransportMetrics,
    pub source: String,
    pub ack_timeout: Duration,
    /// Held from reading the policies to handing the events to the link, so that of two
    /// updates for one consumer the later read is also the later sent.
    pub turn: tokio::sync::Mutex<()>,
}

impl PolicyPush {
    /// Publishes the current update for each consumer and awaits the broker's acknowledgements.
    async fn send(&self, consumers: &[Consumer]) -> Result<usize, DispatchError> {
        if consumers.is_empty() {
            return Ok(0);
        }
        let turn = self.turn.lock().await;
        let stored: Vec<PolicySpec> = self.store.list_plugin_policies().await?.into_iter().map(|p| p.spec).collect();
        let mut acks = Vec::new();
        for consumer in consumers {
            let update = PoliciesUpdate {
                consumer_labels: label_pairs(&consumer.labels).into_iter().collect::<BTreeMap<_, _>>(),
                policies: stored.iter().filter(|p| p.selector.matches_consumer(consumer)).cloned().collect(),
            };
            let event = wire::policies_update_event(&self.source, &consumer.name, &update);
            let topic = wire::source_events_topic(&self.source, &consumer.name);
            acks.push(self.link.publish(&topic, wire::encode(&event)).await?);
        }
        drop(turn);
        let sent = acks.len();
        for ack in acks {
            ack.wait(self.ack_timeout).await?;
            self.metrics.sent("policies.update");
        }
        Ok(sent)
    }

    fn record(&self, outcome: Result<usize, DispatchError>, why: &'static str) {
        match outcome {
            Ok(sent) => {
                self.metrics.policy_update("sent");
                tracing::info!(consumers = sent, why, "sent plugin policies to agents");
            }
            Err(err) => {
                self.metrics.policy_update("failed");
                tracing::warn!(error = %err, why, "could not send plugin policies to agents; they get them on their next resync");
            }
        }
    }

    /// Answers an agent's `policies.resync_request`.
    pub async fn answer_resync(&self, consumer: &str) {
        let outcome = match self.store.get_consumer(consumer).await {
            Ok(found) => self.send(&[found]).await,
            Err(StoreError::NotFound(_)) => {
                self.metrics.drop_event("unknown consumer");
                tracing::warn!(consumer, "policy resync request of an unknown consumer; dropped");
                return;
            }
            Err(err) => Err(err.into()),
        };
        self.metrics.resync("policies_answered");
        self.record(outcome, "resync request");
    }

    /// Sends every queued policy push (the policy outbox), a claim at a time, until none is
    /// left unclaimed. A claim's rows are deleted only once every update it sent was
    /// acknowledged; on any failure they are given back and retried on the next wake-up.
    pub async fn drain_queued(&self, batch: i64) -> Result<usize, DispatchError> {
        let mut sent = 0;
        while let Some(claim) = self.store.claim_policy_pushes(batch).await? {
            match self.send_claimed(&claim.consumers()).await {
                Ok(count) => {
                    claim.complete(&self.store).await?;
                    sent += count;
                    self.record(Ok(count), "queued change");
                }
                Err(err) => {
                    claim.release().await;
                    self.metrics.policy_update("failed");
                    return Err(err);
                }
            }
        }
        Ok(sent)
    }

    /// The current update for each consumer still there; deleted ones are dropped.
    async fn send_claimed(&self, names: &[String]) -> Result<usize, DispatchError> {
        let mut consumers = Vec::with_capacity(names.len());
        for name in names {
            match self.store.get_consumer(name).await {
                Ok(consumer) => consumers.push(consumer),
                Err(StoreError::NotFound(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.send(&consumers).await
    }
}
