//! Status feedback: rollout health of Deployments and StatefulSets, with the replica counts
//! as feedback values. Other kinds get no opinion.

use maestro_plugin::feedback::condition;
use maestro_plugin::prelude::*;

pub struct RolloutHealth;

impl StatusFeedback for RolloutHealth {
    type Settings = ();

    fn status(_ctx: &Context, live: &Manifest, _desired: &Manifest, _settings: &()) -> Result<Report, String> {
        match live.kind() {
            "Deployment" => Ok(deployment(live)),
            "StatefulSet" => Ok(stateful_set(live)),
            _ => Ok(Report::new()),
        }
    }
}

fn count(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The controller has seen the latest spec; until then, status describes an older one.
fn observed(live: &Value) -> bool {
    count(live, "/status/observedGeneration") >= count(live, "/metadata/generation")
}

fn counts(live: &Value, desired: i64) -> Report {
    Report::new()
        .integer("replicas", desired)
        .integer("readyReplicas", count(live, "/status/readyReplicas"))
        .integer("updatedReplicas", count(live, "/status/updatedReplicas"))
        .integer("availableReplicas", count(live, "/status/availableReplicas"))
}

fn deployment(live: &Manifest) -> Report {
    let desired = live.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let report = counts(live, desired);
    let updated = count(live, "/status/updatedReplicas");
    let available = count(live, "/status/availableReplicas");
    let progressing = condition(live, "Progressing");
    if progressing.as_ref().is_some_and(|c| c.reason == "ProgressDeadlineExceeded") {
        let message = progressing.map(|c| c.message).unwrap_or_default();
        return report.health(HealthState::Failed, format!("rollout stalled: {message}"));
    }
    if !observed(live) {
        return report.health(HealthState::Progressing, "waiting for the controller to observe the new spec");
    }
    if updated < desired {
        return report.health(HealthState::Progressing, format!("{updated} of {desired} replicas updated"));
    }
    if available < desired {
        return report.health(HealthState::Degraded, format!("{available} of {desired} replicas available"));
    }
    report.health(HealthState::Healthy, format!("{available} of {desired} replicas available"))
}

fn stateful_set(live: &Manifest) -> Report {
    let desired = live.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let report = counts(live, desired);
    let ready = count(live, "/status/readyReplicas");
    let revision = |key: &str| live.pointer(&format!("/status/{key}")).and_then(Value::as_str).unwrap_or("");
    if !observed(live) {
        return report.health(HealthState::Progressing, "waiting for the controller to observe the new spec");
    }
    if revision("currentRevision") != revision("updateRevision") || count(live, "/status/updatedReplicas") < desired {
        return report.health(HealthState::Progressing, format!("rolling out revision {}", revision("updateRevision")));
    }
    if ready < desired {
        return report.health(HealthState::Degraded, format!("{ready} of {desired} replicas ready"));
    }
    report.health(HealthState::Healthy, format!("{ready} of {desired} replicas ready"))
}

maestro_plugin::export_status_feedback!(RolloutHealth);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    fn deployment(generation: i64, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": generation},
               "spec": {"replicas": 3}, "status": status})
    }

    fn state(live: &Value) -> HealthState {
        testing::status::<RolloutHealth>(live, &json!({}), &json!(null)).unwrap().state().unwrap()
    }

    #[test]
    fn a_fully_rolled_out_deployment_is_healthy_with_its_counts() {
        let live = deployment(
            2,
            json!({"observedGeneration": 2, "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 3}),
        );
        let report = testing::status::<RolloutHealth>(&live, &json!({}), &json!(null)).unwrap();
        assert_eq!(report.state(), Some(HealthState::Healthy));
        assert_eq!(report.get("availableReplicas"), Some(&FeedbackValue::Integer(3)));
    }

    #[test]
    fn a_deployment_mid_rollout_or_not_yet_observed_is_progressing() {
        assert_eq!(
            state(&deployment(2, json!({"observedGeneration": 2, "updatedReplicas": 1}))),
            HealthState::Progressing
        );
        let stale = deployment(3, json!({"observedGeneration": 2, "updatedReplicas": 3, "availableReplicas": 3}));
        assert_eq!(state(&stale), HealthState::Progressing);
    }

    #[test]
    fn lost_replicas_degrade_and_a_stalled_rollout_fails() {
        let degraded = deployment(1, json!({"observedGeneration": 1, "updatedReplicas": 3, "availableReplicas": 2}));
        assert_eq!(state(&degraded), HealthState::Degraded);
        let stalled = deployment(
            1,
            json!({"observedGeneration": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "image pull"}]}),
        );
        assert_eq!(state(&stalled), HealthState::Failed);
    }

    #[test]
    fn a_stateful_set_is_healthy_only_on_one_revision_with_all_ready() {
        let sts = |current: &str, ready: i64| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "generation": 1},
                   "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "currentRevision": current,
                   "updateRevision": "db-2", "updatedReplicas": 2, "readyReplicas": ready}})
        };
        assert_eq!(state(&sts("db-1", 2)), HealthState::Progressing);
        assert_eq!(state(&sts("db-2", 1)), HealthState::Degraded);
        assert_eq!(state(&sts("db-2", 2)), HealthState::Healthy);
    }

    #[test]
    fn other_kinds_get_no_opinion() {
        let report = testing::status::<RolloutHealth>(&json!({"kind": "ConfigMap"}), &json!({}), &json!(null)).unwrap();
        assert_eq!(report, Report::new());
    }
}
