//! Test validator that mutates: adds the labels of its settings to `metadata.labels` of each
//! manifest it sees, and allows the manifest unchanged when they are already there.
//! Settings: `{"labels": {"key": "value"}}` (required, string values).

wit_bindgen::generate!({ path: "../../../wit", world: "validator" });

use exports::maestro::plugin::validate::{Guest, Verdict};
use maestro::plugin::types::{Context, Operation};
use serde_json::{Map, Value};

struct AddLabels;

fn labels(settings: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_str(settings).map_err(|err| format!("settings are not JSON: {err}"))?;
    let labels = value.get("labels").and_then(Value::as_object).ok_or("settings need \"labels\": an object")?;
    if labels.values().any(|v| !v.is_string()) {
        return Err("every label value must be a string".into());
    }
    Ok(labels.clone())
}

impl Guest for AddLabels {
    fn validate_settings(settings: String) -> Result<(), String> {
        labels(&settings).map(|_| ())
    }

    fn validate(_ctx: Context, _op: Operation, manifest: String, settings: String) -> Verdict {
        let (Ok(wanted), Ok(mut manifest)) = (labels(&settings), serde_json::from_str::<Value>(&manifest)) else {
            return Verdict::Allow;
        };
        let Some(object) = manifest.as_object_mut() else { return Verdict::Allow };
        let metadata = object.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        let Some(metadata) = metadata.as_object_mut() else { return Verdict::Allow };
        let current = metadata.entry("labels").or_insert_with(|| Value::Object(Map::new()));
        let Some(current) = current.as_object_mut() else { return Verdict::Allow };
        if wanted.iter().all(|(k, v)| current.get(k) == Some(v)) {
            return Verdict::Allow;
        }
        current.extend(wanted);
        Verdict::Mutate(manifest.to_string())
    }
}

export!(AddLabels);
