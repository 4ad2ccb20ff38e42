//! The tasks of SPEC.md §3 carried out against the cluster, each answering the pass with a
//! [`TaskOutcome`]: `Apply` (server-side apply of the rendered, enhanced objects, done when all
//! are healthy), `Delete` (foreground, done when all are gone), `Toggle`, `Dummy`,
//! `KudoOperator` (a child Instance) and `Pipe` (files copied out of a pod, see [`crate::pipe`]).

use std::collections::BTreeMap;

use kube::api::DeleteParams;
use maestro_operator::child;
use maestro_operator::depends::{self, Dependency};
use maestro_operator::enhance::{self, OPERATOR_LABEL};
use maestro_operator::health::{Health, health};
use maestro_operator::pass::{self, TaskOutcome, Visit};
use maestro_operator::render::{self, Scope};
use maestro_package::crd::OperatorVersion;
use maestro_package::types::{Task, TaskSpec};
use serde_json::Value;

use crate::cluster::{CallError, Cluster, Kind};
use crate::instance::{self, Live};
use crate::pipe::{PipeError, PipeRun, Progress};

/// Kinds the controller watches: waiting on one of these (namespaced, owned by the Instance)
/// needs no timer, the watch wakes the Instance up.
pub const WATCHED: [(&str, &str); 6] = [
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("v1", "Pod"),
    ("v1", "Service"),
    ("kudo.dev/v1beta1", "Instance"),
];

fn watched(object: &Value) -> bool {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
    WATCHED.contains(&(api_version, kind))
}

/// One pass's tasks for one Instance.
pub struct Runner<'a> {
    pub cluster: &'a Cluster,
    pub live: &'a Live,
    pub operator_version: &'a OperatorVersion,
    pub plan_uid: &'a str,
    /// Something the pass waits for has no watch (a cluster-scoped or unwatched kind): the
    /// controller looks again soon instead of waiting for an event.
    pub unwatched_wait: bool,
    /// A task failed transiently on this pass: the controller retries soon.
    pub transient: bool,
    /// What each unfinished step waits for, by phase and step, for its status message.
    pub waiting: BTreeMap<(String, String), Vec<String>>,
}

impl pass::Tasks for Runner<'_> {
    async fn run(&mut self, visit: Visit<'_>) -> TaskOutcome {
        let outcome = self.run_task(&visit).await;
        self.transient |= matches!(outcome, TaskOutcome::Transient(_));
        outcome
    }
}

fn fatal(reason: &str, visit: &Visit<'_>, detail: impl std::fmt::Display) -> TaskOutcome {
    TaskOutcome::Fatal(format!("{reason}: task {}.{}.{}.{}: {detail}", visit.plan, visit.phase, visit.step, visit.task))
}

fn transient(error: CallError) -> TaskOutcome {
    TaskOutcome::Transient(error.to_string())
}

/// The worst of two outcomes: fatal, then transient, then pending, then done.
fn worst(a: TaskOutcome, b: TaskOutcome) -> TaskOutcome {
    let rank = |o: &TaskOutcome| match o {
        TaskOutcome::Done => 0,
        TaskOutcome::Pending => 1,
        TaskOutcome::Transient(_) => 2,
        TaskOutcome::Fatal(_) => 3,
    };
    if rank(&b) > rank(&a) { b } else { a }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Runner<'_> {
    fn task(&self, name: &str) -> Option<&Task> {
        self.operator_version.spec.tasks.iter().find(|t| t.name == name)
    }

    /// What the pass asks: run the task `visit` names.
    async fn run_task(&mut self, visit: &Visit<'_>) -> TaskOutcome {
        let Some(task) = self.task(visit.task).cloned() else {
            return fatal("UnknownTaskName", visit, "the operator version has no task of this name");
        };
        let outcome = match task.kind.as_str() {
            "Apply" => self.apply(visit, &task.spec.resources).await,
            "Delete" => self.delete(visit, &task.spec.resources).await,
            "Toggle" => self.toggle(visit, &task.spec).await,
            "Dummy" => dummy(visit, &task.spec),
            "KudoOperator" => self.kudo_operator(visit, &task.spec).await,
            "Pipe" => self.pipe(visit, &task.spec).await,
            other => fatal("TaskBuildError", visit, format!("unknown task kind {other:?}")),
        };
        tracing::debug!(task = visit.task, ?outcome, "task ran");
        outcome
    }

    fn wait(&mut self, visit: &Visit<'_>, why: String) {
        self.waiting.entry((visit.phase.to_string(), visit.step.to_string())).or_default().push(why);
    }

    fn parameters(&self) -> &BTreeMap<String, String> {
        &self.live.instance.spec.parameters
    }

    fn dot(&self, visit: &Visit<'_>) -> Result<render::Dot, String> {
        let scope = Scope {
            instance: self.live.name(),
            namespace: self.live.namespace(),
            plan: visit.plan,
            phase: visit.phase,
            step: visit.step,
        };
        let pipes = render::pipes(&self.operator_version.spec, visit.plan, self.live.name());
        render::data(&self.operator_version.spec, scope, self.parameters(), pipes)
    }

    /// The task's templates rendered and decoded; a render error is fatal.
    fn objects(&self, visit: &Visit<'_>, resources: &[String]) -> Result<Vec<Value>, TaskOutcome> {
        let dot = self.dot(visit).map_err(|e| fatal("InvalidParams", visit, e))?;
        render::render_objects(&self.operator_version.spec, resources, &dot)
            .map_err(|e| fatal("TaskRenderingError", visit, e))
    }

    fn context(&self, visit: &Visit<'_>) -> enhance::Context {
        let spec = &self.operator_version.spec;
        enhance::Context {
            operator: spec.operator.name.clone(),
            operator_version: spec.version.clone(),
            instance: self.live.name().to_string(),
            instance_uid: self.live.uid.clone(),
            namespace: self.live.namespace().to_string(),
            plan: visit.plan.to_string(),
            phase: visit.phase.to_string(),
            step: visit.step.to_string(),
            plan_uid: self.plan_uid.to_string(),
        }
    }

    async fn apply(&mut self, visit: &Visit<'_>, resources: &[String]) -> TaskOutcome {
        let mut objects = match self.objects(visit, resources) {
            Ok(objects) => objects,
            Err(outcome) => return outcome,
        };
        let context = self.context(visit);
        let mut kinds = Vec::with_capacity(objects.len());
        for object in &mut objects {
            let kind = match self.cluster.kind_of(object).await {
                Ok(kind) => kind,
                Err(err) => return transient(err),
            };
            kind.served(object);
            enhance::enhance(object, &context, kind.namespaced);
            kinds.push(kind);
        }
        if let Err(err) = self.hash_dependencies(&mut objects).await {
            return transient(err);
        }
        let mut outcome = TaskOutcome::Done;
        for (object, kind) in objects.iter().zip(&kinds) {
            let state = match self.apply_one(object, kind).await {
                Ok(live) => health(&live),
                Err(err) => return transient(err),
            };
            if !matches!(state, Health::Healthy) {
                tracing::debug!(object = %describe(object), ?state, "not healthy yet");
                self.unwatched_wait |= !(kind.namespaced && watched(object));
            }
            if let Health::Waiting(why) = &state {
                self.wait(visit, why.clone());
            }
            outcome = worst(outcome, state.outcome());
        }
        outcome
    }

    async fn apply_one(&self, object: &Value, kind: &Kind) -> Result<Value, CallError> {
        self.cluster.apply(kind, self.live.namespace(), object).await
    }

    /// Sets `kudo.dev/dependencies-hash` on pod templates: a referenced ConfigMap or Secret is
    /// taken from this task's own objects when it is one of them, else read from the cluster.
    async fn hash_dependencies(&self, objects: &mut [Value]) -> Result<(), CallError> {
        for index in 0..objects.len() {
            let dependencies = depends::dependencies(&objects[index]);
            if dependencies.is_empty() {
                continue;
            }
            let mut parts = Vec::with_capacity(dependencies.len());
            for dependency in &dependencies {
                let local = objects.iter().find(|o| is(o, dependency)).cloned();
                let found = match local {
                    Some(object) => Some(object),
                    None => self.read_dependency(dependency).await?,
                };
                parts.push(depends::contents(found.as_ref()));
            }
            depends::set_hash(&mut objects[index], &parts);
        }
        Ok(())
    }

    async fn read_dependency(&self, dependency: &Dependency) -> Result<Option<Value>, CallError> {
        let kind = self.cluster.kind("v1", dependency.kind).await?;
        let api = kind.api(&self.cluster.client, self.live.namespace());
        let object = crate::cluster::bounded(api.get_opt(&dependency.name)).await?;
        Ok(object.and_then(|o| serde_json::to_value(o).ok()))
    }

    async fn delete(&mut self, visit: &Visit<'_>, resources: &[String]) -> TaskOutcome {
        let objects = match self.objects(visit, resources) {
            Ok(objects) => objects,
            Err(outcome) => return outcome,
        };
        let mut outcome = TaskOutcome::Done;
        for object in &objects {
            let kind = match self.cluster.kind_of(object).await {
                Ok(kind) => kind,
                // KUDO skips objects of kinds the server does not know: nothing to delete.
                Err(CallError::UnknownKind(_)) => continue,
                Err(err) => return transient(err),
            };
            let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let api = kind.api(&self.cluster.client, self.live.namespace());
            match crate::cluster::bounded(api.delete(name, &DeleteParams::foreground())).await {
                Ok(_) => {}
                Err(err) if err.is_not_found() => continue,
                Err(err) => return transient(err),
            }
            match crate::cluster::bounded(api.get_opt(name)).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    self.unwatched_wait |= !(kind.namespaced && watched(object));
                    self.wait(visit, format!("{} is being deleted", describe(object)));
                    outcome = worst(outcome, TaskOutcome::Pending);
                }
                Err(err) => return transient(err),
            }
        }
        outcome
    }

    async fn toggle(&mut self, visit: &Visit<'_>, spec: &TaskSpec) -> TaskOutcome {
        let declared = self.operator_version.spec.parameters.iter().find(|p| p.name == spec.parameter);
        let value =
            self.parameters().get(&spec.parameter).cloned().or_else(|| declared.and_then(|p| p.default.clone()));
        let Some(value) = value else {
            return fatal("ToggleTaskError", visit, format!("parameter {:?} has no value", spec.parameter));
        };
        match parse_bool(&value) {
            Some(true) => self.apply(visit, &spec.resources).await,
            Some(false) => self.delete(visit, &spec.resources).await,
            None => fatal(
                "ToggleTaskError",
                visit,
                format!("parameter {:?} is {value:?}, which is not a boolean", spec.parameter),
            ),
        }
    }

    async fn kudo_operator(&mut self, visit: &Visit<'_>, spec: &TaskSpec) -> TaskOutcome {
        let parameters = if spec.parameter_file.is_empty() {
            BTreeMap::new()
        } else {
            let rendered = self
                .dot(visit)
                .and_then(|dot| render::text(&self.operator_version.spec, &spec.parameter_file, &dot))
                .and_then(|text| child::parameters(&spec.parameter_file, &text));
            match rendered {
                Ok(parameters) => parameters,
                Err(e) => return fatal("TaskRenderingError", visit, e),
            }
        };
        let made = match child::child(self.live.name(), spec, parameters) {
            Ok(made) => made,
            Err(e) => return fatal("TaskBuildError", visit, e),
        };
        let lineage = match self.lineage().await {
            Ok(lineage) => lineage,
            Err(err) => return transient(err),
        };
        if let Err(cycle) = child::cycle(&made, &lineage) {
            return fatal("CircularDependency", visit, cycle);
        }
        let object = child::object(&made, self.live.namespace(), self.live.name(), &self.live.uid);
        let kind = match self.cluster.kind_of(&object).await {
            Ok(kind) => kind,
            Err(err) => return transient(err),
        };
        match self.apply_one(&object, &kind).await {
            Ok(live) => {
                let state = health(&live);
                if let Health::Waiting(why) = &state {
                    self.wait(visit, why.clone());
                }
                state.outcome()
            }
            Err(err) => transient(err),
        }
    }

    async fn pipe(&mut self, visit: &Visit<'_>, spec: &TaskSpec) -> TaskOutcome {
        // The pod template names no pod (KUDO names it), so it is decoded here, not by
        // `render_objects`.
        let text = self.dot(visit).map_err(|e| fatal("InvalidParams", visit, e)).and_then(|dot| {
            render::text(&self.operator_version.spec, &spec.pod, &dot)
                .map_err(|e| fatal("TaskRenderingError", visit, e))
        });
        let pod = match text.and_then(|text| {
            serde_yaml::from_str::<Value>(&text)
                .map_err(|e| fatal("ResourceUnmarshalError", visit, format!("template {:?}: {e}", spec.pod)))
        }) {
            Ok(pod) => pod,
            Err(outcome) => return outcome,
        };
        let name = |suffix: &str| {
            render::pipe_name([self.live.name(), visit.plan, visit.phase, visit.step, visit.task, suffix])
        };
        let pod_name = name("pipepod");
        let pod = match maestro_operator::pipe::pod(pod, &pod_name, &spec.pipe) {
            Ok(pod) => pod,
            Err(e) => return fatal("ResourceValidationError", visit, e),
        };
        let context = self.context(visit);
        let run = PipeRun {
            cluster: self.cluster,
            context: &context,
            pod_name,
            artifacts: spec.pipe.iter().map(|p| (p.clone(), name(&p.key))).collect(),
        };
        match run.run(pod).await {
            Ok(Progress::Done) => TaskOutcome::Done,
            Ok(Progress::Waiting(why)) => {
                self.wait(visit, why);
                TaskOutcome::Pending
            }
            Err(PipeError::Fatal(why)) => fatal("PipeTaskError", visit, why),
            Err(PipeError::Transient(err)) => transient(err),
        }
    }

    /// The operators of this Instance and its ancestors (through Instance owner references),
    /// this one first.
    async fn lineage(&self) -> Result<Vec<String>, CallError> {
        let mut lineage = vec![self.operator_version.spec.operator.name.clone()];
        let mut owners = owner_instances(&self.live.instance.metadata.rest);
        for _ in 0..16 {
            let Some(owner) = owners.pop() else { break };
            let Some(parent) = instance::get(&self.cluster.client, self.live.namespace(), &owner).await? else {
                break;
            };
            let value = serde_json::to_value(&parent).unwrap_or(Value::Null);
            let operator = value.pointer(&format!("/metadata/labels/{}", OPERATOR_LABEL.replace('/', "~1")));
            lineage.extend(operator.and_then(Value::as_str).map(str::to_string));
            owners = value
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| r.get("kind").and_then(Value::as_str) == Some("Instance"))
                .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
        }
        Ok(lineage)
    }
}

fn owner_instances(rest: &BTreeMap<String, Value>) -> Vec<String> {
    rest.get("ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("kind").and_then(Value::as_str) == Some("Instance"))
        .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn dummy(visit: &Visit<'_>, spec: &TaskSpec) -> TaskOutcome {
    match (spec.want_err, spec.fatal, spec.done) {
        (true, true, _) => fatal("DummyTaskError", visit, "dummy error"),
        (true, false, _) => TaskOutcome::Transient("dummy error".into()),
        (false, _, true) => TaskOutcome::Done,
        (false, _, false) => TaskOutcome::Pending,
    }
}

fn is(object: &Value, dependency: &Dependency) -> bool {
    object.get("kind").and_then(Value::as_str) == Some(dependency.kind)
        && object.pointer("/metadata/name").and_then(Value::as_str) == Some(dependency.name.as_str())
}

fn describe(object: &Value) -> String {
    format!(
        "{}/{}",
        object.get("kind").and_then(Value::as_str).unwrap_or_default(),
        object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
    )
}
