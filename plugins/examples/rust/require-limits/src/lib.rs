//! Validator: every container (init containers too) must set resource limits.

use maestro_plugin::prelude::*;

pub struct RequireLimits;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The resources every container must limit.
    pub resources: Vec<String>,
    /// Whether requests are required too.
    pub require_requests: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { resources: vec!["cpu".into(), "memory".into()], require_requests: false }
    }
}

impl Validator for RequireLimits {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.resources.is_empty() { Err("resources: name at least one resource".into()) } else { Ok(()) }
    }

    fn validate(_ctx: &Context, _op: Operation, manifest: &Manifest, settings: &Settings) -> Verdict {
        let mut violations = Violations::new();
        let mut kinds = vec!["limits"];
        if settings.require_requests {
            kinds.push("requests");
        }
        for container in manifest.containers() {
            for kind in &kinds {
                for resource in &settings.resources {
                    if container.get(&["resources", kind, resource]).is_none_or(Value::is_null) {
                        violations.add(
                            container.field(&format!("resources.{kind}.{resource}")),
                            format!("container {} sets no {resource} {kind}", container.name()),
                        );
                    }
                }
            }
        }
        violations.into_verdict()
    }
}

maestro_plugin::export_validator!(RequireLimits);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    fn pod(resources: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "app", "image": "app:1", "resources": resources}]}})
    }

    #[test]
    fn a_container_without_memory_limit_is_refused() {
        let verdict = testing::validate::<RequireLimits>(&pod(json!({"limits": {"cpu": "1"}})), &json!({}));
        assert_eq!(verdict.violations().len(), 1);
        assert_eq!(verdict.violations()[0].path, "spec.containers[0].resources.limits.memory");
    }

    #[test]
    fn full_limits_pass_and_requests_are_checked_when_asked() {
        let full = pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}));
        assert!(testing::validate::<RequireLimits>(&full, &json!({})).is_allow());
        let verdict = testing::validate::<RequireLimits>(&full, &json!({"require_requests": true}));
        assert_eq!(verdict.violations().len(), 2);
    }

    #[test]
    fn an_empty_resource_list_is_refused_in_settings() {
        assert!(testing::validator_settings::<RequireLimits>(&json!({"resources": []})).is_err());
    }
}
