//! Drift: whether a live object still says what its manifest says.
//!
//! The API server adds defaults, status and bookkeeping metadata to every object, so an exact
//! comparison would see drift everywhere. An object conforms when every field the manifest sets
//! has the same value in the live object; empty values (`{}`, `[]`, `null`) the server may drop
//! count as present. Only labels and annotations are compared in `metadata`.

use serde_json::{Map, Value};

/// Whether `live` still carries everything `desired` (a manifest) sets.
pub fn conforms(desired: &Value, live: &Value) -> bool {
    let (Some(desired), Some(live)) = (desired.as_object(), live.as_object()) else { return false };
    desired.iter().all(|(key, want)| match key.as_str() {
        "apiVersion" | "kind" | "status" => true,
        "metadata" => metadata_conforms(want, live.get("metadata")),
        _ => field_conforms(want, live.get(key)),
    })
}

fn metadata_conforms(want: &Value, live: Option<&Value>) -> bool {
    ["labels", "annotations"]
        .iter()
        .all(|key| field_conforms(want.get(key).unwrap_or(&Value::Null), live.and_then(|m| m.get(key))))
}

fn field_conforms(want: &Value, live: Option<&Value>) -> bool {
    match live {
        None | Some(Value::Null) => is_empty(want),
        Some(live) => subset(want, live),
    }
}

fn subset(want: &Value, live: &Value) -> bool {
    match (want, live) {
        // A manifest that sets nothing there does not care what is there.
        (Value::Null, _) => true,
        (Value::Object(want), Value::Object(live)) => object_subset(want, live),
        (Value::Array(want), Value::Array(live)) => {
            want.len() == live.len() && want.iter().zip(live).all(|(w, l)| subset(w, l))
        }
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        _ => want == live || (is_empty(want) && is_empty(live)),
    }
}

fn object_subset(want: &Map<String, Value>, live: &Map<String, Value>) -> bool {
    want.iter().all(|(key, value)| field_conforms(value, live.get(key)))
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().all(is_empty),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
               "spec": {"replicas": 2, "strategy": {}, "template": {"spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}}]}}},
               "status": {}})
    }

    fn live() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "uid": "u", "resourceVersion": "7",
                            "annotations": {"deployment.kubernetes.io/revision": "1"}},
               "spec": {"replicas": 2, "progressDeadlineSeconds": 600,
                        "template": {"spec": {"containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Always"}]}}},
               "status": {"readyReplicas": 2}})
    }

    #[test]
    fn server_defaults_status_and_dropped_empty_fields_are_not_drift() {
        assert!(conforms(&manifest(), &live()));
    }

    #[test]
    fn a_changed_field_or_label_is_drift() {
        let mut edited = live();
        edited["spec"]["replicas"] = json!(5);
        assert!(!conforms(&manifest(), &edited));
        let mut relabelled = live();
        relabelled["metadata"]["labels"]["app"] = json!("other");
        assert!(!conforms(&manifest(), &relabelled));
        let mut image = live();
        image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("httpd");
        assert!(!conforms(&manifest(), &image));
    }

    #[test]
    fn a_removed_field_is_drift() {
        let mut removed = live();
        removed["spec"].as_object_mut().unwrap().remove("replicas");
        assert!(!conforms(&manifest(), &removed));
    }
}
