//! The single-resource view of the original Maestro API: a resource is a bundle of exactly one
//! manifest, whose one manifest config carries its update strategy and feedback rules.

use serde_json::{Map, Value, json};

use super::BundleContent;
use super::validate::{object_key, resource_for_kind};

/// How a single resource maps onto a bundle.
#[derive(Debug, Clone, Default)]
pub struct ResourceSpec {
    pub manifest: Value,
    pub update_strategy: Option<Value>,
    pub feedback_rules: Option<Vec<Value>>,
    pub delete_option: Option<Value>,
    pub metadata: Map<String, Value>,
}

impl ResourceSpec {
    pub fn into_content(self) -> BundleContent {
        let config = self.manifest_config();
        BundleContent {
            metadata: self.metadata,
            manifests: vec![self.manifest],
            manifest_configs: config.into_iter().collect(),
            delete_option: self.delete_option,
        }
    }

    /// A manifest config only when the client asked for a strategy or feedback; otherwise the
    /// agent's defaults apply, as for a bundle without configs.
    fn manifest_config(&self) -> Option<Value> {
        if self.update_strategy.is_none() && self.feedback_rules.is_none() {
            return None;
        }
        let mut config = Map::new();
        config.insert("resourceIdentifier".into(), resource_identifier(&self.manifest));
        if let Some(rules) = &self.feedback_rules {
            config.insert("feedbackRules".into(), Value::Array(rules.clone()));
        }
        if let Some(strategy) = &self.update_strategy {
            config.insert("updateStrategy".into(), strategy.clone());
        }
        Some(Value::Object(config))
    }
}

/// Identifies a manifest the way OCM's ManifestWork configs do (group, plural resource, name,
/// namespace), so a config built here matches the manifest on the agent.
pub fn resource_identifier(manifest: &Value) -> Value {
    match object_key(manifest) {
        Some(key) => json!({
            "group": key.group,
            "resource": resource_for_kind(&key.kind),
            "name": key.name,
            "namespace": key.namespace.unwrap_or_default(),
        }),
        None => json!({}),
    }
}

/// The resource's `status` as the original Maestro README shows it: `ContentStatus` is the
/// object's own status (the feedback value named "status", or all feedback values by name),
/// `ReconcileStatus` the conditions with the version and sequence they describe.
pub fn status_view(bundle_status: Option<&Value>) -> Value {
    let Some(status) = bundle_status.filter(|s| s.as_object().is_some_and(|o| !o.is_empty())) else {
        return json!({});
    };
    let first = status.pointer("/resourceStatus/0");
    let conditions = first
        .and_then(|r| r.get("conditions"))
        .or_else(|| status.get("conditions"))
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    json!({
        "ContentStatus": first.map(content_status).unwrap_or(Value::Null),
        "ReconcileStatus": {
            "Conditions": conditions,
            "ObservedVersion": status.get("ObservedVersion").cloned().unwrap_or(Value::Null),
            "SequenceID": status.get("SequenceID").cloned().unwrap_or(Value::Null),
        },
    })
}

fn content_status(resource_status: &Value) -> Value {
    let values = resource_status.pointer("/statusFeedback/values").and_then(Value::as_array);
    let Some(values) = values else { return Value::Null };
    let mut by_name = Map::new();
    for value in values {
        let (Some(name), Some(field)) = (value.get("name").and_then(Value::as_str), value.get("fieldValue")) else {
            continue;
        };
        by_name.insert(name.to_string(), feedback_value(field));
    }
    match by_name.remove("status") {
        Some(status) if by_name.is_empty() => status,
        Some(status) => {
            by_name.insert("status".into(), status);
            Value::Object(by_name)
        }
        None => Value::Object(by_name),
    }
}

/// OCM feedback values are typed (`{"type": "Integer", "integer": 3}`); JSON-raw ones carry
/// their value as a string, which is parsed back so the view shows an object.
fn feedback_value(field: &Value) -> Value {
    let kind = field.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "Integer" => field.get("integer").cloned().unwrap_or(Value::Null),
        "String" => field.get("string").cloned().unwrap_or(Value::Null),
        "Boolean" => field.get("boolean").cloned().unwrap_or(Value::Null),
        "JsonRaw" => field
            .get("jsonRaw")
            .and_then(Value::as_str)
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or(Value::Null),
        _ => field.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}})
    }

    #[test]
    fn a_plain_resource_is_a_bundle_of_one_manifest_without_configs() {
        let content = ResourceSpec { manifest: deployment(), ..Default::default() }.into_content();
        assert_eq!(content.manifests, vec![deployment()]);
        assert!(content.manifest_configs.is_empty());
    }

    #[test]
    fn strategy_and_feedback_become_a_config_that_identifies_the_manifest() {
        let spec = ResourceSpec {
            manifest: deployment(),
            update_strategy: Some(json!({"type": "ServerSideApply"})),
            feedback_rules: Some(vec![json!({"type": "WellKnownStatus"})]),
            ..Default::default()
        };
        let config = &spec.into_content().manifest_configs[0];
        assert_eq!(
            config["resourceIdentifier"],
            json!({"group": "apps", "resource": "deployments", "name": "web", "namespace": "default"})
        );
        assert_eq!(config["updateStrategy"]["type"], "ServerSideApply");
    }

    #[test]
    fn status_view_shows_object_status_and_reconcile_conditions() {
        let status = json!({
            "ObservedVersion": 2, "SequenceID": "42",
            "conditions": [{"type": "Applied", "status": "True"}],
            "resourceStatus": [{
                "conditions": [{"type": "Available", "status": "True"}],
                "statusFeedback": {"values": [{"name": "status", "fieldValue": {"type": "JsonRaw", "jsonRaw": "{\"readyReplicas\":1}"}}]}
            }]
        });
        let view = status_view(Some(&status));
        assert_eq!(view["ContentStatus"], json!({"readyReplicas": 1}));
        assert_eq!(view["ReconcileStatus"]["Conditions"][0]["type"], "Available");
        assert_eq!(view["ReconcileStatus"]["ObservedVersion"], 2);
    }

    #[test]
    fn no_status_yet_is_an_empty_object() {
        assert_eq!(status_view(None), json!({}));
        assert_eq!(status_view(Some(&json!({}))), json!({}));
    }
}
