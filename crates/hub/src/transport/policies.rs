//! Plugin policies to agents: each agent is told which stored policies apply to its consumer
//! (`policies.update_request` on its `sourceevents` topic) and its consumer's labels.
//!
//! An update is sent when an agent asks (`policies.resync_request`, on every (re)connect), when a
//! policy is created, replaced or deleted (to every consumer it matched before or matches after),
//! and when a consumer's labels change. Every update is read from the database when it is sent,
//! so a late or duplicate one still carries the current list; a lost one is made good by the
//! agent's next resync. Failures here never undo the change that caused them: they are logged
//! and counted (`maestro_transport_policy_updates{outcome="failed"}`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::dispatcher::DispatchError;
use super::metrics::TransportMetrics;
use super::mqtt::MqttLink;
use super::wire::{self, PoliciesUpdate};
use maestro_model::Consumer;
use maestro_plugins::policy::PolicySpec;
use maestro_store::{Store, StoreError};

/// The longest a policy change's fan-out may hold its REST request.
const FAN_OUT_DEADLINE: Duration = Duration::from_secs(10);

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

/// A consumer's labels as plugins see them (text values).
fn label_pairs(labels: &Map<String, Value>) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()
}

fn matches(policy: &PolicySpec, consumer: &Consumer) -> bool {
    policy.selector.matches(&consumer.name, &label_pairs(&consumer.labels))
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
                policies: stored.iter().filter(|p| matches(p, consumer)).cloned().collect(),
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

    /// After a policy was stored, replaced (`before` and `after`) or deleted (`after` None):
    /// every consumer it matched or matches gets its new list.
    pub async fn policy_changed(&self, before: Option<&PolicySpec>, after: Option<&PolicySpec>) {
        let work = async {
            let consumers = self.store.all_consumers().await?;
            let affected: Vec<Consumer> = consumers
                .into_iter()
                .filter(|c| before.is_some_and(|p| matches(p, c)) || after.is_some_and(|p| matches(p, c)))
                .collect();
            self.send(&affected).await
        };
        let outcome = tokio::time::timeout(FAN_OUT_DEADLINE, work)
            .await
            .unwrap_or(Err(DispatchError::Mqtt(super::mqtt::MqttError::Timeout(FAN_OUT_DEADLINE))));
        self.record(outcome, "policy change");
    }

    /// After a consumer's labels changed: its agent's plugins see labels in their context, and
    /// label selectors may now pick other policies.
    pub async fn labels_changed(&self, before: &Map<String, Value>, consumer: &Consumer) {
        if before == &consumer.labels {
            return;
        }
        let outcome = tokio::time::timeout(FAN_OUT_DEADLINE, self.send(std::slice::from_ref(consumer)))
            .await
            .unwrap_or(Err(DispatchError::Mqtt(super::mqtt::MqttError::Timeout(FAN_OUT_DEADLINE))));
        self.record(outcome, "consumer labels change");
    }
}
