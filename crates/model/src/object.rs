//! The identity of a Kubernetes object in a manifest, shared by validation (duplicates,
//! configs that match no manifest) and by typed configs (which config and orphaning rule
//! select which object): (group, version, kind, namespace, name).

use std::fmt;

use serde_json::Value;

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

/// Splits `group/version`; the group is `None` for the core group, written as a bare version.
pub fn split_api_version(api_version: &str) -> (Option<&str>, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (Some(group), version),
        None => (None, api_version),
    }
}

/// `null`, a non-string and `""` all count as absent.
pub(crate) fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}
