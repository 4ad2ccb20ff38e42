//! Manifest configs: the resource identifier, feedback rules, update strategy and drift policy
//! of one manifest.

use super::*;

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
pub(super) fn check_resource_identifier(value: &Value, path: &str, out: &mut Vec<Violation>) {
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

pub(super) fn no_match_message(identifier: &Identifier) -> String {
    format!(
        "matches no manifest in the bundle: none has group {}, resource {}, namespace {} and \
         name {}; resource is the lower-case plural of the kind (deployments for Deployment), \
         and group is empty for the core group",
        quote(&identifier.group),
        quote(&identifier.resource),
        quote(&identifier.namespace),
        quote(&identifier.name)
    )
}

pub(super) fn check_feedback_rules(value: &Value, path: &str, out: &mut Vec<Violation>) {
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
pub(super) fn check_feedback_rule(
    rule: &Value,
    path: &str,
    names: &mut HashMap<String, String>,
    out: &mut Vec<Violation>,
) {
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

pub(super) fn check_json_paths(
    value: &Value,
    path: &str,
    names: &mut HashMap<String, String>,
    out: &mut Vec<Violation>,
) {
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

pub(super) fn check_json_path(
    entry: &Value,
    path: &str,
    names: &mut HashMap<String, String>,
    out: &mut Vec<Violation>,
) {
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

pub(super) fn check_json_path_name(
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

pub(super) fn check_json_path_expression(value: Option<&Value>, path: &str, out: &mut Vec<Violation>) {
    const EXPECTED: &str = "a JSONPath starting with '.', such as \".status.readyReplicas\"";
    if let Some(expression) = required_str(value, path, "path", EXPECTED, out)
        && !expression.starts_with('.')
    {
        push(out, path, format!("path must be {EXPECTED}, found {}", quote(expression)));
    }
}

pub(super) fn check_update_strategy(value: &Value, path: &str, out: &mut Vec<Violation>) {
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

pub(super) fn check_server_side_apply(value: &Value, path: &str, out: &mut Vec<Violation>) {
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
