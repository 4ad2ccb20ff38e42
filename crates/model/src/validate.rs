//! Structural validation of what a client sends before anything is stored.
//!
//! The hub only ships manifests; the API server on each managed cluster is the real judge of
//! them. Checking shape here anyway means a client learns about every mistake in one round trip,
//! tied to the JSON field that caused it, instead of finding a failed apply in a status much later.
//! Nothing here talks to a cluster, so kind-specific rules (schemas, scope) are left to it.
//!
//! Every check appends to a `Vec<Violation>` instead of returning early, so one 400 answer can
//! list all problems at once.

use std::collections::HashMap;
use std::fmt;
use std::io;

use serde_json::{Map, Value};

/// One problem in a request body. `field` is a path such as `manifests[1].metadata.name`
/// or `manifest_configs[0].updateStrategy.type`; `message` says what is wrong and what is allowed.
///
/// Map keys that are not plain identifiers appear in brackets, as in
/// `manifests[0].metadata.labels["app.kubernetes.io/name"]`, so the path stays unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Violation {
    pub field: String,
    pub message: String,
}

/// Size limits, kept configurable so operators can trade request size against database load.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most manifests one bundle may carry.
    pub max_manifests: usize,
    /// Most bytes one manifest may take, serialized as compact JSON.
    pub max_manifest_bytes: usize,
    /// Most bytes all manifests of one bundle may take together, serialized as compact JSON.
    pub max_bundle_bytes: usize,
}

impl Default for Limits {
    /// Kubernetes itself refuses objects much above 1 MiB (etcd's request limit), and a bundle
    /// travels to the agent as one message, so the defaults stay well below what would fail there.
    fn default() -> Self {
        Self { max_manifests: 200, max_manifest_bytes: 512 * KIB, max_bundle_bytes: 2 * MIB }
    }
}

/// Identity of a manifest for duplicate detection and for the agent: (group, version, kind,
/// namespace, name). `group` is empty for the core group; `namespace` is `None` when the manifest
/// names none (an empty string counts as none, as it does for Kubernetes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectKey {
    /// Reads like kubectl's `kind.group namespace/name`, which is what operators recognise in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.namespace {
            Some(namespace) => write!(f, " {namespace}/{}", self.name),
            None => write!(f, " {}", self.name),
        }
    }
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Field names the bundle API uses for its three inputs; violations from `validate_bundle` start with them.
const MANIFESTS: &str = "manifests";
const MANIFEST_CONFIGS: &str = "manifest_configs";
const DELETE_OPTION: &str = "delete_option";

/// `driftPolicy` is ours (OCM has none): `Correct` (the default) or `ReportOnly`.
const CONFIG_FIELDS: &[&str] = &["resourceIdentifier", "feedbackRules", "updateStrategy", "driftPolicy"];
const DRIFT_POLICIES: &[&str] = &["Correct", "ReportOnly"];
const IDENTIFIER_FIELDS: &[&str] = &["group", "resource", "name", "namespace"];
const FEEDBACK_RULE_FIELDS: &[&str] = &["type", "jsonPaths"];
const JSON_PATH_FIELDS: &[&str] = &["name", "path", "version"];
const UPDATE_STRATEGY_FIELDS: &[&str] = &["type", "serverSideApply"];
const SERVER_SIDE_APPLY_FIELDS: &[&str] = &["fieldManager", "force"];
const DELETE_OPTION_FIELDS: &[&str] = &["propagationPolicy", "selectivelyOrphans"];
const SELECTIVELY_ORPHANS_FIELDS: &[&str] = &["orphaningRules"];

const JSON_PATHS: &str = "JSONPaths";
const WELL_KNOWN_STATUS: &str = "WellKnownStatus";
const FEEDBACK_TYPES: &[&str] = &[JSON_PATHS, WELL_KNOWN_STATUS];
const SERVER_SIDE_APPLY: &str = "ServerSideApply";
const UPDATE_STRATEGY_TYPES: &[&str] = &[SERVER_SIDE_APPLY, "Update", "CreateOnly", "ReadOnly"];
const SELECTIVELY_ORPHAN: &str = "SelectivelyOrphan";
const PROPAGATION_POLICIES: &[&str] = &["Foreground", "Orphan", SELECTIVELY_ORPHAN];

/// Kubernetes caps field manager names at this many characters.
const MAX_FIELD_MANAGER: usize = 128;
const MAX_SUBDOMAIN: usize = 253;
const MAX_LABEL: usize = 63;

const SUBDOMAIN_RULE: &str = "a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', \
     each part between dots starting and ending with a letter or digit, at most 253 characters)";
const LABEL_RULE: &str = "a DNS-1123 label (lower-case letters, digits and '-', \
     starting and ending with a letter or digit, at most 63 characters)";
const KEY_RULE: &str = "an optional DNS subdomain prefix and '/', then a name of at most 63 \
     characters made of letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
const LABEL_VALUE_RULE: &str = "empty, or at most 63 characters made of letters, digits, '-', '_' \
     and '.', starting and ending with a letter or digit";

// ---------------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------------

/// Checks a whole bundle. Paths start with `manifests`, `manifest_configs` and `delete_option`,
/// the bundle API's own field names; a `null` delete option counts as none.
pub fn validate_bundle(
    manifests: &[Value],
    manifest_configs: &[Value],
    delete_option: Option<&Value>,
    limits: &Limits,
) -> Vec<Violation> {
    let mut out = Vec::new();
    check_manifest_count(manifests.len(), limits, &mut out);
    let total_bytes: usize = manifests
        .iter()
        .enumerate()
        .map(|(i, manifest)| check_manifest(manifest, &item(MANIFESTS, i), limits, &mut out))
        .fold(0, usize::saturating_add);
    check_bundle_size(total_bytes, limits, &mut out);
    check_duplicate_manifests(manifests, &mut out);
    check_manifest_configs(manifests, manifest_configs, &mut out);
    if let Some(option) = delete_option.and_then(present) {
        validate_delete_option(option, DELETE_OPTION, &mut out);
    }
    out
}

fn check_manifest_count(count: usize, limits: &Limits, out: &mut Vec<Violation>) {
    if count == 0 {
        push(out, MANIFESTS, "a bundle needs at least one manifest, found none");
    } else if count > limits.max_manifests {
        push(out, MANIFESTS, format!("a bundle may hold at most {} manifests, found {count}", limits.max_manifests));
    }
}

fn check_bundle_size(total_bytes: usize, limits: &Limits, out: &mut Vec<Violation>) {
    if total_bytes > limits.max_bundle_bytes {
        push(
            out,
            MANIFESTS,
            format!(
                "the manifests take {total_bytes} bytes together as JSON, more than the bundle limit of {}",
                describe_bytes(limits.max_bundle_bytes)
            ),
        );
    }
}

/// Two manifests for the same object would fight over it on the cluster; the version is left out
/// of the comparison because `apps/v1` and `apps/v1beta2` of one Deployment are the same object.
fn check_duplicate_manifests(manifests: &[Value], out: &mut Vec<Violation>) {
    let mut first_seen: HashMap<(String, String, Option<String>, String), usize> = HashMap::new();
    for (i, key) in manifests.iter().enumerate().filter_map(|(i, m)| object_key(m).map(|k| (i, k))) {
        let identity = (key.group.clone(), key.kind.clone(), key.namespace.clone(), key.name.clone());
        if let Some(&earlier) = first_seen.get(&identity) {
            push(
                out,
                item(MANIFESTS, i),
                format!(
                    "duplicates {}: both describe {key}, and each object may appear only once in a bundle",
                    item(MANIFESTS, earlier)
                ),
            );
        } else {
            first_seen.insert(identity, i);
        }
    }
}

/// Configs are validated on their own, then against the bundle: a config that matches no
/// manifest is almost always a typo in its identifier, and would otherwise be silently ignored.
fn check_manifest_configs(manifests: &[Value], configs: &[Value], out: &mut Vec<Violation>) {
    let keys: Vec<ObjectKey> = manifests.iter().filter_map(object_key).collect();
    let mut first_seen: HashMap<ResourceRef<'_>, usize> = HashMap::new();
    for (i, config) in configs.iter().enumerate() {
        let path = item(MANIFEST_CONFIGS, i);
        validate_manifest_config(config, &path, out);
        let Some(target) = config.get("resourceIdentifier").and_then(ResourceRef::parse) else {
            continue;
        };
        let field_path = field(&path, "resourceIdentifier");
        if !keys.iter().any(|key| target.matches(key)) {
            push(out, &field_path, target.no_match_message());
        }
        if let Some(&earlier) = first_seen.get(&target) {
            push(
                out,
                &field_path,
                format!(
                    "duplicates the resourceIdentifier of {}; configure each object once",
                    item(MANIFEST_CONFIGS, earlier)
                ),
            );
        } else {
            first_seen.insert(target, i);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Manifests
// ---------------------------------------------------------------------------------------------

/// Checks one Kubernetes object. `path` names the manifest itself (`manifests[3]`, or whatever
/// the single-resource API calls it); an empty `path` gives fields like `metadata.name`.
pub fn validate_manifest(manifest: &Value, path: &str, limits: &Limits, out: &mut Vec<Violation>) {
    check_manifest(manifest, path, limits, out);
}

/// Returns the serialized size so the bundle total is computed without serializing twice.
fn check_manifest(manifest: &Value, path: &str, limits: &Limits, out: &mut Vec<Violation>) -> usize {
    let size = serialized_len(manifest);
    if size > limits.max_manifest_bytes {
        push(
            out,
            path,
            format!(
                "the manifest takes {size} bytes as JSON, more than the limit of {}",
                describe_bytes(limits.max_manifest_bytes)
            ),
        );
    }
    let Some(object) = manifest.as_object() else {
        push(
            out,
            path,
            format!("a manifest must be a JSON object (a Kubernetes resource), found {}", describe(manifest)),
        );
        return size;
    };
    check_api_version(object.get("apiVersion"), &field(path, "apiVersion"), out);
    check_kind(object.get("kind"), &field(path, "kind"), out);
    check_metadata(object, &field(path, "metadata"), out);
    size
}

fn check_api_version(value: Option<&Value>, path: &str, out: &mut Vec<Violation>) {
    const EXPECTED: &str = "a string such as \"v1\" or \"apps/v1\"";
    let Some(api_version) = required_str(value, path, "apiVersion", EXPECTED, out) else {
        return;
    };
    if api_version.matches('/').count() > 1 {
        push(
            out,
            path,
            format!(
                "apiVersion must be \"version\" or \"group/version\" with a single '/', found {}",
                quote(api_version)
            ),
        );
        return;
    }
    let (group, version) = split_api_version(api_version);
    if let Some(reason) = group.and_then(subdomain_problem) {
        push(
            out,
            path,
            format!(
                "the group in apiVersion must be a DNS subdomain such as \"apps\" or \"cert-manager.io\", \
                 found {}: {reason}",
                quote(api_version)
            ),
        );
    }
    if let Some(reason) = version_problem(version) {
        push(
            out,
            path,
            format!(
                "the version in apiVersion must look like v1, v1beta1 or v2alpha3, found {}: {reason}",
                quote(api_version)
            ),
        );
    }
}

/// Splits `group/version`; the group is `None` for the core group, written as a bare version.
fn split_api_version(api_version: &str) -> (Option<&str>, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (Some(group), version),
        None => (None, api_version),
    }
}

/// Accepts Kubernetes-style versions (v1, v1beta1) and the other CRD version names Kubernetes
/// allows (v1alpha, v1-preview), but insists on a leading `v` and digit so that a group typed
/// without its version (`"apps"`) is caught rather than read as version "apps" of the core group.
fn version_problem(version: &str) -> Option<String> {
    let mut chars = version.chars();
    let starts_right = chars.next() == Some('v') && chars.next().is_some_and(|c| c.is_ascii_digit());
    if !starts_right {
        return Some(if version.is_empty() {
            "the version is empty".to_owned()
        } else {
            format!("{} does not start with 'v' and a digit", quote(version))
        });
    }
    token_problem(version, MAX_LABEL, is_lower_alnum, &['-'])
}

fn check_kind(value: Option<&Value>, path: &str, out: &mut Vec<Violation>) {
    const EXPECTED: &str = "a string such as \"Deployment\"";
    let Some(kind) = required_str(value, path, "kind", EXPECTED, out) else {
        return;
    };
    let problem = if kind.chars().count() > MAX_LABEL {
        format!("kind must be at most {MAX_LABEL} characters, found {}", quote(kind))
    } else if !kind.starts_with(|c: char| c.is_ascii_uppercase()) {
        format!("kind must start with an upper-case letter, found {}", quote(kind))
    } else if !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("kind must contain only letters and digits, found {}", quote(kind))
    } else {
        return;
    };
    push(out, path, problem);
}

fn check_metadata(manifest: &Map<String, Value>, path: &str, out: &mut Vec<Violation>) {
    let metadata = match manifest.get("metadata") {
        Some(Value::Object(metadata)) => metadata,
        None | Some(Value::Null) => {
            push(out, path, "metadata is required: an object with at least a name");
            return;
        }
        Some(other) => {
            push(out, path, format!("metadata must be an object, found {}", describe(other)));
            return;
        }
    };
    let name_rule = name_rule_for(manifest);
    check_object_name(metadata.get("name"), &field(path, "name"), name_rule, out);
    if metadata.contains_key("generateName") {
        push(
            out,
            field(path, "generateName"),
            "generateName is not supported: maestro tracks every object by its name, \
             so set metadata.name instead",
        );
    }
    check_namespace(metadata.get("namespace"), &field(path, "namespace"), out);
    if let Some(labels) = metadata.get("labels").and_then(present) {
        validate_labels(labels, &field(path, "labels"), out);
    }
    if let Some(annotations) = metadata.get("annotations").and_then(present) {
        check_annotations(annotations, &field(path, "annotations"), out);
    }
}

/// Which rule an object's name follows. Kubernetes validates most names as DNS subdomains, but
/// RBAC objects only as path segments, and their names routinely contain ':'
/// (`system:controller:...`); rejecting those would refuse perfectly normal ClusterRoles.
#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    PathSegment,
}

fn name_rule_for(manifest: &Map<String, Value>) -> NameRule {
    let group = manifest
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(|api_version| split_api_version(api_version).0.unwrap_or(""));
    let kind = manifest.get("kind").and_then(Value::as_str);
    let rbac_kinds = ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"];
    match (group, kind) {
        (Some("rbac.authorization.k8s.io"), Some(kind)) if rbac_kinds.contains(&kind) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

fn check_object_name(value: Option<&Value>, path: &str, rule: NameRule, out: &mut Vec<Violation>) {
    let name = match value {
        None | Some(Value::Null) => {
            push(
                out,
                path,
                "name is required: maestro does not support generateName, because it tracks every \
                 object by its name",
            );
            return;
        }
        Some(Value::String(name)) => name,
        Some(other) => {
            push(out, path, format!("name must be a string, found {}", describe(other)));
            return;
        }
    };
    match rule {
        NameRule::Subdomain => validate_name(name, path, out),
        NameRule::PathSegment => check_path_segment_name(name, path, out),
    }
}

/// Checks a consumer, bundle or object name: a DNS-1123 subdomain, because these names end up
/// in Kubernetes object names and URLs.
pub fn validate_name(name: &str, path: &str, out: &mut Vec<Violation>) {
    if let Some(reason) = subdomain_problem(name) {
        push(out, path, format!("name must be {SUBDOMAIN_RULE}, found {}: {reason}", quote(name)));
    }
}

fn check_path_segment_name(name: &str, path: &str, out: &mut Vec<Violation>) {
    let reason = if name.is_empty() {
        "it is empty".to_owned()
    } else if name == "." || name == ".." {
        "it is a relative path segment".to_owned()
    } else if let Some(c) = name.chars().find(|c| matches!(c, '/' | '%')) {
        format!("it contains {c:?}")
    } else if name.chars().count() > MAX_SUBDOMAIN {
        format!("it is longer than {MAX_SUBDOMAIN} characters")
    } else {
        return;
    };
    push(
        out,
        path,
        format!(
            "name must be a non-empty path segment of at most {MAX_SUBDOMAIN} characters, without '/' or '%' \
             and other than \".\" and \"..\", found {}: {reason}",
            quote(name)
        ),
    );
}

/// An empty namespace means "none" to Kubernetes, so it is accepted here too.
fn check_namespace(value: Option<&Value>, path: &str, out: &mut Vec<Violation>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(namespace)) => {
            if let Some(reason) = namespace_problem(namespace) {
                push(out, path, format!("namespace must be {LABEL_RULE}, found {}: {reason}", quote(namespace)));
            }
        }
        Some(other) => push(out, path, format!("namespace must be a string, found {}", describe(other))),
    }
}

fn namespace_problem(namespace: &str) -> Option<String> {
    if namespace.is_empty() { None } else { token_problem(namespace, MAX_LABEL, is_lower_alnum, &['-']) }
}

/// Checks a string-to-string map of Kubernetes labels; `null` means no labels.
pub fn validate_labels(labels: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(map) = as_string_map(labels, path, "labels", out) else {
        return;
    };
    for (key, value) in map {
        let value_path = field(path, key);
        check_key(key, &value_path, "label", out);
        match value {
            Value::String(text) => {
                if let Some(reason) = label_value_problem(text) {
                    push(
                        out,
                        &value_path,
                        format!("label value must be {LABEL_VALUE_RULE}, found {}: {reason}", quote(text)),
                    );
                }
            }
            other => push(out, &value_path, format!("label value must be a string, found {}", describe(other))),
        }
    }
}

/// Annotation values are free text, but must be strings: Kubernetes would refuse anything else.
fn check_annotations(annotations: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(map) = as_string_map(annotations, path, "annotations", out) else {
        return;
    };
    for (key, value) in map {
        let value_path = field(path, key);
        check_key(key, &value_path, "annotation", out);
        if !value.is_string() {
            push(
                out,
                &value_path,
                format!("annotation value must be a string (quote numbers and booleans), found {}", describe(value)),
            );
        }
    }
}

fn as_string_map<'a>(
    value: &'a Value,
    path: &str,
    what: &str,
    out: &mut Vec<Violation>,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        Value::Null => None,
        other => {
            push(
                out,
                path,
                format!("{what} must be an object mapping keys to string values, found {}", describe(other)),
            );
            None
        }
    }
}

fn check_key(key: &str, path: &str, what: &str, out: &mut Vec<Violation>) {
    if let Some(reason) = qualified_key_problem(key) {
        push(out, path, format!("{what} key must be {KEY_RULE}, found {}: {reason}", quote(key)));
    }
}

/// Label and annotation keys: `[prefix/]name`, the prefix a DNS subdomain.
fn qualified_key_problem(key: &str) -> Option<String> {
    let Some((prefix, name)) = key.split_once('/') else {
        return key_name_problem(key);
    };
    if prefix.is_empty() {
        return Some("the prefix before '/' is empty".to_owned());
    }
    if let Some(reason) = subdomain_problem(prefix) {
        return Some(format!("the prefix {} is not a DNS subdomain: {reason}", quote(prefix)));
    }
    if name.contains('/') {
        return Some("it contains more than one '/'".to_owned());
    }
    key_name_problem(name).map(|reason| format!("after the prefix, {reason}"))
}

fn key_name_problem(name: &str) -> Option<String> {
    token_problem(name, MAX_LABEL, |c| c.is_ascii_alphanumeric(), &['-', '_', '.'])
}

fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() { None } else { key_name_problem(value) }
}

/// Identity of a manifest, or `None` when its apiVersion, kind or name is missing or not a
/// non-empty string (such a manifest also fails validation, so it has no identity to compare).
pub fn object_key(manifest: &Value) -> Option<ObjectKey> {
    let api_version = non_empty_str(manifest.get("apiVersion"))?;
    let kind = non_empty_str(manifest.get("kind"))?;
    let metadata = manifest.get("metadata")?;
    let name = non_empty_str(metadata.get("name"))?;
    let namespace = non_empty_str(metadata.get("namespace")).map(str::to_owned);
    let (group, version) = split_api_version(api_version);
    Some(ObjectKey {
        group: group.unwrap_or("").to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
        namespace,
        name: name.to_owned(),
    })
}

/// Lower-case plural resource name for a kind, as Kubernetes names them (Deployment ->
/// deployments, NetworkPolicy -> networkpolicies, Ingress -> ingresses, Endpoints -> endpoints).
///
/// A guess: the true name is whatever the API's discovery (or a CRD's `plural`) says, and the hub
/// has no cluster to ask. English plural rules get built-in kinds and almost all CRDs right.
pub fn resource_for_kind(kind: &str) -> String {
    const ALREADY_PLURAL: &[&str] = &["endpoints"];
    let lower = kind.to_ascii_lowercase();
    if lower.is_empty() || ALREADY_PLURAL.contains(&lower.as_str()) {
        return lower;
    }
    if ["s", "x", "z", "ch", "sh"].iter().any(|end| lower.ends_with(end)) {
        return format!("{lower}es");
    }
    if let Some(stem) = lower.strip_suffix('y') {
        let after_vowel = stem.ends_with(['a', 'e', 'i', 'o', 'u']);
        if !after_vowel && !stem.is_empty() {
            return format!("{stem}ies");
        }
    }
    format!("{lower}s")
}

// ---------------------------------------------------------------------------------------------
// Manifest configs
// ---------------------------------------------------------------------------------------------

/// Checks one manifest config on its own. Whether it matches a manifest needs the whole bundle,
/// so that part is checked by `validate_bundle` only.
pub fn validate_manifest_config(config: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(object) = expect_object(config, path, "a manifest config", out) else {
        return;
    };
    check_unknown_fields(object, CONFIG_FIELDS, path, out);
    let identifier_path = field(path, "resourceIdentifier");
    match object.get("resourceIdentifier").and_then(present) {
        Some(identifier) => check_resource_identifier(identifier, &identifier_path, out),
        None => push(
            out,
            identifier_path,
            "resourceIdentifier is required: the group, resource, namespace and name of the \
             manifest this config applies to",
        ),
    }
    if let Some(rules) = object.get("feedbackRules").and_then(present) {
        check_feedback_rules(rules, &field(path, "feedbackRules"), out);
    }
    if let Some(strategy) = object.get("updateStrategy").and_then(present) {
        check_update_strategy(strategy, &field(path, "updateStrategy"), out);
    }
    if let Some(policy) = object.get("driftPolicy").and_then(present) {
        check_one_of(Some(policy), &field(path, "driftPolicy"), "driftPolicy", DRIFT_POLICIES, out);
    }
}

/// Shared by config identifiers and orphaning rules, which have the same four fields.
fn check_resource_identifier(value: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(object) = expect_object(value, path, "a resource identifier", out) else {
        return;
    };
    check_unknown_fields(object, IDENTIFIER_FIELDS, path, out);
    required_str(
        object.get("resource"),
        &field(path, "resource"),
        "resource",
        "a lower-case plural resource name such as \"deployments\"",
        out,
    );
    required_str(object.get("name"), &field(path, "name"), "name", "an object name, or \"*\" for any", out);
    for key in ["group", "namespace"] {
        if let Some(other) = object.get(key).filter(|v| !v.is_string() && !v.is_null()) {
            push(out, field(path, key), format!("{key} must be a string, found {}", describe(other)));
        }
    }
}

/// The parts of a resource identifier that select manifests.
#[derive(PartialEq, Eq, Hash)]
struct ResourceRef<'a> {
    group: &'a str,
    resource: &'a str,
    namespace: &'a str,
    name: &'a str,
}

impl<'a> ResourceRef<'a> {
    /// `None` when the identifier is malformed; that is already reported by the field checks.
    fn parse(identifier: &'a Value) -> Option<Self> {
        let optional = |key: &str| match identifier.get(key) {
            None | Some(Value::Null) => Some(""),
            Some(value) => value.as_str(),
        };
        Some(Self {
            group: optional("group")?,
            resource: non_empty_str(identifier.get("resource"))?,
            namespace: optional("namespace")?,
            name: non_empty_str(identifier.get("name"))?,
        })
    }

    /// OCM lets name and namespace use '*' wildcards, and resource be "*" for any resource.
    fn matches(&self, key: &ObjectKey) -> bool {
        self.group == key.group
            && (self.resource == "*" || self.resource == resource_for_kind(&key.kind))
            && wildcard_match(self.namespace, key.namespace.as_deref().unwrap_or(""))
            && wildcard_match(self.name, &key.name)
    }

    fn no_match_message(&self) -> String {
        format!(
            "matches no manifest in the bundle: none has group {}, resource {}, namespace {} and \
             name {}; resource is the lower-case plural of the kind (deployments for Deployment), \
             and group is empty for the core group",
            quote(self.group),
            quote(self.resource),
            quote(self.namespace),
            quote(self.name)
        )
    }
}

fn check_feedback_rules(value: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(rules) = expect_array(value, path, "feedbackRules", out) else {
        return;
    };
    let mut names = HashMap::new();
    for (i, rule) in rules.iter().enumerate() {
        check_feedback_rule(rule, &item(path, i), &mut names, out);
    }
}

/// `names` maps each JSONPaths name seen so far in this config to where it was first used:
/// the agent reports feedback values by name, so a repeated name would hide a value.
fn check_feedback_rule(rule: &Value, path: &str, names: &mut HashMap<String, String>, out: &mut Vec<Violation>) {
    let Some(object) = expect_object(rule, path, "a feedback rule", out) else {
        return;
    };
    check_unknown_fields(object, FEEDBACK_RULE_FIELDS, path, out);
    let rule_type = check_one_of(object.get("type"), &field(path, "type"), "type", FEEDBACK_TYPES, out);
    let json_paths_path = field(path, "jsonPaths");
    match (rule_type, object.get("jsonPaths").and_then(present)) {
        (Some(WELL_KNOWN_STATUS), Some(_)) => push(
            out,
            json_paths_path,
            "jsonPaths is only allowed with type JSONPaths; WellKnownStatus picks its fields itself",
        ),
        (Some(JSON_PATHS), None) => push(
            out,
            json_paths_path,
            "jsonPaths is required with type JSONPaths: a list of {\"name\", \"path\"} entries",
        ),
        (_, Some(json_paths)) => check_json_paths(json_paths, &json_paths_path, names, out),
        (_, None) => {}
    }
}

fn check_json_paths(value: &Value, path: &str, names: &mut HashMap<String, String>, out: &mut Vec<Violation>) {
    let Some(entries) = expect_array(value, path, "jsonPaths", out) else {
        return;
    };
    if entries.is_empty() {
        push(out, path, "jsonPaths must list at least one {\"name\", \"path\"} entry, found an empty list");
    }
    for (i, entry) in entries.iter().enumerate() {
        check_json_path(entry, &item(path, i), names, out);
    }
}

fn check_json_path(entry: &Value, path: &str, names: &mut HashMap<String, String>, out: &mut Vec<Violation>) {
    let Some(object) = expect_object(entry, path, "a jsonPaths entry", out) else {
        return;
    };
    check_unknown_fields(object, JSON_PATH_FIELDS, path, out);
    check_json_path_name(object.get("name"), &field(path, "name"), names, out);
    check_json_path_expression(object.get("path"), &field(path, "path"), out);
    if let Some(other) = object.get("version").filter(|v| !v.is_string() && !v.is_null()) {
        push(
            out,
            field(path, "version"),
            format!("version must be a string such as \"v1\", found {}", describe(other)),
        );
    }
}

fn check_json_path_name(
    value: Option<&Value>,
    path: &str,
    names: &mut HashMap<String, String>,
    out: &mut Vec<Violation>,
) {
    let Some(name) = required_str(value, path, "name", "a non-empty string", out) else {
        return;
    };
    if let Some(earlier) = names.get(name) {
        push(
            out,
            path,
            format!(
                "name {} is already used by {earlier}; names must be unique within a config's \
                 feedback rules",
                quote(name)
            ),
        );
    } else {
        names.insert(name.to_owned(), path.to_owned());
    }
}

fn check_json_path_expression(value: Option<&Value>, path: &str, out: &mut Vec<Violation>) {
    const EXPECTED: &str = "a JSONPath starting with '.', such as \".status.readyReplicas\"";
    if let Some(expression) = required_str(value, path, "path", EXPECTED, out)
        && !expression.starts_with('.')
    {
        push(out, path, format!("path must be {EXPECTED}, found {}", quote(expression)));
    }
}

fn check_update_strategy(value: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(object) = expect_object(value, path, "an update strategy", out) else {
        return;
    };
    check_unknown_fields(object, UPDATE_STRATEGY_FIELDS, path, out);
    let strategy = check_one_of(object.get("type"), &field(path, "type"), "type", UPDATE_STRATEGY_TYPES, out);
    let Some(options) = object.get("serverSideApply").and_then(present) else {
        return;
    };
    let options_path = field(path, "serverSideApply");
    if let Some(strategy) = strategy.filter(|s| *s != SERVER_SIDE_APPLY) {
        push(
            out,
            &options_path,
            format!("serverSideApply is only allowed with type ServerSideApply, found type {}", quote(strategy)),
        );
    }
    check_server_side_apply(options, &options_path, out);
}

fn check_server_side_apply(value: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(object) = expect_object(value, path, "serverSideApply options", out) else {
        return;
    };
    check_unknown_fields(object, SERVER_SIDE_APPLY_FIELDS, path, out);
    if let Some(manager) = object.get("fieldManager").and_then(present) {
        let manager_ok = manager.as_str().is_some_and(|m| !m.is_empty() && m.chars().count() <= MAX_FIELD_MANAGER);
        if !manager_ok {
            push(
                out,
                field(path, "fieldManager"),
                format!(
                    "fieldManager must be a non-empty string of at most {MAX_FIELD_MANAGER} \
                     characters, found {}",
                    describe(manager)
                ),
            );
        }
    }
    if let Some(force) = object.get("force").and_then(present).filter(|v| !v.is_boolean()) {
        push(out, field(path, "force"), format!("force must be true or false, found {}", describe(force)));
    }
}

// ---------------------------------------------------------------------------------------------
// Delete option
// ---------------------------------------------------------------------------------------------

/// Checks how the agent should delete a bundle's objects. The policy is required rather than
/// defaulted: a client that sends a delete option at all means to choose one.
pub fn validate_delete_option(option: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(object) = expect_object(option, path, "a delete option", out) else {
        return;
    };
    check_unknown_fields(object, DELETE_OPTION_FIELDS, path, out);
    let policy = check_one_of(
        object.get("propagationPolicy"),
        &field(path, "propagationPolicy"),
        "propagationPolicy",
        PROPAGATION_POLICIES,
        out,
    );
    let orphans_path = field(path, "selectivelyOrphans");
    let orphans = object.get("selectivelyOrphans").and_then(present);
    match (policy, orphans) {
        (Some(SELECTIVELY_ORPHAN), None) => push(
            out,
            &orphans_path,
            "selectivelyOrphans is required when propagationPolicy is SelectivelyOrphan: \
             list the objects to keep in orphaningRules",
        ),
        (Some(policy), Some(_)) if policy != SELECTIVELY_ORPHAN => push(
            out,
            &orphans_path,
            format!(
                "selectivelyOrphans is only allowed when propagationPolicy is SelectivelyOrphan, \
                 found {}",
                quote(policy)
            ),
        ),
        _ => {}
    }
    if let Some(orphans) = orphans {
        check_selectively_orphans(orphans, &orphans_path, out);
    }
}

/// An empty rule list is refused: SelectivelyOrphan that orphans nothing is Foreground in disguise.
fn check_selectively_orphans(value: &Value, path: &str, out: &mut Vec<Violation>) {
    let Some(object) = expect_object(value, path, "selectivelyOrphans", out) else {
        return;
    };
    check_unknown_fields(object, SELECTIVELY_ORPHANS_FIELDS, path, out);
    let rules_path = field(path, "orphaningRules");
    let Some(rules_value) = object.get("orphaningRules").and_then(present) else {
        push(
            out,
            rules_path,
            "orphaningRules is required: a list of {\"group\", \"resource\", \"namespace\", \"name\"} \
             entries naming the objects to keep",
        );
        return;
    };
    let Some(rules) = expect_array(rules_value, &rules_path, "orphaningRules", out) else {
        return;
    };
    if rules.is_empty() {
        push(
            out,
            &rules_path,
            "orphaningRules must name at least one object to keep, found an empty list; \
             use propagationPolicy Foreground to delete everything",
        );
    }
    for (i, rule) in rules.iter().enumerate() {
        check_resource_identifier(rule, &item(&rules_path, i), out);
    }
}

// ---------------------------------------------------------------------------------------------
// Shared checks
// ---------------------------------------------------------------------------------------------

fn push(out: &mut Vec<Violation>, field: impl Into<String>, message: impl Into<String>) {
    out.push(Violation { field: field.into(), message: message.into() });
}

/// `null` is how JSON clients (and YAML's empty value) say "not set", so it counts as absent.
fn present(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A required, non-empty string; `expected` describes what is allowed, for the message.
fn required_str<'a>(
    value: Option<&'a Value>,
    path: &str,
    what: &str,
    expected: &str,
    out: &mut Vec<Violation>,
) -> Option<&'a str> {
    match value {
        Some(Value::String(text)) if !text.is_empty() => Some(text),
        None | Some(Value::Null) => {
            push(out, path, format!("{what} is required: {expected}"));
            None
        }
        Some(other) => {
            push(out, path, format!("{what} must be {expected}, found {}", describe(other)));
            None
        }
    }
}

/// A required string from a closed set; returns it only when it is one of `allowed`.
fn check_one_of<'a>(
    value: Option<&'a Value>,
    path: &str,
    what: &str,
    allowed: &[&str],
    out: &mut Vec<Violation>,
) -> Option<&'a str> {
    let choices = allowed.join(", ");
    match value {
        Some(Value::String(text)) if allowed.contains(&text.as_str()) => Some(text),
        None | Some(Value::Null) => {
            push(out, path, format!("{what} is required: one of {choices}"));
            None
        }
        Some(other) => {
            let hint = other
                .as_str()
                .and_then(|text| suggestion(text, allowed))
                .map(|s| format!("; did you mean {}?", quote(s)))
                .unwrap_or_default();
            push(out, path, format!("{what} must be one of {choices}, found {}{hint}", describe(other)));
            None
        }
    }
}

fn expect_object<'a>(
    value: &'a Value,
    path: &str,
    what: &str,
    out: &mut Vec<Violation>,
) -> Option<&'a Map<String, Value>> {
    let object = value.as_object();
    if object.is_none() {
        push(out, path, format!("{what} must be a JSON object, found {}", describe(value)));
    }
    object
}

fn expect_array<'a>(value: &'a Value, path: &str, what: &str, out: &mut Vec<Violation>) -> Option<&'a Vec<Value>> {
    let array = value.as_array();
    if array.is_none() {
        push(out, path, format!("{what} must be a list, found {}", describe(value)));
    }
    array
}

/// Unknown keys are refused so that a typo (`fieldManger`) is reported instead of being ignored
/// while the client believes the option took effect.
fn check_unknown_fields(object: &Map<String, Value>, allowed: &[&str], path: &str, out: &mut Vec<Violation>) {
    for key in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
        let hint = suggestion(key, allowed).map(|s| format!("; did you mean {}?", quote(s))).unwrap_or_default();
        push(
            out,
            field(path, key),
            format!("unknown field {}; allowed fields are {}{hint}", quote(key), allowed.join(", ")),
        );
    }
}

/// The allowed word closest to a misspelt one, ignoring case, '_' and '-', when it is close enough
/// to be a likely typo (at most two edits).
fn suggestion<'a>(found: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let normalize = |s: &str| -> Vec<char> {
        s.chars().filter(|c| !matches!(c, '_' | '-')).map(|c| c.to_ascii_lowercase()).collect()
    };
    let found = normalize(found);
    allowed
        .iter()
        .map(|candidate| (edit_distance(&found, &normalize(candidate)), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, one row at a time.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// OCM-style glob: '*' stands for any run of characters, everything else matches itself.
fn wildcard_match(pattern: &str, text: &str) -> bool {
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

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// The shape shared by DNS labels and label names and values: bounded length, letters or digits
/// at both ends, a few punctuation characters inside. Returns the first problem, phrased as
/// "it ...", so callers can put it after their rule.
fn token_problem(s: &str, max: usize, is_alnum: fn(char) -> bool, inner: &[char]) -> Option<String> {
    let length = s.chars().count();
    if length == 0 {
        return Some("it is empty".to_owned());
    }
    if length > max {
        return Some(format!("it is {length} characters long"));
    }
    if let Some(c) = s.chars().find(|c| !is_alnum(*c) && !inner.contains(c)) {
        let hint = if c.is_ascii_uppercase() && is_alnum(c.to_ascii_lowercase()) {
            " (upper-case letters are not allowed)"
        } else {
            ""
        };
        return Some(format!("it contains {c:?}{hint}"));
    }
    if let Some(c) = s.chars().next().filter(|c| !is_alnum(*c)) {
        return Some(format!("it starts with {c:?}"));
    }
    if let Some(c) = s.chars().last().filter(|c| !is_alnum(*c)) {
        return Some(format!("it ends with {c:?}"));
    }
    None
}

/// DNS-1123 subdomain: a token over `[a-z0-9.-]` where every dot-separated part also starts and
/// ends with a letter or digit.
fn subdomain_problem(s: &str) -> Option<String> {
    token_problem(s, MAX_SUBDOMAIN, is_lower_alnum, &['-', '.']).or_else(|| {
        let chars: Vec<char> = s.chars().collect();
        let bad_pair = |pair: &&[char]| match pair {
            ['.', next] => !is_lower_alnum(*next),
            [previous, '.'] => !is_lower_alnum(*previous),
            _ => false,
        };
        chars.windows(2).find(bad_pair).map(|pair| {
            format!(
                "it contains \"{}{}\", but each part between dots must start and end with a \
                 letter or digit",
                pair[0], pair[1]
            )
        })
    })
}

/// Path of `key` inside the object at `path`; keys that are not plain identifiers are quoted in
/// brackets so that dots and slashes in label keys cannot be mistaken for nesting.
fn field(path: &str, key: &str) -> String {
    let plain = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (plain, path.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{path}.{key}"),
        (false, _) => format!("{path}[{}]", Value::String(key.to_owned())),
    }
}

fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// A value as a person would name it in a message: strings quoted (and cut short if long),
/// anything else by its JSON type.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(text) => quote(text),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// Quotes a string as JSON, cutting it at 64 characters so one huge value cannot flood a response.
fn quote(text: &str) -> String {
    const SHOWN: usize = 64;
    let length = text.chars().count();
    if length <= SHOWN {
        return Value::String(text.to_owned()).to_string();
    }
    let head: String = text.chars().take(SHOWN).collect();
    format!("{}... ({length} characters)", Value::String(head))
}

fn describe_bytes(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{bytes} bytes ({} MiB)", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{bytes} bytes ({} KiB)", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Counts bytes without keeping them, so measuring a large manifest allocates nothing.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Size of the compact JSON form, which is how manifests are stored and shipped.
fn serialized_len(value: &Value) -> usize {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        // A `Value` always serializes; if that ever changed, oversized is the safe answer.
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // ---- helpers -------------------------------------------------------------------------------

    /// The conformance sample: what the e2e upgrade test sends.
    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "maestro-e2e-upgrade-test",
                "namespace": "default",
                "labels": {"app": "maestro-e2e-upgrade-test"}
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "maestro-e2e-upgrade-test"}},
                "template": {
                    "metadata": {"labels": {"app": "maestro-e2e-upgrade-test"}},
                    "spec": {"containers": [{"name": "nginx", "image": "quay.io/nginx/nginx-unprivileged"}]}
                }
            }
        })
    }

    fn sample_config() -> Value {
        json!({
            "resourceIdentifier": {
                "group": "apps", "resource": "deployments",
                "name": "maestro-e2e-upgrade-test", "namespace": "default"
            },
            "feedbackRules": [
                {"type": "JSONPaths", "jsonPaths": [{"name": "status", "path": ".status"}]},
                {"type": "WellKnownStatus"}
            ],
            "updateStrategy": {
                "type": "ServerSideApply",
                "serverSideApply": {"fieldManager": "maestro-agent", "force": true}
            }
        })
    }

    fn config_map(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}})
    }

    /// Violations of one manifest validated at the bundle API's first position.
    fn manifest_violations(manifest: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        validate_manifest(manifest, "manifests[0]", &Limits::default(), &mut out);
        out
    }

    /// The deployment with one field replaced; `pointer` is a JSON pointer to an existing parent.
    fn deployment_with(pointer: &str, key: &str, value: Value) -> Value {
        let mut manifest = deployment();
        if let Some(Value::Object(parent)) = manifest.pointer_mut(pointer) {
            parent.insert(key.to_owned(), value);
        }
        manifest
    }

    fn deployment_without(pointer: &str, key: &str) -> Value {
        let mut manifest = deployment();
        if let Some(Value::Object(parent)) = manifest.pointer_mut(pointer) {
            parent.remove(key);
        }
        manifest
    }

    fn config_violations(config: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        validate_manifest_config(config, "manifest_configs[0]", &mut out);
        out
    }

    fn delete_option_violations(option: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        validate_delete_option(option, "delete_option", &mut out);
        out
    }

    fn fields(violations: &[Violation]) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    fn assert_valid(violations: &[Violation]) {
        assert!(violations.is_empty(), "expected no violations, got {violations:#?}");
    }

    /// Exactly one violation, at `field`, whose message contains `fragment`.
    fn assert_single(violations: &[Violation], field: &str, fragment: &str) {
        assert_eq!(fields(violations), [field], "violations: {violations:#?}");
        assert!(
            violations[0].message.contains(fragment),
            "message {:?} should contain {fragment:?}",
            violations[0].message
        );
    }

    // ---- conformance ---------------------------------------------------------------------------

    #[test]
    fn conformance_sample_bundle_passes_cleanly() {
        let violations = validate_bundle(
            &[deployment()],
            &[sample_config()],
            Some(&json!({"propagationPolicy": "Foreground"})),
            &Limits::default(),
        );
        assert_valid(&violations);
    }

    #[test]
    fn default_limits_are_200_manifests_512_kib_and_2_mib() {
        let limits = Limits::default();
        assert_eq!(limits.max_manifests, 200);
        assert_eq!(limits.max_manifest_bytes, 512 * 1024);
        assert_eq!(limits.max_bundle_bytes, 2 * 1024 * 1024);
    }

    // ---- manifests -----------------------------------------------------------------------------

    #[test]
    fn manifest_must_be_a_json_object() {
        for not_object in [json!([]), json!("Deployment"), json!(null), json!(3)] {
            assert_single(&manifest_violations(&not_object), "manifests[0]", "must be a JSON object");
        }
    }

    #[test]
    fn api_version_is_version_or_group_slash_version() {
        for valid in [
            "v1",
            "apps/v1",
            "cert-manager.io/v1",
            "networking.istio.io/v1alpha3",
            "autoscaling/v2beta2",
            "example.com/v1-preview",
        ] {
            assert_valid(&manifest_violations(&deployment_with("", "apiVersion", json!(valid))));
        }
        let field = "manifests[0].apiVersion";
        let cases = [
            (json!(""), "must be a string such as"),
            (json!(1), "found the number 1"),
            (json!("apps"), "\"apps\" does not start with 'v' and a digit"),
            (json!("apps/V1"), "does not start with 'v'"),
            (json!("Apps/v1"), "group in apiVersion must be a DNS subdomain"),
            (json!("/v1"), "group in apiVersion"),
            (json!("apps/"), "the version is empty"),
            (json!("apps/v1/x"), "a single '/'"),
        ];
        for (invalid, fragment) in cases {
            assert_single(&manifest_violations(&deployment_with("", "apiVersion", invalid)), field, fragment);
        }
        assert_single(&manifest_violations(&deployment_without("", "apiVersion")), field, "apiVersion is required");
    }

    #[test]
    fn kind_starts_upper_case_is_alphanumeric_and_short() {
        for valid in ["Deployment", "ConfigMap", "HTTPRoute", "V1Thing"] {
            assert_valid(&manifest_violations(&deployment_with("", "kind", json!(valid))));
        }
        let field = "manifests[0].kind";
        let violations = manifest_violations(&deployment_with("", "kind", json!("deployment")));
        assert_eq!(violations[0].message, "kind must start with an upper-case letter, found \"deployment\"");
        let cases = [
            (json!("Config-Map"), "only letters and digits"),
            (json!("Déploiement"), "only letters and digits"),
            (json!(format!("A{}", "b".repeat(63))), "at most 63 characters"),
            (json!(""), "must be a string such as \"Deployment\""),
            (json!(true), "found the boolean true"),
        ];
        for (invalid, fragment) in cases {
            assert_single(&manifest_violations(&deployment_with("", "kind", invalid)), field, fragment);
        }
        assert_single(&manifest_violations(&deployment_without("", "kind")), field, "kind is required");
    }

    #[test]
    fn metadata_must_be_an_object() {
        assert_single(
            &manifest_violations(&deployment_without("", "metadata")),
            "manifests[0].metadata",
            "metadata is required",
        );
        assert_single(
            &manifest_violations(&deployment_with("", "metadata", json!("web"))),
            "manifests[0].metadata",
            "must be an object, found \"web\"",
        );
    }

    #[test]
    fn name_is_required_and_generate_name_is_not_supported() {
        let generated = deployment_with("/metadata", "generateName", json!("web-"));
        assert_single(&manifest_violations(&generated), "manifests[0].metadata.generateName", "not supported");

        let mut only_generated = deployment_without("/metadata", "name");
        if let Some(Value::Object(metadata)) = only_generated.pointer_mut("/metadata") {
            metadata.insert("generateName".into(), json!("web-"));
        }
        assert_eq!(
            fields(&manifest_violations(&only_generated)),
            ["manifests[0].metadata.name", "manifests[0].metadata.generateName"]
        );
        assert_single(
            &manifest_violations(&deployment_without("/metadata", "name")),
            "manifests[0].metadata.name",
            "does not support generateName",
        );
    }

    #[test]
    fn name_is_a_dns_1123_subdomain() {
        for valid in ["web", "web-1", "0day", "web.example.com", &"a".repeat(253)] {
            assert_valid(&manifest_violations(&deployment_with("/metadata", "name", json!(valid))));
        }
        let cases = [
            ("Web", "'W' (upper-case letters are not allowed)"),
            ("web_1", "it contains '_'"),
            ("-web", "it starts with '-'"),
            ("web.", "it ends with '.'"),
            ("a..b", "\"..\""),
            ("a.-b", "\".-\""),
            ("a-.b", "\"-.\""),
            ("", "it is empty"),
        ];
        for (invalid, fragment) in cases {
            assert_single(
                &manifest_violations(&deployment_with("/metadata", "name", json!(invalid))),
                "manifests[0].metadata.name",
                fragment,
            );
        }
        let too_long = deployment_with("/metadata", "name", json!("a".repeat(254)));
        assert_single(&manifest_violations(&too_long), "manifests[0].metadata.name", "254 characters long");
    }

    #[test]
    fn rbac_names_may_contain_colons_but_not_slashes() {
        let role = |name: &str| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}});
        assert_valid(&manifest_violations(&role("system:controller:web")));
        assert_single(&manifest_violations(&role("a/b")), "manifests[0].metadata.name", "'/'");
        assert_single(&manifest_violations(&role("..")), "manifests[0].metadata.name", "relative path segment");
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a:b"}});
        assert_single(&manifest_violations(&config_map), "manifests[0].metadata.name", "contains ':'");
    }

    #[test]
    fn validate_name_checks_consumer_and_bundle_names() {
        let mut out = Vec::new();
        validate_name("cluster-1", "name", &mut out);
        assert_valid(&out);
        validate_name("Cluster 1", "name", &mut out);
        assert_single(&out, "name", "DNS-1123 subdomain");
    }

    #[test]
    fn namespace_is_an_optional_dns_1123_label() {
        assert_valid(&manifest_violations(&deployment_without("/metadata", "namespace")));
        for valid in [json!("kube-system"), json!(""), json!(null), json!("a".repeat(63))] {
            assert_valid(&manifest_violations(&deployment_with("/metadata", "namespace", valid)));
        }
        let field = "manifests[0].metadata.namespace";
        let cases = [
            (json!("Default"), "upper-case"),
            (json!("team.a"), "it contains '.'"),
            (json!("a".repeat(64)), "64 characters long"),
            (json!(7), "must be a string"),
        ];
        for (invalid, fragment) in cases {
            assert_single(&manifest_violations(&deployment_with("/metadata", "namespace", invalid)), field, fragment);
        }
    }

    #[test]
    fn label_keys_are_optional_prefix_and_name() {
        let valid = json!({
            "app": "web", "app.kubernetes.io/name": "web", "example.com/Tier_1.x": "a",
            &"k".repeat(63): "v"
        });
        let mut out = Vec::new();
        validate_labels(&valid, "labels", &mut out);
        assert_valid(&out);

        let cases = [
            ("bad key", "it contains ' '"),
            ("/name", "prefix before '/' is empty"),
            ("Example.com/name", "prefix \"Example.com\" is not a DNS subdomain"),
            ("a/b/c", "more than one '/'"),
            ("example.com/", "after the prefix, it is empty"),
            ("_app", "it starts with '_'"),
            ("app.", "it ends with '.'"),
        ];
        for (key, fragment) in cases {
            let mut out = Vec::new();
            validate_labels(&json!({key: "v"}), "labels", &mut out);
            assert_single(&out, &field("labels", key), fragment);
        }
        let mut out = Vec::new();
        validate_labels(&json!({"k".repeat(64): "v"}), "labels", &mut out);
        assert_single(&out, &field("labels", &"k".repeat(64)), "64 characters long");
    }

    #[test]
    fn label_values_are_short_strings_or_empty() {
        let mut out = Vec::new();
        validate_labels(&json!({"a": "", "b": "v1.2_rc-3", "c": "x".repeat(63)}), "labels", &mut out);
        assert_valid(&out);
        let cases = [
            (json!("has space"), "it contains ' '"),
            (json!("-v"), "it starts with '-'"),
            (json!("x".repeat(64)), "64 characters long"),
            (json!(1), "must be a string, found the number 1"),
            (json!(null), "must be a string, found null"),
        ];
        for (value, fragment) in cases {
            let mut out = Vec::new();
            validate_labels(&json!({"app": value}), "labels", &mut out);
            assert_single(&out, "labels.app", fragment);
        }
    }

    #[test]
    fn labels_must_be_a_map_and_null_means_none() {
        let mut out = Vec::new();
        validate_labels(&json!(null), "labels", &mut out);
        assert_valid(&out);
        validate_labels(&json!(["app=web"]), "labels", &mut out);
        assert_single(&out, "labels", "must be an object mapping keys to string values, found a list");
        let in_manifest = deployment_with("/metadata", "labels", json!({"app": 1}));
        assert_single(&manifest_violations(&in_manifest), "manifests[0].metadata.labels.app", "must be a string");
    }

    #[test]
    fn annotation_values_are_strings_and_keys_follow_label_rules() {
        let valid = json!({"kubernetes.io/description": "any text at all, even: spaces!", "note": ""});
        assert_valid(&manifest_violations(&deployment_with("/metadata", "annotations", valid)));

        let numeric = deployment_with("/metadata", "annotations", json!({"replicas": 3}));
        assert_single(&manifest_violations(&numeric), "manifests[0].metadata.annotations.replicas", "must be a string");
        let bad_key = deployment_with("/metadata", "annotations", json!({"bad key": "x"}));
        assert_single(
            &manifest_violations(&bad_key),
            "manifests[0].metadata.annotations[\"bad key\"]",
            "annotation key must be",
        );
        let not_map = deployment_with("/metadata", "annotations", json!("x"));
        assert_single(&manifest_violations(&not_map), "manifests[0].metadata.annotations", "must be an object");
    }

    #[test]
    fn map_keys_that_are_not_identifiers_are_quoted_in_paths() {
        assert_eq!(field("m.labels", "app"), "m.labels.app");
        assert_eq!(field("m.labels", "app.kubernetes.io/name"), "m.labels[\"app.kubernetes.io/name\"]");
        assert_eq!(field("", "metadata"), "metadata");
        let mut out = Vec::new();
        validate_manifest(&deployment_without("/metadata", "name"), "", &Limits::default(), &mut out);
        assert_eq!(fields(&out), ["metadata.name"]);
    }

    #[test]
    fn manifest_size_is_limited_and_the_message_names_size_and_limit() {
        let limits = Limits { max_manifest_bytes: 100, ..Limits::default() };
        let manifest = deployment();
        let size = serde_json::to_vec(&manifest).map(|bytes| bytes.len()).unwrap_or_default();
        let mut out = Vec::new();
        validate_manifest(&manifest, "manifests[0]", &limits, &mut out);
        assert_single(&out, "manifests[0]", &format!("{size} bytes as JSON, more than the limit of 100 bytes"));

        let exact = Limits { max_manifest_bytes: size, ..Limits::default() };
        let mut out = Vec::new();
        validate_manifest(&manifest, "manifests[0]", &exact, &mut out);
        assert_valid(&out);
        assert_eq!(describe_bytes(512 * 1024), "524288 bytes (512 KiB)");
    }

    // ---- bundles -------------------------------------------------------------------------------

    #[test]
    fn bundle_needs_at_least_one_manifest() {
        let violations = validate_bundle(&[], &[], None, &Limits::default());
        assert_single(&violations, "manifests", "at least one manifest");
    }

    #[test]
    fn bundle_holds_at_most_max_manifests() {
        let limits = Limits { max_manifests: 2, ..Limits::default() };
        let manifests: Vec<Value> = ["a", "b", "c"].into_iter().map(config_map).collect();
        assert_single(&validate_bundle(&manifests, &[], None, &limits), "manifests", "at most 2 manifests, found 3");
        assert_valid(&validate_bundle(&manifests[..2], &[], None, &limits));
    }

    #[test]
    fn bundle_total_size_is_limited() {
        let manifests: Vec<Value> = ["a", "b"].into_iter().map(config_map).collect();
        let one = serialized_len(&manifests[0]);
        let limits = Limits { max_bundle_bytes: one * 2 - 1, ..Limits::default() };
        assert_single(&validate_bundle(&manifests, &[], None, &limits), "manifests", "more than the bundle limit");
        let enough = Limits { max_bundle_bytes: one * 2, ..Limits::default() };
        assert_valid(&validate_bundle(&manifests, &[], None, &enough));
    }

    #[test]
    fn duplicate_manifests_are_reported_on_the_later_one() {
        let mut newer_version = deployment();
        newer_version["apiVersion"] = json!("apps/v1beta2");
        let manifests = [deployment(), config_map("web"), newer_version];
        let violations = validate_bundle(&manifests, &[], None, &Limits::default());
        assert_single(&violations, "manifests[2]", "duplicates manifests[0]");
        assert!(violations[0].message.contains("Deployment.apps default/maestro-e2e-upgrade-test"));

        let mut other_namespace = config_map("web");
        other_namespace["metadata"]["namespace"] = json!("other");
        let mut cluster_scoped = config_map("web");
        cluster_scoped["metadata"] = json!({"name": "web"});
        let distinct = [config_map("web"), other_namespace, cluster_scoped, config_map("web2")];
        assert_valid(&validate_bundle(&distinct, &[], None, &Limits::default()));
    }

    #[test]
    fn object_key_identifies_group_version_kind_namespace_and_name() {
        let key = object_key(&deployment());
        assert_eq!(
            key,
            Some(ObjectKey {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
                namespace: Some("default".into()),
                name: "maestro-e2e-upgrade-test".into(),
            })
        );
        let core = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "namespace": ""}});
        let key = object_key(&core);
        assert_eq!(key.as_ref().map(|k| (k.group.as_str(), k.namespace.clone())), Some(("", None)));
        assert_eq!(key.map(|k| k.to_string()).as_deref(), Some("Namespace team"));
        assert_eq!(object_key(&deployment_without("/metadata", "name")), None);
        assert_eq!(object_key(&json!("x")), None);
    }

    #[test]
    fn resource_for_kind_guesses_the_plural_resource_name() {
        let cases = [
            ("Deployment", "deployments"),
            ("ConfigMap", "configmaps"),
            ("NetworkPolicy", "networkpolicies"),
            ("Ingress", "ingresses"),
            ("IngressClass", "ingressclasses"),
            ("Endpoints", "endpoints"),
            ("EndpointSlice", "endpointslices"),
            ("Gateway", "gateways"),
            ("Prometheus", "prometheuses"),
            ("Mesh", "meshes"),
            ("Service", "services"),
        ];
        for (kind, resource) in cases {
            assert_eq!(resource_for_kind(kind), resource, "kind {kind}");
        }
    }

    // ---- manifest configs ----------------------------------------------------------------------

    #[test]
    fn config_resource_identifier_needs_resource_and_name() {
        assert_valid(&config_violations(&sample_config()));
        let core = json!({"resourceIdentifier": {"resource": "configmaps", "name": "web"}});
        assert_valid(&config_violations(&core));

        assert_single(&config_violations(&json!({})), "manifest_configs[0].resourceIdentifier", "is required");
        let cases = [
            (json!({"name": "web"}), "manifest_configs[0].resourceIdentifier.resource", "resource is required"),
            (json!({"resource": "pods", "name": ""}), "manifest_configs[0].resourceIdentifier.name", "found \"\""),
            (
                json!({"resource": "pods", "name": "w", "group": 1}),
                "manifest_configs[0].resourceIdentifier.group",
                "must be a string",
            ),
            (
                json!({"resource": "pods", "name": "w", "namespace": []}),
                "manifest_configs[0].resourceIdentifier.namespace",
                "must be a string",
            ),
            (json!("pods/web"), "manifest_configs[0].resourceIdentifier", "must be a JSON object"),
        ];
        for (identifier, field, fragment) in cases {
            assert_single(&config_violations(&json!({"resourceIdentifier": identifier})), field, fragment);
        }
        assert_single(&config_violations(&json!(1)), "manifest_configs[0]", "must be a JSON object");
    }

    #[test]
    fn config_must_match_a_manifest_of_the_bundle() {
        let check = |identifier: Value| {
            let config = json!({"resourceIdentifier": identifier});
            validate_bundle(&[deployment(), config_map("settings")], &[config], None, &Limits::default())
        };
        let field = "manifest_configs[0].resourceIdentifier";
        for matching in [
            json!({"group": "apps", "resource": "deployments", "namespace": "default", "name": "maestro-e2e-upgrade-test"}),
            json!({"resource": "configmaps", "namespace": "default", "name": "settings"}),
            json!({"group": "apps", "resource": "deployments", "namespace": "*", "name": "maestro-*"}),
            json!({"group": "", "resource": "*", "namespace": "default", "name": "*"}),
        ] {
            assert_valid(&check(matching));
        }
        for mismatch in [
            json!({"group": "apps", "resource": "deployment", "namespace": "default", "name": "maestro-e2e-upgrade-test"}),
            json!({"resource": "deployments", "namespace": "default", "name": "maestro-e2e-upgrade-test"}),
            json!({"group": "apps", "resource": "deployments", "name": "maestro-e2e-upgrade-test"}),
            json!({"resource": "configmaps", "namespace": "default", "name": "other-*"}),
        ] {
            assert_single(&check(mismatch), field, "matches no manifest in the bundle");
        }
    }

    #[test]
    fn each_object_is_configured_at_most_once() {
        let violations =
            validate_bundle(&[deployment()], &[sample_config(), sample_config()], None, &Limits::default());
        assert_single(
            &violations,
            "manifest_configs[1].resourceIdentifier",
            "duplicates the resourceIdentifier of manifest_configs[0]",
        );
    }

    #[test]
    fn feedback_rule_type_is_json_paths_or_well_known_status() {
        let with_rules =
            |rules: Value| json!({"resourceIdentifier": {"resource": "pods", "name": "w"}, "feedbackRules": rules});
        assert_valid(&config_violations(&with_rules(json!([{"type": "WellKnownStatus"}]))));
        let cases = [
            (
                json!([{"type": "jsonpaths", "jsonPaths": [{"name": "a", "path": ".a"}]}]),
                "manifest_configs[0].feedbackRules[0].type",
                "did you mean \"JSONPaths\"?",
            ),
            (
                json!([{}]),
                "manifest_configs[0].feedbackRules[0].type",
                "type is required: one of JSONPaths, WellKnownStatus",
            ),
            (
                json!([{"type": "WellKnownStatus", "jsonPaths": [{"name": "a", "path": ".a"}]}]),
                "manifest_configs[0].feedbackRules[0].jsonPaths",
                "only allowed with type JSONPaths",
            ),
            (json!({"type": "WellKnownStatus"}), "manifest_configs[0].feedbackRules", "must be a list"),
        ];
        for (rules, field, fragment) in cases {
            assert_single(&config_violations(&with_rules(rules)), field, fragment);
        }
    }

    #[test]
    fn json_paths_rules_need_unique_names_and_dotted_paths() {
        let with_paths = |paths: Value| {
            json!({
                "resourceIdentifier": {"resource": "pods", "name": "w"},
                "feedbackRules": [{"type": "JSONPaths", "jsonPaths": paths}]
            })
        };
        assert_valid(&config_violations(&with_paths(json!([
            {"name": "ready", "path": ".status.readyReplicas"},
            {"name": "replicas", "path": ".spec.replicas", "version": "v1"}
        ]))));
        let base = "manifest_configs[0].feedbackRules[0].jsonPaths";
        let cases = [
            (json!([]), base.to_owned(), "at least one"),
            (json!([{"path": ".a"}]), format!("{base}[0].name"), "name is required"),
            (json!([{"name": "a", "path": "status"}]), format!("{base}[0].path"), "starting with '.', such as"),
            (json!([{"name": "a"}]), format!("{base}[0].path"), "path is required"),
            (json!([{"name": "a", "path": ".a", "version": 1}]), format!("{base}[0].version"), "must be a string"),
            (json!(["name=.a"]), format!("{base}[0]"), "must be a JSON object"),
        ];
        for (paths, field, fragment) in cases {
            assert_single(&config_violations(&with_paths(paths)), &field, fragment);
        }
        let config =
            json!({"resourceIdentifier": {"resource": "pods", "name": "w"}, "feedbackRules": [{"type": "JSONPaths"}]});
        assert_single(
            &config_violations(&config),
            "manifest_configs[0].feedbackRules[0].jsonPaths",
            "jsonPaths is required",
        );

        let repeated_across_rules = json!({
            "resourceIdentifier": {"resource": "pods", "name": "w"},
            "feedbackRules": [
                {"type": "JSONPaths", "jsonPaths": [{"name": "a", "path": ".a"}]},
                {"type": "JSONPaths", "jsonPaths": [{"name": "a", "path": ".b"}]}
            ]
        });
        assert_single(
            &config_violations(&repeated_across_rules),
            "manifest_configs[0].feedbackRules[1].jsonPaths[0].name",
            "already used by manifest_configs[0].feedbackRules[0].jsonPaths[0].name",
        );
    }

    #[test]
    fn update_strategy_type_is_one_of_four() {
        let with_strategy = |strategy: Value| json!({"resourceIdentifier": {"resource": "pods", "name": "w"}, "updateStrategy": strategy});
        for valid in ["ServerSideApply", "Update", "CreateOnly", "ReadOnly"] {
            assert_valid(&config_violations(&with_strategy(json!({"type": valid}))));
        }
        let field = "manifest_configs[0].updateStrategy.type";
        assert_single(
            &config_violations(&with_strategy(json!({"type": "Replace"}))),
            field,
            "one of ServerSideApply, Update, CreateOnly, ReadOnly, found \"Replace\"",
        );
        assert_single(&config_violations(&with_strategy(json!({}))), field, "type is required");
        assert_single(
            &config_violations(&with_strategy(json!("Update"))),
            "manifest_configs[0].updateStrategy",
            "must be a JSON object",
        );
    }

    #[test]
    fn drift_policy_is_correct_or_report_only() {
        let with_policy =
            |policy: Value| json!({"resourceIdentifier": {"resource": "pods", "name": "w"}, "driftPolicy": policy});
        for valid in ["Correct", "ReportOnly"] {
            assert_valid(&config_violations(&with_policy(json!(valid))));
        }
        assert_single(
            &config_violations(&with_policy(json!("Ignore"))),
            "manifest_configs[0].driftPolicy",
            "one of Correct, ReportOnly, found \"Ignore\"",
        );
    }

    #[test]
    fn server_side_apply_options_only_with_server_side_apply() {
        let with_options = |strategy_type: &str, options: Value| {
            json!({
                "resourceIdentifier": {"resource": "pods", "name": "w"},
                "updateStrategy": {"type": strategy_type, "serverSideApply": options}
            })
        };
        assert_valid(&config_violations(&with_options("ServerSideApply", json!({}))));
        assert_valid(&config_violations(&with_options(
            "ServerSideApply",
            json!({"fieldManager": "m".repeat(128), "force": false}),
        )));
        let base = "manifest_configs[0].updateStrategy.serverSideApply";
        assert_single(
            &config_violations(&with_options("Update", json!({"force": true}))),
            base,
            "only allowed with type ServerSideApply, found type \"Update\"",
        );
        let cases = [
            (json!({"fieldManager": ""}), format!("{base}.fieldManager"), "non-empty string of at most 128"),
            (json!({"fieldManager": "m".repeat(129)}), format!("{base}.fieldManager"), "(129 characters)"),
            (json!({"fieldManager": 5}), format!("{base}.fieldManager"), "found the number 5"),
            (json!({"force": "yes"}), format!("{base}.force"), "true or false, found \"yes\""),
        ];
        for (options, field, fragment) in cases {
            assert_single(&config_violations(&with_options("ServerSideApply", options)), &field, fragment);
        }
    }

    #[test]
    fn unknown_keys_in_configs_are_violations() {
        let mut config = sample_config();
        config["updateStrategy"]["serverSideApply"]["fieldManger"] = json!("x");
        config["feedbackRule"] = json!([]);
        config["resourceIdentifier"]["kind"] = json!("Deployment");
        let violations = config_violations(&config);
        assert_eq!(
            fields(&violations),
            [
                "manifest_configs[0].feedbackRule",
                "manifest_configs[0].resourceIdentifier.kind",
                "manifest_configs[0].updateStrategy.serverSideApply.fieldManger",
            ]
        );
        assert!(violations[0].message.contains("did you mean \"feedbackRules\"?"));
        assert!(violations[1].message.contains("allowed fields are group, resource, name, namespace"));
        assert!(violations[2].message.contains("did you mean \"fieldManager\"?"));

        let mut snake = sample_config();
        snake["update_strategy"] = json!({"type": "Update"});
        assert!(config_violations(&snake)[0].message.contains("did you mean \"updateStrategy\"?"));
    }

    // ---- delete option -------------------------------------------------------------------------

    #[test]
    fn delete_option_policy_is_foreground_orphan_or_selectively_orphan() {
        for valid in ["Foreground", "Orphan"] {
            assert_valid(&delete_option_violations(&json!({"propagationPolicy": valid})));
        }
        let field = "delete_option.propagationPolicy";
        assert_single(
            &delete_option_violations(&json!({"propagationPolicy": "Background"})),
            field,
            "one of Foreground, Orphan, SelectivelyOrphan",
        );
        assert_single(&delete_option_violations(&json!({})), field, "is required");
        assert_single(&delete_option_violations(&json!("Orphan")), "delete_option", "must be a JSON object");
        assert_single(
            &delete_option_violations(&json!({"propagationPolicy": "Orphan", "gracePeriod": 5})),
            "delete_option.gracePeriod",
            "unknown field",
        );
    }

    #[test]
    fn selectively_orphans_goes_with_selectively_orphan_only() {
        let rules =
            json!({"orphaningRules": [{"group": "", "resource": "configmaps", "name": "x", "namespace": "ns"}]});
        assert_valid(&delete_option_violations(
            &json!({"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": rules}),
        ));
        let field = "delete_option.selectivelyOrphans";
        assert_single(
            &delete_option_violations(&json!({"propagationPolicy": "SelectivelyOrphan"})),
            field,
            "required when propagationPolicy is SelectivelyOrphan",
        );
        assert_single(
            &delete_option_violations(&json!({"propagationPolicy": "Orphan", "selectivelyOrphans": rules})),
            field,
            "only allowed when propagationPolicy is SelectivelyOrphan, found \"Orphan\"",
        );
    }

    #[test]
    fn orphaning_rules_need_resource_and_name() {
        let with_rules = |rules: Value| json!({"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": {"orphaningRules": rules}});
        let base = "delete_option.selectivelyOrphans.orphaningRules";
        let cases = [
            (json!([]), base.to_owned(), "at least one object"),
            (json!({}), base.to_owned(), "must be a list"),
            (json!([{"name": "x"}]), format!("{base}[0].resource"), "resource is required"),
            (json!([{"resource": "configmaps"}]), format!("{base}[0].name"), "name is required"),
            (
                json!([{"resource": "configmaps", "name": "x", "kind": "ConfigMap"}]),
                format!("{base}[0].kind"),
                "unknown field",
            ),
        ];
        for (rules, field, fragment) in cases {
            assert_single(&delete_option_violations(&with_rules(rules)), &field, fragment);
        }
        let no_rules = json!({"propagationPolicy": "SelectivelyOrphan", "selectivelyOrphans": {}});
        assert_single(&delete_option_violations(&no_rules), base, "orphaningRules is required");
    }

    #[test]
    fn null_delete_option_counts_as_none() {
        assert_valid(&validate_bundle(&[deployment()], &[], Some(&Value::Null), &Limits::default()));
    }

    // ---- reporting -----------------------------------------------------------------------------

    #[test]
    fn all_violations_are_collected_at_once() {
        let broken = json!({
            "apiVersion": "apps",
            "kind": "deployment",
            "metadata": {"namespace": "Default", "labels": {"app": "web server"}, "annotations": {"n": 1}}
        });
        let mut config = sample_config();
        config["updateStrategy"]["type"] = json!("Patch");
        config["feedbackRules"][0]["jsonPaths"][0]["path"] = json!("status");
        let violations = validate_bundle(
            &[deployment(), broken, deployment()],
            &[config],
            Some(&json!({"propagationPolicy": "Orphan", "selectivelyOrphans": {"orphaningRules": []}})),
            &Limits::default(),
        );
        assert_eq!(
            fields(&violations),
            [
                "manifests[1].apiVersion",
                "manifests[1].kind",
                "manifests[1].metadata.name",
                "manifests[1].metadata.namespace",
                "manifests[1].metadata.labels.app",
                "manifests[1].metadata.annotations.n",
                "manifests[2]",
                "manifest_configs[0].feedbackRules[0].jsonPaths[0].path",
                "manifest_configs[0].updateStrategy.type",
                "delete_option.selectivelyOrphans",
                "delete_option.selectivelyOrphans.orphaningRules",
            ],
            "{violations:#?}"
        );
    }

    #[test]
    fn violations_serialize_as_field_and_message() {
        let violation = Violation { field: "manifests[0].kind".into(), message: "kind is required".into() };
        assert_eq!(
            serde_json::to_value(&violation).ok(),
            Some(json!({"field": "manifests[0].kind", "message": "kind is required"}))
        );
        assert_eq!(violation.to_string(), "manifests[0].kind: kind is required");
    }

    #[test]
    fn long_values_are_cut_short_in_messages() {
        let long = "x".repeat(300);
        assert_eq!(quote(&long), format!("\"{}\"... (300 characters)", "x".repeat(64)));
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("web-*", "web-1"));
        assert!(wildcard_match("*-db-*", "a-db-b"));
        assert!(wildcard_match("web", "web"));
        assert!(!wildcard_match("web", "web-1"));
        assert!(!wildcard_match("web-*", "api-1"));
        assert!(!wildcard_match("", "x"));
    }
}
