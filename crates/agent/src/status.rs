//! The status the agent reports for a bundle, in the shape OCM's work agent sends
//! (`cloudevents.agent.json`): bundle conditions, and per manifest its `resourceMeta`,
//! conditions (Applied, Available, StatusFeedbackSynced, and Drifted or Deleted when they
//! apply) and `statusFeedback.values` with typed `fieldValue`s.
//!
//! Everything here is a pure function of what the agent observed, so the same observations give
//! the same JSON and the same hash: a status is sent only when its hash changes. Transition
//! times are carried over from the previous status while a condition keeps its status, or they
//! would change the hash on every recomputation.

use serde_json::{Map, Value, json};

use super::jsonpath::JsonPath;
use maestro_model::config::{FeedbackRule, ManifestPlan, UpdateStrategy};
use maestro_model::validate::resource_for_kind;

/// Feedback values longer than this (bytes of their string or JSON text) are cut.
pub const DEFAULT_VALUE_CAP: usize = 4 * 1024;
/// Ends a value that was cut, so nobody mistakes it for the whole.
pub const TRUNCATION_MARKER: &str = "...[truncated by maestro-agent]";

/// What the last write of a manifest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyResult {
    /// Not tried yet.
    Pending,
    Applied {
        message: String,
    },
    /// The API server refused it: its reason (`Invalid`, `Forbidden`, `NotFound`...) and message.
    Refused {
        reason: String,
        message: String,
    },
    /// The API server could not be reached or failed; the agent retries with backoff.
    Retrying {
        reason: String,
        message: String,
    },
}

/// The object as the agent last saw it in the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Live {
    Unknown,
    Absent,
    Present(Value),
}

/// Someone else changed an applied object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The agent restored it; `count` times so far.
    Corrected { what: DriftKind, count: u32 },
    /// Report-only: the object differs from its manifest and is left so.
    Reported { what: DriftKind },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    Modified,
    Deleted,
}

impl DriftKind {
    fn word(self) -> &'static str {
        match self {
            DriftKind::Modified => "modified",
            DriftKind::Deleted => "deleted",
        }
    }
}

/// What became of an object when its bundle was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    /// Kept in the cluster by the delete option or a ReadOnly strategy.
    Kept,
}

/// Everything known about one manifest.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub plan: &'a ManifestPlan,
    /// The plural discovery found; guessed from the kind until then.
    pub resource: Option<&'a str>,
    pub applied: &'a ApplyResult,
    pub live: &'a Live,
    pub drift: Option<&'a Drift>,
    pub removal: Option<Removal>,
    /// What the consumer's status-feedback plugins made of the live object, when any ran.
    pub plugin: Option<&'a PluginFeedback>,
}

/// A plugin's view of an object's health (the WIT `health-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginHealth {
    Healthy,
    Progressing,
    Degraded,
    Failed,
    Unknown,
}

/// The merged answer of the status-feedback plugins for one object.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginFeedback {
    /// Values already typed as `fieldValue`s (see [`plugin_value`]), and the worst health.
    Report { values: Vec<(String, Value)>, health: Option<(PluginHealth, String)> },
    /// A fail-closed plugin could not answer: the feedback is not synced.
    Failed(String),
}

/// A plugin's value as a typed `fieldValue`, under the same cap as the built-in rules.
pub enum PluginValue {
    Integer(i64),
    Boolean(bool),
    Text(String),
    JsonRaw(String),
}

pub fn plugin_value(value: PluginValue, cap: usize) -> Value {
    match value {
        PluginValue::Integer(i) => json!({"type": "Integer", "integer": i}),
        PluginValue::Boolean(b) => json!({"type": "Boolean", "boolean": b}),
        PluginValue::Text(text) if text.len() > cap => json!({"type": "String", "string": truncate(&text, cap)}),
        PluginValue::Text(text) => json!({"type": "String", "string": text}),
        PluginValue::JsonRaw(raw) if raw.len() > cap => json!({"type": "String", "string": truncate(&raw, cap)}),
        // Consumers parse `jsonRaw`: text that is not JSON is passed on as a string instead.
        PluginValue::JsonRaw(raw) if serde_json::from_str::<serde::de::IgnoredAny>(&raw).is_err() => {
            json!({"type": "String", "string": raw})
        }
        PluginValue::JsonRaw(raw) => json!({"type": "JsonRaw", "jsonRaw": raw}),
    }
}

/// Builds one condition, keeping `previous`'s transition time if its status is unchanged.
fn condition(kind: &str, status: &str, reason: &str, message: &str, previous: &[Value], now: &str) -> Value {
    let earlier = previous.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(kind));
    let since = earlier
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|c| c.get("lastTransitionTime").and_then(Value::as_str))
        .unwrap_or(now);
    json!({"type": kind, "status": status, "lastTransitionTime": since, "reason": reason, "message": message})
}

fn conditions_of(previous: Option<&Value>) -> &[Value] {
    previous.and_then(|p| p.get("conditions")).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// The `resourceStatus[]` entry of one manifest.
pub fn manifest_status(obs: Observation<'_>, previous: Option<&Value>, now: &str, cap: usize) -> Value {
    let before = conditions_of(previous);
    let mut conditions = Vec::new();
    if let Some(removal) = obs.removal {
        let (status, reason, message) = match removal {
            Removal::Deleted => ("True", "ResourceDeleted", "The object was deleted"),
            Removal::Kept => ("False", "Orphaned", "The object was kept in the cluster"),
        };
        conditions.push(condition("Deleted", status, reason, message, before, now));
        return json!({"resourceMeta": resource_meta(obs), "statusFeedback": {}, "conditions": conditions});
    }
    let (status, reason, message) = applied_condition(obs);
    conditions.push(condition("Applied", status, reason, &message, before, now));
    let (status, reason, message) = with_plugin_health(available_condition(obs.plan, obs.live), obs.plugin);
    conditions.push(condition("Available", status, reason, &message, before, now));
    let mut feedback = feedback(&obs.plan.feedback, obs.plan.key.as_ref().map(|k| k.kind.as_str()), obs.live, cap);
    feedback.add_plugin(obs.plugin);
    if let Some((status, reason, message)) = feedback.condition() {
        conditions.push(condition("StatusFeedbackSynced", status, reason, &message, before, now));
    }
    if let Some(drift) = obs.drift {
        let (status, reason, message) = drift_condition(drift);
        conditions.push(condition("Drifted", status, reason, &message, before, now));
    }
    let status_feedback = if feedback.values.is_empty() { json!({}) } else { json!({"values": feedback.values}) };
    json!({"resourceMeta": resource_meta(obs), "statusFeedback": status_feedback, "conditions": conditions})
}

fn resource_meta(obs: Observation<'_>) -> Value {
    let Some(key) = &obs.plan.key else { return json!({"ordinal": obs.plan.ordinal}) };
    let resource = obs.resource.map(str::to_owned).unwrap_or_else(|| resource_for_kind(&key.kind));
    json!({
        "ordinal": obs.plan.ordinal,
        "group": key.group,
        "version": key.version,
        "kind": key.kind,
        "resource": resource,
        "name": key.name,
        "namespace": key.namespace.clone().unwrap_or_default(),
    })
}

fn applied_condition(obs: Observation<'_>) -> (&'static str, &str, String) {
    if obs.plan.strategy == UpdateStrategy::ReadOnly && matches!(obs.applied, ApplyResult::Applied { .. }) {
        return ("True", "ReadOnly", "The object is only read, never written".to_owned());
    }
    match obs.applied {
        ApplyResult::Pending => ("False", "Pending", "Not applied yet".to_owned()),
        ApplyResult::Applied { message } => ("True", "AppliedManifestComplete", message.clone()),
        ApplyResult::Refused { reason, message } | ApplyResult::Retrying { reason, message } => {
            ("False", reason.as_str(), message.clone())
        }
    }
}

fn drift_condition(drift: &Drift) -> (&'static str, &'static str, String) {
    match drift {
        Drift::Corrected { what, count } => (
            "False",
            "DriftCorrected",
            format!("The object was {} outside maestro and restored ({count} time(s) so far)", what.word()),
        ),
        Drift::Reported { what } => (
            "True",
            "DriftReported",
            format!("The object was {} outside maestro; report-only, so it is left as it is", what.word()),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Availability
// ---------------------------------------------------------------------------------------------

/// A plugin's health overrides the built-in readiness: healthy makes the object available,
/// degraded or failed unavailable with the plugin's message; progressing or unknown only
/// withdraw a built-in `True` (the plugin knows a rollout is not done), to Unknown.
fn with_plugin_health(
    builtin: (&'static str, &'static str, String),
    plugin: Option<&PluginFeedback>,
) -> (&'static str, &'static str, String) {
    let Some(PluginFeedback::Report { health: Some((health, message)), .. }) = plugin else { return builtin };
    let said = |default: &str| if message.is_empty() { default.to_owned() } else { message.clone() };
    match health {
        PluginHealth::Healthy => ("True", "PluginHealthy", said("A plugin reports the resource healthy")),
        PluginHealth::Degraded => ("False", "PluginDegraded", said("A plugin reports the resource degraded")),
        PluginHealth::Failed => ("False", "PluginFailed", said("A plugin reports the resource failed")),
        PluginHealth::Progressing if builtin.0 == "True" => {
            ("Unknown", "PluginProgressing", said("A plugin reports the resource progressing"))
        }
        PluginHealth::Unknown if builtin.0 == "True" => {
            ("Unknown", "PluginHealthUnknown", said("A plugin cannot tell the resource's health"))
        }
        PluginHealth::Progressing | PluginHealth::Unknown => builtin,
    }
}

/// Whether the object is there and, for kinds with a notion of readiness, ready.
fn available_condition(plan: &ManifestPlan, live: &Live) -> (&'static str, &'static str, String) {
    let object = match live {
        Live::Unknown => return ("Unknown", "ResourceStatusUnknown", "The object has not been observed yet".into()),
        Live::Absent => return ("False", "ResourceNotFound", "The object does not exist".into()),
        Live::Present(object) => object,
    };
    let kind = plan.key.as_ref().map(|k| k.kind.as_str()).unwrap_or_default();
    match readiness(kind, object) {
        Some((false, why)) => ("False", "ResourceNotAvailable", why),
        Some((true, why)) => ("True", "ResourceAvailable", why),
        None => ("True", "ResourceAvailable", "Resource is available".into()),
    }
}

/// `Some((ready, explanation))` for kinds that become ready over time; `None` when existing is enough.
fn readiness(kind: &str, object: &Value) -> Option<(bool, String)> {
    let int = |path: &str| object.pointer(path).and_then(Value::as_i64);
    let status = object.get("status");
    match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let wanted = int("/spec/replicas").unwrap_or(1);
            let ready = int("/status/readyReplicas").unwrap_or(0);
            let generation = int("/metadata/generation").unwrap_or(0);
            let observed = int("/status/observedGeneration").unwrap_or(generation);
            let ok = ready >= wanted && observed >= generation;
            Some((ok, format!("{ready} of {wanted} replicas ready")))
        }
        "DaemonSet" => {
            let wanted = int("/status/desiredNumberScheduled")?;
            let ready = int("/status/numberReady").unwrap_or(0);
            Some((ready >= wanted, format!("{ready} of {wanted} scheduled pods ready")))
        }
        "Job" => {
            if condition_is(status, "Complete", "True") {
                Some((true, "The job completed".into()))
            } else if condition_is(status, "Failed", "True") {
                Some((false, "The job failed".into()))
            } else {
                Some((false, "The job has not completed".into()))
            }
        }
        "Pod" => {
            let phase = object.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
            let ready = condition_is(status, "Ready", "True") || phase == "Succeeded";
            Some((ready, format!("Pod phase {phase}")))
        }
        _ => ["Available", "Ready", "Established"]
            .into_iter()
            .find_map(|kind| condition_status(status, kind).map(|s| (s == "True", format!("{kind} is {s}")))),
    }
}

fn condition_status<'v>(status: Option<&'v Value>, kind: &str) -> Option<&'v str> {
    status?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get("status")?
        .as_str()
}

fn condition_is(status: Option<&Value>, kind: &str, wanted: &str) -> bool {
    condition_status(status, kind) == Some(wanted)
}

// ---------------------------------------------------------------------------------------------
// Feedback
// ---------------------------------------------------------------------------------------------

/// The feedback OCM's WellKnownStatus rule reports, per kind: (name, path).
pub fn well_known_paths(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "Deployment" => &[
            ("ReadyReplicas", ".status.readyReplicas"),
            ("Replicas", ".status.replicas"),
            ("AvailableReplicas", ".status.availableReplicas"),
        ],
        "StatefulSet" => &[
            ("ReadyReplicas", ".status.readyReplicas"),
            ("Replicas", ".status.replicas"),
            ("AvailableReplicas", ".status.availableReplicas"),
            ("CurrentReplicas", ".status.currentReplicas"),
            ("UpdatedReplicas", ".status.updatedReplicas"),
        ],
        "DaemonSet" => &[
            ("NumberReady", ".status.numberReady"),
            ("DesiredNumberScheduled", ".status.desiredNumberScheduled"),
            ("NumberAvailable", ".status.numberAvailable"),
            ("CurrentNumberScheduled", ".status.currentNumberScheduled"),
            ("UpdatedNumberScheduled", ".status.updatedNumberScheduled"),
        ],
        "Job" => &[
            ("JobComplete", r#".status.conditions[?(@.type=="Complete")].status"#),
            ("JobSucceeded", ".status.succeeded"),
            ("JobFailed", ".status.failed"),
        ],
        "Pod" => &[("PodPhase", ".status.phase"), ("PodReady", r#".status.conditions[?(@.type=="Ready")].status"#)],
        "Service" => &[
            ("ClusterIP", ".spec.clusterIP"),
            ("LoadBalancerIP", ".status.loadBalancer.ingress[0].ip"),
            ("LoadBalancerHostname", ".status.loadBalancer.ingress[0].hostname"),
        ],
        "CustomResourceDefinition" => &[
            ("Established", r#".status.conditions[?(@.type=="Established")].status"#),
            ("NamesAccepted", r#".status.conditions[?(@.type=="NamesAccepted")].status"#),
        ],
        _ => &[],
    }
}

/// Feedback values and what went wrong collecting them.
#[derive(Debug, Default)]
struct Feedback {
    wanted: bool,
    values: Vec<Value>,
    problems: Vec<String>,
    no_object: bool,
}

impl Feedback {
    /// Plugin values join the built-in ones; a fail-closed plugin failure unsyncs the feedback.
    fn add_plugin(&mut self, plugin: Option<&PluginFeedback>) {
        match plugin {
            None => {}
            Some(PluginFeedback::Report { values, .. }) => {
                self.wanted = true;
                let live = !self.no_object;
                self.values.extend(
                    values.iter().filter(|_| live).map(|(name, value)| json!({"name": name, "fieldValue": value})),
                );
            }
            Some(PluginFeedback::Failed(message)) => {
                self.wanted = true;
                self.problems.push(message.clone());
            }
        }
    }

    fn condition(&self) -> Option<(&'static str, &'static str, String)> {
        if !self.wanted {
            return None;
        }
        Some(if self.no_object {
            ("False", "NoStatusFeedbackSynced", "The object has not been observed".into())
        } else if self.problems.is_empty() {
            ("True", "StatusFeedbackSynced", "All status feedback values are synced".into())
        } else {
            ("False", "StatusFeedbackSyncFailed", self.problems.join("; "))
        })
    }
}

fn feedback(rules: &[FeedbackRule], kind: Option<&str>, live: &Live, cap: usize) -> Feedback {
    let mut out = Feedback { wanted: !rules.is_empty(), ..Default::default() };
    let Live::Present(object) = live else {
        out.no_object = out.wanted;
        return out;
    };
    for rule in rules {
        match rule {
            FeedbackRule::WellKnownStatus => {
                for (name, path) in well_known_paths(kind.unwrap_or_default()) {
                    // Missing well-known fields are normal (a new Deployment has no readyReplicas).
                    if let Ok(path) = JsonPath::parse(path)
                        && let Some(value) = path.first(object).and_then(|v| field_value(v, cap))
                    {
                        out.values.push(json!({"name": name, "fieldValue": value}));
                    }
                }
            }
            FeedbackRule::JsonPaths(entries) => {
                for entry in entries {
                    match JsonPath::parse(&entry.path) {
                        Err(err) => out.problems.push(err.to_string()),
                        Ok(path) => match path.first(object).and_then(|v| field_value(v, cap)) {
                            Some(value) => out.values.push(json!({"name": entry.name, "fieldValue": value})),
                            None => out.problems.push(format!("{}: no value at {}", entry.name, entry.path)),
                        },
                    }
                }
            }
        }
    }
    out
}

/// OCM's typed value: Integer, String, Boolean, or JsonRaw for anything else. A string or JSON
/// text over `cap` bytes becomes a String cut at `cap` and ending with [`TRUNCATION_MARKER`].
pub fn field_value(value: &Value, cap: usize) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(json!({"type": "Boolean", "boolean": b})),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(json!({"type": "Integer", "integer": n})),
        Value::String(s) if s.len() > cap => Some(json!({"type": "String", "string": truncate(s, cap)})),
        Value::String(s) => Some(json!({"type": "String", "string": s})),
        other => {
            let raw = other.to_string();
            if raw.len() > cap {
                Some(json!({"type": "String", "string": truncate(&raw, cap)}))
            } else {
                Some(json!({"type": "JsonRaw", "jsonRaw": raw}))
            }
        }
    }
}

fn truncate(text: &str, cap: usize) -> String {
    let mut end = cap.saturating_sub(TRUNCATION_MARKER.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATION_MARKER}", &text[..end])
}

// ---------------------------------------------------------------------------------------------
// The bundle
// ---------------------------------------------------------------------------------------------

/// The whole status: `{conditions, resourceStatus}`, serialized in that order (as the
/// transport's `ManifestBundleStatus` is, so both compute the same hash).
pub fn bundle_status(version: i64, resources: Vec<Value>, deleted: bool, previous: Option<&Value>, now: &str) -> Value {
    let before = conditions_of(previous);
    let mut conditions = Vec::new();
    if deleted {
        conditions.push(condition("Deleted", "True", "ManifestWorkDeleted", "All objects were deleted", before, now));
    } else {
        let count = resources.len();
        let not = |kind: &str| resources.iter().filter(|r| !resource_condition_is(r, kind, "True")).count();
        let (failed, unavailable) = (not("Applied"), not("Available"));
        conditions.push(if failed == 0 {
            condition("Applied", "True", "AppliedManifestWorkComplete", "Apply manifest work complete", before, now)
        } else {
            let message = format!("Failed to apply {failed} of {count} manifest(s)");
            condition("Applied", "False", "AppliedManifestWorkFailed", &message, before, now)
        });
        conditions.push(if unavailable == 0 {
            condition("Available", "True", "ResourcesAvailable", "All resources are available", before, now)
        } else {
            let message = format!("{unavailable} of {count} resource(s) not available");
            condition("Available", "False", "ResourcesNotAvailable", &message, before, now)
        });
    }
    for c in &mut conditions {
        if let Some(map) = c.as_object_mut() {
            map.insert("observedGeneration".into(), json!(version));
        }
    }
    let mut status = Map::new();
    status.insert("conditions".into(), Value::Array(conditions));
    status.insert("resourceStatus".into(), Value::Array(resources));
    Value::Object(status)
}

/// Adds a bundle condition (the reconciler's `Held`) in the shape of the others.
#[allow(clippy::too_many_arguments)]
pub fn add_condition(
    status: &mut Value,
    kind: &str,
    value: &str,
    reason: &str,
    message: &str,
    version: i64,
    previous: Option<&Value>,
    now: &str,
) {
    let mut added = condition(kind, value, reason, message, conditions_of(previous), now);
    if let Some(map) = added.as_object_mut() {
        map.insert("observedGeneration".into(), json!(version));
    }
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        conditions.push(added);
    }
}

fn resource_condition_is(resource: &Value, kind: &str, wanted: &str) -> bool {
    resource.get("conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(kind)
                && c.get("status").and_then(Value::as_str) == Some(wanted)
        })
    })
}

/// The `statushash` extension of a status built here: the model's one hash, so the hub, which
/// hashes the typed status, computes the same.
pub fn status_hash(status: &Value) -> String {
    maestro_model::status::status_hash_of_json(status)
}

/// Now, as Kubernetes writes condition times (seconds, UTC).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use maestro_model::config::{BundleSpec, DriftPolicy, JsonPathRule};

    const NOW: &str = "2026-11-22T10:00:00Z";

    fn plan_with(feedback: Vec<FeedbackRule>) -> ManifestPlan {
        let spec = BundleSpec::from_bundle(&json!({"manifests": [{"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 2}}]}));
        ManifestPlan { feedback, drift: DriftPolicy::Correct, ..spec.manifests[0].clone() }
    }

    fn deployment(ready: i64) -> Live {
        Live::Present(json!({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": ready, "availableReplicas": ready,
                       "conditions": [{"type": "Available", "status": if ready == 2 {"True"} else {"False"}}]}}))
    }

    fn applied() -> ApplyResult {
        ApplyResult::Applied { message: "Apply manifest complete".into() }
    }

    fn status_of(plan: &ManifestPlan, applied: &ApplyResult, live: &Live) -> Value {
        let obs = Observation {
            plan,
            resource: Some("deployments"),
            applied,
            live,
            drift: None,
            removal: None,
            plugin: None,
        };
        manifest_status(obs, None, NOW, DEFAULT_VALUE_CAP)
    }

    fn condition_of<'v>(status: &'v Value, kind: &str) -> &'v Value {
        status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == kind).unwrap_or(&Value::Null)
    }

    #[test]
    fn a_ready_deployment_is_applied_and_available_with_its_resource_meta() {
        let plan = plan_with(vec![]);
        let status = status_of(&plan, &applied(), &deployment(2));
        assert_eq!(
            status["resourceMeta"],
            json!({"ordinal": 0, "group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments",
                   "name": "web", "namespace": "default"})
        );
        assert_eq!(condition_of(&status, "Applied")["status"], "True");
        assert_eq!(condition_of(&status, "Available")["status"], "True");
        assert_eq!(condition_of(&status, "StatusFeedbackSynced"), &Value::Null);
    }

    #[test]
    fn a_deployment_is_not_available_until_its_replicas_are_ready() {
        let status = status_of(&plan_with(vec![]), &applied(), &deployment(1));
        let available = condition_of(&status, "Available");
        assert_eq!(available["status"], "False");
        assert_eq!(available["message"], "1 of 2 replicas ready");
    }

    #[test]
    fn a_refused_manifest_carries_the_servers_reason() {
        let refused = ApplyResult::Refused { reason: "Invalid".into(), message: "spec.replicas: must be >= 0".into() };
        let status = status_of(&plan_with(vec![]), &refused, &Live::Absent);
        let applied = condition_of(&status, "Applied");
        assert_eq!((applied["status"].as_str(), applied["reason"].as_str()), (Some("False"), Some("Invalid")));
        assert_eq!(applied["message"], "spec.replicas: must be >= 0");
        assert_eq!(condition_of(&status, "Available")["status"], "False");
    }

    #[test]
    fn well_known_status_reports_typed_deployment_values() {
        let status = status_of(&plan_with(vec![FeedbackRule::WellKnownStatus]), &applied(), &deployment(2));
        let values = status["statusFeedback"]["values"].as_array().unwrap();
        assert!(values.contains(&json!({"name": "ReadyReplicas", "fieldValue": {"type": "Integer", "integer": 2}})));
        assert!(values.contains(&json!({"name": "Replicas", "fieldValue": {"type": "Integer", "integer": 2}})));
        assert_eq!(condition_of(&status, "StatusFeedbackSynced")["status"], "True");
    }

    #[test]
    fn json_paths_give_raw_json_for_objects_and_fail_the_sync_for_missing_values() {
        let rules = vec![FeedbackRule::JsonPaths(vec![
            JsonPathRule { name: "status".into(), path: ".status".into() },
            JsonPathRule {
                name: "available".into(),
                path: r#".status.conditions[?(@.type=="Available")].status"#.into(),
            },
            JsonPathRule { name: "missing".into(), path: ".status.nothing".into() },
        ])];
        let status = status_of(&plan_with(rules), &applied(), &deployment(2));
        let values = &status["statusFeedback"]["values"];
        assert_eq!(values[0]["fieldValue"]["type"], "JsonRaw");
        let raw: Value = serde_json::from_str(values[0]["fieldValue"]["jsonRaw"].as_str().unwrap()).unwrap();
        assert_eq!(raw["readyReplicas"], 2);
        assert_eq!(values[1], json!({"name": "available", "fieldValue": {"type": "String", "string": "True"}}));
        let synced = condition_of(&status, "StatusFeedbackSynced");
        assert_eq!(synced["status"], "False");
        assert!(synced["message"].as_str().unwrap().contains("missing"));
    }

    #[test]
    fn values_over_the_cap_are_cut_and_marked() {
        let long = "x".repeat(10_000);
        let value = field_value(&json!(long), 100).unwrap();
        let text = value["string"].as_str().unwrap();
        assert!(text.len() <= 100 && text.ends_with(TRUNCATION_MARKER), "{text}");
        let object = field_value(&json!({"data": long}), 100).unwrap();
        assert_eq!(object["type"], "String");
        assert!(object["string"].as_str().unwrap().ends_with(TRUNCATION_MARKER));
        assert_eq!(field_value(&json!({"a": 1}), 100).unwrap()["type"], "JsonRaw");
    }

    #[test]
    fn transition_times_survive_recomputation_so_the_hash_is_stable() {
        let plan = plan_with(vec![]);
        let obs = Observation {
            plan: &plan,
            resource: None,
            applied: &applied(),
            live: &deployment(2),
            drift: None,
            removal: None,
            plugin: None,
        };
        let first = bundle_status(1, vec![manifest_status(obs, None, NOW, 100)], false, None, NOW);
        let previous = &first["resourceStatus"][0];
        let again = manifest_status(obs, Some(previous), "2026-11-22T11:00:00Z", 100);
        let second = bundle_status(1, vec![again], false, Some(&first), "2026-11-22T11:00:00Z");
        assert_eq!(status_hash(&first), status_hash(&second));
        let later = Observation { live: &deployment(1), ..obs };
        let third = manifest_status(later, Some(previous), "2026-11-22T11:00:00Z", 100);
        assert_eq!(condition_of(&third, "Available")["lastTransitionTime"], "2026-11-22T11:00:00Z");
        assert_eq!(condition_of(&third, "Applied")["lastTransitionTime"], NOW);
    }

    #[test]
    fn bundle_conditions_summarise_the_manifests_and_deleted_replaces_them() {
        let plan = plan_with(vec![]);
        let good = status_of(&plan, &applied(), &deployment(2));
        let bad =
            status_of(&plan, &ApplyResult::Refused { reason: "Forbidden".into(), message: "no".into() }, &Live::Absent);
        let status = bundle_status(3, vec![good, bad], false, None, NOW);
        let applied = &status["conditions"][0];
        assert_eq!((applied["type"].as_str(), applied["status"].as_str()), (Some("Applied"), Some("False")));
        assert_eq!(applied["observedGeneration"], 3);
        let keys: Vec<&String> = status.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["conditions", "resourceStatus"]);
        let deleted = bundle_status(3, vec![], true, Some(&status), NOW);
        assert_eq!(deleted["conditions"][0]["type"], "Deleted");
        assert_eq!(deleted["conditions"][0]["status"], "True");
    }

    #[test]
    fn drift_is_reported_as_a_condition() {
        let plan = plan_with(vec![]);
        let drift = Drift::Reported { what: DriftKind::Modified };
        let obs = Observation {
            plan: &plan,
            resource: None,
            applied: &applied(),
            live: &deployment(2),
            drift: Some(&drift),
            removal: None,
            plugin: None,
        };
        let status = manifest_status(obs, None, NOW, 100);
        assert_eq!(condition_of(&status, "Drifted")["status"], "True");
        assert_eq!(condition_of(&status, "Drifted")["reason"], "DriftReported");
    }

    fn with_plugin(plan: &ManifestPlan, live: &Live, plugin: &PluginFeedback) -> Value {
        let applied = applied();
        let obs = Observation {
            plan,
            resource: None,
            applied: &applied,
            live,
            drift: None,
            removal: None,
            plugin: Some(plugin),
        };
        manifest_status(obs, None, NOW, 100)
    }

    #[test]
    fn plugin_values_join_the_built_in_ones_typed_and_capped() {
        let plan = plan_with(vec![FeedbackRule::WellKnownStatus]);
        let values = vec![
            ("count".to_string(), plugin_value(PluginValue::Integer(3), 100)),
            ("long".to_string(), plugin_value(PluginValue::Text("y".repeat(500)), 100)),
            ("raw".to_string(), plugin_value(PluginValue::JsonRaw("{\"a\":1}".into()), 100)),
            ("not-json".to_string(), plugin_value(PluginValue::JsonRaw("{nope".into()), 100)),
        ];
        let status = with_plugin(&plan, &deployment(2), &PluginFeedback::Report { values, health: None });
        let values = status["statusFeedback"]["values"].as_array().unwrap();
        assert!(values.iter().any(|v| v["name"] == "ReadyReplicas"), "built-in values stay: {values:?}");
        let named = |name: &str| values.iter().find(|v| v["name"] == name).unwrap()["fieldValue"].clone();
        assert_eq!(named("count"), json!({"type": "Integer", "integer": 3}));
        assert!(named("long")["string"].as_str().unwrap().ends_with(TRUNCATION_MARKER));
        assert_eq!(named("raw"), json!({"type": "JsonRaw", "jsonRaw": "{\"a\":1}"}));
        assert_eq!(named("not-json")["type"], "String");
        assert_eq!(condition_of(&status, "Available")["reason"], "ResourceAvailable", "no health: built-in stays");
    }

    #[test]
    fn plugin_health_decides_availability_and_a_failure_unsyncs_the_feedback() {
        let plan = plan_with(vec![]);
        let health = |state, message: &str| PluginFeedback::Report {
            values: vec![],
            health: Some((state, message.to_string())),
        };
        let degraded = with_plugin(&plan, &deployment(2), &health(PluginHealth::Degraded, "1 of 2 pods crash"));
        let available = condition_of(&degraded, "Available");
        assert_eq!(
            (available["status"].as_str(), available["message"].as_str()),
            (Some("False"), Some("1 of 2 pods crash"))
        );
        let healthy = with_plugin(&plan, &deployment(1), &health(PluginHealth::Healthy, ""));
        assert_eq!(condition_of(&healthy, "Available")["status"], "True", "the plugin knows better");
        let rolling = with_plugin(&plan, &deployment(2), &health(PluginHealth::Progressing, "rolling"));
        assert_eq!(condition_of(&rolling, "Available")["status"], "Unknown");
        let still = with_plugin(&plan, &deployment(1), &health(PluginHealth::Progressing, "rolling"));
        assert_eq!(condition_of(&still, "Available")["reason"], "ResourceNotAvailable");

        let failed = with_plugin(&plan, &deployment(2), &PluginFeedback::Failed("plugin 'x' trapped".into()));
        let synced = condition_of(&failed, "StatusFeedbackSynced");
        assert_eq!(
            (synced["status"].as_str(), synced["message"].as_str()),
            (Some("False"), Some("plugin 'x' trapped"))
        );
    }
}
