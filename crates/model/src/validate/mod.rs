//! Structural validation of what a client sends before anything is stored.
//!
//! The hub only ships manifests; the API server on each managed cluster is the real judge of
//! them. Checking shape here anyway means a client learns about every mistake in one round trip,
//! tied to the JSON field that caused it, instead of finding a failed apply in a status much later.
//! Nothing here talks to a cluster, so kind-specific rules (schemas, scope) are left to it.
//!
//! Every check appends to a `Vec<Violation>` instead of returning early, so one 400 answer can
//! list all problems at once.
//!
//! One module per part of a write: [`manifest`], [`config`] (manifest configs), [`delete_option`];
//! whole bundles and the checks they share are here.

mod config;
mod delete_option;
mod manifest;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;

use serde_json::{Map, Value};

use crate::config::{DeletePolicy, DriftPolicy, Identifier, UpdateStrategy};
use crate::object::split_api_version;
/// Re-exported where callers have always found them.
pub use crate::object::{ObjectKey, object_key, resource_for_kind};
pub use config::validate_manifest_config;
use config::*;
pub use delete_option::validate_delete_option;
use manifest::*;
pub use manifest::{validate_labels, validate_manifest, validate_name};

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

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Field names the bundle API uses for its three inputs; violations from `validate_bundle` start with them.
const MANIFESTS: &str = "manifests";
const MANIFEST_CONFIGS: &str = "manifest_configs";
const DELETE_OPTION: &str = "delete_option";

/// `driftPolicy` is ours (OCM has none): `Correct` (the default) or `ReportOnly`.
const CONFIG_FIELDS: &[&str] = &["resourceIdentifier", "feedbackRules", "updateStrategy", "driftPolicy"];
const DRIFT_POLICIES: &[&str] = DriftPolicy::NAMES;
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
const UPDATE_STRATEGY_TYPES: &[&str] = UpdateStrategy::TYPES;
const SELECTIVELY_ORPHAN: &str = "SelectivelyOrphan";
const PROPAGATION_POLICIES: &[&str] = DeletePolicy::PROPAGATIONS;

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
    let mut first_seen: HashMap<Identifier, usize> = HashMap::new();
    for (i, config) in configs.iter().enumerate() {
        let path = item(MANIFEST_CONFIGS, i);
        validate_manifest_config(config, &path, out);
        // Malformed identifiers are reported by the field checks above.
        let Some(target) = config.get("resourceIdentifier").and_then(Identifier::parse) else {
            continue;
        };
        let field_path = field(&path, "resourceIdentifier");
        if !keys.iter().any(|key| target.matches(key, None)) {
            push(out, &field_path, no_match_message(&target));
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

fn push(out: &mut Vec<Violation>, field: impl Into<String>, message: impl Into<String>) {
    out.push(Violation { field: field.into(), message: message.into() });
}

/// `null` is how JSON clients (and YAML's empty value) say "not set", so it counts as absent.
fn present(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
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
