//! Glue between the reconciler and the transport: spec events in, statuses out, resync on
//! every (re)connect.
//!
//! It uses the transport's [`MqttLink`] and [`wire`] functions directly rather than
//! `AgentLink`, because receiving and publishing must run in separate tasks: a publish waits for
//! the broker's acknowledgement, and a receiver blocked behind it could stall the connection
//! that carries that acknowledgement. Topics, event shapes and sequence ids are the ones
//! `AgentLink` uses.
//!
//! Statuses are read from the local store and removed from it only after the broker's
//! acknowledgement, so a broker outage loses nothing: they are sent when it is back.
//!
//! Codecs (`transport::codec`): incoming events naming codecs are decoded with the agent's
//! plugins and policies, and what the agent sends is encoded with the codecs its policies give
//! its consumer. A status that cannot be encoded stays pending (never sent in the clear).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudevents::AttributesReader;
use tokio::sync::{Notify, mpsc};

use super::local::{LocalStore, PendingStatus};
use super::reconcile::{Input, SpecInput};
pub use super::shared::{ConsumerLabels, LinkCounters};
use maestro_plugins::{PluginFailure, PluginRuntime, Subject};
use maestro_wire::agent_link::{ACK_TIMEOUT, BatchLimits};
use maestro_wire::codec::Codecs;
use maestro_wire::mqtt::{MqttError, MqttLink, Received};
use maestro_wire::wire::{
    self, EventAction, ManifestBundleStatus, PoliciesUpdate, ResourceVersion, ResourceVersionList, StatusReport,
    WorkEvent,
};

/// Longest pause between attempts to flush pending statuses while the broker is away.
const MAX_FLUSH_BACKOFF: Duration = Duration::from_secs(10);

/// Who this link speaks for.
#[derive(Debug, Clone)]
pub struct Identity {
    pub source: String,
    pub consumer: String,
    /// The agent's plugins as the link uses them: decoding and encoding event data.
    pub codecs: Codecs,
    /// The consumer's labels as the hub last sent them, for policies that select by label.
    pub labels: ConsumerLabels,
}

impl Identity {
    /// The CloudEvents `source` of what this agent sends, as OCM agents name it.
    fn agent_source(&self) -> String {
        format!("{}-work-agent", self.consumer)
    }

    /// This agent's consumer as its policies select it: by name, or by the labels the hub sent.
    fn subject(&self, resource_id: &str, resource_version: i64) -> Subject {
        Subject {
            consumer: self.consumer.clone(),
            labels: self.labels.get(),
            resource_id: resource_id.to_string(),
            resource_version,
        }
    }

    /// Encodes an outgoing message with the consumer's codecs (unchanged without any).
    async fn encode(
        &self,
        resource_id: &str,
        resource_version: i64,
        message: wire::MqttMessage,
    ) -> Result<wire::MqttMessage, LinkError> {
        let subject = self.subject(resource_id, resource_version);
        self.codecs.encode(&subject, message).await.map_err(LinkError::Encode)
    }
}

/// Reads events from the broker, hands spec events to the reconciler; drops (and counts)
/// what cannot be read.
pub async fn receive(
    identity: Identity,
    mut incoming: mpsc::Receiver<Received>,
    inputs: mpsc::Sender<Input>,
    counters: Arc<LinkCounters>,
    plugins: Option<AgentPlugins>,
) {
    while let Some(received) = incoming.recv().await {
        let message = match identity.codecs.decode(&identity.subject("", 0), received.message).await {
            Ok(message) => message,
            Err(err) => {
                let dropped = counters.malformed_events.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(consumer = %identity.consumer, error = %err, reason = err.reason(), dropped,
                    "dropped an event that does not decode (the hub and this agent need the same codec plugins and settings)");
                continue;
            }
        };
        let event = match wire::decode(message) {
            Ok(event) if wire::is_policy_event(&event) => {
                if let Some(input) = policies_input(&identity, plugins.as_ref(), &event, &counters).await
                    && inputs.send(input).await.is_err()
                {
                    break;
                }
                continue;
            }
            other => other,
        };
        // The hub sets `time` to when it wrote the bundle version (hooks time bake periods from it).
        let written_unix_ms = event.as_ref().ok().and_then(|e| e.time().map(|t| t.timestamp_millis()));
        let input = match event.and_then(|event| WorkEvent::from_event(&event)) {
            Ok(WorkEvent::Spec(spec)) => {
                counters.events.inc(spec.context.event_type.label());
                let deleting =
                    spec.deletion_timestamp.is_some() || spec.context.event_type.action == EventAction::Delete;
                Input::Spec(SpecInput {
                    id: spec.context.resource_id,
                    version: spec.context.resource_version,
                    original_source: identity.source.clone(),
                    deleting,
                    bundle: serde_json::to_value(&spec.bundle).unwrap_or_default(),
                    written_unix_ms,
                })
            }
            Ok(WorkEvent::StatusResync { hashes, .. }) => {
                counters.events.inc("status.resync");
                Input::StatusResync(hashes.status_hashes.into_iter().map(|h| (h.resource_id, h.status_hash)).collect())
            }
            Ok(other) => {
                tracing::debug!(event = ?std::mem::discriminant(&other), "ignored an event not meant for agents");
                continue;
            }
            Err(err) => {
                let dropped = counters.malformed_events.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(consumer = %identity.consumer, error = %err, dropped, "dropped a malformed spec event");
                continue;
            }
        };
        if inputs.send(input).await.is_err() {
            break;
        }
    }
}

/// The agent's plugin runtime and where the hub's last policy update is kept.
#[derive(Clone)]
pub struct AgentPlugins {
    pub runtime: Arc<PluginRuntime>,
    /// `agent-<consumer>.policies.json` in the data directory: read at start, so that bundles
    /// restored from the local store go through the same hooks before the hub answers.
    pub saved: PathBuf,
}

impl AgentPlugins {
    /// The update saved by an earlier run, if any (an unreadable one is ignored: the hub's
    /// answer to the resync replaces it).
    pub async fn load(&self) -> Option<PoliciesUpdate> {
        let bytes = tokio::fs::read(&self.saved).await.ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(update) => Some(update),
            Err(err) => {
                tracing::warn!(file = %self.saved.display(), error = %err, "ignored unreadable saved plugin policies");
                None
            }
        }
    }

    async fn save(&self, update: &PoliciesUpdate) {
        let tmp = self.saved.with_extension("json.tmp");
        let written = async {
            tokio::fs::write(&tmp, serde_json::to_vec(update).unwrap_or_default()).await?;
            tokio::fs::rename(&tmp, &self.saved).await
        };
        if let Err(err) = written.await {
            tracing::warn!(file = %self.saved.display(), error = %err, "cannot save plugin policies; a restart waits for the hub's");
        }
    }
}

/// A `policies.update_request`: the stored policies go into the runtime at once (the next plugin
/// call uses them) and to disk; the reconciler is told so that it re-evaluates with them and the
/// labels.
async fn policies_input(
    identity: &Identity,
    plugins: Option<&AgentPlugins>,
    event: &cloudevents::Event,
    counters: &LinkCounters,
) -> Option<Input> {
    let Some(plugins) = plugins else {
        tracing::debug!(consumer = %identity.consumer, "ignored a plugin policy event: this agent runs no plugins");
        return None;
    };
    match wire::policies_update_of(event) {
        Ok(update) => {
            let names: Vec<&str> = update.policies.iter().map(|p| p.name.as_str()).collect();
            tracing::info!(consumer = %identity.consumer, policies = ?names, "plugin policies received from the hub");
            plugins.save(&update).await;
            plugins.runtime.set_stored_policies(update.policies);
            identity.labels.set(update.consumer_labels.into_iter().collect());
            counters.policy_updates.fetch_add(1, Ordering::Relaxed);
            Some(Input::Policies)
        }
        Err(err) => {
            let dropped = counters.malformed_events.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(consumer = %identity.consumer, error = %err, dropped, "dropped a malformed policy event");
            None
        }
    }
}

/// Asks the hub for this consumer's plugin policies (when this agent runs plugins).
async fn request_policies(identity: &Identity, link: &MqttLink) -> Result<(), LinkError> {
    let event = wire::policies_resync_event(&identity.agent_source(), &identity.consumer);
    let topic = wire::agent_events_topic(&identity.source, &identity.consumer);
    link.publish(&topic, wire::encode(&event)).await?.wait(ACK_TIMEOUT).await?;
    Ok(())
}

/// Sends `spec.resync_request` after every (re)connect and publishes pending statuses whenever
/// the reconciler queues one, retrying with backoff while the broker is away.
pub async fn publish(
    identity: Identity,
    link: Arc<MqttLink>,
    local: LocalStore,
    outbox: Arc<Notify>,
    counters: Arc<LinkCounters>,
    with_plugins: bool,
) {
    let mut state = link.state();
    let mut resynced_generation = None;
    let mut backoff = Duration::from_millis(100);
    let sequence = Sequence::default();
    loop {
        let now = *state.borrow_and_update();
        let mut healthy = now.connected;
        if now.connected && resynced_generation != Some(now.generation) {
            let policies = async { if with_plugins { request_policies(&identity, &link).await } else { Ok(()) } };
            match policies.await.and(request_resync(&identity, &link, &local).await) {
                Ok(count) => {
                    counters.resyncs_sent.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(consumer = %identity.consumer, bundles = count, "connected; asked the hub to resync");
                    resynced_generation = Some(now.generation);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "resync request failed; will retry");
                    healthy = false;
                }
            }
        }
        if healthy {
            healthy = flush(&identity, &link, &local, &sequence, &counters).await;
        }
        let wait = if healthy {
            backoff = Duration::from_millis(100);
            Duration::from_secs(60)
        } else {
            backoff = (backoff * 2).min(MAX_FLUSH_BACKOFF);
            backoff
        };
        tokio::select! {
            _ = outbox.notified() => {}
            changed = state.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn request_resync(identity: &Identity, link: &MqttLink, local: &LocalStore) -> Result<usize, LinkError> {
    let versions: Vec<ResourceVersion> = local
        .bundles()
        .await?
        .into_iter()
        .map(|b| ResourceVersion { resource_id: b.id, resource_version: b.version })
        .collect();
    let limits = BatchLimits::default();
    let count = versions.len();
    let topic = wire::agent_events_topic(&identity.source, &identity.consumer);
    // An empty list still goes out once: it means "send me everything".
    let mut batches = wire::batches(&versions, limits.max_entries, limits.max_bytes);
    if batches.is_empty() {
        batches.push(Vec::new());
    }
    for batch in batches {
        let list = ResourceVersionList { resource_versions: batch };
        let event = wire::spec_resync_event(&identity.agent_source(), &identity.consumer, &list);
        let message = identity.encode("", 0, wire::encode(&event)).await?;
        link.publish(&topic, message).await?.wait(ACK_TIMEOUT).await?;
    }
    Ok(count)
}

/// Publishes every pending status; false when the broker did not take one.
async fn flush(
    identity: &Identity,
    link: &MqttLink,
    local: &LocalStore,
    sequence: &Sequence,
    counters: &LinkCounters,
) -> bool {
    let pending = match local.pending().await {
        Ok(pending) => pending,
        Err(err) => {
            tracing::error!(error = %err, "cannot read pending statuses");
            return false;
        }
    };
    for status in pending {
        if let Err(err) = publish_one(identity, link, sequence, &status).await {
            tracing::warn!(resource_id = %status.bundle_id, error = %err, "status not sent; will retry");
            return false;
        }
        counters.statuses_sent.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = local.acknowledge(&status.bundle_id, &status.hash).await {
            tracing::error!(resource_id = %status.bundle_id, error = %err, "cannot mark a status sent");
        }
    }
    true
}

async fn publish_one(
    identity: &Identity,
    link: &MqttLink,
    sequence: &Sequence,
    status: &PendingStatus,
) -> Result<(), LinkError> {
    let body: ManifestBundleStatus = serde_json::from_value(status.status.clone()).map_err(LinkError::Status)?;
    let report = StatusReport {
        resource_id: &status.bundle_id,
        resource_version: status.version,
        cluster_name: &identity.consumer,
        original_source: &status.original_source,
        sequence_id: sequence.next(),
        status: &body,
    };
    let event = wire::status_event(&identity.agent_source(), &report);
    let topic = wire::agent_events_topic(&identity.source, &identity.consumer);
    let message = identity.encode(&status.bundle_id, status.version, wire::encode(&event)).await?;
    link.publish(&topic, message).await?.wait(ACK_TIMEOUT).await?;
    tracing::debug!(resource_id = %status.bundle_id, hash = %status.hash, "status sent");
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    #[error(transparent)]
    Local(#[from] super::local::LocalError),
    #[error("a queued status does not have the status shape: {0}")]
    Status(serde_json::Error),
    #[error("codec {0}")]
    Encode(PluginFailure),
}

/// Increasing sequence ids: milliseconds since the epoch in the high bits, like the snowflake
/// ids OCM agents use (and `AgentLink`), so they keep increasing across restarts.
#[derive(Debug, Default)]
struct Sequence(AtomicU64);

impl Sequence {
    fn next(&self) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0) << 22;
        let mut last = self.0.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.0.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_ids_strictly_increase() {
        let sequence = Sequence::default();
        let ids: Vec<u64> = (0..1000).map(|_| sequence.next()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
