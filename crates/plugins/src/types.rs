//! The values a plugin call takes and answers, as this crate's own types.
//!
//! They mirror the records and variants of `wit/maestro-plugin.wit` one to one, but callers
//! (the agent, the CLI, the benchmarks, tests) name these, never the code `bindgen!`
//! generates: the generated modules are private to this crate ([`crate::bindings`] is not
//! public), so a change of the binding generator or of a WIT detail that keeps the contract
//! touches this crate only. `convert` (private) maps both ways at the call boundary.

pub use crate::Operation;

/// Who a call is about, as the plugin sees it (WIT `context`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub consumer: String,
    pub consumer_labels: Vec<(String, String)>,
    pub resource_id: String,
    pub resource_version: i64,
    pub now_unix_ms: i64,
}

/// One thing a validator objects to, at a path inside the manifest it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginViolation {
    pub path: String,
    pub message: String,
}

/// A validator's answer (WIT `verdict`); `Mutate` carries the changed manifest as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny(Vec<PluginViolation>),
    Mutate(String),
}

/// A status-feedback value (WIT `feedback.value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    Boolean(bool),
    Text(String),
    JsonRaw(String),
}

impl Value {
    /// What the value weighs against the result cap.
    pub fn len(&self) -> usize {
        match self {
            Value::Integer(_) | Value::Boolean(_) => 8,
            Value::Text(text) | Value::JsonRaw(text) => text.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named status-feedback value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackValue {
    pub name: String,
    pub value: Value,
}

/// Health as a status-feedback plugin judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    Healthy,
    Progressing,
    Degraded,
    Failed,
    Unknown,
}

impl HealthState {
    /// Order of badness, for merging the reports of several plugins (the worst wins).
    pub fn rank(self) -> u8 {
        match self {
            HealthState::Healthy => 0,
            HealthState::Unknown => 1,
            HealthState::Progressing => 2,
            HealthState::Degraded => 3,
            HealthState::Failed => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub state: HealthState,
    pub message: String,
}

/// What status-feedback plugins report about one live object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub values: Vec<FeedbackValue>,
    pub health: Option<Health>,
}

/// The bundle a reconcile hook is shown: its manifests as JSON text, and when it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookBundle {
    pub manifests: Vec<String>,
    pub updated_unix_ms: i64,
}

/// What before-apply hooks decide: go on (with these manifests), skip, ask again, or fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeforeApplyOutcome {
    Proceed(Vec<String>),
    Skip(String),
    Requeue(u32),
    Fail(String),
}

/// What before-delete hooks decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeforeDeleteOutcome {
    Proceed,
    Requeue(u32),
    Fail(String),
}

/// How applying one manifest of the bundle went, for after-apply hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub index: u32,
    pub ok: bool,
    pub message: String,
}
