//! Validator: refuses containers that run privileged, may gain privileges, or add
//! capabilities outside an allowed list.

use maestro_plugin::prelude::*;

pub struct DenyPrivileged;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Capabilities containers may add (e.g. `NET_BIND_SERVICE`); any other is refused.
    pub allowed_capabilities: Vec<String>,
}

impl Validator for DenyPrivileged {
    type Settings = Settings;

    fn validate(_ctx: &Context, _op: Operation, manifest: &Manifest, settings: &Settings) -> Verdict {
        let mut violations = Violations::new();
        for container in manifest.containers() {
            let security = |key: &str| container.get(&["securityContext", key]);
            if security("privileged") == Some(&Value::Bool(true)) {
                violations.add(container.field("securityContext.privileged"), "privileged containers are not allowed");
            }
            if security("allowPrivilegeEscalation") == Some(&Value::Bool(true)) {
                violations.add(
                    container.field("securityContext.allowPrivilegeEscalation"),
                    "privilege escalation is not allowed",
                );
            }
            let added = container.get(&["securityContext", "capabilities", "add"]).and_then(Value::as_array);
            for (index, capability) in added.into_iter().flatten().enumerate() {
                let name = capability.as_str().unwrap_or_default();
                if !settings.allowed_capabilities.iter().any(|allowed| allowed == name) {
                    violations.add(
                        container.field(&format!("securityContext.capabilities.add[{index}]")),
                        format!("capability {name} is not allowed"),
                    );
                }
            }
        }
        violations.into_verdict()
    }
}

maestro_plugin::export_validator!(DenyPrivileged);

#[cfg(test)]
mod tests {
    use maestro_plugin::testing;

    use super::*;

    fn pod(security_context: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "app", "image": "nginx", "securityContext": security_context}]}})
    }

    #[test]
    fn a_privileged_container_is_refused_naming_the_field() {
        let verdict = testing::validate::<DenyPrivileged>(&pod(json!({"privileged": true})), &json!({}));
        assert_eq!(verdict.violations()[0].path, "spec.containers[0].securityContext.privileged");
    }

    #[test]
    fn escalation_and_unlisted_capabilities_are_refused_together() {
        let manifest =
            pod(json!({"allowPrivilegeEscalation": true, "capabilities": {"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}));
        let verdict =
            testing::validate::<DenyPrivileged>(&manifest, &json!({"allowed_capabilities": ["NET_BIND_SERVICE"]}));
        let messages: Vec<_> = verdict.violations().iter().map(|v| v.message.as_str()).collect();
        assert_eq!(messages, ["privilege escalation is not allowed", "capability SYS_ADMIN is not allowed"]);
    }

    #[test]
    fn an_unprivileged_workload_and_a_non_workload_are_allowed() {
        assert!(testing::validate::<DenyPrivileged>(&pod(json!({"privileged": false})), &json!(null)).is_allow());
        let map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(testing::validate::<DenyPrivileged>(&map, &json!({})).is_allow());
    }

    #[test]
    fn unknown_settings_are_refused() {
        assert!(testing::validator_settings::<DenyPrivileged>(&json!({"allow": []})).unwrap_err().contains("allow"));
    }
}
