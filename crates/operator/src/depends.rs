//! `kudo.dev/dependencies-hash` (SPEC.md §2.8, KEP-27): a pod template carries a hash of the
//! ConfigMaps and Secrets it mounts (`volumes[].configMap`, `volumes[].secret`) and pulls with
//! (`imagePullSecrets`), so changing one of them changes the template and rolls the pods.
//! Environment references do not count, as in KUDO.
//!
//! This module finds the references and computes the hash from their contents; the controller
//! fetches the contents (from the same task's objects first, then the cluster).

use std::collections::BTreeSet;

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const HASH_ANNOTATION: &str = "kudo.dev/dependencies-hash";
/// An object with this annotation does not count towards anyone's hash.
pub const SKIP_ANNOTATION: &str = "kudo.dev/skip-hash-calculation";

/// A ConfigMap or Secret a pod template refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dependency {
    pub kind: &'static str,
    pub name: String,
}

fn pod_spec(object: &Value) -> Option<&Value> {
    match object.get("kind").and_then(Value::as_str)? {
        "StatefulSet" | "Deployment" | "ReplicaSet" | "ReplicationController" | "DaemonSet" | "Job" => {
            object.pointer("/spec/template/spec")
        }
        "CronJob" => object.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

fn names<'a>(list: Option<&'a Value>, path: &'a str) -> impl Iterator<Item = String> + 'a {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(move |item| item.pointer(path).and_then(Value::as_str).map(str::to_string))
}

/// The dependencies of a workload's pod template, sorted; empty for other kinds.
pub fn dependencies(object: &Value) -> BTreeSet<Dependency> {
    let Some(spec) = pod_spec(object) else { return BTreeSet::new() };
    let secret = |name| Dependency { kind: "Secret", name };
    let config_map = |name| Dependency { kind: "ConfigMap", name };
    names(spec.get("imagePullSecrets"), "/name")
        .map(secret)
        .chain(names(spec.get("volumes"), "/secret/secretName").map(secret))
        .chain(names(spec.get("volumes"), "/configMap/name").map(config_map))
        .collect()
}

/// The part of a ConfigMap or Secret that matters to the pods: its data. `None` (absent) and
/// skipped objects contribute nothing, as in KUDO.
pub fn contents(object: Option<&Value>) -> Vec<u8> {
    let Some(object) = object else { return Vec::new() };
    if object.pointer("/metadata/annotations").and_then(|a| a.get(SKIP_ANNOTATION)).is_some() {
        return Vec::new();
    }
    let fields = ["data", "binaryData", "stringData"].map(|f| object.get(f).cloned().unwrap_or(Value::Null));
    serde_json::to_vec(&fields).unwrap_or_default()
}

/// Sets the hash of `parts` (one per dependency, in [`dependencies`] order) on the pod
/// template. Nothing changes for a template without dependencies.
pub fn set_hash(object: &mut Value, parts: &[Vec<u8>]) {
    if parts.is_empty() {
        return;
    }
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(Sha256::digest(part));
    }
    let hash = hex::encode(&hasher.finalize()[..16]);
    let path = match object.get("kind").and_then(Value::as_str) {
        Some("CronJob") => "/spec/jobTemplate/spec/template",
        _ => "/spec/template",
    };
    let Some(template) = object.pointer_mut(path).and_then(Value::as_object_mut) else { return };
    let metadata = template.entry("metadata").or_insert_with(|| Value::Object(Default::default()));
    let Some(metadata) = metadata.as_object_mut() else { return };
    let annotations = metadata.entry("annotations").or_insert_with(|| Value::Object(Default::default()));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(HASH_ANNOTATION.into(), Value::String(hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts() -> Value {
        json!({"kind": "StatefulSet", "metadata": {"name": "zk"}, "spec": {"template": {"spec": {
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [{"name": "c", "configMap": {"name": "zk-conf"}}, {"name": "s", "secret": {"secretName": "tls"}}],
            "containers": [{"name": "zk", "envFrom": [{"configMapRef": {"name": "ignored"}}]}]}}}})
    }

    #[test]
    fn mounted_and_pull_references_count_environment_ones_do_not() {
        let found: Vec<String> = dependencies(&sts()).into_iter().map(|d| format!("{}/{}", d.kind, d.name)).collect();
        assert_eq!(found, ["ConfigMap/zk-conf", "Secret/pull", "Secret/tls"]);
        assert!(dependencies(&json!({"kind": "ConfigMap"})).is_empty());
    }

    #[test]
    fn changing_a_mounted_config_map_changes_the_pod_templates_hash() {
        let conf = |v: &str| json!({"kind": "ConfigMap", "data": {"zoo.cfg": v}});
        let hash = |v: &str| {
            let mut object = sts();
            set_hash(&mut object, &[contents(Some(&conf(v))), contents(None), contents(None)]);
            object["spec"]["template"]["metadata"]["annotations"][HASH_ANNOTATION].as_str().unwrap().to_string()
        };
        assert_eq!(hash("a"), hash("a"), "the same contents give the same hash");
        assert_ne!(hash("a"), hash("b"));
        let skipped =
            json!({"kind": "ConfigMap", "metadata": {"annotations": {SKIP_ANNOTATION: "true"}}, "data": {"x": "1"}});
        assert!(contents(Some(&skipped)).is_empty());
    }
}
