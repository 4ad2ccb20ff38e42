//! Manifests: apiVersion, kind, metadata (names, namespaces, labels, annotations), size, and
//! the object a manifest names.

use super::*;

/// Checks one Kubernetes object. `path` names the manifest itself (`manifests[3]`, or whatever
/// the single-resource API calls it); an empty `path` gives fields like `metadata.name`.
pub fn validate_manifest(manifest: &Value, path: &str, limits: &Limits, out: &mut Vec<Violation>) {
    check_manifest(manifest, path, limits, out);
}

/// Returns the serialized size so the bundle total is computed without serializing twice.
pub(super) fn check_manifest(manifest: &Value, path: &str, limits: &Limits, out: &mut Vec<Violation>) -> usize {
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

pub(super) fn check_api_version(value: Option<&Value>, path: &str, out: &mut Vec<Violation>) {
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

/// Accepts Kubernetes-style versions (v1, v1beta1) and the other CRD version names Kubernetes
/// allows (v1alpha, v1-preview), but insists on a leading `v` and digit so that a group typed
/// without its version (`"apps"`) is caught rather than read as version "apps" of the core group.
pub(super) fn version_problem(version: &str) -> Option<String> {
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

pub(super) fn check_kind(value: Option<&Value>, path: &str, out: &mut Vec<Violation>) {
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

pub(super) fn check_metadata(manifest: &Map<String, Value>, path: &str, out: &mut Vec<Violation>) {
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
pub(super) enum NameRule {
    Subdomain,
    PathSegment,
}

pub(super) fn name_rule_for(manifest: &Map<String, Value>) -> NameRule {
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

pub(super) fn check_object_name(value: Option<&Value>, path: &str, rule: NameRule, out: &mut Vec<Violation>) {
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

pub(super) fn check_path_segment_name(name: &str, path: &str, out: &mut Vec<Violation>) {
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
pub(super) fn check_namespace(value: Option<&Value>, path: &str, out: &mut Vec<Violation>) {
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

pub(super) fn namespace_problem(namespace: &str) -> Option<String> {
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
pub(super) fn check_annotations(annotations: &Value, path: &str, out: &mut Vec<Violation>) {
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

pub(super) fn as_string_map<'a>(
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

pub(super) fn check_key(key: &str, path: &str, what: &str, out: &mut Vec<Violation>) {
    if let Some(reason) = qualified_key_problem(key) {
        push(out, path, format!("{what} key must be {KEY_RULE}, found {}: {reason}", quote(key)));
    }
}

/// Label and annotation keys: `[prefix/]name`, the prefix a DNS subdomain.
pub(super) fn qualified_key_problem(key: &str) -> Option<String> {
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

pub(super) fn key_name_problem(name: &str) -> Option<String> {
    token_problem(name, MAX_LABEL, |c| c.is_ascii_alphanumeric(), &['-', '_', '.'])
}

pub(super) fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() { None } else { key_name_problem(value) }
}
