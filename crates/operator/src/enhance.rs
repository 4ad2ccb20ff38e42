//! What the engine adds to every object a plan applies, as KUDO's enhancer does (SPEC.md §2.8),
//! so tools and asserts written for KUDO find the same labels and annotations:
//! - labels `heritage: kudo`, `kudo.dev/operator`, `kudo.dev/instance` on the object and on the
//!   pod templates of workloads (and a StatefulSet's volume claim templates);
//! - the pod-template annotation `kudo.dev/operator-version`, and on the object
//!   `kudo.dev/plan`, `kudo.dev/phase`, `kudo.dev/step`, `kudo.dev/last-plan-execution-uid`;
//! - a namespaced object goes into the Instance's namespace whatever the template said, owned by
//!   the Instance (a controller reference, so deleting the Instance collects it); a
//!   cluster-scoped object gets neither.
//!
//! The `kudo.dev/dependencies-hash` of pod templates needs the referenced ConfigMaps and
//! Secrets, so the controller adds it, not this function.

use serde_json::{Map, Value, json};

pub const HERITAGE: &str = "heritage";
pub const OPERATOR_LABEL: &str = "kudo.dev/operator";
pub const INSTANCE_LABEL: &str = "kudo.dev/instance";
pub const OPERATOR_VERSION_ANNOTATION: &str = "kudo.dev/operator-version";
/// The plan execution that last applied an object.
pub const PLAN_UID_ANNOTATION: &str = "kudo.dev/last-plan-execution-uid";

/// Who applies the object, and in which step.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub operator: String,
    pub operator_version: String,
    pub instance: String,
    pub instance_uid: String,
    pub namespace: String,
    pub plan: String,
    pub phase: String,
    pub step: String,
    pub plan_uid: String,
}

/// Where a workload keeps its pod template.
fn pod_template_paths(kind: &str) -> &'static [&'static [&'static str]] {
    match kind {
        "StatefulSet" | "Deployment" | "ReplicaSet" | "ReplicationController" | "DaemonSet" | "Job" => {
            &[&["spec", "template"]]
        }
        "CronJob" => &[&["spec", "jobTemplate", "spec", "template"]],
        _ => &[],
    }
}

fn child<'a>(object: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(object, |node, key| node.get_mut(*key))
}

fn entries<'a>(object: &'a mut Value, field: &str) -> Option<&'a mut Map<String, Value>> {
    let metadata = object.as_object_mut()?.entry("metadata").or_insert_with(|| json!({}));
    let map = metadata.as_object_mut()?.entry(field).or_insert_with(|| json!({}));
    if !map.is_object() {
        *map = json!({});
    }
    map.as_object_mut()
}

fn set(object: &mut Value, field: &str, pairs: &[(&str, &str)]) {
    if let Some(map) = entries(object, field) {
        for (key, value) in pairs {
            map.insert((*key).to_string(), Value::String((*value).to_string()));
        }
    }
}

/// Adds KUDO's labels, annotations, namespace and owner to `object` (see the module doc).
pub fn enhance(object: &mut Value, context: &Context, namespaced: bool) {
    let labels =
        [(HERITAGE, "kudo"), (OPERATOR_LABEL, context.operator.as_str()), (INSTANCE_LABEL, context.instance.as_str())];
    set(object, "labels", &labels);
    set(
        object,
        "annotations",
        &[
            ("kudo.dev/plan", &context.plan),
            ("kudo.dev/phase", &context.phase),
            ("kudo.dev/step", &context.step),
            (PLAN_UID_ANNOTATION, &context.plan_uid),
        ],
    );
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    for path in pod_template_paths(&kind) {
        if let Some(template) = child(object, path) {
            set(template, "labels", &labels);
            set(template, "annotations", &[(OPERATOR_VERSION_ANNOTATION, &context.operator_version)]);
        }
    }
    if kind == "StatefulSet"
        && let Some(claims) = child(object, &["spec", "volumeClaimTemplates"]).and_then(Value::as_array_mut)
    {
        for claim in claims {
            set(claim, "labels", &labels);
        }
    }
    if namespaced {
        own(object, context);
    }
}

/// The Instance's namespace, and a controller reference to the Instance (replacing any other
/// controller reference the template carried).
fn own(object: &mut Value, context: &Context) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    metadata.insert("namespace".into(), Value::String(context.namespace.clone()));
    let owner = json!({
        "apiVersion": maestro_package::crd::API_VERSION,
        "kind": "Instance",
        "name": context.instance,
        "uid": context.instance_uid,
        "controller": true,
        "blockOwnerDeletion": true,
    });
    let refs = metadata.entry("ownerReferences").or_insert_with(|| json!([]));
    if let Some(refs) = refs.as_array_mut() {
        refs.retain(|r| r.get("controller").and_then(Value::as_bool) != Some(true));
        refs.push(owner);
    } else {
        *refs = json!([owner]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            operator: "zookeeper".into(),
            operator_version: "0.3.3".into(),
            instance: "zk".into(),
            instance_uid: "u-1".into(),
            namespace: "team-a".into(),
            plan: "deploy".into(),
            phase: "zookeeper".into(),
            step: "deploy".into(),
            plan_uid: "p-1".into(),
        }
    }

    #[test]
    fn a_statefulset_gets_kudos_labels_annotations_namespace_and_owner() {
        let mut sts = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "zk", "namespace": "elsewhere", "labels": {"app": "zk"}},
            "spec": {"template": {"metadata": {"labels": {"app": "zk"}}, "spec": {}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
        });
        enhance(&mut sts, &context(), true);
        let labels = &sts["metadata"]["labels"];
        assert_eq!((labels["app"].as_str(), labels["heritage"].as_str()), (Some("zk"), Some("kudo")), "kept and added");
        assert_eq!(labels["kudo.dev/instance"], "zk");
        assert_eq!(sts["metadata"]["annotations"]["kudo.dev/last-plan-execution-uid"], "p-1");
        assert_eq!(sts["metadata"]["namespace"], "team-a", "forced to the Instance's namespace");
        let template = &sts["spec"]["template"]["metadata"];
        assert_eq!(template["labels"]["kudo.dev/operator"], "zookeeper");
        assert_eq!(template["annotations"]["kudo.dev/operator-version"], "0.3.3");
        assert_eq!(sts["spec"]["volumeClaimTemplates"][0]["metadata"]["labels"]["heritage"], "kudo");
        let owner = &sts["metadata"]["ownerReferences"][0];
        assert_eq!(
            (owner["kind"].as_str(), owner["uid"].as_str(), owner["controller"].as_bool()),
            (Some("Instance"), Some("u-1"), Some(true))
        );
    }

    #[test]
    fn a_cronjobs_pod_template_is_found_and_cluster_scoped_objects_stay_unowned() {
        let mut cron = json!({"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}});
        enhance(&mut cron, &context(), true);
        assert_eq!(cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["heritage"], "kudo");
        let mut role = json!({"kind": "ClusterRole", "metadata": {"name": "r"}});
        enhance(&mut role, &context(), false);
        assert_eq!(role["metadata"]["labels"]["kudo.dev/instance"], "zk");
        assert!(role["metadata"].get("namespace").is_none() && role["metadata"].get("ownerReferences").is_none());
    }
}
