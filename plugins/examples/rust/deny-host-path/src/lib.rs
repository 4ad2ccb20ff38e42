//! Validator: refuses hostPath volumes, except read-only-safe prefixes a policy allows.

use maestro_plugin::prelude::*;

pub struct DenyHostPath;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Host path prefixes that may be mounted (e.g. `/var/log`); empty refuses every hostPath.
    pub allowed_prefixes: Vec<String>,
}

impl Validator for DenyHostPath {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        match settings.allowed_prefixes.iter().find(|p| !p.starts_with('/')) {
            Some(prefix) => Err(format!("allowed_prefixes: {prefix:?} is not an absolute path")),
            None => Ok(()),
        }
    }

    fn validate(_ctx: &Context, _op: Operation, manifest: &Manifest, settings: &Settings) -> Verdict {
        let Some(spec) = manifest.pod_spec() else { return Verdict::Allow };
        let mut violations = Violations::new();
        for (path, volume) in spec.volumes() {
            let Some(host_path) = volume.pointer("/hostPath/path").and_then(Value::as_str) else { continue };
            if !settings.allowed_prefixes.iter().any(|prefix| under(host_path, prefix)) {
                violations.add(format!("{path}.hostPath"), format!("hostPath volume {host_path} is not allowed"));
            }
        }
        violations.into_verdict()
    }
}

/// `/var/log/app` is under `/var/log`; `/var/logs` is not.
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')) || prefix.is_empty()
}

maestro_plugin::export_validator!(DenyHostPath);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    fn daemonset(host_path: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
               "spec": {"template": {"spec": {
                   "containers": [{"name": "agent", "image": "agent:1"}],
                   "volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "logs", "hostPath": {"path": host_path}}]}}}})
    }

    #[test]
    fn a_host_path_volume_is_refused_naming_the_volume() {
        let verdict = testing::validate::<DenyHostPath>(&daemonset("/etc"), &json!({}));
        assert_eq!(verdict.violations()[0].path, "spec.template.spec.volumes[1].hostPath");
        assert!(verdict.violations()[0].message.contains("/etc"));
    }

    #[test]
    fn allowed_prefixes_match_whole_path_segments() {
        let settings = json!({"allowed_prefixes": ["/var/log/"]});
        assert!(testing::validate::<DenyHostPath>(&daemonset("/var/log/pods"), &settings).is_allow());
        assert!(testing::validate::<DenyHostPath>(&daemonset("/var/log"), &settings).is_allow());
        assert!(!testing::validate::<DenyHostPath>(&daemonset("/var/logs"), &settings).is_allow());
    }

    #[test]
    fn relative_prefixes_are_refused_in_settings() {
        let err = testing::validator_settings::<DenyHostPath>(&json!({"allowed_prefixes": ["var"]})).unwrap_err();
        assert!(err.contains("allowed_prefixes"), "{err}");
    }
}
