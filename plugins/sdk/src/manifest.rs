//! [`Manifest`]: a Kubernetes object as JSON, with the lookups policies keep needing.
//!
//! Paths handed out here (`spec.template.spec.containers[0].image`) are the ones
//! [`crate::Violation`] expects, so a refusal names the exact field.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A Kubernetes manifest. Dereferences to its [`serde_json::Value`].
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest(pub Value);

impl Manifest {
    /// Parses manifest JSON text as the host sends it.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map(Manifest).map_err(|err| format!("manifest is not JSON: {err}"))
    }

    pub fn kind(&self) -> &str {
        self.str_at(&["kind"]).unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.str_at(&["apiVersion"]).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"]).unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.str_at(&["metadata", "namespace"])
    }

    /// `metadata.labels` (empty when absent; non-string values are skipped).
    pub fn labels(&self) -> BTreeMap<&str, &str> {
        string_map(self.0.pointer("/metadata/labels"))
    }

    /// `metadata.annotations` (empty when absent).
    pub fn annotations(&self) -> BTreeMap<&str, &str> {
        string_map(self.0.pointer("/metadata/annotations"))
    }

    /// `metadata.labels`, created when absent, for mutating validators.
    pub fn labels_mut(&mut self) -> &mut Map<String, Value> {
        object_at(&mut self.0, &["metadata", "labels"])
    }

    /// The pod template's spec for the workload kinds (Pod, Deployment, StatefulSet, DaemonSet,
    /// ReplicaSet, ReplicationController, Job, CronJob); `None` for anything else.
    pub fn pod_spec(&self) -> Option<PodSpec<'_>> {
        let path = pod_spec_path(self.kind())?;
        let mut value = &self.0;
        for key in path {
            value = value.get(key)?;
        }
        Some(PodSpec { path: path.join("."), value })
    }

    /// Every container of the pod spec (init, regular and ephemeral), in that order.
    pub fn containers(&self) -> Vec<Container<'_>> {
        self.pod_spec().map(|spec| spec.containers()).unwrap_or_default()
    }

    /// Converts to a typed object, e.g. `k8s_openapi::api::apps::v1::Deployment`.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(self.0.clone()).map_err(|err| format!("{} {}: {err}", self.kind(), self.name()))
    }

    pub fn into_value(self) -> Value {
        self.0
    }

    fn str_at(&self, keys: &[&str]) -> Option<&str> {
        let mut value = &self.0;
        for key in keys {
            value = value.get(key)?;
        }
        value.as_str()
    }
}

impl Deref for Manifest {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl DerefMut for Manifest {
    fn deref_mut(&mut self) -> &mut Value {
        &mut self.0
    }
}

impl From<Value> for Manifest {
    fn from(value: Value) -> Self {
        Manifest(value)
    }
}

fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            Some(&["spec", "template", "spec"])
        }
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// A pod spec inside a manifest, with the path that leads to it.
#[derive(Debug, Clone)]
pub struct PodSpec<'a> {
    path: String,
    pub value: &'a Value,
}

impl<'a> PodSpec<'a> {
    /// Where the pod spec is, e.g. `spec.template.spec`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of one field of the pod spec, e.g. `spec.template.spec.hostNetwork`.
    pub fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// Init, regular and ephemeral containers, in that order.
    pub fn containers(&self) -> Vec<Container<'a>> {
        let mut out = Vec::new();
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            let Some(items) = self.value.get(list).and_then(Value::as_array) else { continue };
            for (index, value) in items.iter().enumerate() {
                out.push(Container { path: format!("{}.{list}[{index}]", self.path), value });
            }
        }
        out
    }

    /// `volumes`, each with its path.
    pub fn volumes(&self) -> Vec<(String, &'a Value)> {
        let items = self.value.get("volumes").and_then(Value::as_array);
        items
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(index, value)| (format!("{}.volumes[{index}]", self.path), value))
            .collect()
    }
}

/// One container of a pod spec, with its path.
#[derive(Debug, Clone)]
pub struct Container<'a> {
    path: String,
    pub value: &'a Value,
}

impl<'a> Container<'a> {
    /// Where the container is, e.g. `spec.template.spec.containers[0]`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of one of its fields: `field("image")` is `...containers[0].image`.
    pub fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    pub fn name(&self) -> &'a str {
        self.value.get("name").and_then(Value::as_str).unwrap_or("")
    }

    pub fn image(&self) -> Option<&'a str> {
        self.value.get("image").and_then(Value::as_str)
    }

    /// A nested field, e.g. `get(&["securityContext", "privileged"])`.
    pub fn get(&self, keys: &[&str]) -> Option<&'a Value> {
        let mut value = self.value;
        for key in keys {
            value = value.get(key)?;
        }
        Some(value)
    }
}

fn string_map(value: Option<&Value>) -> BTreeMap<&str, &str> {
    let Some(map) = value.and_then(Value::as_object) else { return BTreeMap::new() };
    map.iter().filter_map(|(key, value)| Some((key.as_str(), value.as_str()?))).collect()
}

/// The object at `keys`, replacing whatever non-object stood in the way.
fn object_at<'a>(mut value: &'a mut Value, keys: &[&str]) -> &'a mut Map<String, Value> {
    for key in keys {
        if !value.is_object() {
            *value = Value::Object(Map::new());
        }
        let Value::Object(map) = value else { unreachable!("made an object above") };
        value = map.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Manifest {
        Manifest(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "n": 1}},
            "spec": {"template": {"spec": {
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "web", "image": "nginx:1.27"}],
                "volumes": [{"name": "data", "hostPath": {"path": "/var"}}]
            }}}
        }))
    }

    #[test]
    fn containers_of_a_deployment_come_with_their_paths() {
        let manifest = deployment();
        let containers = manifest.containers();
        let found: Vec<_> = containers.iter().map(|c| (c.path(), c.name(), c.image())).collect();
        assert_eq!(
            found,
            [
                ("spec.template.spec.initContainers[0]", "init", Some("busybox")),
                ("spec.template.spec.containers[0]", "web", Some("nginx:1.27")),
            ]
        );
        assert_eq!(containers[1].field("image"), "spec.template.spec.containers[0].image");
        let spec = manifest.pod_spec().unwrap();
        assert_eq!(spec.volumes()[0].0, "spec.template.spec.volumes[0]");
    }

    #[test]
    fn pod_and_cronjob_pod_specs_are_found_and_other_kinds_have_none() {
        let pod = Manifest(json!({"kind": "Pod", "spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(pod.containers()[0].path(), "spec.containers[0]");
        let cron = Manifest(json!({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "a"}]}}}}}}));
        assert_eq!(cron.containers()[0].path(), "spec.jobTemplate.spec.template.spec.containers[0]");
        let map = Manifest(json!({"kind": "ConfigMap", "data": {}}));
        assert!(map.pod_spec().is_none());
        assert!(map.containers().is_empty());
    }

    #[test]
    fn metadata_accessors_skip_non_string_labels() {
        let manifest = deployment();
        assert_eq!((manifest.kind(), manifest.name(), manifest.namespace()), ("Deployment", "web", Some("shop")));
        assert_eq!(manifest.labels().into_iter().collect::<Vec<_>>(), [("app", "web")]);
    }

    #[test]
    fn labels_mut_creates_missing_metadata() {
        let mut manifest = Manifest(json!({"kind": "ConfigMap"}));
        manifest.labels_mut().insert("team".into(), json!("payments"));
        assert_eq!(manifest.0, json!({"kind": "ConfigMap", "metadata": {"labels": {"team": "payments"}}}));
    }
}
