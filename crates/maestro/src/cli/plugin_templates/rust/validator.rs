//! {{name}}: a Maestro validator. It refuses manifests without the label named in its
//! settings (`{"label": "owner"}` by default). Edit `validate` to make it yours.

use maestro_plugin::prelude::*;

pub struct {{Type}};

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub label: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { label: "owner".into() }
    }
}

impl Validator for {{Type}} {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.label.is_empty() { Err("label must not be empty".into()) } else { Ok(()) }
    }

    fn validate(_ctx: &Context, op: Operation, manifest: &Manifest, settings: &Settings) -> Verdict {
        let mut violations = Violations::new();
        if op != Operation::Delete && !manifest.labels().contains_key(settings.label.as_str()) {
            violations.add(format!("metadata.labels.{}", settings.label), format!("label {} is required", settings.label));
        }
        violations.into_verdict()
    }
}

maestro_plugin::export_validator!({{Type}});

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    #[test]
    fn a_manifest_without_the_label_is_refused() {
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let verdict = testing::validate::<{{Type}}>(&manifest, &json!({}));
        assert_eq!(verdict.violations()[0].path, "metadata.labels.owner");
    }

    #[test]
    fn a_manifest_with_the_label_is_allowed() {
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"team": "a"}}});
        assert!(testing::validate::<{{Type}}>(&manifest, &json!({"label": "team"})).is_allow());
    }
}
