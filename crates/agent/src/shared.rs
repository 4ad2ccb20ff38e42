//! What the link, the reconciler and the metrics endpoint share: counters (read at scrape time)
//! and the consumer's labels as the hub last sent them. Its own module so that those three
//! never import one another for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::apply::ApplyError;

/// Kubernetes `StatusReason`s and the agent's own reasons; any other reason is `Other`, so a
/// server sending arbitrary text cannot grow the number of series.
const KNOWN_REASONS: &[&str] = &[
    "AlreadyExists",
    "BadRequest",
    "Conflict",
    "Expired",
    "Forbidden",
    "Gone",
    "InternalError",
    "Invalid",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "RequestEntityTooLarge",
    "ServerTimeout",
    "ServiceUnavailable",
    "Timeout",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "UnknownKind",
    "InvalidManifest",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TypeLabels {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PhaseLabels {
    phase: &'static str,
}

/// Bundles the reconciler holds, by phase (a fixed set of labels).
#[derive(Debug, Default)]
pub struct BundlePhases(pub(crate) Family<PhaseLabels, Gauge>);

impl BundlePhases {
    pub fn set(&self, phase: &'static str, count: i64) {
        self.0.get_or_create(&PhaseLabels { phase }).set(count);
    }

    pub fn get(&self, phase: &'static str) -> i64 {
        self.0.get_or_create(&PhaseLabels { phase }).get()
    }
}

/// Events received from the hub, by type label (`spec.create`, `status.resync`, ...).
#[derive(Debug, Default)]
pub struct EventCounts(pub(crate) Family<TypeLabels, Counter>);

impl EventCounts {
    pub fn inc(&self, label: &'static str) {
        self.0.get_or_create(&TypeLabels { r#type: label }).inc();
    }
}

/// Writes (and the discovery before them) that failed, by bounded reason.
#[derive(Debug, Default)]
pub struct ApplyErrors(pub(crate) Family<ReasonLabels, Counter>);

impl ApplyErrors {
    pub fn inc(&self, err: &ApplyError) {
        self.0.get_or_create(&ReasonLabels { reason: reason_label(err) }).inc();
    }
}

pub(crate) fn reason_label(err: &ApplyError) -> &'static str {
    match err {
        ApplyError::Unreachable { .. } => "ApiServerUnreachable",
        ApplyError::Refused { reason, .. } => KNOWN_REASONS.iter().find(|k| **k == reason).copied().unwrap_or("Other"),
    }
}

/// Whether the API server answered the agent's latest call (a refusal is an answer).
#[derive(Debug, Default)]
pub struct ApiHealth(AtomicU8);

const UNKNOWN: u8 = 0;
const ANSWERED: u8 = 1;
const UNREACHABLE: u8 = 2;

impl ApiHealth {
    pub fn answered(&self) {
        self.0.store(ANSWERED, Ordering::Relaxed);
    }

    /// Records the outcome of a call that failed with `err`.
    pub fn failed(&self, err: &ApplyError) {
        let state = if matches!(err, ApplyError::Unreachable { .. }) { UNREACHABLE } else { ANSWERED };
        self.0.store(state, Ordering::Relaxed);
    }

    pub fn reachable(&self) -> bool {
        self.0.load(Ordering::Relaxed) == ANSWERED
    }

    pub(crate) fn known(&self) -> bool {
        self.0.load(Ordering::Relaxed) != UNKNOWN
    }
}

/// Counters the agent exposes (tests and the benchmark read them).
#[derive(Debug, Default)]
pub struct Counters {
    pub applies: std::sync::atomic::AtomicU64,
    pub drift_corrections: std::sync::atomic::AtomicU64,
    /// Failed writes and lookups by bounded reason (`/metrics`).
    pub apply_errors: ApplyErrors,
    /// Whether the API server answered the latest call (`/readyz`).
    pub api: ApiHealth,
    /// Objects tracked (and watched), updated after each input.
    pub watched_objects: std::sync::atomic::AtomicU64,
    /// Bundles by phase (`applied`, `retrying`, `held`, `deleting`, `delete_held`).
    pub bundles: BundlePhases,
}

/// Counts of what the link dropped or sent.
#[derive(Debug, Default)]
pub struct LinkCounters {
    pub malformed_events: AtomicU64,
    pub statuses_sent: AtomicU64,
    pub resyncs_sent: AtomicU64,
    /// Events read from the hub, by type (`/metrics`).
    pub events: EventCounts,
    pub policy_updates: AtomicU64,
}

/// The consumer's labels, shared by the link and the reconciler; updated by each policy update.
#[derive(Debug, Clone, Default)]
pub struct ConsumerLabels(Arc<std::sync::RwLock<Vec<(String, String)>>>);

impl ConsumerLabels {
    pub fn set(&self, labels: Vec<(String, String)>) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = labels;
    }

    pub fn get(&self) -> Vec<(String, String)> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}
