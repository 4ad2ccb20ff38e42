//! Drains the outbox: claims rows, publishes the current state of each bundle they name to its
//! consumer's `sourceevents` topic at QoS 1, and deletes the rows only once the broker has
//! acknowledged every event of the claim. Several rows for one bundle become one event.
//!
//! With codecs in force, each event's data is encoded with its consumer's codecs first
//! ([`super::codec`]); a bundle that cannot be encoded is not sent and its rows stay queued.
//!
//! Then it drains the policy outbox (plugin policies due to agents, [`super::policies`]).
//!
//! Wake-ups: this process's writes (an in-process notify), other hubs' writes (PostgreSQL
//! `LISTEN maestro_outbox`, notified by both outboxes' triggers), and a slow poll as the
//! fallback for both.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::codec::Codecs;
pub use super::error::DispatchError;
use super::metrics::TransportMetrics;
use super::mqtt::MqttLink;
use super::wire::{self, EventAction, ManifestBundle, SpecRequest};
use maestro_model::StoredBundle;
use maestro_plugins::Subject;
use maestro_store::wakeup::{OUTBOX_CHANNEL, Wakeup};
use maestro_store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct DispatchOptions {
    pub source: String,
    /// Rows claimed at once.
    pub batch: i64,
    pub ack_timeout: Duration,
    /// Fallback poll when no wake-up comes.
    pub poll_interval: Duration,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            source: "maestro".into(),
            batch: 500,
            ack_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// The bundle as its ManifestWork payload.
pub fn manifest_bundle(bundle: &StoredBundle) -> Result<ManifestBundle, serde_json::Error> {
    Ok(ManifestBundle {
        manifests: serde_json::from_str(&bundle.manifests)?,
        manifest_configs: serde_json::from_str(&bundle.manifest_configs)?,
        delete_option: bundle.delete_option.as_deref().map(serde_json::from_str).transpose()?,
    })
}

/// The `metadata` extension: the object meta of the ManifestWork the agent builds, named after
/// the bundle as Maestro names it (name and uid the bundle id, namespace the consumer).
pub fn work_metadata(bundle: &StoredBundle) -> Value {
    let mut meta: Map<String, Value> = serde_json::from_str(&bundle.metadata).unwrap_or_default();
    meta.insert("name".into(), json!(bundle.id));
    meta.insert("namespace".into(), json!(bundle.consumer_name));
    meta.insert("uid".into(), json!(bundle.id));
    meta.insert("resourceVersion".into(), json!("0"));
    meta.insert(
        "creationTimestamp".into(),
        json!(bundle.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    Value::Object(meta)
}

/// Publishes one bundle's current state, encoded for `consumer` (its name and labels) when
/// codecs are in force; `action` is create or update for a live bundle (deleting ones always
/// go as delete). Returns the ack to await and the event's type label.
pub async fn publish_bundle(
    link: &MqttLink,
    source: &str,
    bundle: &StoredBundle,
    action: EventAction,
    codecs: &Codecs,
    consumer: &Subject,
) -> Result<(super::mqtt::Ack, &'static str), DispatchError> {
    let payload = manifest_bundle(bundle).map_err(|source| DispatchError::Corrupt { id: bundle.id.clone(), source })?;
    let action = if bundle.is_deleting() { EventAction::Delete } else { action };
    let request = SpecRequest {
        action,
        resource_id: &bundle.id,
        resource_version: bundle.version,
        cluster_name: &bundle.consumer_name,
        deletion_timestamp: bundle.deleted_at,
        metadata: work_metadata(bundle),
        bundle: &payload,
    };
    let mut event = wire::spec_event(source, &request);
    // The occurrence is the write: agents' hooks time bake periods from it (also on resync).
    cloudevents::AttributesWriter::set_time(&mut event, Some(bundle.updated_at));
    let topic = wire::source_events_topic(source, &bundle.consumer_name);
    let subject = Subject { resource_id: bundle.id.clone(), resource_version: bundle.version, ..consumer.clone() };
    let message = codecs
        .encode(&subject, wire::encode(&event))
        .await
        .map_err(|failure| DispatchError::Encode { id: bundle.id.clone(), failure })?;
    let ack = link.publish(&topic, message).await?;
    Ok((ack, wire::EventType::new(wire::Subresource::Spec, action).label()))
}

/// Tells an agent to delete a bundle the hub no longer holds (force-deleted, or unknown to
/// the hub when the agent resyncs): only its identity travels, there is no content left.
pub async fn publish_gone(
    link: &MqttLink,
    source: &str,
    consumer: &str,
    resource_id: &str,
    resource_version: i64,
    codecs: &Codecs,
    subject: &Subject,
) -> Result<(super::mqtt::Ack, &'static str), DispatchError> {
    let empty = ManifestBundle::default();
    let request = SpecRequest {
        action: EventAction::Delete,
        resource_id,
        resource_version,
        cluster_name: consumer,
        deletion_timestamp: Some(chrono::Utc::now()),
        metadata: json!({"name": resource_id, "namespace": consumer, "uid": resource_id}),
        bundle: &empty,
    };
    let event = wire::spec_event(source, &request);
    let subject = Subject { resource_id: resource_id.to_string(), resource_version, ..subject.clone() };
    let message = codecs
        .encode(&subject, wire::encode(&event))
        .await
        .map_err(|failure| DispatchError::Encode { id: resource_id.to_string(), failure })?;
    let ack = link.publish(&wire::source_events_topic(source, consumer), message).await?;
    Ok((ack, wire::EventType::new(wire::Subresource::Spec, EventAction::Delete).label()))
}

pub struct Dispatcher {
    pub store: Arc<Store>,
    pub link: Arc<MqttLink>,
    /// Drains the policy outbox before each claim of the bundle outbox, on the same wake-ups.
    pub policies: Arc<super::policies::PolicyPush>,
    pub metrics: TransportMetrics,
    pub options: DispatchOptions,
    pub codecs: Codecs,
}

impl Dispatcher {
    /// Runs until `stop` turns true; a claim in progress is finished or given back first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let local = Some(self.store.outbox_written());
        let mut wakeup = Wakeup::new(&self.store, &[OUTBOX_CHANNEL], local, self.options.poll_interval).await;
        let mut connection = self.link.state();
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            match self.drain().await {
                Ok(()) => failures = 0,
                Err(err) => {
                    failures += 1;
                    tracing::warn!(error = %err, "outbox dispatch failed; rows stay queued and are retried");
                }
            }
            self.update_gauges().await;
            // After a failure, back off instead of answering every wake-up at once.
            let backoff = Duration::from_millis(200 * u64::from(failures.min(25)));
            tokio::select! {
                _ = wakeup.wait(&self.store), if failures == 0 => {}
                () = tokio::time::sleep(backoff), if failures > 0 => {}
                _ = stop.changed() => {}
                _ = connection.changed() => {}
            }
        }
    }

    /// Dispatches claims until the bundle outbox has nothing unclaimed, then the policy
    /// outbox likewise.
    async fn drain(&self) -> Result<(), DispatchError> {
        loop {
            if !self.link.state().borrow().connected {
                return Ok(());
            }
            // Policy pushes before each claim of bundle changes: a bundle written after a
            // policy change reaches its agent after the policy, and is applied under it
            // (on one hub; hubs draining side by side keep no order between the two queues).
            self.policies.drain_queued(self.options.batch).await?;
            if self.dispatch_once().await? == 0 {
                return Ok(());
            }
        }
    }

    /// One claim: publish, await every ack, then delete the rows. Returns the rows done.
    pub async fn dispatch_once(&self) -> Result<usize, DispatchError> {
        let Some(claim) = self.store.claim_outbox(self.options.batch).await? else { return Ok(0) };
        let mut actions: HashMap<&str, EventAction> = HashMap::new();
        for row in &claim.rows {
            let action = if row.action == "create" { EventAction::Create } else { EventAction::Update };
            actions
                .entry(row.resource_id.as_str())
                .and_modify(|a| {
                    if action == EventAction::Update {
                        *a = EventAction::Update
                    }
                })
                .or_insert(action);
        }
        let mut pending = Vec::with_capacity(claim.bundles.len());
        let mut subjects = HashMap::new();
        let mut held = HashSet::new();
        // Deletes of bundles no longer stored (force-deleted): the agent still gets them.
        let stored: HashSet<&str> = claim.bundles.iter().map(|b| b.id.as_str()).collect();
        let mut gone: HashMap<&str, (&str, i64)> = HashMap::new();
        for row in claim.rows.iter().filter(|r| r.action == "delete" && !stored.contains(r.resource_id.as_str())) {
            let entry = gone.entry(row.resource_id.as_str()).or_insert((row.consumer_name.as_str(), 0));
            entry.1 = entry.1.max(row.resource_version);
        }
        for (id, (consumer, version)) in gone {
            let sent = match self.subject(&mut subjects, consumer).await {
                Ok(subject) => {
                    publish_gone(&self.link, &self.options.source, consumer, id, version, &self.codecs, &subject).await
                }
                Err(err) => Err(err.into()),
            };
            match sent {
                Ok(sent) => pending.push(sent),
                Err(DispatchError::Encode { id, failure }) => {
                    self.metrics.encode_failures.inc();
                    tracing::warn!(consumer, resource_id = %id, error = %failure,
                        "codec failed: the delete is not sent and its outbox row stays queued");
                    held.insert(id);
                }
                Err(err) => {
                    claim.release().await;
                    return Err(err);
                }
            }
        }
        for bundle in &claim.bundles {
            let action = actions.get(bundle.id.as_str()).copied().unwrap_or(EventAction::Update);
            let sent = match self.subject(&mut subjects, &bundle.consumer_name).await {
                Ok(subject) => {
                    publish_bundle(&self.link, &self.options.source, bundle, action, &self.codecs, &subject).await
                }
                Err(err) => Err(err.into()),
            };
            match sent {
                Ok(sent) => pending.push(sent),
                Err(DispatchError::Encode { id, failure }) => {
                    self.metrics.encode_failures.inc();
                    tracing::warn!(consumer = %bundle.consumer_name, resource_id = %id, error = %failure,
                        "codec failed: the bundle is not sent and its outbox rows stay queued");
                    held.insert(id);
                }
                Err(err) => {
                    claim.release().await;
                    return Err(err);
                }
            }
        }
        let mut labels = Vec::with_capacity(pending.len());
        let mut failed = None;
        let timeout = self.options.ack_timeout;
        let results = futures::future::join_all(
            pending.into_iter().map(|(ack, label)| async move { (ack.wait(timeout).await, label) }),
        )
        .await;
        for (result, label) in results {
            match result {
                Ok(()) => labels.push(label),
                Err(err) => failed = Some(err),
            }
        }
        if let Some(err) = failed {
            claim.release().await;
            return Err(err.into());
        }
        let rows = claim.rows.len();
        claim.complete_except(&self.store, &held).await?;
        for label in labels {
            self.metrics.sent(label);
        }
        if !held.is_empty() {
            return Err(DispatchError::Held(held.len()));
        }
        Ok(rows)
    }

    /// The consumer as its codec policies select it, read once per claim; without codecs in
    /// force nothing is read.
    async fn subject(&self, cache: &mut HashMap<String, Subject>, consumer: &str) -> Result<Subject, StoreError> {
        if !self.codecs.active() {
            return Ok(Subject::default());
        }
        if let Some(subject) = cache.get(consumer) {
            return Ok(subject.clone());
        }
        let subject = super::consumer_subject(&self.store, consumer).await?;
        cache.insert(consumer.to_string(), subject.clone());
        Ok(subject)
    }

    async fn update_gauges(&self) {
        if let Ok(stats) = self.store.outbox_stats().await {
            self.metrics.outbox_depth.set(stats.depth);
            let age = stats.oldest.map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
            self.metrics.outbox_oldest_age_seconds.set(age.unwrap_or(0.0));
        }
    }
}
