//! Validator: manifests must carry the labels a policy names, optionally with values
//! matching a list.

use std::collections::BTreeMap;

use maestro_plugin::prelude::*;

pub struct RequireLabels;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Labels every manifest must have.
    pub labels: Vec<String>,
    /// For some of them, the values allowed.
    pub allowed_values: BTreeMap<String, Vec<String>>,
}

impl Validator for RequireLabels {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.labels.is_empty() { Err("labels: name at least one label".into()) } else { Ok(()) }
    }

    fn validate(_ctx: &Context, op: Operation, manifest: &Manifest, settings: &Settings) -> Verdict {
        if op == Operation::Delete {
            return Verdict::Allow;
        }
        let labels = manifest.labels();
        let mut violations = Violations::new();
        for name in &settings.labels {
            let path = format!("metadata.labels.{name}");
            match labels.get(name.as_str()) {
                None => {
                    violations.add(path, format!("label {name} is required"));
                }
                Some(value) => {
                    let allowed = settings.allowed_values.get(name);
                    if allowed.is_some_and(|allowed| !allowed.iter().any(|a| a == value)) {
                        violations.add(path, format!("label {name}={value} is not one of the allowed values"));
                    }
                }
            }
        }
        violations.into_verdict()
    }
}

maestro_plugin::export_validator!(RequireLabels);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    fn map(labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": labels}})
    }

    #[test]
    fn every_missing_label_is_named() {
        let settings = json!({"labels": ["team", "env"]});
        let verdict = testing::validate::<RequireLabels>(&map(json!({})), &settings);
        let paths: Vec<_> = verdict.violations().iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["metadata.labels.team", "metadata.labels.env"]);
        assert!(testing::validate::<RequireLabels>(&map(json!({"team": "a", "env": "b"})), &settings).is_allow());
    }

    #[test]
    fn values_outside_the_allowed_list_are_refused() {
        let settings = json!({"labels": ["env"], "allowed_values": {"env": ["prod", "dev"]}});
        let verdict = testing::validate::<RequireLabels>(&map(json!({"env": "qa"})), &settings);
        assert!(verdict.violations()[0].message.contains("env=qa"));
        assert!(testing::validate::<RequireLabels>(&map(json!({"env": "dev"})), &settings).is_allow());
    }

    #[test]
    fn deletes_are_never_refused() {
        let verdict = testing::validate_with::<RequireLabels>(
            testing::context(),
            Operation::Delete,
            &map(json!({})),
            &json!({"labels": ["team"]}),
        );
        assert!(verdict.is_allow());
    }

    #[test]
    fn a_policy_naming_no_label_is_refused() {
        assert!(testing::validator_settings::<RequireLabels>(&json!({})).is_err());
    }
}
