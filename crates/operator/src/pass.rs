//! One pass of a running plan (SPEC.md §2.1, KUDO's `workflow.Execute`): phases in order, and
//! in each unfinished phase its steps in order; every task of an unfinished step runs on every
//! pass until the whole step completes. `serial` (exactly that word) stops at the first
//! unfinished item; anything else, an omitted strategy included, goes on to the next one. A
//! fatal task error ends the plan at once; a transient one marks its step `ERROR` and is
//! retried on a later pass. "Parallel" is not concurrency: one pass visits items one by one.

use std::collections::BTreeMap;

use maestro_package::crd::{PhaseStatus, PlanStatus, StepStatus};
use maestro_package::types::Plan;

pub const NEVER_RUN: &str = "NEVER_RUN";
pub const PENDING: &str = "PENDING";
pub const IN_PROGRESS: &str = "IN_PROGRESS";
pub const COMPLETE: &str = "COMPLETE";
pub const ERROR: &str = "ERROR";
pub const FATAL_ERROR: &str = "FATAL_ERROR";

/// What a task reported on this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Finished (applied and healthy, deleted, ...).
    Done,
    /// Not finished yet, without an error (an object not healthy yet).
    Pending,
    /// Failed in a way a later pass may not (an API error): retried.
    Transient(String),
    /// Failed for good (a render error, a failed Job): the plan stops.
    Fatal(String),
}

/// The task a pass asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit<'a> {
    pub plan: &'a str,
    pub phase: &'a str,
    pub step: &'a str,
    pub task: &'a str,
}

pub fn is_terminal(status: &str) -> bool {
    status == COMPLETE || status == FATAL_ERROR
}

fn is_running(status: &str) -> bool {
    matches!(status, PENDING | IN_PROGRESS | ERROR)
}

/// A plan's status at the start of a new execution (`uid`): every phase and step `PENDING`.
pub fn fresh_status(name: &str, plan: &Plan, uid: &str) -> PlanStatus {
    PlanStatus {
        name: name.to_string(),
        status: PENDING.into(),
        uid: uid.to_string(),
        phases: plan
            .phases
            .iter()
            .map(|phase| PhaseStatus {
                name: phase.name.clone(),
                status: PENDING.into(),
                message: String::new(),
                steps: phase
                    .steps
                    .iter()
                    .map(|step| StepStatus { name: step.name.clone(), status: PENDING.into(), message: String::new() })
                    .collect(),
            })
            .collect(),
        ..PlanStatus::default()
    }
}

/// The most recently updated of `plans` (the last one when timestamps tie): the plan that ran
/// last, as `Ready`, `get instances` and `--wait` report it.
pub fn latest<'a>(plans: impl IntoIterator<Item = &'a PlanStatus>) -> Option<&'a PlanStatus> {
    plans.into_iter().max_by(|a, b| a.last_updated_timestamp.cmp(&b.last_updated_timestamp))
}

/// Makes `statuses` hold an entry for every plan, phase and step of `plans` (new ones
/// `NEVER_RUN`), keeping what existing entries say, and nothing else: KUDO's
/// `ensurePlanStatusInitialized`, which is how an upgrade to a version with differently shaped
/// plans works.
pub fn ensure_statuses(statuses: &mut BTreeMap<String, PlanStatus>, plans: &BTreeMap<String, Plan>) {
    let mut old = std::mem::take(statuses);
    for (name, plan) in plans {
        let mut entry = old.remove(name).unwrap_or_else(|| PlanStatus {
            name: name.clone(),
            status: NEVER_RUN.into(),
            ..PlanStatus::default()
        });
        let mut old_phases = std::mem::take(&mut entry.phases);
        entry.phases = plan
            .phases
            .iter()
            .map(|phase| {
                let position = old_phases.iter().position(|p| p.name == phase.name);
                let mut status = match position {
                    Some(at) => old_phases.remove(at),
                    None => {
                        PhaseStatus { name: phase.name.clone(), status: NEVER_RUN.into(), ..PhaseStatus::default() }
                    }
                };
                let mut old_steps = std::mem::take(&mut status.steps);
                status.steps = phase
                    .steps
                    .iter()
                    .map(|step| match old_steps.iter().position(|s| s.name == step.name) {
                        Some(at) => old_steps.remove(at),
                        None => {
                            StepStatus { name: step.name.clone(), status: NEVER_RUN.into(), message: String::new() }
                        }
                    })
                    .collect();
                status
            })
            .collect();
        statuses.insert(name.clone(), entry);
    }
}

/// Ends a running plan by hand, the way out of a step stuck in transient errors (kudo#1764,
/// where users hand-set `spec.planExecution.status` to `FATAL_ERROR`): the plan, and every
/// phase and step that started and has not completed, become `FATAL_ERROR` with `message`.
/// Completed and never-started ones stay as they are, and nothing in the cluster is touched.
pub fn abandon(status: &mut PlanStatus, message: &str) {
    status.status = FATAL_ERROR.into();
    status.message = message.to_string();
    let started = |s: &str| matches!(s, IN_PROGRESS | ERROR);
    for phase in &mut status.phases {
        for step in phase.steps.iter_mut().filter(|s| started(&s.status)) {
            step.status = FATAL_ERROR.into();
            step.message = message.to_string();
        }
        if started(&phase.status) {
            phase.status = FATAL_ERROR.into();
            phase.message = message.to_string();
        }
    }
}

/// Makes a plan execution that ended in `FATAL_ERROR` run again from its first unfinished
/// step (kudo#1752): what failed is `PENDING` again, with its message cleared; completed
/// phases and steps stay complete, so the next pass starts where the plan stopped.
pub fn retry(status: &mut PlanStatus) {
    status.status = PENDING.into();
    status.message.clear();
    for phase in &mut status.phases {
        for step in phase.steps.iter_mut().filter(|s| s.status == FATAL_ERROR) {
            step.status = PENDING.into();
            step.message.clear();
        }
        if phase.status == FATAL_ERROR {
            phase.status = PENDING.into();
            phase.message.clear();
        }
    }
}

/// What runs the tasks a pass visits. Async because the controller's tasks call the API
/// server; the pass itself decides nothing from time or I/O.
pub trait Tasks {
    fn run(&mut self, visit: Visit<'_>) -> impl Future<Output = TaskOutcome> + Send;
}

/// Runs one pass of `plan` over `status` (shaped as [`fresh_status`] made it), asking `tasks`
/// about every task it visits.
pub async fn execute(name: &str, plan: &Plan, status: &mut PlanStatus, tasks: &mut impl Tasks) {
    if is_terminal(&status.status) {
        return;
    }
    status.status = IN_PROGRESS.into();
    let mut all_phases = true;
    for (phase, phase_status) in plan.phases.iter().zip(status.phases.iter_mut()) {
        if phase_status.status == COMPLETE {
            continue;
        }
        if is_running(&phase_status.status) {
            phase_status.status = IN_PROGRESS.into();
        }
        let mut all_steps = true;
        for (step, step_status) in phase.steps.iter().zip(phase_status.steps.iter_mut()) {
            if step_status.status == COMPLETE {
                continue;
            }
            if is_running(&step_status.status) {
                step_status.status = IN_PROGRESS.into();
            }
            let mut all_tasks = true;
            for task in &step.tasks {
                let visit = Visit { plan: name, phase: &phase.name, step: &step.name, task };
                match tasks.run(visit).await {
                    TaskOutcome::Done => {}
                    TaskOutcome::Pending => all_tasks = false,
                    TaskOutcome::Transient(error) => {
                        all_tasks = false;
                        step_status.status = ERROR.into();
                        step_status.message = format!(
                            "A transient error when executing task {name}.{}.{}.{task}. Will retry. {error}",
                            phase.name, step.name
                        );
                    }
                    TaskOutcome::Fatal(error) => {
                        step_status.status = FATAL_ERROR.into();
                        step_status.message = error;
                        phase_status.status = FATAL_ERROR.into();
                        status.status = FATAL_ERROR.into();
                        return;
                    }
                }
            }
            if all_tasks {
                step_status.status = COMPLETE.into();
                step_status.message.clear();
                continue;
            }
            all_steps = false;
            if phase.strategy == "serial" {
                break;
            }
        }
        if all_steps {
            phase_status.status = COMPLETE.into();
            continue;
        }
        all_phases = false;
        if plan.strategy == "serial" {
            break;
        }
    }
    if all_phases {
        status.status = COMPLETE.into();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use maestro_package::types::{Phase, Step};

    /// A step: its name and tasks.
    type StepSpec<'a> = (&'a str, &'a [&'a str]);
    /// A phase: its name, strategy and steps.
    type PhaseSpec<'a> = (&'a str, &'a str, &'a [StepSpec<'a>]);

    /// A plan of phases.
    fn plan(strategy: &str, phases: &[PhaseSpec<'_>]) -> Plan {
        Plan {
            strategy: strategy.into(),
            phases: phases
                .iter()
                .map(|(name, strategy, steps)| Phase {
                    name: name.to_string(),
                    strategy: strategy.to_string(),
                    steps: steps
                        .iter()
                        .map(|(name, tasks)| Step {
                            name: name.to_string(),
                            tasks: tasks.iter().map(|t| t.to_string()).collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Tasks that answer from a script and remember what was asked.
    struct Scripted<'a> {
        outcomes: &'a BTreeMap<&'a str, TaskOutcome>,
        visited: Vec<String>,
    }

    impl Tasks for Scripted<'_> {
        fn run(&mut self, visit: Visit<'_>) -> impl Future<Output = TaskOutcome> + Send {
            self.visited.push(visit.task.to_string());
            let outcome = self.outcomes.get(visit.task).cloned().unwrap_or(TaskOutcome::Pending);
            async move { outcome }
        }
    }

    /// Runs a pass where the tasks in `done` finish, `errors` fail transiently, `fatal` for
    /// good; returns the tasks visited, in order.
    fn pass(plan: &Plan, status: &mut PlanStatus, outcomes: &BTreeMap<&str, TaskOutcome>) -> Vec<String> {
        let mut tasks = Scripted { outcomes, visited: Vec::new() };
        futures::executor::block_on(execute("deploy", plan, status, &mut tasks));
        tasks.visited
    }

    fn statuses(status: &PlanStatus) -> Vec<String> {
        let mut out = vec![status.status.clone()];
        for phase in &status.phases {
            out.push(format!("{}={}", phase.name, phase.status));
            out.extend(phase.steps.iter().map(|s| format!("{}.{}={}", phase.name, s.name, s.status)));
        }
        out
    }

    #[test]
    fn a_serial_phase_stops_at_its_first_unfinished_step() {
        let plan = plan("serial", &[("p", "serial", &[("a", &["ta"]), ("b", &["tb"])])]);
        let mut status = fresh_status("deploy", &plan, "u1");
        assert_eq!(pass(&plan, &mut status, &BTreeMap::new()), ["ta"], "b waits for a");
        assert_eq!(statuses(&status), ["IN_PROGRESS", "p=IN_PROGRESS", "p.a=IN_PROGRESS", "p.b=PENDING"]);
        let done = BTreeMap::from([("ta", TaskOutcome::Done)]);
        assert_eq!(pass(&plan, &mut status, &done), ["ta", "tb"], "a finished: this pass goes on to b");
        let all = BTreeMap::from([("ta", TaskOutcome::Done), ("tb", TaskOutcome::Done)]);
        assert_eq!(pass(&plan, &mut status, &all), ["tb"], "a complete steps is not visited again");
        assert_eq!(statuses(&status), ["COMPLETE", "p=COMPLETE", "p.a=COMPLETE", "p.b=COMPLETE"]);
        assert!(pass(&plan, &mut status, &all).is_empty(), "a terminal plan does nothing");
    }

    #[test]
    fn anything_but_serial_is_parallel_including_an_omitted_strategy() {
        for strategy in ["parallel", "", "Serial"] {
            let plan =
                plan(strategy, &[("p", strategy, &[("a", &["ta"]), ("b", &["tb"])]), ("q", "", &[("c", &["tc"])])]);
            let mut status = fresh_status("deploy", &plan, "u1");
            let visited = pass(&plan, &mut status, &BTreeMap::from([("tb", TaskOutcome::Done)]));
            assert_eq!(visited, ["ta", "tb", "tc"], "strategy {strategy:?}: an unfinished item blocks nothing");
            assert_eq!(status.phases[0].steps[1].status, COMPLETE);
        }
    }

    #[test]
    fn every_task_of_an_unfinished_step_runs_on_every_pass() {
        let plan = plan("serial", &[("p", "serial", &[("a", &["t1", "t2"])])]);
        let mut status = fresh_status("deploy", &plan, "u1");
        let first = BTreeMap::from([("t1", TaskOutcome::Done)]);
        assert_eq!(pass(&plan, &mut status, &first), ["t1", "t2"]);
        assert_eq!(pass(&plan, &mut status, &first), ["t1", "t2"], "t1 again: tasks must be idempotent");
    }

    #[test]
    fn a_transient_error_marks_the_step_and_is_retried_a_fatal_one_ends_the_plan() {
        let plan = plan("serial", &[("p", "parallel", &[("a", &["ta"]), ("b", &["tb"])])]);
        let mut status = fresh_status("deploy", &plan, "u1");
        let transient = BTreeMap::from([("ta", TaskOutcome::Transient("the API server said 503".into()))]);
        assert_eq!(pass(&plan, &mut status, &transient), ["ta", "tb"], "an error in a parallel phase blocks nothing");
        assert_eq!(status.phases[0].steps[0].status, ERROR);
        assert_eq!(
            status.phases[0].steps[0].message,
            "A transient error when executing task deploy.p.a.ta. Will retry. the API server said 503"
        );
        assert_eq!(status.status, IN_PROGRESS, "a plan is never ERROR, only its steps");
        let fatal = BTreeMap::from([("ta", TaskOutcome::Fatal("template: x.yaml:3: ...".into()))]);
        assert_eq!(pass(&plan, &mut status, &fatal), ["ta"], "nothing after a fatal error runs");
        assert_eq!(statuses(&status), ["FATAL_ERROR", "p=FATAL_ERROR", "p.a=FATAL_ERROR", "p.b=IN_PROGRESS"]);
        assert_eq!(status.phases[0].steps[0].message, "template: x.yaml:3: ...");
        assert!(pass(&plan, &mut status, &BTreeMap::new()).is_empty(), "FATAL_ERROR is terminal");
    }

    #[test]
    fn statuses_follow_the_plans_of_the_current_version_keeping_what_ran() {
        let v1 = BTreeMap::from([("deploy".to_string(), plan("serial", &[("p", "serial", &[("a", &["ta"])])]))]);
        let mut statuses = BTreeMap::new();
        ensure_statuses(&mut statuses, &v1);
        assert_eq!(statuses["deploy"].status, NEVER_RUN);
        assert_eq!(statuses["deploy"].phases[0].steps[0].status, NEVER_RUN);
        statuses.insert("deploy".into(), fresh_status("deploy", &v1["deploy"], "u1"));
        statuses.get_mut("deploy").unwrap().status = COMPLETE.into();
        let v2 = BTreeMap::from([
            ("deploy".to_string(), plan("serial", &[("p", "serial", &[("a", &["ta"]), ("b", &["tb"])])])),
            ("backup".to_string(), plan("serial", &[])),
        ]);
        ensure_statuses(&mut statuses, &v2);
        assert_eq!(statuses["deploy"].status, COMPLETE, "what ran is kept");
        assert_eq!(statuses["deploy"].uid, "u1");
        let steps: Vec<&str> = statuses["deploy"].phases[0].steps.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(steps, [PENDING, NEVER_RUN], "a new step never ran");
        assert_eq!(statuses["backup"].status, NEVER_RUN);
        ensure_statuses(&mut statuses, &BTreeMap::from([("backup".to_string(), plan("serial", &[]))]));
        assert_eq!(statuses.keys().collect::<Vec<_>>(), ["backup"], "plans the version no longer has are dropped");
    }

    #[test]
    fn a_serial_plan_waits_for_each_phase() {
        let plan = plan("serial", &[("one", "serial", &[("a", &["ta"])]), ("two", "serial", &[("b", &["tb"])])]);
        let mut status = fresh_status("deploy", &plan, "u1");
        assert_eq!(pass(&plan, &mut status, &BTreeMap::new()), ["ta"]);
        let visited: BTreeSet<String> =
            pass(&plan, &mut status, &BTreeMap::from([("ta", TaskOutcome::Done)])).into_iter().collect();
        assert_eq!(visited, BTreeSet::from(["ta".to_string(), "tb".to_string()]));
        assert_eq!(status.phases[0].status, COMPLETE);
        assert_eq!(status.phases[1].status, IN_PROGRESS);
    }

    #[test]
    fn abandoning_ends_what_started_and_retrying_resumes_there() {
        let plan: Plan = serde_yaml::from_str(
            "strategy: serial\nphases:\n- name: a\n  strategy: serial\n  steps:\n  - {name: one, tasks: [t]}\n  - {name: two, tasks: [t]}\n  - {name: three, tasks: [t]}\n",
        )
        .unwrap();
        let mut status = fresh_status("deploy", &plan, "u1");
        status.status = IN_PROGRESS.into();
        status.phases[0].status = IN_PROGRESS.into();
        status.phases[0].steps[0].status = COMPLETE.into();
        status.phases[0].steps[1].status = ERROR.into();
        abandon(&mut status, "abandoned");
        assert_eq!(status.status, FATAL_ERROR);
        let steps: Vec<(&str, &str)> =
            status.phases[0].steps.iter().map(|s| (s.status.as_str(), s.message.as_str())).collect();
        assert_eq!(steps, [(COMPLETE, ""), (FATAL_ERROR, "abandoned"), (PENDING, "")]);
        assert_eq!(status.phases[0].status, FATAL_ERROR);
        retry(&mut status);
        let steps: Vec<(&str, &str)> =
            status.phases[0].steps.iter().map(|s| (s.status.as_str(), s.message.as_str())).collect();
        assert_eq!(steps, [(COMPLETE, ""), (PENDING, ""), (PENDING, "")], "retried from the step that failed");
        assert_eq!((status.status.as_str(), status.phases[0].status.as_str()), (PENDING, PENDING));
    }
}
