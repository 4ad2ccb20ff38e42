//! Plugin policies: which plugins run for which consumers, with which settings, limits and
//! failure mode. Policies are stored in the database (REST `/plugin-policies`) or read from
//! `policies.toml` in the plugin directory; every policy whose selector matches a consumer
//! applies to it, in the order of their names.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The extension point a plugin serves, named by its world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    Validator,
    StatusFeedback,
    Codec,
    ReconcileHook,
}

impl World {
    pub const ALL: [World; 4] = [World::Validator, World::StatusFeedback, World::Codec, World::ReconcileHook];

    /// The extension point's name in policies and metrics.
    pub fn point(self) -> &'static str {
        match self {
            World::Validator => "validate",
            World::StatusFeedback => "status-feedback",
            World::Codec => "codec",
            World::ReconcileHook => "reconcile-hook",
        }
    }

    /// The world whose interface a component exports (`validate`, `feedback`, ...).
    pub fn from_interface(interface: &str) -> Option<World> {
        match interface {
            "validate" => Some(World::Validator),
            "feedback" => Some(World::StatusFeedback),
            "transcode" => Some(World::Codec),
            "hooks" => Some(World::ReconcileHook),
            _ => None,
        }
    }

    pub fn default_failure_mode(self) -> FailureMode {
        match self {
            World::Validator | World::Codec => FailureMode::FailClosed,
            World::StatusFeedback | World::ReconcileHook => FailureMode::FailOpen,
        }
    }
}

/// What happens when a plugin cannot give an answer (trap, timeout, bad result, missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FailureMode {
    /// Refuse the operation (default for validators and codecs).
    FailClosed,
    /// Go on as if the plugin were not configured (default for feedback and hooks).
    FailOpen,
    /// Run and record (log and metric) only: never refuse, never change anything.
    Monitor,
}

impl FailureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::FailClosed => "fail-closed",
            FailureMode::FailOpen => "fail-open",
            FailureMode::Monitor => "monitor",
        }
    }
}

/// Which consumers a policy applies to: those named, and those whose labels include every
/// pair of `labels`. An empty selector applies to every consumer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Selector {
    /// Whether the policy applies to this stored consumer (its name and labels).
    pub fn matches_consumer(&self, consumer: &crate::Consumer) -> bool {
        self.matches(&consumer.name, &label_pairs(&consumer.labels))
    }

    pub fn matches(&self, consumer: &str, labels: &[(String, String)]) -> bool {
        if self.consumers.is_empty() && self.labels.is_empty() {
            return true;
        }
        let by_name = self.consumers.iter().any(|c| c == consumer);
        let by_labels = !self.labels.is_empty()
            && self.labels.iter().all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v));
        by_name || by_labels
    }
}

/// A consumer's labels as policies and plugins see them: text values (a non-string JSON value
/// as its JSON text).
pub fn label_pairs(labels: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()
}

/// One plugin to run at an extension point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The plugin's name (its file name without `.wasm`).
    pub plugin: String,
    /// Passed to the plugin as JSON text; checked by its `validate-settings` when stored.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Runs only the plugin file with this sha256 (hex); another version is a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Overrides the extension point's failure mode for this plugin (e.g. `monitor` to try a
    /// new validator before enforcing it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<FailureMode>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// The plugins of one extension point, run in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<FailureMode>,
    pub plugins: Vec<Step>,
}

/// Per-call limits; unset values take the defaults of [`Limits::DEFAULT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

/// A plugin policy as stored and sent over REST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub name: String,
    #[serde(default)]
    pub selector: Selector,
    #[serde(default)]
    pub limits: LimitsSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<PointPolicy>,
    #[serde(default, rename = "status-feedback", skip_serializing_if = "Option::is_none")]
    pub status_feedback: Option<PointPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<PointPolicy>,
    #[serde(default, rename = "reconcile-hook", skip_serializing_if = "Option::is_none")]
    pub reconcile_hook: Option<PointPolicy>,
}

/// The largest linear memory any plugin instance may reach; policies set lower caps per call.
/// The plugin engine sizes its pooling allocator's slots by it.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Resolved per-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits { timeout: Duration::from_millis(100), memory_bytes: 64 << 20 };
    /// The most a policy may grant: keeps one plugin from holding a request or the pool.
    pub const MAX: Limits = Limits { timeout: Duration::from_secs(10), memory_bytes: MAX_MEMORY_BYTES };
}

/// A plugin to run at a point, with everything the call needs.
#[derive(Debug, Clone)]
pub struct ResolvedStep {
    pub policy: String,
    pub plugin: String,
    pub settings: String,
    pub sha256: Option<String>,
    pub failure_mode: FailureMode,
    pub limits: Limits,
}

impl PolicySpec {
    pub fn point(&self, world: World) -> Option<&PointPolicy> {
        match world {
            World::Validator => self.validate.as_ref(),
            World::StatusFeedback => self.status_feedback.as_ref(),
            World::Codec => self.codec.as_ref(),
            World::ReconcileHook => self.reconcile_hook.as_ref(),
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            timeout: self.limits.timeout_ms.map(Duration::from_millis).unwrap_or(Limits::DEFAULT.timeout),
            memory_bytes: self
                .limits
                .memory_mb
                .map(|mb| usize::try_from(mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX))
                .unwrap_or(Limits::DEFAULT.memory_bytes),
        }
    }

    /// The steps of `world` in order, each with its failure mode and limits resolved.
    pub fn steps(&self, world: World) -> Vec<ResolvedStep> {
        let Some(point) = self.point(world) else { return Vec::new() };
        let mode = point.failure_mode.unwrap_or(world.default_failure_mode());
        point
            .plugins
            .iter()
            .map(|step| ResolvedStep {
                policy: self.name.clone(),
                plugin: step.plugin.clone(),
                settings: step.settings.to_string(),
                sha256: step.sha256.clone(),
                failure_mode: step.failure_mode.unwrap_or(mode),
                limits: self.limits(),
            })
            .collect()
    }

    /// Checks what can be checked without the plugins: names, limits, pins. Each problem is
    /// `(field, message)`.
    pub fn check_shape(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.name.is_empty()
            || self.name.len() > 253
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            problems.push(("name".into(), "name must be 1-253 letters, digits, '-', '_' or '.'".into()));
        }
        if let Some(ms) = self.limits.timeout_ms
            && (ms == 0 || Duration::from_millis(ms) > Limits::MAX.timeout)
        {
            problems.push(("limits.timeout_ms".into(), format!("must be 1 to {}", Limits::MAX.timeout.as_millis())));
        }
        if let Some(mb) = self.limits.memory_mb
            && (mb == 0 || mb.saturating_mul(1 << 20) > Limits::MAX.memory_bytes as u64)
        {
            problems.push(("limits.memory_mb".into(), format!("must be 1 to {}", Limits::MAX.memory_bytes >> 20)));
        }
        for world in World::ALL {
            let Some(point) = self.point(world) else { continue };
            for (i, step) in point.plugins.iter().enumerate() {
                let field = format!("{}.plugins[{i}]", world.point());
                if let Some(pin) = &step.sha256
                    && (pin.len() != 64 || !pin.chars().all(|c| c.is_ascii_hexdigit()))
                {
                    problems.push((format!("{field}.sha256"), "must be 64 hexadecimal digits".into()));
                }
            }
        }
        problems
    }
}

/// Every step of `world` that applies to the consumer, across `policies` (sorted by name).
pub fn steps_for(
    policies: &[PolicySpec],
    world: World,
    consumer: &str,
    labels: &[(String, String)],
) -> Vec<ResolvedStep> {
    policies.iter().filter(|p| p.selector.matches(consumer, labels)).flat_map(|p| p.steps(world)).collect()
}

/// `policies.toml` in the plugin directory: `[[policy]]` tables shaped like [`PolicySpec`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub policy: Vec<PolicySpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn policy(selector: Selector) -> PolicySpec {
        PolicySpec {
            name: "p".into(),
            selector,
            limits: LimitsSpec::default(),
            validate: Some(PointPolicy {
                failure_mode: None,
                plugins: vec![Step {
                    plugin: "v".into(),
                    settings: empty_object(),
                    sha256: None,
                    failure_mode: Some(FailureMode::Monitor),
                }],
            }),
            status_feedback: None,
            codec: None,
            reconcile_hook: None,
        }
    }

    #[test]
    fn a_selector_matches_by_name_or_by_every_label() {
        let by_name = Selector { consumers: vec!["c1".into()], labels: BTreeMap::new() };
        assert!(by_name.matches("c1", &[]));
        assert!(!by_name.matches("c2", &[]));
        let by_labels =
            Selector { consumers: vec![], labels: [("env".into(), "prod".into()), ("tier".into(), "1".into())].into() };
        assert!(by_labels.matches("x", &labels(&[("env", "prod"), ("tier", "1"), ("o", "z")])));
        assert!(!by_labels.matches("x", &labels(&[("env", "prod")])));
        assert!(Selector::default().matches("anyone", &[]));
    }

    #[test]
    fn steps_carry_the_step_failure_mode_over_the_point_default() {
        let p = policy(Selector::default());
        let steps = steps_for(std::slice::from_ref(&p), World::Validator, "c", &[]);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].failure_mode, FailureMode::Monitor);
        assert_eq!(steps[0].limits, Limits::DEFAULT);
        assert!(steps_for(&[p], World::Codec, "c", &[]).is_empty());
    }

    #[test]
    fn policies_parse_from_toml_with_kebab_case_points() {
        let file: PolicyFile = toml::from_str(
            r#"
            [[policy]]
            name = "prod"
            selector = { labels = { env = "prod" } }
            limits = { timeout_ms = 20 }
            [policy.validate]
            failure_mode = "fail-open"
            plugins = [{ plugin = "image-policy", settings = { forbidden_tags = ["latest"] } }]
            [policy.status-feedback]
            plugins = [{ plugin = "fb" }]
            "#,
        )
        .expect("parses");
        let p = &file.policy[0];
        assert_eq!(p.limits().timeout, Duration::from_millis(20));
        assert_eq!(p.steps(World::Validator)[0].failure_mode, FailureMode::FailOpen);
        assert_eq!(p.steps(World::StatusFeedback)[0].failure_mode, FailureMode::FailOpen);
        assert!(p.check_shape().is_empty());
    }
}
