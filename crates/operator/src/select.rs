//! Which plan an Instance change starts (SPEC.md §2.2). KUDO decided this in an admission
//! webhook; Maestro decides it in the engine, comparing the Instance with a snapshot of what it
//! last acted on (its operator version and parameters), and refuses visibly what the webhook
//! would have denied, naming the rule.

use std::collections::{BTreeMap, BTreeSet};

use maestro_package::crd::Parameter;
use maestro_package::types::Plan;

/// Where the engine keeps the [`Snapshot`] it last acted on: an annotation on the Instance,
/// so the memory survives restarts and travels with the object.
pub const SNAPSHOT_ANNOTATION: &str = "maestro.io/acted-on";
/// Asks the engine to run the plan execution of this uid, which ended in `FATAL_ERROR`, again
/// from its first unfinished step (`maestro operator plan retry`).
pub const RETRY_ANNOTATION: &str = "maestro.io/retry";

/// What the engine last acted on, or what the Instance asks for now.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub operator_version: String,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

impl Snapshot {
    /// What an Instance asks for now.
    pub fn of(instance: &maestro_package::crd::InstanceSpec) -> Snapshot {
        Snapshot { operator_version: instance.operator_version.name.clone(), parameters: instance.parameters.clone() }
    }

    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` when absent or unreadable (then the Instance counts as never acted on).
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Option<Snapshot> {
        serde_json::from_str(annotations.get(SNAPSHOT_ANNOTATION)?).ok()
    }
}

/// The Instance as the engine sees it on one reconcile.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `None` for an Instance the engine has never acted on (just created).
    pub previous: Option<&'a Snapshot>,
    pub current: &'a Snapshot,
    /// The OperatorVersion's plans and parameters (the current one on an upgrade).
    pub plans: Option<&'a BTreeMap<String, Plan>>,
    pub parameters: &'a [Parameter],
    /// The plan named in `spec.planExecution` with a uid the engine has not run yet (a user's
    /// `plan trigger`).
    pub requested: Option<&'a str>,
    /// The plan currently running, if any.
    pub running: Option<&'a str>,
    /// The Instance carries a deletion timestamp.
    pub deleting: bool,
    /// `cleanup` ran already for this deletion.
    pub cleanup_ran: bool,
}

static EMPTY: Snapshot = Snapshot { operator_version: String::new(), parameters: BTreeMap::new() };

impl Default for Request<'_> {
    fn default() -> Self {
        Request {
            previous: None,
            current: &EMPTY,
            plans: None,
            parameters: &[],
            requested: None,
            running: None,
            deleting: false,
            cleanup_ran: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Nothing to start.
    Nothing,
    Run(String),
    /// Refused; the rule that refused it (for a condition and an event).
    Refused(String),
}

fn first_of<'a>(plans: &BTreeMap<String, Plan>, names: &[&'a str]) -> Option<&'a str> {
    names.iter().copied().find(|n| plans.contains_key(*n))
}

pub fn select(request: &Request<'_>) -> Selection {
    let Some(plans) = request.plans else {
        return Selection::Refused(format!("OperatorVersion {:?} is missing", request.current.operator_version));
    };
    if request.deleting {
        let cleanup = plans.contains_key("cleanup") && !request.cleanup_ran && request.running != Some("cleanup");
        return if cleanup { Selection::Run("cleanup".into()) } else { Selection::Nothing };
    }
    let Some(previous) = request.previous else {
        return match plans.contains_key("deploy") {
            true => Selection::Run("deploy".into()),
            false => Selection::Refused("the operator version has no deploy plan".into()),
        };
    };
    if let Some(plan) = request.requested {
        return requested(plans, plan, request.running);
    }
    if let Some(refused) = immutable_changed(previous, request) {
        return refused;
    }
    let upgrade = previous.operator_version != request.current.operator_version;
    let triggered = triggered_plans(plans, previous, request);
    if upgrade {
        return upgrade_plan(plans, &triggered, request.running);
    }
    match triggered.len() {
        0 => Selection::Nothing,
        1 => {
            let plan = triggered.into_iter().next().unwrap_or_default();
            match request.running {
                Some(running) if running != plan => {
                    Selection::Refused(format!("plan {running:?} is running; the change would start {plan:?}"))
                }
                _ => Selection::Run(plan),
            }
        }
        _ => Selection::Refused(format!(
            "the changed parameters trigger different plans ({}); change them one plan at a time",
            triggered.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// A plan a user asked for by name.
fn requested(plans: &BTreeMap<String, Plan>, plan: &str, running: Option<&str>) -> Selection {
    if !plans.contains_key(plan) {
        return Selection::Refused(format!("plan {plan:?} does not exist in the operator version"));
    }
    if plan == "cleanup" {
        return Selection::Refused("cleanup runs only when the instance is deleted".into());
    }
    match running {
        Some(running) if running != plan => Selection::Refused(format!("plan {running:?} is running")),
        _ => Selection::Run(plan.to_string()),
    }
}

fn immutable_changed<'a>(previous: &'a Snapshot, request: &Request<'a>) -> Option<Selection> {
    // Compared as values in force: KUDO's webhook wrote immutable defaults into the spec at
    // creation, so giving such a parameter its default value later is no change.
    let in_force = |snapshot: &'a Snapshot, p: &'a Parameter| snapshot.parameters.get(&p.name).or(p.default.as_ref());
    let changed = request
        .parameters
        .iter()
        .find(|p| p.immutable == Some(true) && in_force(previous, p) != in_force(request.current, p))?;
    Some(Selection::Refused(format!("parameter {:?} is immutable", changed.name)))
}

/// The plans the changed parameters trigger: each parameter's `trigger`, else `update`, else
/// `deploy`.
fn triggered_plans(plans: &BTreeMap<String, Plan>, previous: &Snapshot, request: &Request<'_>) -> BTreeSet<String> {
    let names: BTreeSet<&String> = previous.parameters.keys().chain(request.current.parameters.keys()).collect();
    let default = first_of(plans, &["update", "deploy"]).unwrap_or("deploy");
    names
        .into_iter()
        .filter(|name| previous.parameters.get(*name) != request.current.parameters.get(*name))
        .map(|name| {
            let trigger = request.parameters.iter().find(|p| &p.name == name).map(|p| p.trigger.as_str());
            trigger.filter(|t| !t.is_empty()).unwrap_or(default).to_string()
        })
        .collect()
}

/// An operator version change: `upgrade`, else `update`, else `deploy`; never while a plan
/// runs, and with parameter changes only when they trigger the same plan.
fn upgrade_plan(plans: &BTreeMap<String, Plan>, triggered: &BTreeSet<String>, running: Option<&str>) -> Selection {
    if let Some(running) = running {
        return Selection::Refused(format!("plan {running:?} is running; upgrade once it is done"));
    }
    let Some(plan) = first_of(plans, &["upgrade", "update", "deploy"]) else {
        return Selection::Refused("the new operator version has no upgrade, update or deploy plan".into());
    };
    if triggered.iter().any(|t| t != plan && t != "deploy") {
        return Selection::Refused(format!(
            "an upgrade runs {plan:?}; parameters that trigger another plan change in a separate update"
        ));
    }
    Selection::Run(plan.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(names: &[&str]) -> BTreeMap<String, Plan> {
        names.iter().map(|n| (n.to_string(), Plan::default())).collect()
    }

    fn param(name: &str, trigger: &str, immutable: bool) -> Parameter {
        Parameter { name: name.into(), trigger: trigger.into(), immutable: Some(immutable), ..Parameter::default() }
    }

    fn snapshot(version: &str, params: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            operator_version: version.into(),
            parameters: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn run(plan: &str) -> Selection {
        Selection::Run(plan.into())
    }

    #[test]
    fn a_new_instance_deploys_and_one_without_deploy_is_refused() {
        let current = snapshot("v1", &[]);
        let with = plans(&["deploy"]);
        assert_eq!(select(&Request { current: &current, plans: Some(&with), ..Request::default() }), run("deploy"));
        let without = plans(&["backup"]);
        let refused = select(&Request { current: &current, plans: Some(&without), ..Request::default() });
        assert_eq!(refused, Selection::Refused("the operator version has no deploy plan".into()));
        let missing = select(&Request { current: &current, plans: None, ..Request::default() });
        assert!(matches!(missing, Selection::Refused(r) if r.contains("missing")));
    }

    /// The selection for a change from `before` to `current`.
    fn change(
        before: &Snapshot,
        current: &Snapshot,
        plans: &BTreeMap<String, Plan>,
        params: &[Parameter],
    ) -> Selection {
        select(&Request {
            previous: Some(before),
            current,
            plans: Some(plans),
            parameters: params,
            ..Request::default()
        })
    }

    #[test]
    fn a_parameter_change_runs_its_trigger_else_update_else_deploy() {
        let before = snapshot("v1", &[("A", "1"), ("B", "1")]);
        let params = [param("A", "backup", false), param("B", "", false)];
        let both = plans(&["deploy", "update", "backup"]);
        let only_deploy = plans(&["deploy", "backup"]);
        assert_eq!(change(&before, &snapshot("v1", &[("A", "2"), ("B", "1")]), &both, &params), run("backup"));
        assert_eq!(change(&before, &snapshot("v1", &[("A", "1"), ("B", "2")]), &both, &params), run("update"));
        assert_eq!(change(&before, &snapshot("v1", &[("A", "1"), ("B", "2")]), &only_deploy, &params), run("deploy"));
        assert_eq!(
            change(&before, &snapshot("v1", &[("A", "1")]), &both, &params),
            run("update"),
            "a removed parameter counts"
        );
        assert_eq!(change(&before, &before, &both, &params), Selection::Nothing, "nothing changed");
        let two = change(&before, &snapshot("v1", &[("A", "2"), ("B", "2")]), &both, &params);
        assert!(matches!(two, Selection::Refused(r) if r.contains("backup, update")), "two plans at once are refused");
    }

    #[test]
    fn an_upgrade_runs_upgrade_else_update_else_deploy() {
        let before = snapshot("v1", &[]);
        let after = snapshot("v2", &[]);
        for (available, expected) in [
            (&["deploy", "update", "upgrade"][..], "upgrade"),
            (&["deploy", "update"], "update"),
            (&["deploy"], "deploy"),
        ] {
            let plans = plans(available);
            let request =
                Request { previous: Some(&before), current: &after, plans: Some(&plans), ..Request::default() };
            assert_eq!(select(&request), run(expected));
        }
        let plans = plans(&["deploy", "upgrade", "backup"]);
        let params = [param("A", "backup", false)];
        let with_param = snapshot("v2", &[("A", "2")]);
        let request = Request {
            previous: Some(&before),
            current: &with_param,
            plans: Some(&plans),
            parameters: &params,
            ..Request::default()
        };
        assert!(matches!(select(&request), Selection::Refused(r) if r.contains("separate update")));
    }

    #[test]
    fn what_the_webhook_denied_is_refused_naming_the_rule() {
        let before = snapshot("v1", &[("DISK", "10Gi"), ("N", "3")]);
        let params = [param("DISK", "", true), param("N", "", false)];
        let plans = plans(&["deploy", "update", "backup", "cleanup"]);
        let request = |current, requested, running| Request {
            previous: Some(&before),
            current,
            plans: Some(&plans),
            parameters: &params,
            requested,
            running,
            ..Request::default()
        };
        let disk = snapshot("v1", &[("DISK", "20Gi"), ("N", "3")]);
        assert_eq!(select(&request(&disk, None, None)), Selection::Refused("parameter \"DISK\" is immutable".into()));
        let mut defaulted = [param("DISK", "", true)];
        defaulted[0].default = Some("10Gi".into());
        let (unset, explicit) = (snapshot("v1", &[]), snapshot("v1", &[("DISK", "10Gi")]));
        let same = select(&Request {
            previous: Some(&unset),
            current: &explicit,
            parameters: &defaulted,
            ..request(&unset, None, None)
        });
        assert_eq!(same, run("update"), "writing an immutable parameter's default is no change to it");
        let n = snapshot("v1", &[("DISK", "10Gi"), ("N", "5")]);
        assert!(
            matches!(select(&request(&n, None, Some("backup"))), Selection::Refused(r) if r.contains("\"backup\" is running"))
        );
        assert_eq!(select(&request(&n, None, Some("update"))), run("update"), "the same plan again is fine");
        assert_eq!(select(&request(&before, Some("backup"), None)), run("backup"), "plan trigger");
        assert!(
            matches!(select(&request(&before, Some("nope"), None)), Selection::Refused(r) if r.contains("does not exist"))
        );
        assert!(
            matches!(select(&request(&before, Some("cleanup"), None)), Selection::Refused(r) if r.contains("only when"))
        );
        let upgrade = snapshot("v2", &[("DISK", "10Gi"), ("N", "3")]);
        assert!(
            matches!(select(&request(&upgrade, None, Some("backup"))), Selection::Refused(r) if r.contains("upgrade once"))
        );
    }

    #[test]
    fn a_deleted_instance_runs_cleanup_once_when_there_is_one() {
        let current = snapshot("v1", &[]);
        let with = plans(&["deploy", "cleanup"]);
        let deleting = |plans, cleanup_ran| Request {
            previous: Some(&current),
            current: &current,
            plans: Some(plans),
            deleting: true,
            cleanup_ran,
            ..Request::default()
        };
        assert_eq!(select(&deleting(&with, false)), run("cleanup"));
        assert_eq!(select(&deleting(&with, true)), Selection::Nothing);
        assert_eq!(select(&deleting(&plans(&["deploy"]), false)), Selection::Nothing);
    }
}
