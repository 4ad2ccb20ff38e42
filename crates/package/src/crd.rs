//! KUDO's three kinds (`kudo.dev/v1beta1`, namespaced): `Operator`, `OperatorVersion` and
//! `Instance`, with the JSON names of KUDO's CRDs (a parameter's type is `value-type`), and
//! their CRD manifests. A package becomes an Operator and an OperatorVersion as KUDO's
//! installer makes them, so objects KUDO created and objects Maestro creates are alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Package;
use crate::types::{Maintainer, Plan, Task};

pub const GROUP: &str = "kudo.dev";
pub const VERSION: &str = "v1beta1";
pub const API_VERSION: &str = "kudo.dev/v1beta1";

/// The CRD manifests (apiextensions.k8s.io/v1): operators, operatorversions, instances.
pub const CRDS: [&str; 3] = [
    include_str!("../crds/operators.yaml"),
    include_str!("../crds/operatorversions.yaml"),
    include_str!("../crds/instances.yaml"),
];

/// The metadata this crate sets; whatever else a cluster adds is kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}

/// One object of a KUDO kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<Spec, Status = serde_json::Value> {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

pub type Operator = Object<OperatorSpec>;
pub type OperatorVersion = Object<OperatorVersionSpec>;
pub type Instance = Object<InstanceSpec, InstanceStatus>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kudo_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_manifest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorVersionSpec {
    #[serde(default)]
    pub operator: ObjectReference,
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    #[serde(default)]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    #[serde(default)]
    pub plans: BTreeMap<String, Plan>,
}

/// A parameter as the OperatorVersion holds it: default and enum values as strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trigger: String,
    #[serde(default, rename = "value-type", skip_serializing_if = "String::is_empty")]
    pub value_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#enum: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpec {
    #[serde(default)]
    pub operator_version: ObjectReference,
    /// Always strings, as KUDO keeps them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub plan_execution: PlanExecution,
}

/// The plan that is running (empty when none is).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanExecution {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plan_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plan_status: BTreeMap<String, PlanStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<serde_json::Value>,
}

/// `NEVER_RUN`, `PENDING`, `IN_PROGRESS`, `COMPLETE`, `ERROR`, `FATAL_ERROR`.
pub type ExecutionStatus = String;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanStatus {
    pub name: String,
    #[serde(default)]
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default)]
    pub phases: Vec<PhaseStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseStatus {
    pub name: String,
    #[serde(default)]
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub steps: Vec<StepStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStatus {
    pub name: String,
    #[serde(default)]
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn object<Spec, Status>(kind: &str, name: String, namespace: &str, spec: Spec) -> Object<Spec, Status> {
    Object {
        api_version: API_VERSION.into(),
        kind: kind.into(),
        metadata: Metadata { name, namespace: namespace.into(), ..Metadata::default() },
        spec,
        status: None,
    }
}

impl Package {
    /// The Operator and OperatorVersion KUDO's installer makes of this package in `namespace`.
    pub fn resources(&self, namespace: &str) -> (Operator, OperatorVersion) {
        let operator = &self.operator;
        let operator_object = object(
            "Operator",
            operator.name.clone(),
            namespace,
            OperatorSpec {
                description: operator.description.clone(),
                kudo_version: operator.kudo_version.clone(),
                kubernetes_version: operator.kubernetes_version.clone(),
                maintainers: operator.maintainers.clone(),
                url: operator.url.clone(),
                namespace_manifest: operator.namespace_manifest.clone(),
            },
        );
        let spec = OperatorVersionSpec {
            operator: ObjectReference {
                kind: "Operator".into(),
                name: operator.name.clone(),
                namespace: String::new(),
            },
            version: operator.operator_version.clone(),
            app_version: operator.app_version.clone(),
            templates: self.templates.clone(),
            tasks: operator.tasks.clone(),
            parameters: self.params.parameters.iter().map(crd_parameter).collect(),
            plans: operator.plans.clone(),
        };
        (operator_object, object("OperatorVersion", operator.operator_version_name(), namespace, spec))
    }
}

/// KUDO's conversion: values wrapped as strings (`array`/`map` as YAML text, the rest `%v`);
/// `required` defaulted to true; package-only fields (group, advanced, hint) dropped.
fn crd_parameter(p: &crate::types::Parameter) -> Parameter {
    let text = |v: &serde_yaml::Value| match v {
        serde_yaml::Value::Sequence(_) | serde_yaml::Value::Mapping(_) => serde_yaml::to_string(v).unwrap_or_default(),
        other => maestro_gotmpl::kudo::scalar_text(other),
    };
    Parameter {
        display_name: p.display_name.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        required: Some(p.is_required()),
        default: p.default.as_ref().map(text),
        trigger: p.trigger.clone(),
        value_type: p.value_type().to_string(),
        immutable: Some(p.is_immutable()),
        r#enum: p.r#enum.as_ref().map(|values| values.iter().map(text).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crds_are_namespaced_kudo_kinds_with_a_status_subresource() {
        for (manifest, kind) in CRDS.iter().zip(["Operator", "OperatorVersion", "Instance"]) {
            let crd: serde_yaml::Value = serde_yaml::from_str(manifest).unwrap();
            assert_eq!(crd["spec"]["group"].as_str(), Some(GROUP));
            assert_eq!(crd["spec"]["names"]["kind"].as_str(), Some(kind));
            assert_eq!(crd["spec"]["scope"].as_str(), Some("Namespaced"));
            let version = &crd["spec"]["versions"][0];
            assert_eq!(version["name"].as_str(), Some(VERSION));
            assert!(version["subresources"]["status"].is_mapping(), "{kind} has a status subresource");
            assert!(version["schema"]["openAPIV3Schema"]["properties"]["spec"].is_mapping());
        }
    }

    #[test]
    fn an_instance_reads_as_kudo_wrote_it() {
        let json = serde_json::json!({
            "apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
            "metadata": {"name": "zk", "namespace": "default", "uid": "u1"},
            "spec": {"operatorVersion": {"name": "zookeeper-3.6.2-0.3.3"}, "parameters": {"NODE_COUNT": "3"},
                     "planExecution": {"planName": "deploy", "uid": "p1", "status": "IN_PROGRESS"}},
            "status": {"planStatus": {"deploy": {"name": "deploy", "status": "IN_PROGRESS", "uid": "p1",
                       "phases": [{"name": "zookeeper", "status": "IN_PROGRESS", "steps": [{"name": "deploy", "status": "PENDING"}]}]}}}
        });
        let instance: Instance = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(instance.spec.plan_execution.plan_name, "deploy");
        assert_eq!(instance.status.as_ref().unwrap().plan_status["deploy"].phases[0].steps[0].status, "PENDING");
        assert_eq!(serde_json::to_value(&instance).unwrap(), json, "nothing lost on the way back");
    }
}
