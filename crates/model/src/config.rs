//! Typed bundle configs: what the hub asks of the agent, read from a bundle as a spec event
//! carries it (one reading, for the agent and for any engine that needs it): the manifests
//! and, for each, the update strategy, feedback rules and drift policy of the manifest config
//! that matches it, plus the bundle's delete option.
//!
//! The hub validates all of this before storing it, but an event may come from another source;
//! reading is therefore lenient per manifest (a manifest without identity is reported, not
//! fatal) and defaults are OCM's, except where noted.

use serde_json::Value;

use crate::object::{ObjectKey, object_key, resource_for_kind};

/// The field manager of every write the agent makes, unless a config names another.
pub const FIELD_MANAGER: &str = "maestro-agent";

/// How the agent writes one manifest to the cluster, as in OCM's ManifestWork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateStrategy {
    /// Server-side apply. `force` defaults to true (OCM's default is false): correcting drift
    /// means taking fields back from whoever edited them.
    ServerSideApply { field_manager: String, force: bool },
    /// Create, or replace the whole object.
    Update,
    /// Create when absent; never touch an existing object.
    CreateOnly,
    /// Never write; only read the object and report its status.
    ReadOnly,
}

impl UpdateStrategy {
    /// The `updateStrategy.type` values, as validation accepts them and [`BundleSpec`] reads them.
    pub const TYPES: &[&str] = &["ServerSideApply", "Update", "CreateOnly", "ReadOnly"];

    pub fn name(&self) -> &'static str {
        match self {
            UpdateStrategy::ServerSideApply { .. } => "ServerSideApply",
            UpdateStrategy::Update => "Update",
            UpdateStrategy::CreateOnly => "CreateOnly",
            UpdateStrategy::ReadOnly => "ReadOnly",
        }
    }

    /// Whether the agent owns the object's content, so edits by others are drift.
    pub fn owns_content(&self) -> bool {
        matches!(self, UpdateStrategy::ServerSideApply { .. } | UpdateStrategy::Update)
    }
}

/// What the agent does when someone else edits or deletes an object it applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftPolicy {
    /// Restore the object and report that it did.
    Correct,
    /// Leave the object as it is and report the difference.
    ReportOnly,
}

impl DriftPolicy {
    /// The `driftPolicy` values, as validation accepts them (`driftPolicy` is ours; OCM has none).
    pub const NAMES: &[&str] = &["Correct", "ReportOnly"];
}

/// One JSONPaths feedback entry: a name and a path into the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPathRule {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackRule {
    WellKnownStatus,
    JsonPaths(Vec<JsonPathRule>),
}

/// Selects objects the way OCM's resource identifiers and orphaning rules do: group, plural
/// resource (`*` for any), namespace and name (both may use `*` wildcards).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identifier {
    pub group: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Identifier {
    /// `None` unless resource and name are non-empty strings and group and namespace are
    /// strings or absent (validation reports which field is wrong).
    pub fn parse(value: &Value) -> Option<Identifier> {
        let text = |key: &str| match value.get(key) {
            None | Some(Value::Null) => Some(String::new()),
            Some(value) => value.as_str().map(str::to_owned),
        };
        let identifier = Identifier {
            group: text("group")?,
            resource: text("resource")?,
            namespace: text("namespace")?,
            name: text("name")?,
        };
        (!identifier.resource.is_empty() && !identifier.name.is_empty()).then_some(identifier)
    }

    /// `plural` is the resource name discovery found, when known; otherwise the kind's guessed plural.
    pub fn matches(&self, key: &ObjectKey, plural: Option<&str>) -> bool {
        let resource_ok = self.resource == "*"
            || plural.is_some_and(|p| p == self.resource)
            || self.resource == resource_for_kind(&key.kind);
        self.group == key.group
            && resource_ok
            && wildcard_match(&self.namespace, key.namespace.as_deref().unwrap_or(""))
            && wildcard_match(&self.name, &key.name)
    }
}

/// What deleting the bundle does to its objects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeletePolicy {
    /// Delete every object, waiting for its dependents (the default).
    #[default]
    Foreground,
    /// Leave every object in the cluster.
    Orphan,
    /// Leave the objects the rules match; delete the rest.
    SelectivelyOrphan(Vec<Identifier>),
}

impl DeletePolicy {
    /// The `propagationPolicy` values, as validation accepts them.
    pub const PROPAGATIONS: &[&str] = &["Foreground", "Orphan", "SelectivelyOrphan"];

    pub fn parse(option: Option<&Value>) -> DeletePolicy {
        let Some(option) = option.filter(|v| v.is_object()) else { return DeletePolicy::Foreground };
        match option.get("propagationPolicy").and_then(Value::as_str) {
            Some("Orphan") => DeletePolicy::Orphan,
            Some("SelectivelyOrphan") => {
                let rules = option
                    .pointer("/selectivelyOrphans/orphaningRules")
                    .and_then(Value::as_array)
                    .map(|rules| rules.iter().filter_map(Identifier::parse).collect())
                    .unwrap_or_default();
                DeletePolicy::SelectivelyOrphan(rules)
            }
            _ => DeletePolicy::Foreground,
        }
    }

    /// Whether an object must stay in the cluster when the bundle (or its manifest) goes.
    pub fn keeps(&self, key: &ObjectKey, plural: Option<&str>) -> bool {
        match self {
            DeletePolicy::Foreground => false,
            DeletePolicy::Orphan => true,
            DeletePolicy::SelectivelyOrphan(rules) => rules.iter().any(|rule| rule.matches(key, plural)),
        }
    }
}

/// One manifest with everything its config says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestPlan {
    pub ordinal: usize,
    pub manifest: Value,
    /// `None` when the manifest lacks apiVersion, kind or name: it is reported, not applied.
    pub key: Option<ObjectKey>,
    pub strategy: UpdateStrategy,
    pub feedback: Vec<FeedbackRule>,
    pub drift: DriftPolicy,
}

/// A bundle as the agent applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleSpec {
    pub manifests: Vec<ManifestPlan>,
    pub delete: DeletePolicy,
}

impl BundleSpec {
    /// Reads the data of a spec event (`manifests`, `manifestConfigs`, `deleteOption`).
    pub fn from_bundle(bundle: &Value) -> BundleSpec {
        let manifests = bundle.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
        let configs = bundle.get("manifestConfigs").and_then(Value::as_array).cloned().unwrap_or_default();
        let plans =
            manifests.into_iter().enumerate().map(|(ordinal, manifest)| plan(ordinal, manifest, &configs)).collect();
        BundleSpec { manifests: plans, delete: DeletePolicy::parse(bundle.get("deleteOption")) }
    }
}

fn plan(ordinal: usize, manifest: Value, configs: &[Value]) -> ManifestPlan {
    let key = object_key(&manifest);
    let config = key.as_ref().and_then(|key| {
        configs.iter().find(|config| {
            config.get("resourceIdentifier").and_then(Identifier::parse).is_some_and(|id| id.matches(key, None))
        })
    });
    ManifestPlan {
        ordinal,
        key,
        strategy: config.map(|c| update_strategy(c.get("updateStrategy"))).unwrap_or(UpdateStrategy::Update),
        feedback: config.map(|c| feedback_rules(c.get("feedbackRules"))).unwrap_or_default(),
        drift: config.map(|c| drift_policy(c.get("driftPolicy"))).unwrap_or(DriftPolicy::Correct),
        manifest,
    }
}

/// OCM's default strategy is Update when a config names none.
fn update_strategy(value: Option<&Value>) -> UpdateStrategy {
    let Some(value) = value else { return UpdateStrategy::Update };
    match value.get("type").and_then(Value::as_str) {
        Some("ServerSideApply") => {
            let options = value.get("serverSideApply");
            let field_manager = options
                .and_then(|o| o.get("fieldManager"))
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or(FIELD_MANAGER)
                .to_owned();
            let force = options.and_then(|o| o.get("force")).and_then(Value::as_bool).unwrap_or(true);
            UpdateStrategy::ServerSideApply { field_manager, force }
        }
        Some("CreateOnly") => UpdateStrategy::CreateOnly,
        Some("ReadOnly") => UpdateStrategy::ReadOnly,
        _ => UpdateStrategy::Update,
    }
}

fn feedback_rules(value: Option<&Value>) -> Vec<FeedbackRule> {
    let rules = value.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    rules
        .iter()
        .filter_map(|rule| match rule.get("type").and_then(Value::as_str) {
            Some("WellKnownStatus") => Some(FeedbackRule::WellKnownStatus),
            Some("JSONPaths") => {
                let paths = rule.get("jsonPaths").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                let paths = paths
                    .iter()
                    .filter_map(|entry| {
                        let name = entry.get("name").and_then(Value::as_str)?;
                        let path = entry.get("path").and_then(Value::as_str)?;
                        Some(JsonPathRule { name: name.to_owned(), path: path.to_owned() })
                    })
                    .collect();
                Some(FeedbackRule::JsonPaths(paths))
            }
            _ => None,
        })
        .collect()
}

fn drift_policy(value: Option<&Value>) -> DriftPolicy {
    match value.and_then(Value::as_str) {
        Some("ReportOnly") => DriftPolicy::ReportOnly,
        _ => DriftPolicy::Correct,
    }
}

/// OCM-style glob: `*` stands for any run of characters, everything else matches itself; an
/// empty pattern matches only the empty string. Greedy with one backtrack point, so linear in
/// practice and never exponential: patterns come from bundle writers and run on the agent.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The data of the conformance sample `cloudevent.json`, manifests shortened.
    fn sample_bundle() -> Value {
        json!({
            "manifests": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "namespace": "default"}}],
            "deleteOption": {"propagationPolicy": "Foreground"},
            "manifestConfigs": [{
                "resourceIdentifier": {"group": "apps", "resource": "deployments", "namespace": "default", "name": "nginx"},
                "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "status", "path": ".status"}]}],
                "updateStrategy": {"type": "ServerSideApply"}
            }]
        })
    }

    #[test]
    fn the_conformance_sample_reads_as_server_side_apply_with_a_json_paths_rule() {
        let spec = BundleSpec::from_bundle(&sample_bundle());
        assert_eq!(spec.delete, DeletePolicy::Foreground);
        let plan = &spec.manifests[0];
        assert_eq!(plan.key.as_ref().unwrap().name, "nginx");
        assert_eq!(plan.strategy, UpdateStrategy::ServerSideApply { field_manager: FIELD_MANAGER.into(), force: true });
        assert_eq!(
            plan.feedback,
            vec![FeedbackRule::JsonPaths(vec![JsonPathRule { name: "status".into(), path: ".status".into() }])]
        );
        assert_eq!(plan.drift, DriftPolicy::Correct);
    }

    #[test]
    fn a_manifest_without_config_is_updated_with_drift_corrected_and_no_feedback() {
        let spec = BundleSpec::from_bundle(&json!({"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x"}}
        ]}));
        assert_eq!(spec.manifests[0].strategy, UpdateStrategy::Update);
        assert!(spec.manifests[0].feedback.is_empty());
    }

    #[test]
    fn configs_pick_their_manifest_by_group_resource_namespace_and_wildcard_name() {
        let spec = BundleSpec::from_bundle(&json!({
            "manifests": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-a", "namespace": "x"}},
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-b", "namespace": "x"}}
            ],
            "manifestConfigs": [
                {"resourceIdentifier": {"resource": "configmaps", "name": "web-*", "namespace": "x"},
                 "updateStrategy": {"type": "CreateOnly"}, "driftPolicy": "ReportOnly"},
                {"resourceIdentifier": {"resource": "secrets", "name": "web-b", "namespace": "x"},
                 "updateStrategy": {"type": "ServerSideApply", "serverSideApply": {"fieldManager": "me", "force": false}}}
            ]
        }));
        assert_eq!(spec.manifests[0].strategy, UpdateStrategy::CreateOnly);
        assert_eq!(spec.manifests[0].drift, DriftPolicy::ReportOnly);
        assert_eq!(
            spec.manifests[1].strategy,
            UpdateStrategy::ServerSideApply { field_manager: "me".into(), force: false }
        );
        assert_eq!(spec.manifests[1].drift, DriftPolicy::Correct);
    }

    #[test]
    fn a_manifest_without_identity_is_kept_with_no_key() {
        let spec = BundleSpec::from_bundle(&json!({"manifests": [{"kind": "ConfigMap"}]}));
        assert!(spec.manifests[0].key.is_none());
    }

    #[test]
    fn delete_policies_orphan_all_some_or_none() {
        let key = object_key(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep-me", "namespace": "x"}}),
        )
        .unwrap();
        assert!(!DeletePolicy::parse(None).keeps(&key, None));
        assert!(DeletePolicy::parse(Some(&json!({"propagationPolicy": "Orphan"}))).keeps(&key, None));
        let selective = DeletePolicy::parse(Some(&json!({"propagationPolicy": "SelectivelyOrphan",
            "selectivelyOrphans": {"orphaningRules": [{"group": "", "resource": "configmaps", "namespace": "x", "name": "keep-*"}]}})));
        assert!(selective.keeps(&key, Some("configmaps")));
        let other = object_key(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "drop", "namespace": "x"}}),
        )
        .unwrap();
        assert!(!selective.keeps(&other, Some("configmaps")));
    }

    #[test]
    fn a_pattern_of_many_stars_is_matched_without_trying_every_split() {
        // A bundle writer controls the pattern, the agent's one reconciler task runs it: trying
        // every way to split the text among the stars (C(60, 15) ways here) would stall it.
        let pattern = format!("{}b", "*a".repeat(15));
        assert!(!wildcard_match(&pattern, &"a".repeat(60)));
        assert!(wildcard_match(&pattern, &format!("{}b", "a".repeat(60))));
    }

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("web-*", "web-1"));
        assert!(wildcard_match("*-db-*", "a-db-b"));
        assert!(!wildcard_match("web", "web-1"));
        assert!(!wildcard_match("web-*", "api-1"));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(!wildcard_match("a*c", "abbb"));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "x"));
    }
}
