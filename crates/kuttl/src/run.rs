//! Running a suite (SPEC.md §6.2): the suite's CRDs, manifests and commands first, then the
//! cases, `parallel` at a time, each in its own namespace; in a case, the steps in order:
//! deletes (waited for), commands, applies, then the asserts and errors until they hold or
//! the step's time is up. What a case created is deleted when it ends, with its namespace.
//!
//! Checks run when something they look at changes (watches on the kinds the step asserts),
//! not on kuttl's one-second poll; only assert commands and kinds the cluster does not serve
//! yet fall back to looking again every second.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::check::{self, Evaluation};
use crate::cluster::{Cluster, ClusterError, Kind, ObjectRef, text};
use crate::command::{self, Environment, Ran};
use crate::files::{Case, Step, documents};
use crate::model::{Collector, Command, ObjectReference, Suite};
use crate::report::{CaseReport, StepReport, SuiteReport};

/// kuttl's defaults.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_PARALLEL: usize = 8;
/// How often checks that nothing can watch are repeated.
const RECHECK: Duration = Duration::from_secs(1);

/// How to run, beyond what the suite file says (the command line wins).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The kubeconfig commands get as `$KUBECONFIG`.
    pub kubeconfig: PathBuf,
    /// Run KUDO CLI calls as this `maestro`'s `operator` commands.
    pub kudo_compat: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub parallel: Option<usize>,
    pub skip_delete: bool,
    /// More environment variables for every command.
    pub env: Vec<(String, String)>,
}

/// The cases of one test folder.
#[derive(Debug, Clone)]
pub struct TestDir {
    /// As the suite or the command line gave it.
    pub label: String,
    pub cases: Vec<Case>,
}

struct Settings<'a> {
    cluster: &'a Cluster,
    options: &'a Options,
    timeout: Duration,
    skip_delete: bool,
}

impl Settings<'_> {
    fn environment(&self, namespace: &str, dir: &Path) -> Environment {
        Environment {
            namespace: namespace.to_string(),
            kubeconfig: self.options.kubeconfig.clone(),
            dir: dir.to_path_buf(),
            kudo_compat: self.options.kudo_compat.clone(),
            timeout: self.timeout,
            env: self.options.env.clone(),
        }
    }
}

/// Runs the suite whose relative paths start at `base`.
pub async fn run(cluster: &Cluster, suite: &Suite, base: &Path, dirs: Vec<TestDir>, options: &Options) -> SuiteReport {
    let started = Instant::now();
    let timeout = options.timeout.or(suite.timeout.map(Duration::from_secs)).unwrap_or(DEFAULT_TIMEOUT);
    let settings = Settings { cluster, options, timeout, skip_delete: options.skip_delete || suite.skip_delete };
    let mut report = SuiteReport::default();
    let background = match set_up(&settings, suite, base, &mut report.setup).await {
        Ok(background) => background,
        Err(failure) => {
            report.setup_failure = Some(failure);
            report.duration = started.elapsed();
            return report;
        }
    };
    let shared = match &suite.namespace {
        Some(namespace) => match shared_namespace(cluster, namespace).await {
            Ok(made) => made,
            Err(failure) => {
                report.setup_failure = Some(failure);
                report.duration = started.elapsed();
                return report;
            }
        },
        None => None,
    };
    let parallel = options.parallel.or(suite.parallel).unwrap_or(DEFAULT_PARALLEL).max(1);
    let cases = dirs.into_iter().flat_map(|dir| dir.cases.into_iter().map(move |case| (dir.label.clone(), case)));
    let settings = &settings;
    let mut cases: Vec<CaseReport> = futures::stream::iter(cases)
        .map(|(label, case)| run_case(settings, suite.namespace.as_deref(), label, case))
        .buffer_unordered(parallel)
        .collect()
        .await;
    cases.sort_by(|a, b| (&a.test_dir, &a.name).cmp(&(&b.test_dir, &b.name)));
    report.cases = cases;
    if let (Some(namespace), false) = (shared, settings.skip_delete) {
        clean_up(cluster, "", &[namespace]).await;
    }
    drop(background);
    report.duration = started.elapsed();
    report
}

/// The suite's shared namespace, made before its cases; returned when this run made it (and
/// so deletes it at the end).
async fn shared_namespace(cluster: &Cluster, namespace: &str) -> Result<Option<Value>, String> {
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    match cluster.apply(&object, "").await {
        Ok((_, true)) => Ok(Some(object)),
        Ok((_, false)) => Ok(None),
        Err(e) => Err(format!("creating the suite's namespace {namespace}: {e}")),
    }
}

/// The suite's CRDs (waited for until established), manifests and commands; background
/// commands keep running while the returned children live.
async fn set_up(
    settings: &Settings<'_>,
    suite: &Suite,
    base: &Path,
    log: &mut Vec<String>,
) -> Result<Vec<tokio::process::Child>, String> {
    if let Some(dir) = &suite.crd_dir {
        let crds = apply_dir(settings.cluster, &base.join(dir), "default").await?;
        for name in &crds {
            established(settings, name).await?;
        }
        log.push(format!("{} CRDs from {dir} established", crds.len()));
    }
    for dir in &suite.manifest_dirs {
        let applied = apply_dir(settings.cluster, &base.join(dir), "default").await?;
        log.push(format!("{} objects applied from {dir}", applied.len()));
    }
    let environment = settings.environment("default", base);
    let mut background = Vec::new();
    for command in &suite.commands {
        if command.background {
            background.push(command::start_background(command, &environment)?);
            log.push(format!("started in the background: {}", command.command));
            continue;
        }
        let ran = command::run(command, &environment).await;
        log.push(describe(&ran));
        if !ran.success && !command.ignore_failure {
            return Err(format!("suite command {:?} failed: {}\n{}", ran.line, ran.detail, ran.output.trim_end()));
        }
    }
    Ok(background)
}

/// Applies every object of every YAML file in `dir`; returns their names.
async fn apply_dir(cluster: &Cluster, dir: &Path, namespace: &str) -> Result<Vec<String>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = read.filter_map(Result::ok).map(|e| e.path()).collect();
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")));
    files.sort();
    let mut names = Vec::new();
    for file in files {
        for object in documents(&file).map_err(|e| e.to_string())? {
            let (reference, _) = cluster.apply(&object, namespace).await.map_err(|e| e.to_string())?;
            names.push(reference.name);
        }
    }
    Ok(names)
}

/// Waits until a CRD's `Established` condition is true, looking again when CRDs change.
async fn established(settings: &Settings<'_>, name: &str) -> Result<(), String> {
    let cluster = settings.cluster;
    let kind = cluster.kind("apiextensions.k8s.io/v1", "CustomResourceDefinition").await.map_err(|e| e.to_string())?;
    let reference = ObjectRef {
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        namespace: String::new(),
        name: name.into(),
    };
    let (mut wake, _watch) = cluster.wake_ups(&[(kind.clone(), String::new())]);
    let deadline = Instant::now() + settings.timeout;
    loop {
        let crd = cluster.get(&kind, &reference).await.map_err(|e| e.to_string())?;
        let conditions = crd.as_ref().and_then(|c| c.pointer("/status/conditions")).and_then(Value::as_array);
        let done =
            conditions.into_iter().flatten().any(|c| text(c, "/type") == "Established" && text(c, "/status") == "True");
        if done {
            return Ok(());
        }
        tokio::select! {
            Some(()) = wake.recv() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {
                return Err(format!("CRD {name} was not established within {:?}", settings.timeout));
            }
        }
    }
}

fn describe(ran: &Ran) -> String {
    let verdict = if ran.success { "ok" } else { "failed" };
    match &ran.rewritten_from {
        Some(from) if ran.detail.starts_with("skipped") => format!("{from}: {}", ran.detail),
        Some(from) => format!("{from} -> {} ({verdict}, {})", ran.line, ran.detail),
        None => format!("{} ({verdict}, {})", ran.line, ran.detail),
    }
}

/// A fresh namespace name, as kuttl gives each case one.
fn fresh_namespace() -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    format!("kuttl-test-{}", &unique[..10])
}

async fn run_case(settings: &Settings<'_>, shared: Option<&str>, test_dir: String, case: Case) -> CaseReport {
    let started = Instant::now();
    let namespace = shared.map_or_else(fresh_namespace, str::to_string);
    let mut report =
        CaseReport { test_dir, name: case.name.clone(), namespace: namespace.clone(), ..CaseReport::default() };
    let mut created: Vec<Value> = Vec::new();
    let namespace_object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    // A suite's shared namespace outlives each case: the suite deletes it at its end.
    match settings.cluster.apply(&namespace_object, "").await {
        Ok((_, true)) if shared.is_none() => created.push(namespace_object),
        Ok(_) => {}
        Err(e) => report.failure = Some(format!("creating namespace {namespace}: {e}")),
    }
    if report.failure.is_none() {
        for step in &case.steps {
            let step_report = run_step(settings, &namespace, step, &mut created).await;
            let failure = step_report.failure.clone();
            report.steps.push(step_report);
            if let Some(failure) = failure {
                report.failure = Some(format!("step {:02}-{}: {failure}", step.index, step.name));
                break;
            }
        }
    }
    if !settings.skip_delete {
        clean_up(settings.cluster, &namespace, &created).await;
    }
    report.duration = started.elapsed();
    report
}

/// Deletes what a case created, newest first (its namespace last).
async fn clean_up(cluster: &Cluster, namespace: &str, created: &[Value]) {
    for object in created.iter().rev() {
        if let Ok((kind, reference)) = cluster.locate(object, namespace).await
            && let Err(error) = cluster.delete(&kind, &reference).await
        {
            tracing::warn!(%error, "cleaning up after a test case");
        }
    }
}

async fn run_step(settings: &Settings<'_>, namespace: &str, step: &Step, created: &mut Vec<Value>) -> StepReport {
    let started = Instant::now();
    let mut report = StepReport { index: step.index, name: step.name.clone(), ..StepReport::default() };
    let timeout = step.test_assert.timeout.map(Duration::from_secs).unwrap_or(settings.timeout);
    let result = act(settings, namespace, step, created, &mut report.log, timeout).await;
    let result = match result {
        Ok(()) => settle(settings, namespace, step, timeout, &mut report.log).await,
        Err(failure) => Err(failure),
    };
    if let Err(failure) = result {
        report.failure = Some(failure);
        report.collected = collect(settings, namespace, step).await;
    }
    report.duration = started.elapsed();
    report
}

/// A step's deletes, commands and applies, in kuttl's order.
async fn act(
    settings: &Settings<'_>,
    namespace: &str,
    step: &Step,
    created: &mut Vec<Value>,
    log: &mut Vec<String>,
    timeout: Duration,
) -> Result<(), String> {
    for reference in &step.test_step.delete {
        delete(settings, namespace, reference, timeout).await?;
        log.push(format!(
            "deleted {} {}",
            reference.kind,
            if reference.name.is_empty() { "(by labels)" } else { &reference.name }
        ));
    }
    let environment = settings.environment(namespace, &step.dir);
    run_commands(&step.test_step.commands, &environment, log).await?;
    for object in &step.apply {
        let (reference, new) = settings.cluster.apply(object, namespace).await.map_err(|e| e.to_string())?;
        log.push(format!("{} {reference}", if new { "created" } else { "updated" }));
        if new {
            let mut object = object.clone();
            object["metadata"]["name"] = Value::String(reference.name.clone());
            object["metadata"]["namespace"] = Value::String(reference.namespace.clone());
            created.push(object);
        }
    }
    Ok(())
}

async fn run_commands(commands: &[Command], environment: &Environment, log: &mut Vec<String>) -> Result<(), String> {
    for command in commands {
        let ran = command::run(command, environment).await;
        log.push(describe(&ran));
        if !ran.success && !command.ignore_failure {
            let output = if command.skip_log_output { String::new() } else { format!("\n{}", ran.output.trim_end()) };
            return Err(format!("command {:?} failed: {}{output}", ran.line, ran.detail));
        }
    }
    Ok(())
}

/// A `TestStep.delete` entry: deleted, then waited for until gone.
async fn delete(
    settings: &Settings<'_>,
    namespace: &str,
    reference: &ObjectReference,
    timeout: Duration,
) -> Result<(), String> {
    let mut object = json!({"apiVersion": reference.api_version, "kind": reference.kind, "metadata": {}});
    if !reference.name.is_empty() {
        object["metadata"]["name"] = json!(reference.name);
    }
    if !reference.namespace.is_empty() {
        object["metadata"]["namespace"] = json!(reference.namespace);
    }
    if !reference.labels.is_empty() {
        object["metadata"]["labels"] = json!(reference.labels);
    }
    let cluster = settings.cluster;
    let (kind, located) = cluster.locate(&object, namespace).await.map_err(|e| e.to_string())?;
    let doomed: Vec<ObjectRef> = if located.name.is_empty() {
        let listed = cluster.list(&kind, &located.namespace, &reference.labels).await.map_err(|e| e.to_string())?;
        listed.iter().map(|o| ObjectRef { name: text(o, "/metadata/name").into(), ..located.clone() }).collect()
    } else {
        vec![located]
    };
    for reference in &doomed {
        cluster.delete(&kind, reference).await.map_err(|e| e.to_string())?;
    }
    // Gone = nothing left that this entry names, checked as an errors entry.
    let gone = Step { errors: vec![object], ..Step::default() };
    let mut log = Vec::new();
    settle(settings, namespace, &gone, timeout, &mut log).await.map_err(|e| format!("waiting for the delete: {e}"))
}

/// Checks the step's asserts, errors and assert commands until they hold together, or the
/// time is up (the failure then says what was unmet at the last check).
async fn settle(
    settings: &Settings<'_>,
    namespace: &str,
    step: &Step,
    timeout: Duration,
    log: &mut Vec<String>,
) -> Result<(), String> {
    if step.asserts.is_empty() && step.errors.is_empty() && step.test_assert.commands.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    let (kinds, unwatched) = watched_kinds(settings.cluster, namespace, step).await;
    let polling = unwatched || !step.test_assert.commands.is_empty();
    let (mut wake, _watches) = settings.cluster.wake_ups(&kinds);
    let environment = settings.environment(namespace, &step.dir);
    let mut checks = 0u32;
    loop {
        checks += 1;
        let last = match check::evaluate(settings.cluster, namespace, &step.asserts, &step.errors).await {
            Ok(evaluation) if evaluation.passed() => {
                match assert_commands(&step.test_assert.commands, &environment).await {
                    Ok(()) => {
                        log.push(format!("asserts held after {checks} check(s)"));
                        return Ok(());
                    }
                    Err(failure) => failure,
                }
            }
            Ok(Evaluation { hopeless: Some(reason), .. }) => return Err(reason),
            Ok(evaluation) => unmet(&evaluation),
            // The kind may not be served yet (its CRD comes with a later apply or plan).
            Err(error @ ClusterError::UnknownKind { .. }) => error.to_string(),
            Err(error) => error.to_string(),
        };
        let pause = if polling { RECHECK } else { Duration::MAX };
        // With nothing to watch the channel is closed at once: the pattern then disables that
        // branch, so the loop waits for the next recheck instead of spinning.
        tokio::select! {
            Some(()) = wake.recv() => {}
            _ = tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))) => {}
        }
        if Instant::now() >= deadline {
            return Err(format!("not met within {timeout:?}:\n{last}"));
        }
    }
}

fn unmet(evaluation: &Evaluation) -> String {
    evaluation.unmet.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

async fn assert_commands(commands: &[Command], environment: &Environment) -> Result<(), String> {
    for command in commands {
        let ran = command::run(command, environment).await;
        if !ran.success {
            return Err(format!("assert command {:?}: {}\n{}", ran.line, ran.detail, ran.output.trim_end()));
        }
    }
    Ok(())
}

/// The kinds (and namespaces) a step's checks read, to watch; and whether some could not be
/// watched because the cluster does not serve them yet.
async fn watched_kinds(cluster: &Cluster, namespace: &str, step: &Step) -> (Vec<(Kind, String)>, bool) {
    let mut kinds: Vec<(Kind, String)> = Vec::new();
    let mut unwatched = false;
    for object in step.asserts.iter().chain(&step.errors) {
        match cluster.locate(object, namespace).await {
            Ok((kind, reference)) => {
                let seen = kinds.iter().any(|(k, n)| k.resource == kind.resource && *n == reference.namespace);
                if !seen {
                    kinds.push((kind, reference.namespace));
                }
            }
            Err(_) => unwatched = true,
        }
    }
    (kinds, unwatched)
}

/// On failure: the step's collectors, then the namespace's events.
async fn collect(settings: &Settings<'_>, namespace: &str, step: &Step) -> Vec<String> {
    let mut collected = Vec::new();
    let environment = settings.environment(namespace, &step.dir);
    for collector in &step.test_assert.collectors {
        collected.push(collector_output(settings, namespace, collector, &environment).await);
    }
    collected.push(events(settings.cluster, namespace).await);
    collected
}

async fn collector_output(
    settings: &Settings<'_>,
    namespace: &str,
    collector: &Collector,
    environment: &Environment,
) -> String {
    let namespace = if collector.namespace.is_empty() { namespace } else { &collector.namespace };
    match collector.kind.as_str() {
        "events" => events(settings.cluster, namespace).await,
        "command" | "" if !collector.command.is_empty() => {
            let ran =
                command::run(&Command { command: collector.command.clone(), ..Command::default() }, environment).await;
            format!("collector {}: {}\n{}", ran.line, ran.detail, ran.output.trim_end())
        }
        _ => pod_logs(settings.cluster, namespace, collector).await,
    }
}

async fn pod_logs(cluster: &Cluster, namespace: &str, collector: &Collector) -> String {
    use k8s_openapi::api::core::v1::Pod;
    let pods: kube::Api<Pod> = kube::Api::namespaced(cluster.client.clone(), namespace);
    let params = kube::api::LogParams {
        container: (!collector.container.is_empty()).then(|| collector.container.clone()),
        tail_lines: collector.tail,
        ..Default::default()
    };
    let names: Vec<String> = if collector.pod.is_empty() {
        let listed = pods.list(&kube::api::ListParams::default().labels(&collector.selector)).await;
        listed.map(|l| l.items.into_iter().filter_map(|p| p.metadata.name).collect()).unwrap_or_default()
    } else {
        vec![collector.pod.clone()]
    };
    let mut out = String::new();
    for name in names {
        let logs = tokio::time::timeout(crate::cluster::REQUEST_TIMEOUT, pods.logs(&name, &params)).await;
        let text = match logs {
            Ok(Ok(text)) => text,
            Ok(Err(e)) => format!("(no logs: {e})"),
            Err(_) => "(no logs: the API server did not answer in time)".into(),
        };
        out.push_str(&format!("logs of pod {namespace}/{name}:\n{text}\n"));
    }
    if out.is_empty() { format!("no pods to collect logs from in {namespace}") } else { out }
}

/// The namespace's events, oldest first, one line each.
async fn events(cluster: &Cluster, namespace: &str) -> String {
    let Ok(kind) = cluster.kind("v1", "Event").await else { return "events: not served".into() };
    let mut listed = match cluster.list(&kind, namespace, &Default::default()).await {
        Ok(listed) => listed,
        Err(e) => return format!("events of {namespace}: {e}"),
    };
    listed.sort_by(|a, b| text(a, "/metadata/creationTimestamp").cmp(text(b, "/metadata/creationTimestamp")));
    let mut out = format!("events of {namespace}:");
    if listed.is_empty() {
        out.push_str(" none");
    }
    for event in &listed {
        out.push_str(&format!(
            "\n{} {} {}/{}: {}",
            text(event, "/type"),
            text(event, "/reason"),
            text(event, "/involvedObject/kind"),
            text(event, "/involvedObject/name"),
            text(event, "/message")
        ));
    }
    out
}
