//! Delete options: how the agent deletes a bundle's objects.

use super::*;

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
pub(super) fn check_selectively_orphans(value: &Value, path: &str, out: &mut Vec<Violation>) {
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
