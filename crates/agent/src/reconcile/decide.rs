//! What the reconciler does next, decided without I/O.
//!
//! The reconciler's handlers are decide + act: [`decide`] looks at what the agent knows of a
//! bundle (its [`Phase`] and objects) and at what happened ([`Event`]) and names an
//! [`Action`]; the handler then performs it against the cluster. Every rule about *whether*
//! to write, restore, report or wait lives here, so unit tests drive it with plain values and
//! no cluster; what remains in the handlers is *how* (discovery, server-side apply, deletes,
//! hooks, status). The universal operator's plan engine follows the same shape.

use serde_json::Value;

use super::BundleState;
use super::refs::{is_stale, resource_version_of};
use crate::drift;
use crate::status::{ApplyResult, Drift, DriftKind};
use maestro_model::config::{DriftPolicy, UpdateStrategy};

/// Where a bundle the agent holds is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Every object is written as the version says (or refused for good); watches keep it so.
    Applied,
    /// Some write failed for a reason that may pass (the API server unreachable, a dropped
    /// object not deleted yet); a retry is scheduled.
    Retrying,
    /// A before-apply hook holds this version back (skip, requeue or fail).
    Held,
    /// The hub deleted the bundle; its objects are being deleted.
    Deleting,
    /// A before-delete hook holds the delete back.
    DeleteHeld,
}

impl Phase {
    /// The label of `maestro_agent_bundles{phase}` and of log lines.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Phase::Applied => "applied",
            Phase::Retrying => "retrying",
            Phase::Held => "held",
            Phase::Deleting => "deleting",
            Phase::DeleteHeld => "delete_held",
        }
    }

    pub(super) const ALL: [Phase; 5] =
        [Phase::Applied, Phase::Retrying, Phase::Held, Phase::Deleting, Phase::DeleteHeld];
}

impl BundleState {
    pub(super) fn phase(&self) -> Phase {
        let pending = self.objects.iter().any(|o| o.retry) || !self.leftovers.is_empty();
        match (&self.hold, self.deleting) {
            (Some(hold), true) if !hold.on_apply() => Phase::DeleteHeld,
            (_, true) => Phase::Deleting,
            (Some(hold), false) if hold.on_apply() => Phase::Held,
            _ if pending => Phase::Retrying,
            _ => Phase::Applied,
        }
    }
}

/// What happened to a bundle.
#[derive(Debug, Clone, Copy)]
pub(super) enum Event<'a> {
    /// The hub sent this version of the bundle, or its deletion.
    Spec { version: i64, deleting: bool },
    /// The bundle's retry timer fired.
    Retry,
    /// New plugin policies or consumer labels are in force.
    Policies,
    /// The watch saw the object of manifest `ordinal` change (`Some`) or disappear (`None`).
    Observed { ordinal: usize, live: Option<&'a Value> },
}

/// What the reconciler does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Nothing: a spec not newer than the one held, a watch event older than our own write.
    Ignore,
    /// Apply the version: before-apply hooks, then every manifest, then settle and record.
    Apply,
    /// Write these manifests again (their last write may succeed now), then settle and record.
    ApplyOnly(Vec<usize>),
    /// Delete the bundle's objects (before-delete hooks first, unless they cleared it already).
    Delete,
    /// Recompute the status (feedback plugins included); `clear_drift` when the object
    /// conforms again after a reported drift.
    Record { clear_drift: bool },
    /// An object of a bundle being deleted is gone: count it removed, finish if it was the last.
    Removed,
    /// Someone else changed or deleted an object we own: write it again.
    Restore(DriftKind),
    /// The same, under `driftPolicy: ReportOnly`: only say so in the status.
    Report(DriftKind),
}

/// The one decision function. `state` is `None` for a bundle the agent does not hold.
pub(super) fn decide(state: Option<&BundleState>, event: Event<'_>) -> Action {
    match event {
        Event::Spec { version, deleting } => on_spec(state, version, deleting),
        Event::Retry => state.map_or(Action::Ignore, on_retry),
        Event::Policies => state.map_or(Action::Ignore, on_policies),
        Event::Observed { ordinal, live } => state.map_or(Action::Ignore, |state| on_observed(state, ordinal, live)),
    }
}

fn on_spec(state: Option<&BundleState>, version: i64, deleting: bool) -> Action {
    if let Some(known) = state {
        let same = version == known.version && deleting == known.deleting;
        if version < known.version || same {
            return Action::Ignore;
        }
    }
    // A delete of a bundle never applied here still gets its `Deleted` reported.
    if deleting { Action::Delete } else { Action::Apply }
}

fn on_retry(state: &BundleState) -> Action {
    match state.phase() {
        Phase::Deleting | Phase::DeleteHeld => Action::Delete,
        Phase::Held => Action::Apply,
        Phase::Retrying | Phase::Applied => {
            Action::ApplyOnly(state.objects.iter().enumerate().filter(|(_, o)| o.retry).map(|(i, _)| i).collect())
        }
    }
}

fn on_policies(state: &BundleState) -> Action {
    match state.phase() {
        // A hook that held the version may be gone or answer differently now.
        Phase::Held => Action::Apply,
        Phase::DeleteHeld => Action::Delete,
        Phase::Deleting => Action::Ignore,
        // Feedback plugins may have changed.
        Phase::Applied | Phase::Retrying => Action::Record { clear_drift: false },
    }
}

fn on_observed(state: &BundleState, ordinal: usize, live: Option<&Value>) -> Action {
    let (Some(plan), Some(object)) = (state.spec.manifests.get(ordinal), state.objects.get(ordinal)) else {
        return Action::Ignore;
    };
    let written = matches!(object.result, ApplyResult::Applied { .. });
    let drift = |what| if plan.drift == DriftPolicy::ReportOnly { Action::Report(what) } else { Action::Restore(what) };
    match live {
        Some(value) if is_stale(value, object.applied_rv.as_deref()) => Action::Ignore,
        Some(_) if state.deleting => Action::Record { clear_drift: false },
        Some(value) => {
            let changed_by_others =
                object.applied_rv.is_some() && resource_version_of(value) != object.applied_rv && written;
            let conforms = drift::conforms(&plan.manifest, value);
            if plan.strategy.owns_content() && changed_by_others && !conforms {
                drift(DriftKind::Modified)
            } else {
                Action::Record { clear_drift: conforms && matches!(object.drift, Some(Drift::Reported { .. })) }
            }
        }
        None if state.deleting => Action::Removed,
        None if plan.strategy != UpdateStrategy::ReadOnly && written => drift(DriftKind::Deleted),
        None => Action::Record { clear_drift: false },
    }
}

/// Is the delete done: every object gone or kept, and no dropped object left to delete?
pub(super) fn delete_finished(state: &BundleState) -> bool {
    state.objects.iter().all(|o| o.removal.is_some()) && state.leftovers.is_empty()
}

#[cfg(test)]
mod tests {
    use super::super::{Hold, SpecInput};
    use super::*;
    use crate::status::{Live, Removal};
    use serde_json::json;

    fn deployment(name: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": "default"},
               "spec": {"replicas": 2}})
    }

    /// A bundle of the given manifests at `version`, each written (resourceVersion 10).
    fn applied(version: i64, manifests: Vec<Value>, configs: Value) -> BundleState {
        let input = SpecInput {
            id: "b1".into(),
            version,
            original_source: "hub".into(),
            deleting: false,
            bundle: json!({"manifests": manifests, "manifestConfigs": configs}),
            written_unix_ms: Some(0),
        };
        let mut state = BundleState::new(&input, Vec::new());
        for object in &mut state.objects {
            object.result = ApplyResult::Applied { message: String::new() };
            object.applied_rv = Some("10".into());
        }
        state
    }

    fn one(version: i64) -> BundleState {
        applied(version, vec![deployment("web")], json!([]))
    }

    fn live(rv: &str, replicas: i64) -> Value {
        let mut object = deployment("web");
        object["metadata"]["resourceVersion"] = json!(rv);
        object["spec"]["replicas"] = json!(replicas);
        object
    }

    fn observed(state: &BundleState, live: Option<&Value>) -> Action {
        decide(Some(state), Event::Observed { ordinal: 0, live })
    }

    #[test]
    fn a_spec_not_newer_than_the_one_held_is_ignored() {
        let state = one(3);
        assert_eq!(decide(Some(&state), Event::Spec { version: 2, deleting: false }), Action::Ignore);
        assert_eq!(decide(Some(&state), Event::Spec { version: 3, deleting: false }), Action::Ignore);
        assert_eq!(decide(Some(&state), Event::Spec { version: 4, deleting: false }), Action::Apply);
        // The delete of the version held is news, though its version is the same.
        assert_eq!(decide(Some(&state), Event::Spec { version: 3, deleting: true }), Action::Delete);
    }

    #[test]
    fn a_bundle_never_seen_is_applied_or_its_delete_confirmed() {
        assert_eq!(decide(None, Event::Spec { version: 1, deleting: false }), Action::Apply);
        assert_eq!(decide(None, Event::Spec { version: 7, deleting: true }), Action::Delete);
        assert_eq!(decide(None, Event::Retry), Action::Ignore);
    }

    #[test]
    fn a_retry_writes_again_only_the_manifests_whose_write_failed() {
        let mut state = applied(1, vec![deployment("a"), deployment("b"), deployment("c")], json!([]));
        assert_eq!(state.phase(), Phase::Applied);
        state.objects[1].retry = true;
        assert_eq!(state.phase(), Phase::Retrying);
        assert_eq!(decide(Some(&state), Event::Retry), Action::ApplyOnly(vec![1]));
    }

    #[test]
    fn a_held_version_is_put_to_the_hooks_again_on_retry_and_on_new_policies() {
        let mut state = one(1);
        state.hold = Some(Hold::Waiting);
        assert_eq!(state.phase(), Phase::Held);
        assert_eq!(decide(Some(&state), Event::Retry), Action::Apply);
        assert_eq!(decide(Some(&state), Event::Policies), Action::Apply);
        state.hold = None;
        assert_eq!(decide(Some(&state), Event::Policies), Action::Record { clear_drift: false });
    }

    #[test]
    fn a_delete_held_by_a_hook_is_asked_again_and_a_running_delete_is_left_alone() {
        let mut state = one(1);
        state.deleting = true;
        assert_eq!(state.phase(), Phase::Deleting);
        assert_eq!(decide(Some(&state), Event::Policies), Action::Ignore);
        assert_eq!(decide(Some(&state), Event::Retry), Action::Delete);
        state.hold = Some(Hold::DeleteWaiting);
        assert_eq!(state.phase(), Phase::DeleteHeld);
        assert_eq!(decide(Some(&state), Event::Policies), Action::Delete);
    }

    #[test]
    fn a_watch_event_older_than_our_write_changes_nothing() {
        let state = one(1);
        assert_eq!(observed(&state, Some(&live("9", 5))), Action::Ignore);
    }

    #[test]
    fn an_object_someone_else_changed_is_restored_unless_the_config_says_report_only() {
        let state = one(1);
        assert_eq!(observed(&state, Some(&live("11", 5))), Action::Restore(DriftKind::Modified));
        assert_eq!(observed(&state, None), Action::Restore(DriftKind::Deleted));

        let report_only = json!([{"resourceIdentifier": {"group": "apps", "resource": "deployments",
            "name": "web", "namespace": "default"}, "driftPolicy": "ReportOnly"}]);
        let state = applied(1, vec![deployment("web")], report_only);
        assert_eq!(observed(&state, Some(&live("11", 5))), Action::Report(DriftKind::Modified));
        assert_eq!(observed(&state, None), Action::Report(DriftKind::Deleted));
    }

    #[test]
    fn a_change_that_keeps_the_manifest_true_is_only_recorded_and_ends_a_reported_drift() {
        let mut state = one(1);
        assert_eq!(observed(&state, Some(&live("11", 2))), Action::Record { clear_drift: false });
        state.objects[0].drift = Some(Drift::Reported { what: DriftKind::Modified });
        assert_eq!(observed(&state, Some(&live("12", 2))), Action::Record { clear_drift: true });
    }

    #[test]
    fn objects_the_agent_does_not_own_are_never_restored() {
        let read_only = json!([{"resourceIdentifier": {"group": "apps", "resource": "deployments",
            "name": "web", "namespace": "default"}, "updateStrategy": {"type": "ReadOnly"}}]);
        let state = applied(1, vec![deployment("web")], read_only);
        assert_eq!(observed(&state, None), Action::Record { clear_drift: false });
        assert_eq!(observed(&state, Some(&live("11", 5))), Action::Record { clear_drift: false });

        let mut refused = one(1);
        refused.objects[0].result = ApplyResult::Refused { reason: "Invalid".into(), message: String::new() };
        assert_eq!(observed(&refused, None), Action::Record { clear_drift: false });
    }

    #[test]
    fn while_deleting_a_disappearance_counts_as_removal_and_the_delete_finishes_with_the_last() {
        let mut state = applied(1, vec![deployment("a"), deployment("b")], json!([]));
        state.deleting = true;
        assert_eq!(observed(&state, None), Action::Removed);
        assert_eq!(observed(&state, Some(&live("11", 5))), Action::Record { clear_drift: false });
        state.objects[0].removal = Some(Removal::Deleted);
        assert!(!delete_finished(&state));
        state.objects[1].removal = Some(Removal::Kept);
        assert!(delete_finished(&state));
        state.objects[1].live = Live::Unknown;
        state.leftovers.push(crate::local::AppliedRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespace: None,
            name: "dropped".into(),
        });
        assert!(!delete_finished(&state), "a dropped object still to delete keeps the bundle");
    }
}
