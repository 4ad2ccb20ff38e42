//! kuttl's own objects (SPEC.md §6, `pkg/apis/testharness/v1beta1/test_types.go`):
//! `TestSuite`, `TestStep`, `TestAssert` and the commands they run, accepted in
//! `kuttl.dev/v1beta1` and in the older `kudo.dev/v1alpha1` group that the real KUDO packages
//! still use.

use serde::Deserialize;
use serde_json::Value;

/// The API groups kuttl's own kinds come in.
pub const GROUPS: [&str; 2] = ["kuttl.dev/", "kudo.dev/v1alpha1"];

/// Whether `object` is one of kuttl's kinds (`TestSuite`, `TestStep`, `TestAssert`), rather than
/// an object for the cluster.
pub fn is_kuttl(object: &Value, kind: &str) -> bool {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    object.get("kind").and_then(Value::as_str) == Some(kind) && GROUPS.iter().any(|g| api_version.starts_with(g))
}

/// `kuttl-test.yaml`. Fields for kind clusters and control planes are read and not acted on:
/// the runner starts the simulator instead and says so.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suite {
    #[serde(default)]
    pub crd_dir: Option<String>,
    #[serde(default)]
    pub manifest_dirs: Vec<String>,
    #[serde(default)]
    pub test_dirs: Vec<String>,
    #[serde(default)]
    pub start_control_plane: bool,
    #[serde(default, rename = "startKIND")]
    pub start_kind: bool,
    #[serde(default)]
    pub skip_delete: bool,
    /// Seconds a step's asserts may take (kuttl's default: 30).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Cases run at once (kuttl's default: 8).
    #[serde(default)]
    pub parallel: Option<usize>,
    #[serde(default)]
    pub artifacts_dir: Option<String>,
    #[serde(default)]
    pub commands: Vec<Command>,
    /// `JSON` or `XML`.
    #[serde(default)]
    pub report_format: Option<String>,
    #[serde(default)]
    pub report_name: Option<String>,
    /// One namespace for every case instead of a fresh one each.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A command of a suite, a step or an assert.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    /// One program and its arguments (split as a shell would, without running one).
    #[serde(default)]
    pub command: String,
    /// A shell script, run with `sh -c`.
    #[serde(default)]
    pub script: String,
    /// Append `--namespace <the case's namespace>`.
    #[serde(default)]
    pub namespaced: bool,
    #[serde(default)]
    pub ignore_failure: bool,
    /// Suite commands only: started and left running until the suite ends.
    #[serde(default)]
    pub background: bool,
    /// Seconds; kuttl's default is the suite's timeout.
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub skip_log_output: bool,
}

/// An object a step deletes: by name, else by labels, else every object of the kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// `TestStep`: what a step does besides applying its files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestStep {
    #[serde(default)]
    pub index: Option<i64>,
    /// More files to apply, assert and refute, relative to the step's folder.
    #[serde(default)]
    pub apply: Vec<String>,
    #[serde(default)]
    pub assert: Vec<String>,
    #[serde(default)]
    pub error: Vec<String>,
    #[serde(default)]
    pub delete: Vec<ObjectReference>,
    #[serde(default)]
    pub commands: Vec<Command>,
}

/// `TestAssert`: how long a step's asserts may take, and what to collect when they fail.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestAssert {
    /// Seconds.
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub collectors: Vec<Collector>,
    /// Commands that must succeed for the step to pass, run with every check.
    #[serde(default)]
    pub commands: Vec<Command>,
}

/// What to gather when a step fails: a pod's logs, a command's output, or events.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collector {
    /// `pod`, `command` or `events`; without it, a `command` means a command, else a pod.
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub pod: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub container: String,
    #[serde(default)]
    pub selector: String,
    #[serde(default)]
    pub tail: Option<i64>,
    #[serde(default)]
    pub command: String,
}
