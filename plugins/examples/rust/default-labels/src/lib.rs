//! Mutating validator: adds the labels of its settings to every manifest (and to the pod
//! template of workloads, so pods carry them too), never overwriting a label already set.

use std::collections::BTreeMap;

use maestro_plugin::prelude::*;
use maestro_plugin::serde_json::Map;

pub struct DefaultLabels;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub labels: BTreeMap<String, String>,
    /// Also label the pod template of workloads.
    #[serde(default = "yes")]
    pub pod_template: bool,
}

fn yes() -> bool {
    true
}

impl Validator for DefaultLabels {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.labels.is_empty() { Err("labels: give at least one label to add".into()) } else { Ok(()) }
    }

    fn validate(_ctx: &Context, op: Operation, manifest: &Manifest, settings: &Settings) -> Verdict {
        if op == Operation::Delete {
            return Verdict::Allow;
        }
        let mut changed = manifest.clone();
        let mut added = add_missing(changed.labels_mut(), &settings.labels);
        let workload = manifest.pod_spec().is_some_and(|spec| spec.path() != "spec");
        if settings.pod_template
            && workload
            && let Some(template) = changed.pointer_mut("/spec/template")
        {
            let mut labelled = Manifest(template.take());
            added |= add_missing(labelled.labels_mut(), &settings.labels);
            *template = labelled.into_value();
        }
        if added { Verdict::Mutate(changed.into_value()) } else { Verdict::Allow }
    }
}

/// Adds what is missing; true when anything was.
fn add_missing(labels: &mut Map<String, Value>, wanted: &BTreeMap<String, String>) -> bool {
    let mut added = false;
    for (key, value) in wanted {
        if !labels.contains_key(key) {
            labels.insert(key.clone(), Value::String(value.clone()));
            added = true;
        }
    }
    added
}

maestro_plugin::export_validator!(DefaultLabels);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    #[test]
    fn missing_labels_are_added_to_the_object_and_its_pod_template() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"team": "web"}},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}});
        let verdict = testing::validate::<DefaultLabels>(
            &deployment,
            &json!({"labels": {"team": "platform", "managed-by": "maestro"}}),
        );
        let Verdict::Mutate(changed) = verdict else { panic!("expected a mutation, got {verdict:?}") };
        assert_eq!(changed["metadata"]["labels"], json!({"team": "web", "managed-by": "maestro"}));
        assert_eq!(
            changed["spec"]["template"]["metadata"]["labels"],
            json!({"app": "web", "team": "platform", "managed-by": "maestro"})
        );
    }

    #[test]
    fn a_manifest_that_has_every_label_is_allowed_unchanged() {
        let map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"team": "x"}}});
        assert!(testing::validate::<DefaultLabels>(&map, &json!({"labels": {"team": "platform"}})).is_allow());
    }
}
