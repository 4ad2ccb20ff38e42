//! When an applied object counts as done (SPEC.md §2.7, KUDO's `status.IsHealthy`): the
//! rollout rules kubectl uses for StatefulSets and Deployments, a Job's single success, a
//! Pod running and ready, an established CRD, an active Namespace, a Service with its address,
//! an Instance with no plan scheduled; every other kind at once. A Job whose `Failed`
//! condition is true has failed for good, which ends the plan.

use serde_json::Value;

use crate::pass::TaskOutcome;
use crate::select::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Not yet; the message says what it waits for.
    Waiting(String),
    /// Cannot become healthy as things are (a rollout past its deadline, an OnDelete
    /// StatefulSet): retried, as KUDO retries errors of its status viewers.
    Error(String),
    /// Failed for good.
    Failed(String),
}

impl Health {
    /// What a task reports for an object in this state.
    pub fn outcome(self) -> TaskOutcome {
        match self {
            Health::Healthy => TaskOutcome::Done,
            Health::Waiting(_) => TaskOutcome::Pending,
            Health::Error(message) => TaskOutcome::Transient(message),
            Health::Failed(message) => TaskOutcome::Fatal(message),
        }
    }
}

fn int(object: &Value, path: &[&str]) -> Option<i64> {
    path.iter().try_fold(object, |node, key| node.get(*key))?.as_i64()
}

fn text<'a>(object: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(object, |node, key| node.get(*key))?.as_str()
}

fn name(object: &Value) -> String {
    let ns = text(object, &["metadata", "namespace"]).map(|n| format!("{n}/")).unwrap_or_default();
    format!("{ns}{}", text(object, &["metadata", "name"]).unwrap_or_default())
}

/// The condition `kind` of `status.conditions`, when its status is `"True"`.
fn condition_true<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object.pointer("/status/conditions")?.as_array()?.iter().find(|c| {
        c.get("type").and_then(Value::as_str) == Some(kind) && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

/// A child Instance is done when the engine has acted on its current spec and no plan is
/// scheduled. KUDO's webhook scheduled `deploy` in the create call itself; without a webhook,
/// a child nobody has acted on yet must not count as done.
fn instance(object: &Value) -> Health {
    let Ok(child) = serde_json::from_value::<maestro_package::crd::Instance>(object.clone()) else {
        return Health::Waiting(format!("instance {} is not readable yet", name(object)));
    };
    if Snapshot::from_annotations(&child.metadata.annotations).as_ref() != Some(&Snapshot::of(&child.spec)) {
        return Health::Waiting(format!("instance {} has not started its plan yet", name(object)));
    }
    let plan = child.spec.plan_execution.plan_name.as_str();
    if !plan.is_empty() {
        return Health::Waiting(format!("instance {} runs plan {plan}", name(object)));
    }
    // Past KUDO: a child whose last plan failed fails its parent's task, rather than counting
    // as done because nothing is scheduled (KUDO's reading, SPEC.md §2.7).
    let plans = child.status.map(|s| s.plan_status).unwrap_or_default();
    let last = crate::pass::latest(plans.values());
    match last.filter(|p| p.status == crate::pass::FATAL_ERROR) {
        Some(failed) => {
            let step = failed.phases.iter().flat_map(|p| &p.steps).find(|s| s.status == crate::pass::FATAL_ERROR);
            let why = step.map(|s| format!(": {}", s.message)).unwrap_or_default();
            Health::Failed(format!("instance {}: plan {} failed{why}", name(object), failed.name))
        }
        None => Health::Healthy,
    }
}

/// The health of a live object, by its kind.
pub fn health(object: &Value) -> Health {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    match (group, object.get("kind").and_then(Value::as_str).unwrap_or_default()) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => match condition_true(object, "Established") {
            Some(_) => Health::Healthy,
            None => Health::Waiting(format!("CRD {} is not established yet", name(object))),
        },
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "Deployment") => deployment(object),
        ("batch", "Job") => job(object),
        ("kudo.dev", "Instance") => instance(object),
        ("", "Pod") => {
            let running = text(object, &["status", "phase"]) == Some("Running");
            if running && condition_true(object, "Ready").is_some() {
                Health::Healthy
            } else {
                let phase = text(object, &["status", "phase"]).unwrap_or("Pending");
                Health::Waiting(format!("pod {} is not running and ready yet: {phase}", name(object)))
            }
        }
        ("", "Namespace") => match text(object, &["status", "phase"]) {
            Some("Active") => Health::Healthy,
            phase => Health::Waiting(format!("namespace {} is not active: {}", name(object), phase.unwrap_or(""))),
        },
        ("", "Service") => service(object),
        _ => Health::Healthy,
    }
}

/// kubectl's `rollout status` for a StatefulSet.
fn stateful_set(sts: &Value) -> Health {
    let strategy = text(sts, &["spec", "updateStrategy", "type"]).unwrap_or("RollingUpdate");
    if strategy != "RollingUpdate" {
        return Health::Error(format!("statefulset {}: rollout status is only available for RollingUpdate", name(sts)));
    }
    let observed = int(sts, &["status", "observedGeneration"]).unwrap_or(0);
    if observed == 0 || int(sts, &["metadata", "generation"]).unwrap_or(0) > observed {
        return Health::Waiting(format!("statefulset {}: waiting for the spec update to be observed", name(sts)));
    }
    let replicas = int(sts, &["spec", "replicas"]).unwrap_or(1);
    let ready = int(sts, &["status", "readyReplicas"]).unwrap_or(0);
    if ready < replicas {
        return Health::Waiting(format!(
            "statefulset {}: waiting for {} pods to be ready",
            name(sts),
            replicas - ready
        ));
    }
    if let Some(partition) = int(sts, &["spec", "updateStrategy", "rollingUpdate", "partition"]) {
        let updated = int(sts, &["status", "updatedReplicas"]).unwrap_or(0);
        if updated < replicas - partition {
            return Health::Waiting(format!(
                "statefulset {}: partitioned roll out: {updated} of {} new pods",
                name(sts),
                replicas - partition
            ));
        }
        return Health::Healthy;
    }
    if text(sts, &["status", "updateRevision"]) != text(sts, &["status", "currentRevision"]) {
        return Health::Waiting(format!("statefulset {}: waiting for the rolling update to complete", name(sts)));
    }
    Health::Healthy
}

/// kubectl's `rollout status` for a Deployment.
fn deployment(deploy: &Value) -> Health {
    let observed = int(deploy, &["status", "observedGeneration"]).unwrap_or(0);
    if int(deploy, &["metadata", "generation"]).unwrap_or(0) > observed {
        return Health::Waiting(format!("deployment {}: waiting for the spec update to be observed", name(deploy)));
    }
    let deadline = deploy.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
        })
    });
    if deadline {
        return Health::Error(format!("deployment {} exceeded its progress deadline", name(deploy)));
    }
    let status = |field: &str| int(deploy, &["status", field]).unwrap_or(0);
    let updated = status("updatedReplicas");
    if let Some(replicas) = int(deploy, &["spec", "replicas"])
        && updated < replicas
    {
        return Health::Waiting(format!("deployment {}: {updated} of {replicas} new replicas updated", name(deploy)));
    }
    if status("replicas") > updated {
        return Health::Waiting(format!(
            "deployment {}: {} old replicas pending termination",
            name(deploy),
            status("replicas") - updated
        ));
    }
    if status("availableReplicas") < updated {
        return Health::Waiting(format!(
            "deployment {}: {} of {updated} updated replicas available",
            name(deploy),
            status("availableReplicas")
        ));
    }
    Health::Healthy
}

/// Exactly one success; a true `Failed` condition is final.
fn job(job: &Value) -> Health {
    if let Some(failed) = condition_true(job, "Failed") {
        let message = failed.get("message").and_then(Value::as_str).unwrap_or_default();
        return Health::Failed(format!("job {} has failed terminally: {message}", name(job)));
    }
    match int(job, &["status", "succeeded"]) {
        Some(1) => Health::Healthy,
        _ => Health::Waiting(format!("job {} still running or failed", name(job))),
    }
}

fn service(svc: &Value) -> Health {
    let kind = text(svc, &["spec", "type"]).unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return Health::Healthy;
    }
    if text(svc, &["spec", "clusterIP"]).unwrap_or_default().is_empty() {
        return Health::Waiting(format!("service {} has no cluster IP yet", name(svc)));
    }
    if kind == "LoadBalancer" {
        let external = svc.pointer("/spec/externalIPs").and_then(Value::as_array).is_some_and(|ips| !ips.is_empty());
        let ingress = svc.pointer("/status/loadBalancer/ingress").is_some_and(|i| !i.is_null());
        if !external && !ingress {
            return Health::Waiting(format!("service {} has no load balancer ingress yet", name(svc)));
        }
    }
    Health::Healthy
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sts(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "zk", "namespace": "ns", "generation": 2}, "spec": spec, "status": status})
    }

    #[test]
    fn a_statefulset_is_healthy_when_its_rollout_is_done() {
        let ready =
            json!({"observedGeneration": 2, "readyReplicas": 3, "currentRevision": "r2", "updateRevision": "r2"});
        assert_eq!(health(&sts(json!({"replicas": 3}), ready.clone())), Health::Healthy);
        let old = json!({"observedGeneration": 1, "readyReplicas": 3});
        assert!(matches!(health(&sts(json!({"replicas": 3}), old)), Health::Waiting(m) if m.contains("observed")));
        let short = json!({"observedGeneration": 2, "readyReplicas": 1});
        assert!(matches!(health(&sts(json!({"replicas": 3}), short)), Health::Waiting(m) if m.contains("2 pods")));
        let rolling =
            json!({"observedGeneration": 2, "readyReplicas": 3, "currentRevision": "r1", "updateRevision": "r2"});
        assert!(matches!(health(&sts(json!({"replicas": 3}), rolling)), Health::Waiting(_)));
        let on_delete = sts(json!({"replicas": 3, "updateStrategy": {"type": "OnDelete"}}), ready);
        assert!(
            matches!(health(&on_delete), Health::Error(_)),
            "KUDO's status viewer errors on OnDelete: retried forever"
        );
    }

    #[test]
    fn a_deployment_follows_kubectls_rollout_status() {
        let deploy = |status: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "generation": 1}, "spec": {"replicas": 2}, "status": status});
        let done = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
        assert_eq!(health(&deploy(done)), Health::Healthy);
        let unavailable = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1});
        assert!(matches!(health(&deploy(unavailable)), Health::Waiting(m) if m.contains("1 of 2")));
        let stuck = json!({"observedGeneration": 1, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
        assert!(matches!(health(&deploy(stuck)), Health::Error(m) if m.contains("progress deadline")));
    }

    #[test]
    fn a_job_succeeds_once_or_fails_for_good() {
        let job = |status: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "backup"}, "status": status});
        assert_eq!(health(&job(json!({"succeeded": 1}))), Health::Healthy);
        assert!(matches!(health(&job(json!({"active": 1}))), Health::Waiting(_)));
        let failed =
            job(json!({"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}));
        assert!(matches!(health(&failed).outcome(), TaskOutcome::Fatal(m) if m.contains("BackoffLimitExceeded")));
    }

    #[test]
    fn other_kinds_as_kudo_judges_them() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(health(&pod), Health::Healthy);
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1"}});
        assert!(matches!(health(&svc), Health::Waiting(m) if m.contains("load balancer")));
        let acted = r#"{"operatorVersion":"zk-0.1.0","parameters":{"N":"3"}}"#;
        let child = |plan: &str, snapshot: Option<&str>| {
            let annotations = snapshot.map(|s| json!({"maestro.io/acted-on": s})).unwrap_or(json!({}));
            json!({"apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
                   "metadata": {"name": "c", "annotations": annotations},
                   "spec": {"operatorVersion": {"name": "zk-0.1.0"}, "parameters": {"N": "3"}, "planExecution": {"planName": plan}}})
        };
        assert!(matches!(health(&child("deploy", Some(acted))), Health::Waiting(m) if m.contains("runs plan deploy")));
        assert_eq!(health(&child("", Some(acted))), Health::Healthy);
        let fresh = health(&child("", None));
        assert!(matches!(fresh, Health::Waiting(m) if m.contains("not started")), "a child nobody acted on yet");
        let mut failed = child("", Some(acted));
        failed["status"] = json!({"planStatus": {"deploy": {"name": "deploy", "status": "FATAL_ERROR", "phases": [
            {"name": "p", "status": "FATAL_ERROR", "steps": [{"name": "s", "status": "FATAL_ERROR", "message": "boom"}]}]}}});
        assert_eq!(health(&failed), Health::Failed("instance c: plan deploy failed: boom".into()));
        let changed = health(&child("", Some(r#"{"operatorVersion":"zk-0.1.0","parameters":{"N":"1"}}"#)));
        assert!(matches!(changed, Health::Waiting(_)), "a child whose spec changed since the engine acted");
        let custom = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}});
        assert_eq!(health(&custom), Health::Healthy, "custom resources count as healthy at once, as in KUDO");
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x"}, "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(health(&crd), Health::Healthy);
    }
}
