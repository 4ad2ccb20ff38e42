//! Transport metrics, registered in the hub's Prometheus registry. Labels come from fixed
//! sets: event type labels (`spec.create`, ...), drop reasons (constant phrases) and resync
//! kinds; never a resource id or consumer name.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    pub r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResyncLabels {
    pub kind: &'static str,
}

#[derive(Clone, Default)]
pub struct TransportMetrics {
    pub sent: Family<TypeLabels, Counter>,
    pub received: Family<TypeLabels, Counter>,
    pub dropped: Family<ReasonLabels, Counter>,
    pub outbox_depth: Gauge,
    pub outbox_oldest_age_seconds: Gauge<f64, AtomicU64>,
    pub resyncs: Family<ResyncLabels, Counter>,
    pub broker_connected: Gauge,
    pub broker_connects: Counter,
    pub encode_failures: Counter,
    pub policy_updates: Family<OutcomeLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

impl TransportMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("transport");
        sub.register(
            "events_sent",
            "CloudEvents published to agents and acknowledged by the broker, by type",
            self.sent.clone(),
        );
        sub.register(
            "events_received",
            "CloudEvents received from agents and accepted, by type",
            self.received.clone(),
        );
        sub.register("events_dropped", "Events from agents dropped, by reason", self.dropped.clone());
        sub.register("outbox_depth", "Outbox rows not yet dispatched", self.outbox_depth.clone());
        sub.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest outbox row not yet dispatched (0 when empty)",
            self.outbox_oldest_age_seconds.clone(),
        );
        sub.register("resyncs", "Resyncs: spec requests answered and status requests sent", self.resyncs.clone());
        sub.register(
            "broker_connected",
            "1 while connected and subscribed to the MQTT broker",
            self.broker_connected.clone(),
        );
        sub.register(
            "broker_connects",
            "Completed connections to the MQTT broker (reconnects included)",
            self.broker_connects.clone(),
        );
        sub.register(
            "encode_failures",
            "Events not sent because a codec could not encode them (their outbox rows stay queued)",
            self.encode_failures.clone(),
        );
        sub.register(
            "policy_updates",
            "Fan-outs of plugin policies to agents (resync answers, policy and label changes), by outcome",
            self.policy_updates.clone(),
        );
    }

    pub fn policy_update(&self, outcome: &'static str) {
        self.policy_updates.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn drop_event(&self, reason: &'static str) {
        self.dropped.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn sent(&self, label: &'static str) {
        self.sent.get_or_create(&TypeLabels { r#type: label }).inc();
    }

    pub fn received(&self, label: &'static str) {
        self.received.get_or_create(&TypeLabels { r#type: label }).inc();
    }

    pub fn resync(&self, kind: &'static str) {
        self.resyncs.get_or_create(&ResyncLabels { kind }).inc();
    }
}
