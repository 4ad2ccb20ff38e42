//! What `maestro operator plan status|history` and `get instances` print, as `kubectl kudo`
//! prints it: the tree of plans, phases and steps with their strategies and statuses.

use maestro_operator::pass::NEVER_RUN;
use maestro_package::crd::{Instance, OperatorVersion};

/// `plan status`: every plan of the version, the active one marked.
pub fn status_tree(instance: &Instance, version: Option<&OperatorVersion>) -> String {
    let name = &instance.metadata.name;
    let mut out = format!("Plan(s) for \"{name}\" in namespace \"{}\":\n.\n", instance.metadata.namespace);
    let active = &instance.spec.plan_execution.plan_name;
    let active = if active.is_empty() { String::new() } else { format!(" Active-Plan: \"{active}\"") };
    out.push_str(&format!("└── {name} (Operator-Version: \"{}\"{active})\n", instance.spec.operator_version.name));
    let Some(version) = version else {
        out.push_str("    (its OperatorVersion does not exist)\n");
        return out;
    };
    let statuses = instance.status.as_ref().map(|s| &s.plan_status);
    let plans: Vec<_> = version.spec.plans.iter().collect();
    for (index, (plan_name, plan)) in plans.iter().enumerate() {
        let last = index + 1 == plans.len();
        let status = statuses.and_then(|s| s.get(*plan_name));
        let (branch, indent) = if last { ("└──", "    ") } else { ("├──", "│   ") };
        let shown = status.map(|s| s.status.as_str()).filter(|s| *s != NEVER_RUN).unwrap_or("NOT ACTIVE");
        let updated = status
            .and_then(|s| s.last_updated_timestamp.as_deref())
            .map(|t| format!(", last updated {}", t.replace('T', " ").trim_end_matches('Z')))
            .unwrap_or_default();
        out.push_str(&format!(
            "    {branch} Plan {plan_name} ({} strategy) [{shown}]{updated}\n",
            strategy(&plan.strategy)
        ));
        for (p, phase) in plan.phases.iter().enumerate() {
            let last_phase = p + 1 == plan.phases.len();
            let phase_status = status.and_then(|s| s.phases.iter().find(|x| x.name == phase.name));
            let (branch, sub) = if last_phase { ("└──", "    ") } else { ("├──", "│   ") };
            out.push_str(&format!(
                "    {indent}{branch} Phase {} ({} strategy) [{}]\n",
                phase.name,
                strategy(&phase.strategy),
                shown_status(phase_status.map(|s| s.status.as_str()))
            ));
            for (s, step) in phase.steps.iter().enumerate() {
                let branch = if s + 1 == phase.steps.len() { "└──" } else { "├──" };
                let step_status = phase_status.and_then(|x| x.steps.iter().find(|y| y.name == step.name));
                let message = step_status.map(|x| x.message.as_str()).filter(|m| !m.is_empty());
                let message = message.map(|m| format!(" ({m})")).unwrap_or_default();
                out.push_str(&format!(
                    "    {indent}{sub}{branch} Step {} [{}]{message}\n",
                    step.name,
                    shown_status(step_status.map(|x| x.status.as_str()))
                ));
            }
        }
    }
    out
}

fn strategy(text: &str) -> &str {
    if text.is_empty() { "parallel" } else { text }
}

fn shown_status(status: Option<&str>) -> &str {
    match status {
        None | Some(NEVER_RUN) => "NOT ACTIVE",
        Some(other) => other,
    }
}

/// `plan history`: each plan that ran, with its last status and when.
pub fn history(instance: &Instance) -> String {
    let mut out = format!(
        "History of plan executions for \"{}\" in namespace \"{}\":\n",
        instance.metadata.name, instance.metadata.namespace
    );
    let statuses = instance.status.as_ref().map(|s| &s.plan_status);
    let ran: Vec<_> = statuses.into_iter().flatten().filter(|(_, s)| s.status != NEVER_RUN).collect();
    if ran.is_empty() {
        out.push_str("  no plan has run\n");
    }
    for (name, status) in ran {
        let when = status.last_updated_timestamp.as_deref().unwrap_or("-");
        out.push_str(&format!("  {name:<16} {:<12} last updated {when}  (uid {})\n", status.status, status.uid));
    }
    out
}

/// `get instances`: one line per Instance.
pub fn instance_table(instances: &[Instance]) -> String {
    let mut out = format!("{:<24} {:<40} {:<12} {}\n", "NAME", "OPERATOR VERSION", "ACTIVE PLAN", "LAST PLAN");
    for instance in instances {
        let active = &instance.spec.plan_execution.plan_name;
        let last = instance
            .status
            .as_ref()
            .and_then(|s| maestro_operator::pass::latest(s.plan_status.values().filter(|p| p.status != NEVER_RUN)))
            .map(|p| format!("{} {}", p.name, p.status))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<24} {:<40} {:<12} {last}\n",
            instance.metadata.name,
            instance.spec.operator_version.name,
            if active.is_empty() { "-" } else { active }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> (Instance, OperatorVersion) {
        let version: OperatorVersion = serde_yaml::from_str(
            "apiVersion: kudo.dev/v1beta1\nkind: OperatorVersion\nmetadata: {name: zk-0.1.0}\nspec:\n  plans:\n    deploy:\n      strategy: serial\n      phases:\n        - name: main\n          strategy: parallel\n          steps:\n            - {name: app, tasks: [app]}\n            - {name: svc, tasks: [svc]}\n    backup:\n      phases: []\n",
        )
        .unwrap();
        let instance: Instance = serde_yaml::from_str(
            "apiVersion: kudo.dev/v1beta1\nkind: Instance\nmetadata: {name: zk, namespace: team}\nspec:\n  operatorVersion: {name: zk-0.1.0}\n  planExecution: {planName: deploy, uid: u1}\nstatus:\n  planStatus:\n    deploy:\n      name: deploy\n      status: IN_PROGRESS\n      uid: u1\n      lastUpdatedTimestamp: '2026-12-06T10:00:00Z'\n      phases:\n        - name: main\n          status: IN_PROGRESS\n          steps:\n            - {name: app, status: COMPLETE}\n            - {name: svc, status: ERROR, message: 'the API server said 503'}\n    backup: {name: backup, status: NEVER_RUN}\n",
        )
        .unwrap();
        (instance, version)
    }

    #[test]
    fn plan_status_prints_kudos_tree_with_messages_and_inactive_plans() {
        let (instance, version) = fixtures();
        let tree = status_tree(&instance, Some(&version));
        let expected = "Plan(s) for \"zk\" in namespace \"team\":\n.\n└── zk (Operator-Version: \"zk-0.1.0\" Active-Plan: \"deploy\")\n    ├── Plan backup (parallel strategy) [NOT ACTIVE]\n    └── Plan deploy (serial strategy) [IN_PROGRESS], last updated 2026-12-06 10:00:00\n        └── Phase main (parallel strategy) [IN_PROGRESS]\n            ├── Step app [COMPLETE]\n            └── Step svc [ERROR] (the API server said 503)\n";
        assert_eq!(tree, expected);
    }

    #[test]
    fn history_lists_only_plans_that_ran() {
        let (instance, _) = fixtures();
        let text = history(&instance);
        assert!(text.contains("deploy") && text.contains("IN_PROGRESS"), "{text}");
        assert!(!text.contains("backup"), "{text}");
        assert!(instance_table(&[instance]).contains("deploy IN_PROGRESS"));
    }
}
