//! The engine's metrics, in Prometheus form (`maestro operator run --metrics-listen`). Labels
//! come from fixed sets only: a reconcile's result, KUDO's special plan names (any other plan
//! is `other`) and a plan's event. Never an Instance, namespace or package name.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanLabels {
    plan: &'static str,
    event: &'static str,
}

/// What the engine counts.
#[derive(Debug, Clone)]
pub struct Metrics {
    reconciles: Family<ResultLabels, Counter>,
    plans: Family<PlanLabels, Counter>,
    passes: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            reconciles: Family::default(),
            plans: Family::default(),
            // 0.25 ms to ~8 s.
            passes: Histogram::new(exponential_buckets(0.00025, 2.0, 16)),
        }
    }
}

/// A plan's name as a label: KUDO's special plans by name, every package-defined one `other`.
fn plan_label(plan: &str) -> &'static str {
    match plan {
        "deploy" => "deploy",
        "update" => "update",
        "upgrade" => "upgrade",
        "cleanup" => "cleanup",
        _ => "other",
    }
}

impl Metrics {
    /// Registers the engine's series (prefix `maestro_operator`) in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("maestro_operator");
        registry.register("reconciles", "Reconciles of Instances, by result (ok, error)", self.reconciles.clone());
        registry.register(
            "plans",
            "Plan executions by plan (deploy, update, upgrade, cleanup, other) and event (started, complete, fatal)",
            self.plans.clone(),
        );
        registry.register("pass_duration_seconds", "How long one pass over a running plan took", self.passes.clone());
    }

    pub(crate) fn reconciled(&self, ok: bool) {
        self.reconciles.get_or_create(&ResultLabels { result: if ok { "ok" } else { "error" } }).inc();
    }

    pub(crate) fn plan(&self, plan: &str, event: &'static str) {
        self.plans.get_or_create(&PlanLabels { plan: plan_label(plan), event }).inc();
    }

    pub(crate) fn pass(&self, took: Duration) {
        self.passes.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_only_fixed_labels() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.plan("backup-of-customer-db", "started");
        metrics.plan("deploy", "complete");
        metrics.reconciled(true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("maestro_operator_plans_total{plan=\"other\",event=\"started\"} 1"), "{text}");
        assert!(text.contains("maestro_operator_plans_total{plan=\"deploy\",event=\"complete\"} 1"), "{text}");
        assert!(text.contains("maestro_operator_reconciles_total{result=\"ok\"} 1"), "{text}");
        assert!(!text.contains("customer"), "a package's plan name never becomes a label");
    }
}
