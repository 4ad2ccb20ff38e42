//! Test status-feedback plugin: reports `readyReplicas` and the image of the first container
//! of a live Deployment, and its health (healthy once every desired replica is ready).
//! A live object annotated `test/trap` makes it trap, for the host's recycling tests.

wit_bindgen::generate!({ path: "../../../wit", world: "status-feedback" });

use exports::maestro::plugin::feedback::{FeedbackValue, Guest, Health, HealthState, Report, Value as Fv};
use maestro::plugin::types::Context;
use serde_json::Value;

struct FeedbackBasic;

impl Guest for FeedbackBasic {
    fn validate_settings(settings: String) -> Result<(), String> {
        match serde_json::from_str::<Value>(&settings) {
            Ok(Value::Object(_)) => Ok(()),
            _ => Err("settings must be a JSON object".into()),
        }
    }

    fn status(_ctx: Context, live: String, desired: String, _settings: String) -> Result<Report, String> {
        let live: Value = serde_json::from_str(&live).map_err(|err| format!("live object is not JSON: {err}"))?;
        let desired: Value = serde_json::from_str(&desired).map_err(|err| format!("desired is not JSON: {err}"))?;
        if live.pointer("/metadata/annotations/test~1trap").is_some() {
            panic!("asked to trap");
        }
        let ready = live.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
        let wanted = desired.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        let mut values = vec![FeedbackValue { name: "readyReplicas".into(), value: Fv::Integer(ready) }];
        if let Some(image) = live.pointer("/spec/template/spec/containers/0/image").and_then(Value::as_str) {
            values.push(FeedbackValue { name: "image".into(), value: Fv::Text(image.into()) });
        }
        let health = if ready >= wanted {
            Health { state: HealthState::Healthy, message: format!("{ready}/{wanted} replicas ready") }
        } else {
            Health { state: HealthState::Progressing, message: format!("{ready}/{wanted} replicas ready") }
        };
        Ok(Report { values, health: Some(health) })
    }
}

export!(FeedbackBasic);
