//! Reads agent events (`$share/<group>/sources/<source>/consumers/+/agentevents`: each event
//! reaches one hub of the group) and records statuses; answers agents' resync requests.
//!
//! Anything that is not a valid status or resync request of a known consumer's resource is
//! logged with its reason, counted (`maestro_transport_events_dropped{reason}`) and dropped;
//! the hub keeps serving. Events naming codecs (`maestrocodec`) are decoded first with the
//! consumer's codec policies; one that does not decode is dropped like any unreadable event.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::codec::{self, Codecs};
use super::metrics::TransportMetrics;
use super::mqtt::Received;
use super::resync::Resync;
use super::wire::{self, MqttMessage, StatusEvent, WireError, WorkEvent};
use maestro_store::Store;
use maestro_store::status::{ReportedStatus, StatusOutcome};

pub struct Ingest {
    pub policies: Arc<super::policies::PolicyPush>,
    pub store: Arc<Store>,
    pub metrics: TransportMetrics,
    pub resync: Arc<Resync>,
    pub source: String,
    /// Larger payloads are dropped unread.
    pub max_payload_bytes: usize,
    pub codecs: Codecs,
}

/// The metric label for why an event could not be read.
fn wire_reason(err: &WireError) -> &'static str {
    match err {
        WireError::Binding(_) => "not a cloudevent",
        WireError::UnknownType(_) => "unknown type",
        WireError::Missing(_) => "missing extension",
        WireError::BadExtension { .. } => "invalid extension",
        WireError::Data(_) => "invalid data",
        WireError::Topic(_) => "unknown topic",
    }
}

impl Ingest {
    /// Runs until the link's sender side is gone.
    pub async fn run(self, mut incoming: mpsc::Receiver<Received>) {
        while let Some(received) = incoming.recv().await {
            self.handle(received).await;
        }
    }

    fn drop_event(&self, reason: &'static str, consumer: &str, detail: &dyn std::fmt::Display) {
        self.metrics.drop_event(reason);
        tracing::warn!(consumer, reason, detail = %detail, "dropped an agent event");
    }

    pub async fn handle(&self, received: Received) {
        let consumer = match wire::consumer_of_topic(&received.topic, &self.source) {
            Ok(consumer) => consumer.to_string(),
            Err(err) => return self.drop_event("unknown topic", "", &err),
        };
        if received.payload_bytes > self.max_payload_bytes {
            let detail = format!("{} bytes, limit {}", received.payload_bytes, self.max_payload_bytes);
            return self.drop_event("too large", &consumer, &detail);
        }
        let Some(message) = self.decoded(&consumer, received.message).await else { return };
        let event = match wire::decode(message) {
            Ok(event) if wire::is_policy_event(&event) => return self.policy_event(&consumer, &event),
            Ok(event) => WorkEvent::from_event(&event),
            Err(err) => Err(err),
        };
        let event = match event {
            Ok(event) => event,
            Err(err) => return self.drop_event(wire_reason(&err), &consumer, &err),
        };
        match event {
            WorkEvent::Status(status) => self.record(&consumer, &status).await,
            WorkEvent::SpecResync { versions, .. } => {
                self.metrics.received("spec.resync");
                self.resync.request_spec_resync(consumer, &versions);
            }
            WorkEvent::Spec(_) | WorkEvent::StatusResync { .. } => {
                self.drop_event("hub event on agent topic", &consumer, &"spec events go from hub to agent")
            }
        }
    }

    /// The message with its codecs undone; `None` (dropped and counted) when that fails.
    async fn decoded(&self, consumer: &str, message: MqttMessage) -> Option<MqttMessage> {
        match codec::names_of(&message) {
            Ok(None) => return Some(message),
            Ok(Some(_)) => {}
            Err(err) => {
                self.drop_event(err.reason(), consumer, &err);
                return None;
            }
        }
        let subject = match super::consumer_subject(&self.store, consumer).await {
            Ok(subject) => subject,
            Err(err) => {
                self.metrics.drop_event("database error");
                tracing::error!(consumer, error = %err, "could not read the consumer to decode its event");
                return None;
            }
        };
        match self.codecs.decode(&subject, message).await {
            Ok(message) => Some(message),
            Err(err) => {
                self.drop_event(err.reason(), consumer, &err);
                None
            }
        }
    }

    /// An agent asking for its plugin policies; answered beside the link, like a spec resync.
    fn policy_event(&self, consumer: &str, event: &cloudevents::Event) {
        use cloudevents::AttributesReader;
        if event.ty() != wire::POLICIES_RESYNC {
            return self.drop_event("hub event on agent topic", consumer, &"policy updates go from hub to agent");
        }
        self.metrics.received("policies.resync");
        let policies = self.policies.clone();
        let consumer = consumer.to_string();
        tokio::spawn(async move { policies.answer_resync(&consumer).await });
    }

    async fn record(&self, consumer: &str, event: &StatusEvent) {
        let context = &event.context;
        let span = tracing::debug_span!("status", consumer, resource_id = %context.resource_id);
        let _enter = span.enter();
        let hash = event.status_hash.clone().unwrap_or_else(|| wire::status_hash(&event.status));
        let report = ReportedStatus {
            consumer,
            resource_id: &context.resource_id,
            resource_version: context.resource_version,
            sequence_id: event.sequence_id,
            status_hash: &hash,
            conditions: &event.status.conditions,
            resource_status: &event.status.resource_status,
            deleted: event.status.is_deleted(),
        };
        match self.store.record_status(&report).await {
            Ok(StatusOutcome::Recorded) => {
                self.metrics.received(context.event_type.label());
            }
            Ok(StatusOutcome::Purged) => {
                self.metrics.received(context.event_type.label());
                tracing::info!(consumer, resource_id = %context.resource_id, "agent confirmed deletion; bundle purged");
            }
            Ok(StatusOutcome::Dropped(reason @ ("unknown resource" | "resource of another consumer"))) => {
                // Only now is it worth a query to tell the two apart from an unknown consumer.
                let reason = match self.store.consumer_exists(consumer).await {
                    Ok(false) => "unknown consumer",
                    _ => reason,
                };
                self.drop_event(reason, consumer, &context.resource_id);
            }
            Ok(StatusOutcome::Dropped(reason)) => {
                let detail = format!("{} version {}", context.resource_id, context.resource_version);
                self.drop_event(reason, consumer, &detail);
            }
            Err(err) => {
                // The database failed, not the event: the agent re-sends on the next status
                // resync, so this is counted apart from bad input.
                self.metrics.drop_event("database error");
                tracing::error!(consumer, error = %err, "could not record a status");
            }
        }
    }
}
