//! A bundle as agents receive it and its status as they report it, in the shapes of OCM's
//! ManifestWork events; and the one status hash both sides compare.
//!
//! The hash is of the typed status's JSON, so its bytes do not depend on how a side happens to
//! hold the status: the agent builds its status as JSON and hashes it through
//! [`status_hash_of_json`], which reads it as [`ManifestBundleStatus`] first.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a spec event carries: the bundle as the agent should apply it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBundle {
    #[serde(default)]
    pub manifests: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_option: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest_configs: Vec<Value>,
}

/// What a status event carries: the work's conditions and each manifest's status (with its
/// status feedback values), and, when re-broadcast by a Maestro server, the bundle itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBundleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_bundle: Option<ManifestBundle>,
    #[serde(default)]
    pub conditions: Vec<Value>,
    #[serde(default)]
    pub resource_status: Vec<Value>,
}

impl ManifestBundleStatus {
    /// Whether the agent reports the work gone (condition `Deleted` is `True`).
    pub fn is_deleted(&self) -> bool {
        self.conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Deleted")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    }
}

/// Hex SHA-256 of a status's JSON: the `statushash` extension, and what status resyncs compare.
pub fn status_hash(status: &ManifestBundleStatus) -> String {
    let bytes = serde_json::to_vec(status).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// [`status_hash`] of a status held as JSON. JSON that is not a status (which no agent sends)
/// hashes as the empty status plus its own bytes, so two different ones still differ.
pub fn status_hash_of_json(status: &Value) -> String {
    match ManifestBundleStatus::deserialize(status) {
        Ok(typed) => status_hash(&typed),
        Err(_) => hex::encode(Sha256::digest(serde_json::to_vec(status).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hash_does_not_depend_on_the_key_order_of_the_json_it_was_built_as() {
        let condition = json!({"type": "Applied", "status": "True"});
        let one = json!({"conditions": [condition], "resourceStatus": []});
        let other = json!({"resourceStatus": [], "conditions": [condition]});
        assert_eq!(status_hash_of_json(&one), status_hash_of_json(&other));
        let typed: ManifestBundleStatus = serde_json::from_value(one.clone()).expect("a status");
        assert_eq!(status_hash(&typed), status_hash_of_json(&one), "the agent's hash is the hub's");
        let changed = json!({"conditions": [{"type": "Applied", "status": "False"}], "resourceStatus": []});
        assert_ne!(status_hash_of_json(&one), status_hash_of_json(&changed));
    }
}
