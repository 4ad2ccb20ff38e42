//! One reconcile of one Instance (SPEC.md §2.5, KUDO's `instance_controller.go`), decided by
//! `maestro-operator` and carried out here:
//!
//! 1. read the Instance and its OperatorVersion fresh (never a cache that may lag the engine's
//!    own last write, which could start a plan twice);
//! 2. keep the cleanup finalizer when the version has a `cleanup` plan;
//! 3. choose a plan from what changed since the snapshot the engine last acted on, or refuse
//!    the change visibly (condition `SpecAccepted`, event `ChangeRefused`);
//! 4. run one pass of the active plan, then write the status (only when it changed: a write
//!    wakes the watch, and an unchanged pass must not loop);
//! 5. a terminal plan clears `spec.planExecution` (after its status is written, so a restart in
//!    between finds the plan terminal and clears it again); a finished `cleanup` releases the
//!    finalizer.
//!
//! Everything lives in the Instance, so a restarted engine resumes where it stopped: the same
//! uid continues its plan and completed steps are not run again.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use maestro_operator::health::{Health, health};
use maestro_operator::pass::{self, COMPLETE, FATAL_ERROR, NEVER_RUN, PENDING};
use maestro_operator::render;
use maestro_operator::select::{self, RETRY_ANNOTATION, Request, SNAPSHOT_ANNOTATION, Selection, Snapshot};
use maestro_package::crd::{InstanceStatus, OperatorVersion, PlanStatus};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::cluster::{CallError, Cluster};
use crate::instance::operator_version_resource;
use crate::instance::{self, CLEANUP_FINALIZER, Live};
use crate::tasks::Runner;
use kube::runtime::reflector::{ObjectRef, Store};
use maestro_operator::enhance::INSTANCE_LABEL;
use std::collections::HashMap;
use std::sync::Mutex;

/// What the watches keep, for reconciles to read without asking the API server: the
/// OperatorVersions (parsed once per resourceVersion) and the workloads readiness is judged on.
#[derive(Clone)]
pub struct Caches {
    pub operator_versions: Store<DynamicObject>,
    pub stateful_sets: Store<DynamicObject>,
    pub deployments: Store<DynamicObject>,
    pub pods: Store<DynamicObject>,
}

/// What every reconcile shares.
pub struct Context {
    pub cluster: Cluster,
    /// How long to wait before looking at a running plan again when nothing it waits for is
    /// watched (a watch event comes first otherwise).
    pub poll: Duration,
    /// The longest a running plan goes without a pass, watch events or not.
    pub resync: Duration,
    caches: Caches,
    metrics: crate::metrics::Metrics,
    /// OperatorVersions parsed, by namespace and name, with the resourceVersion parsed.
    parsed: Mutex<HashMap<Key, (String, Arc<OperatorVersion>)>>,
    /// The resourceVersion of the engine's last write of each Instance: a cached Instance older
    /// than that is read again, so no decision is made twice on a stale copy.
    written: Mutex<HashMap<Key, u64>>,
}

/// An object's namespace and name.
type Key = (String, String);

type Parsed = Result<Arc<OperatorVersion>, String>;

impl Context {
    pub fn new(
        cluster: Cluster,
        poll: Duration,
        resync: Duration,
        caches: Caches,
        metrics: crate::metrics::Metrics,
    ) -> Context {
        Context { cluster, poll, resync, caches, metrics, parsed: Mutex::default(), written: Mutex::default() }
    }

    fn wrote(&self, object: &DynamicObject) {
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        if let (Some(version), Ok(mut written)) = (resource_version(object), self.written.lock()) {
            written.insert(key, version);
        }
    }

    /// Drops what is remembered of an Instance that is gone.
    fn forget(&self, object: &DynamicObject) {
        if let Ok(mut written) = self.written.lock() {
            written.remove(&(object.namespace().unwrap_or_default(), object.name_any()));
        }
    }

    /// The Instance: the cached copy unless the engine has written a newer one since.
    async fn instance(&self, cached: &DynamicObject) -> Result<Option<DynamicObject>, CallError> {
        let key = (cached.namespace().unwrap_or_default(), cached.name_any());
        let last = self.written.lock().ok().and_then(|w| w.get(&key).copied());
        match (last, resource_version(cached)) {
            (Some(last), Some(seen)) if seen < last => instance::get(&self.cluster.client, &key.0, &key.1).await,
            _ => Ok(Some(cached.clone())),
        }
    }

    /// The OperatorVersion, from the watch's store (read from the API server when the store
    /// does not have it yet), parsed once per resourceVersion.
    async fn operator_version(&self, namespace: &str, name: &str) -> Result<Option<Parsed>, CallError> {
        let reference = ObjectRef::new_with(name, operator_version_resource()).within(namespace);
        let Some(object) = self.caches.operator_versions.get(&reference) else {
            let read = instance::operator_version(&self.cluster.client, namespace, name).await?;
            return Ok(read.map(|parsed| parsed.map(Arc::new)));
        };
        let key = (namespace.to_string(), name.to_string());
        let version = object.resource_version().unwrap_or_default();
        if let Some((seen, parsed)) = self.parsed.lock().ok().and_then(|p| p.get(&key).cloned())
            && seen == version
        {
            return Ok(Some(Ok(parsed)));
        }
        let parsed = serde_json::to_value(object.as_ref())
            .map_err(|e| e.to_string())
            .and_then(|v| {
                serde_json::from_value::<OperatorVersion>(v)
                    .map_err(|e| format!("OperatorVersion {name:?} is malformed: {e}"))
            })
            .map(Arc::new);
        if let (Ok(parsed), Ok(mut cache)) = (&parsed, self.parsed.lock()) {
            cache.insert(key, (version, parsed.clone()));
        }
        Ok(Some(parsed))
    }
}

fn resource_version(object: &DynamicObject) -> Option<u64> {
    object.metadata.resource_version.as_deref()?.parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Call(#[from] CallError),
}

/// The controller's reconcile function.
pub async fn reconcile(object: Arc<DynamicObject>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let span =
        tracing::info_span!("reconcile", instance = %format!("{namespace}/{name}"), plan = tracing::field::Empty);
    let result = reconcile_cached(&context, &object).instrument(span).await;
    context.metrics.reconciled(result.is_ok());
    result
}

/// What happens after a failed reconcile: look again soon.
pub fn error_policy(_: Arc<DynamicObject>, error: &ReconcileError, context: Arc<Context>) -> Action {
    tracing::warn!(%error, "reconcile failed; retrying");
    Action::requeue(context.poll)
}

async fn reconcile_cached(context: &Context, cached: &DynamicObject) -> Result<Action, ReconcileError> {
    let client = &context.cluster.client;
    let namespace = cached.namespace().unwrap_or_default();
    let namespace = namespace.as_str();
    let Some(object) = context.instance(cached).await? else {
        context.forget(cached);
        return Ok(Action::await_change());
    };
    let live = match Live::read(&object) {
        Ok(live) => live,
        Err(malformed) => {
            tracing::warn!(%malformed, "instance skipped");
            return Ok(Action::await_change());
        }
    };
    let reference = &live.instance.spec.operator_version;
    let version_namespace = if reference.namespace.is_empty() { namespace } else { &reference.namespace };
    let operator_version = match context.operator_version(version_namespace, &reference.name).await? {
        Some(Ok(found)) => found,
        missing => {
            let why = match missing {
                Some(Err(malformed)) => malformed,
                _ => format!("OperatorVersion {:?} does not exist in namespace {version_namespace:?}", reference.name),
            };
            let mut status = live.instance.status.clone().unwrap_or_default();
            if accept(&mut status.conditions, Err(("InvalidOperatorVersion", &why))) {
                instance::event(client, &live, true, "InvalidOperatorVersion", &why).await;
                let written = instance::patch_status(client, &live, json!({"conditions": status.conditions})).await?;
                context.wrote(&written);
            }
            // The OperatorVersion watch wakes the Instance when the version appears.
            return Ok(Action::requeue(context.resync));
        }
    };
    Reconcile { context, live, operator_version }.run().await
}

struct Reconcile<'a> {
    context: &'a Context,
    live: Live,
    operator_version: Arc<OperatorVersion>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Past KUDO, which leaves a running step's message empty: an unfinished step says what it
/// waits for (`plan status` shows it), e.g. `statefulset ns/zk: waiting for 2 pods to be ready`.
fn say_what_steps_wait_for(
    status: &mut maestro_package::crd::PlanStatus,
    waiting: &std::collections::BTreeMap<(String, String), Vec<String>>,
) {
    for phase in &mut status.phases {
        for step in &mut phase.steps {
            let Some(reasons) = waiting.get(&(phase.name.clone(), step.name.clone())) else { continue };
            if step.status == pass::IN_PROGRESS {
                let mut message = format!("waiting: {}", reasons.join("; "));
                if message.len() > 512 {
                    let cut = (0..=509).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
                    message.truncate(cut);
                    message.push_str("...");
                }
                step.message = message;
            }
        }
    }
}

/// Sets a condition, moving `lastTransitionTime` only when its status changes. Returns whether
/// anything changed.
fn set_condition(conditions: &mut Vec<Value>, kind: &str, status: &str, reason: &str, message: &str) -> bool {
    let position = conditions.iter().position(|c| c.get("type").and_then(Value::as_str) == Some(kind));
    let old = position.map(|at| conditions[at].clone());
    let field = |name: &str| old.as_ref().and_then(|c| c.get(name)).and_then(Value::as_str).map(str::to_string);
    if field("status").as_deref() == Some(status)
        && field("reason").as_deref() == Some(reason)
        && field("message").as_deref() == Some(message)
    {
        return false;
    }
    let transition = match field("status") {
        Some(previous) if previous == status => field("lastTransitionTime").unwrap_or_else(now),
        _ => now(),
    };
    let condition =
        json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": transition});
    match position {
        Some(at) => conditions[at] = condition,
        None => conditions.push(condition),
    }
    true
}

/// The `SpecAccepted` condition: true, or false with the rule that refused the change. Returns
/// whether it changed (and so whether an event is due).
fn accept(conditions: &mut Vec<Value>, verdict: Result<(), (&str, &str)>) -> bool {
    match verdict {
        Ok(()) => {
            let refused = conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("SpecAccepted")
                    && c.get("status").and_then(Value::as_str) == Some("False")
            });
            refused && set_condition(conditions, "SpecAccepted", "True", "Accepted", "")
        }
        Err((reason, rule)) => set_condition(conditions, "SpecAccepted", "False", reason, rule),
    }
}

impl Reconcile<'_> {
    fn client(&self) -> &kube::Client {
        &self.context.cluster.client
    }

    async fn run(mut self) -> Result<Action, ReconcileError> {
        let original = self.live.instance.status.clone().unwrap_or_default();
        let mut status = original.clone();
        pass::ensure_statuses(&mut status.plan_status, &self.operator_version.spec.plans);
        if let Some(action) = self.keep_finalizer(&status).await? {
            return Ok(action);
        }
        if let Some(action) = self.retry(&mut status).await? {
            return Ok(action);
        }
        if let Some(action) = self.select(&mut status).await? {
            return Ok(action);
        }
        let (action, finished) = self.execute(&mut status).await;
        let idle = finished.is_none() && self.active(&status).is_none();
        if idle || status.plan_status != original.plan_status {
            self.readiness(&mut status);
        }
        if status != original {
            let status = serde_json::to_value(&status).unwrap_or(Value::Null);
            let written = instance::patch_status(self.client(), &self.live, status).await?;
            self.context.wrote(&written);
            // The spec write that may follow is guarded by this resourceVersion.
            self.live.resource_version = written.resource_version().unwrap_or_default();
        }
        if let Some((plan, state)) = finished {
            self.finish(&plan, &state).await?;
        }
        Ok(action)
    }

    /// The plan being executed: named in `spec.planExecution`, with the same uid in its status,
    /// not terminal.
    fn active(&self, status: &InstanceStatus) -> Option<String> {
        let execution = &self.live.instance.spec.plan_execution;
        let plan = status.plan_status.get(&execution.plan_name)?;
        (plan.uid == execution.uid && !pass::is_terminal(&plan.status)).then(|| execution.plan_name.clone())
    }

    /// Adds KUDO's cleanup finalizer to an Instance whose version has a cleanup plan that never
    /// ran, and removes it when there is nothing (more) to clean up.
    async fn keep_finalizer(&mut self, status: &InstanceStatus) -> Result<Option<Action>, ReconcileError> {
        let has_cleanup = self.operator_version.spec.plans.contains_key("cleanup");
        let cleanup = status.plan_status.get("cleanup").map(|p| p.status.as_str());
        let holds = self.live.finalizers.iter().any(|f| f == CLEANUP_FINALIZER);
        let add = !self.live.deleting && has_cleanup && !holds && matches!(cleanup, None | Some(NEVER_RUN));
        let remove = holds && (!has_cleanup || (self.live.deleting && cleanup == Some(COMPLETE)));
        if !(add || remove) {
            return Ok(None);
        }
        let mut finalizers = self.live.finalizers.clone();
        if add {
            finalizers.push(CLEANUP_FINALIZER.into());
        } else {
            finalizers.retain(|f| f != CLEANUP_FINALIZER);
        }
        match instance::patch_main(self.client(), &self.live, json!({"metadata": {"finalizers": finalizers}})).await {
            Ok(object) => {
                self.context.wrote(&object);
                if remove && self.live.deleting {
                    tracing::info!("cleanup finished; finalizer removed");
                    return Ok(Some(Action::await_change()));
                }
                self.live = Live::read(&object).map_err(|_| CallError::Unreachable("unreadable answer".into()))?;
                Ok(None)
            }
            Err(err) if err.is_conflict() => Ok(Some(Action::requeue(Duration::from_millis(50)))),
            Err(err) => Err(err.into()),
        }
    }

    /// Steps 3 of the module doc: starts the selected plan, or records why a change is refused.
    async fn select(&mut self, status: &mut InstanceStatus) -> Result<Option<Action>, ReconcileError> {
        let spec = &self.live.instance.spec;
        let previous = Snapshot::from_annotations(&self.live.instance.metadata.annotations);
        let current = Snapshot::of(spec);
        let execution = &spec.plan_execution;
        let running = self.active(status);
        let requested = (!execution.plan_name.is_empty()
            && status.plan_status.get(&execution.plan_name).map(|p| p.uid.as_str()) != Some(execution.uid.as_str()))
        .then_some(execution.plan_name.as_str());
        let cleanup_ran = status.plan_status.get("cleanup").is_some_and(|p| p.status != NEVER_RUN);
        let request = Request {
            previous: previous.as_ref(),
            current: &current,
            plans: Some(&self.operator_version.spec.plans),
            parameters: &self.operator_version.spec.parameters,
            requested,
            running: running.as_deref(),
            deleting: self.live.deleting,
            cleanup_ran,
        };
        let previous_values = previous.as_ref().map(|p| &p.parameters);
        let checked = match render::undeclared_change(request.parameters, previous_values, &current.parameters) {
            Some(undeclared) => Err(undeclared),
            None => render::check_declared(request.parameters, &current.parameters),
        };
        let verdict = match checked {
            // KUDO's webhook refused such a spec; a plan started on it could only fail.
            Err(invalid) if !self.live.deleting => Selection::Refused(invalid),
            _ => select::select(&request),
        };
        match verdict {
            Selection::Nothing => {
                if accept(&mut status.conditions, Ok(())) {
                    tracing::info!("the change refused earlier is accepted now");
                }
                Ok(None)
            }
            Selection::Refused(rule) => {
                if accept(&mut status.conditions, Err(("ChangeRefused", &rule))) {
                    tracing::info!(%rule, "change refused");
                    instance::event(self.client(), &self.live, true, "ChangeRefused", &rule).await;
                }
                Ok(None)
            }
            Selection::Run(plan) => {
                let uid = match requested {
                    Some(asked) if asked == plan && !execution.uid.is_empty() => execution.uid.clone(),
                    _ => uuid::Uuid::new_v4().to_string(),
                };
                self.start(status, &plan, &uid, &current).await
            }
        }
    }

    /// `maestro operator plan retry`: the retry annotation names a plan execution that ended
    /// in `FATAL_ERROR`. Its failed steps become `PENDING` (status first), then the spec names
    /// it again and the annotation goes; a restart between the two writes finds the plan
    /// pending and only writes the spec. A request for anything else is dropped.
    async fn retry(&mut self, status: &mut InstanceStatus) -> Result<Option<Action>, ReconcileError> {
        let Some(uid) = self.live.instance.metadata.annotations.get(RETRY_ANNOTATION).cloned() else {
            return Ok(None);
        };
        let idle = self.active(status).is_none();
        let found = status.plan_status.iter().find(|(_, p)| p.uid == uid).map(|(n, p)| (n.clone(), p.clone()));
        let retried = match found {
            Some((name, mut plan)) if idle && plan.status == FATAL_ERROR => {
                pass::retry(&mut plan);
                plan.last_updated_timestamp = Some(now());
                status.plan_status.insert(name.clone(), plan);
                let value = serde_json::to_value(&*status).unwrap_or(Value::Null);
                let written = instance::patch_status(self.client(), &self.live, value).await?;
                self.context.wrote(&written);
                self.live.resource_version = written.resource_version().unwrap_or_default();
                Some(name)
            }
            Some((name, plan)) if idle && !pass::is_terminal(&plan.status) => Some(name),
            _ => None,
        };
        let mut patch = json!({"metadata": {"annotations": {RETRY_ANNOTATION: null}}});
        if let Some(name) = &retried {
            patch["spec"] = json!({"planExecution": {"planName": name, "uid": uid, "status": PENDING}});
        }
        let object = match instance::patch_main(self.client(), &self.live, patch).await {
            Ok(object) => object,
            Err(err) if err.is_conflict() => return Ok(Some(Action::requeue(Duration::from_millis(50)))),
            Err(err) => return Err(err.into()),
        };
        self.context.wrote(&object);
        self.live = Live::read(&object).map_err(|_| CallError::Unreachable("unreadable answer".into()))?;
        match retried {
            Some(name) => {
                tracing::info!(plan = %name, uid, "plan retried from its first unfinished step");
                let said = format!("plan {name} runs again from its first unfinished step");
                instance::event(self.client(), &self.live, false, "PlanRetried", &said).await;
            }
            None => tracing::info!(uid, "retry request dropped: no failed plan execution of that uid is idle"),
        }
        Ok(None)
    }

    /// Starts `plan` under `uid`: first the spec (what runs) and the snapshot (what it acts
    /// on), then, with the pass, the status.
    async fn start(
        &mut self,
        status: &mut InstanceStatus,
        plan: &str,
        uid: &str,
        current: &Snapshot,
    ) -> Result<Option<Action>, ReconcileError> {
        let patch = json!({
            "metadata": {"annotations": {SNAPSHOT_ANNOTATION: current.to_annotation()}},
            "spec": {"planExecution": {"planName": plan, "uid": uid, "status": PENDING}},
        });
        let object = match instance::patch_main(self.client(), &self.live, patch).await {
            Ok(object) => {
                self.context.wrote(&object);
                object
            }
            Err(err) if err.is_conflict() => return Ok(Some(Action::requeue(Duration::from_millis(50)))),
            Err(err) => return Err(err.into()),
        };
        self.live = Live::read(&object).map_err(|_| CallError::Unreachable("unreadable answer".into()))?;
        let Some(steps) = self.operator_version.spec.plans.get(plan) else { return Ok(None) };
        let mut fresh = pass::fresh_status(plan, steps, uid);
        fresh.last_updated_timestamp = Some(now());
        status.plan_status.insert(plan.to_string(), fresh);
        accept(&mut status.conditions, Ok(()));
        if matches!(plan, "deploy" | "update" | "upgrade") {
            set_condition(
                &mut status.conditions,
                "Ready",
                "Unknown",
                "PlanInProgress",
                &format!("plan {plan} is running"),
            );
        }
        tracing::info!(plan, uid, "plan started");
        self.context.metrics.plan(plan, "started");
        instance::event(self.client(), &self.live, false, "PlanStarted", &format!("Execution of plan {plan} started"))
            .await;
        Ok(None)
    }

    /// Step 4: one pass of the active plan. Returns when to look again and, for a plan that
    /// became terminal, its name and status.
    async fn execute(&mut self, status: &mut InstanceStatus) -> (Action, Option<(String, String)>) {
        let execution = self.live.instance.spec.plan_execution.clone();
        let stale = status
            .plan_status
            .get(&execution.plan_name)
            .filter(|p| p.uid == execution.uid && pass::is_terminal(&p.status));
        if let Some(stale) = stale {
            // Terminal already (a restart between the status write and the spec write).
            return (Action::await_change(), Some((execution.plan_name.clone(), stale.status.clone())));
        }
        let Some(plan_name) = self.active(status) else { return (Action::await_change(), None) };
        tracing::Span::current().record("plan", plan_name.as_str());
        let Some(plan) = self.operator_version.spec.plans.get(&plan_name).cloned() else {
            return (Action::await_change(), None);
        };
        let Some(mut plan_status) = status.plan_status.get(&plan_name).cloned() else {
            return (Action::await_change(), None);
        };
        if execution.status == FATAL_ERROR {
            return self.abandon(status, plan_name, plan_status).await;
        }
        let before = plan_status.clone();
        let mut runner = Runner {
            cluster: &self.context.cluster,
            live: &self.live,
            operator_version: &self.operator_version,
            plan_uid: &execution.uid,
            unwatched_wait: false,
            transient: false,
            waiting: Default::default(),
        };
        let started = std::time::Instant::now();
        pass::execute(&plan_name, &plan, &mut plan_status, &mut runner).await;
        self.context.metrics.pass(started.elapsed());
        let (unwatched, transient) = (runner.unwatched_wait, runner.transient);
        say_what_steps_wait_for(&mut plan_status, &runner.waiting);
        if plan_status != before {
            plan_status.last_updated_timestamp = Some(now());
        }
        let state = plan_status.status.clone();
        status.plan_status.insert(plan_name.clone(), plan_status);
        if pass::is_terminal(&state) {
            return (Action::await_change(), Some((plan_name, state)));
        }
        let wait = if transient || unwatched { self.context.poll } else { self.context.resync };
        (Action::requeue(wait), None)
    }

    /// A running plan whose `spec.planExecution.status` someone set to `FATAL_ERROR` (`maestro
    /// operator plan abandon`, or KUDO's hand edit) ends there: what started and did not
    /// complete becomes `FATAL_ERROR`, nothing in the cluster is touched, and a later change
    /// or trigger can start a plan again.
    async fn abandon(
        &mut self,
        status: &mut InstanceStatus,
        plan_name: String,
        mut plan_status: PlanStatus,
    ) -> (Action, Option<(String, String)>) {
        let message = "abandoned: spec.planExecution.status was set to FATAL_ERROR";
        pass::abandon(&mut plan_status, message);
        plan_status.last_updated_timestamp = Some(now());
        status.plan_status.insert(plan_name.clone(), plan_status);
        tracing::info!(plan = %plan_name, "plan abandoned");
        let said = format!("plan {plan_name} abandoned; its unfinished steps are FATAL_ERROR");
        instance::event(self.client(), &self.live, true, "PlanAbandoned", &said).await;
        (Action::await_change(), Some((plan_name, FATAL_ERROR.into())))
    }

    /// Step 5: a terminal plan leaves `spec.planExecution`, with an event.
    async fn finish(&mut self, plan: &str, state: &str) -> Result<(), ReconcileError> {
        let patch = json!({"spec": {"planExecution": {"planName": "", "uid": "", "status": ""}}});
        match instance::patch_main(self.client(), &self.live, patch).await {
            Ok(object) => self.context.wrote(&object),
            Err(err) if err.is_conflict() => return Ok(()),
            Err(err) => return Err(err.into()),
        }
        tracing::info!(plan, state, "plan finished");
        self.context.metrics.plan(plan, if state == FATAL_ERROR { "fatal" } else { "complete" });
        let (warning, reason) =
            if state == FATAL_ERROR { (true, "FailedTerminalState") } else { (false, "PlanFinished") };
        let message = format!("Execution of plan {plan} finished with status {state}");
        instance::event(self.client(), &self.live, warning, reason, &message).await;
        Ok(())
    }

    /// The `Ready` condition (KEP-34): while no plan runs, whether the Instance's Deployments,
    /// StatefulSets and Pods are healthy; a plan that ended fatally says so. KUDO also listed
    /// ReplicaSets and DaemonSets, which its health rules count as healthy at once. A pod that
    /// ran to completion (a Job's) does not make the Instance unready, as it did in KUDO.
    fn readiness(&self, status: &mut InstanceStatus) {
        if self.active(status).is_some() {
            return;
        }
        let latest = pass::latest(status.plan_status.values());
        if let Some(plan) = latest.filter(|p| p.status == FATAL_ERROR) {
            let message = format!("plan {} failed", plan.name);
            set_condition(&mut status.conditions, "Ready", "False", "PlanInFatalError", &message);
            return;
        }
        let caches = &self.context.caches;
        let mine = |object: &Arc<DynamicObject>| {
            object.namespace().as_deref() == Some(self.live.namespace())
                && object.labels().get(INSTANCE_LABEL).map(String::as_str) == Some(self.live.name())
        };
        let mut waiting = Vec::new();
        let finished = |object: &Arc<DynamicObject>| {
            object.data.pointer("/status/phase").and_then(Value::as_str) == Some("Succeeded")
        };
        for store in [&caches.deployments, &caches.stateful_sets, &caches.pods] {
            for object in store.state().iter().filter(|o| mine(o) && !finished(o)) {
                if let Health::Waiting(why) | Health::Error(why) | Health::Failed(why) =
                    health(&serde_json::to_value(object.as_ref()).unwrap_or(Value::Null))
                {
                    waiting.push(why);
                }
            }
        }
        if waiting.is_empty() {
            set_condition(&mut status.conditions, "Ready", "True", "ResourcesReady", "");
        } else {
            set_condition(&mut status.conditions, "Ready", "False", "ResourceNotReady", &waiting.join("; "));
        }
    }
}
