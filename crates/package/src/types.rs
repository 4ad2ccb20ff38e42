//! `operator.yaml` and `params.yaml` exactly as KUDO reads them (`pkg/kudoctl/packages/types.go`):
//! unknown keys ignored, `apiVersion` defaulted to `kudo.dev/v1beta1`, a parameter `required`
//! unless it says otherwise and `immutable` only when it says so, strategies as written (KUDO
//! treats anything but `serial` as parallel).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only API version of both files.
pub const API_VERSION: &str = "kudo.dev/v1beta1";

/// Plans KUDO runs on its own: `deploy` on create, `update` on a parameter change, `upgrade`
/// on a new operator version, `cleanup` on delete.
pub const SPECIAL_PLANS: [&str; 4] = ["deploy", "update", "upgrade", "cleanup"];

/// What templates may name besides `.Params` and `.Pipes`.
pub const IMPLICITS: [&str; 8] =
    ["OperatorName", "Name", "Namespace", "AppVersion", "OperatorVersion", "PlanName", "PhaseName", "StepName"];

/// Task kinds KUDO knows.
pub const TASK_KINDS: [&str; 6] = ["Apply", "Delete", "Dummy", "Toggle", "Pipe", "KudoOperator"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorFile {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default)]
    pub operator_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    #[serde(default, rename = "kudoVersion", skip_serializing_if = "String::is_empty")]
    pub kudo_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default)]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub plans: BTreeMap<String, Plan>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_manifest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Maintainer {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub spec: TaskSpec,
}

impl Task {
    /// The templates this task uses: its resources, then a Pipe's pod and a KudoOperator's
    /// parameter file.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        let spec = &self.spec;
        let others = [spec.pod.as_str(), spec.parameter_file.as_str()].into_iter().filter(|t| !t.is_empty());
        spec.resources.iter().map(String::as_str).chain(others)
    }
}

/// KUDO's flat union of every kind's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parameter: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub want_err: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub fatal: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub done: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipe: Vec<PipeSpec>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub package: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parameter_file: String,
}

fn is_false(b: &bool) -> bool {
    !b
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipeSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub env_file: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamsFile {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub parameters: Vec<Parameter>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, rename = "prio")]
    pub priority: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// KUDO defaults it to true when absent.
    #[serde(default)]
    pub required: Option<bool>,
    /// Any YAML; `None` when absent or null.
    #[serde(default)]
    pub default: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trigger: String,
    /// `string` (the default), `integer`, `number`, `boolean`, `array`, `map`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub value_type: String,
    #[serde(default)]
    pub immutable: Option<bool>,
    #[serde(default)]
    pub r#enum: Option<Vec<serde_yaml::Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default)]
    pub advanced: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hint: String,
}

impl Parameter {
    /// Required unless the file says `required: false` (KUDO's reader defaults it to true).
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(true)
    }

    pub fn is_immutable(&self) -> bool {
        self.immutable.unwrap_or(false)
    }

    pub fn value_type(&self) -> &str {
        if self.value_type.is_empty() { "string" } else { &self.value_type }
    }

    pub fn is_structured(&self) -> bool {
        matches!(self.value_type(), "array" | "map")
    }
}

impl OperatorFile {
    /// `<name>-<appVersion>-<operatorVersion>`, or without the app version when there is none:
    /// the OperatorVersion's name.
    pub fn operator_version_name(&self) -> String {
        if self.app_version.is_empty() {
            format!("{}-{}", self.name, self.operator_version)
        } else {
            format!("{}-{}-{}", self.name, self.app_version, self.operator_version)
        }
    }

    /// KUDO's archive name: `<name>-<appVersion>_<operatorVersion>.tgz` or `<name>-<operatorVersion>.tgz`.
    pub fn archive_name(&self) -> String {
        if self.app_version.is_empty() {
            format!("{}-{}.tgz", self.name, self.operator_version)
        } else {
            format!("{}-{}_{}.tgz", self.name, self.app_version, self.operator_version)
        }
    }
}
