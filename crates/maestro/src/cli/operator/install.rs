//! `install`, `upgrade`, `update`, `uninstall` and `plan trigger`: what `kubectl kudo` does to
//! the cluster's objects, with its flags. Plans themselves are the engine's business; these
//! commands write what a user asks for and, with `--wait`, watch the Instance until the engine
//! has acted on it, failing with the engine's reason when a plan fails or a change is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use kube::api::{DeleteParams, Patch, PatchParams};
use maestro_engine::instance::instances;
use maestro_operator::pass::{self, FATAL_ERROR};
use maestro_operator::select::Snapshot;
use maestro_package::crd::{Instance, OperatorVersion};
use maestro_package::{Limits, Package, read_path};
use serde_json::{Value, json};

use super::cluster::{self, ClusterArgs, bounded};
use crate::cli::package::ParameterArgs;
use crate::cli::package_source::{self, SourceArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// Wait until the engine has run the plan, and fail if it fails.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 300)]
    pub wait_time: u64,
}

impl WaitArgs {
    fn limit(&self) -> Duration {
        Duration::from_secs(self.wait_time)
    }
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The package: a folder, a .tgz, its URL, or a name with --repo.
    pub package: String,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub values: ParameterArgs,
    /// The instance's name [default: `<operator>-instance`].
    #[arg(long)]
    pub instance: Option<String>,
    /// Install the Operator and OperatorVersion (and dependencies) only.
    #[arg(long)]
    pub skip_instance: bool,
    /// Create the namespace when it does not exist.
    #[arg(long)]
    pub create_namespace: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct UpgradeArgs {
    /// The new version's package: a folder, a .tgz, its URL, or a name with --repo.
    pub package: String,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub values: ParameterArgs,
    #[arg(long)]
    pub instance: String,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[arg(long)]
    pub instance: String,
    #[command(flatten)]
    pub values: ParameterArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The arguments of verbs that name only an Instance (`uninstall`, `plan abandon`).
#[derive(Debug, clap::Args)]
pub struct InstanceArgs {
    #[arg(long)]
    pub instance: String,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// The plan to run.
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub instance: String,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    #[arg(long)]
    pub instance: String,
    /// Run the whole plan again under a new execution, completed steps included.
    #[arg(long)]
    pub from_start: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

fn relative_path(location: &str) -> bool {
    location.starts_with("./") || location.starts_with("../") || location.starts_with('/')
}

/// The package and, in install order (dependencies first), every package its `KudoOperator`
/// tasks need; each parent task rewritten to the version it resolved to, as KUDO's installer
/// does. A dependency is a path (relative to a local parent) or a name in `--repo`.
pub async fn resolve_tree(location: &str, source: &SourceArgs) -> anyhow::Result<Vec<Package>> {
    let root = package_source::resolve(location, source).await?;
    let dir = Path::new(location).is_dir().then(|| PathBuf::from(location));
    let mut out = Vec::new();
    let mut stack = Vec::new();
    add_with_dependencies(root, dir, source, &mut stack, &mut out).await?;
    Ok(out)
}

fn add_with_dependencies<'a>(
    mut package: Package,
    dir: Option<PathBuf>,
    source: &'a SourceArgs,
    stack: &'a mut Vec<String>,
    out: &'a mut Vec<Package>,
) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>> {
    Box::pin(async move {
        stack.push(package.operator.name.clone());
        for index in 0..package.operator.tasks.len() {
            let task = &package.operator.tasks[index];
            if task.kind != "KudoOperator" {
                continue;
            }
            let spec = task.spec.clone();
            let (child, child_dir) = match (&dir, relative_path(&spec.package)) {
                (Some(dir), true) => {
                    let path = dir.join(&spec.package);
                    let child = read_path(&path, &Limits::default())
                        .with_context(|| format!("task {}: dependency {}", task.name, path.display()))?;
                    (child, path.is_dir().then_some(path))
                }
                _ => {
                    let wanted = SourceArgs {
                        repo: source.repo.clone(),
                        operator_version: Some(spec.operator_version.clone()).filter(|v| !v.is_empty()),
                        app_version: Some(spec.app_version.clone()).filter(|v| !v.is_empty()),
                    };
                    let child = package_source::resolve(&spec.package, &wanted)
                        .await
                        .with_context(|| format!("task {}: dependency {}", task.name, spec.package))?;
                    (child, None)
                }
            };
            if stack.contains(&child.operator.name) {
                bail!("circular dependency: {} -> {}", stack.join(" -> "), child.operator.name);
            }
            let resolved = &mut package.operator.tasks[index].spec;
            resolved.package = child.operator.name.clone();
            resolved.operator_version = child.operator.operator_version.clone();
            resolved.app_version = child.operator.app_version.clone();
            if !out
                .iter()
                .any(|p: &Package| p.operator.operator_version_name() == child.operator.operator_version_name())
            {
                add_with_dependencies(child, child_dir, source, stack, out).await?;
            }
        }
        stack.pop();
        out.push(package);
        Ok(())
    })
}

/// Writes each package's Operator and OperatorVersion into `namespace`; returns the last
/// (the package asked for)'s OperatorVersion.
async fn install_versions(
    client: &kube::Client,
    namespace: &str,
    packages: &[Package],
) -> anyhow::Result<OperatorVersion> {
    let mut last = None;
    for package in packages {
        let (operator, version) = package.resources(namespace);
        cluster::apply(client, namespace, &serde_json::to_value(&operator)?).await?;
        cluster::apply(client, namespace, &serde_json::to_value(&version)?).await?;
        println!("operatorversion {}/{} installed", namespace, version.metadata.name);
        last = Some(version);
    }
    last.context("no package to install")
}

async fn ensure_namespace(client: &kube::Client, namespace: &str, create: bool) -> anyhow::Result<()> {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    if bounded(api.get_opt(namespace)).await?.is_some() {
        return Ok(());
    }
    if !create {
        bail!("namespace {namespace:?} does not exist (give --create-namespace to create it)");
    }
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    bounded(api.patch(namespace, &PatchParams::apply(cluster::FIELD_MANAGER), &Patch::Apply(&object))).await?;
    Ok(())
}

pub async fn install(args: &InstallArgs) -> anyhow::Result<()> {
    let packages = resolve_tree(&args.package, &args.source).await?;
    let values = args.values.values()?;
    let client = args.cluster.client().await?;
    let namespace = &args.cluster.namespace;
    ensure_namespace(&client, namespace, args.create_namespace).await?;
    maestro_engine::crds::install(&client).await.context("installing KUDO's CRDs")?;
    let version = install_versions(&client, namespace, &packages).await?;
    if args.skip_instance {
        return Ok(());
    }
    maestro_operator::render::check_parameters(&version.spec.parameters, &values).map_err(anyhow::Error::msg)?;
    let operator = &version.spec.operator.name;
    let name = args.instance.clone().unwrap_or_else(|| format!("{operator}-instance"));
    if bounded(instances(&client, namespace).get_opt(&name)).await?.is_some() {
        bail!("instance {name:?} already exists in namespace {namespace:?} (use update or upgrade)");
    }
    let instance = json!({
        "apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
        "metadata": {"name": name, "namespace": namespace, "labels": {"kudo.dev/operator": operator}},
        "spec": {"operatorVersion": {"name": version.metadata.name}, "parameters": values},
    });
    cluster::apply(&client, namespace, &instance).await?;
    println!("instance {namespace}/{name} created");
    if args.wait.wait {
        settle(&client, namespace, &name, args.wait.limit(), None).await?;
    }
    Ok(())
}

pub async fn upgrade(args: &UpgradeArgs) -> anyhow::Result<()> {
    let packages = resolve_tree(&args.package, &args.source).await?;
    let values = args.values.values()?;
    let client = args.cluster.client().await?;
    let namespace = &args.cluster.namespace;
    let (_, current) = cluster::instance(&client, namespace, &args.instance).await?;
    let new_name = packages.last().map(|p| p.operator.operator_version_name()).unwrap_or_default();
    if current.spec.operator_version.name == new_name {
        bail!("instance {:?} runs {new_name} already", args.instance);
    }
    let version = install_versions(&client, namespace, &packages).await?;
    let mut parameters = current.spec.parameters.clone();
    parameters.extend(values);
    maestro_operator::render::check_parameters(&version.spec.parameters, &parameters).map_err(anyhow::Error::msg)?;
    let patch = json!({"spec": {"operatorVersion": {"name": version.metadata.name}, "parameters": parameters}});
    patch_instance(&client, namespace, &args.instance, &patch).await?;
    println!("instance {namespace}/{} upgraded to {}", args.instance, version.metadata.name);
    if args.wait.wait {
        settle(&client, namespace, &args.instance, args.wait.limit(), Some(&current)).await?;
    }
    Ok(())
}

pub async fn update(args: &UpdateArgs) -> anyhow::Result<()> {
    let values = args.values.values()?;
    if values.is_empty() {
        bail!("nothing to update: give -p NAME=VALUE or -P FILE");
    }
    let client = args.cluster.client().await?;
    let namespace = &args.cluster.namespace;
    let (_, current) = cluster::instance(&client, namespace, &args.instance).await?;
    let reference = &current.spec.operator_version;
    let version_namespace = if reference.namespace.is_empty() { namespace } else { &reference.namespace };
    let version = maestro_engine::instance::operator_version(&client, version_namespace, &reference.name)
        .await
        .context("reading the OperatorVersion")?
        .with_context(|| format!("OperatorVersion {:?} does not exist", reference.name))?
        .map_err(anyhow::Error::msg)?;
    let mut parameters = current.spec.parameters.clone();
    parameters.extend(values.clone());
    maestro_operator::render::check_parameters(&version.spec.parameters, &parameters).map_err(anyhow::Error::msg)?;
    patch_instance(&client, namespace, &args.instance, &json!({"spec": {"parameters": values}})).await?;
    println!("instance {namespace}/{} updated", args.instance);
    if args.wait.wait {
        settle(&client, namespace, &args.instance, args.wait.limit(), Some(&current)).await?;
    }
    Ok(())
}

pub async fn uninstall(args: &InstanceArgs) -> anyhow::Result<()> {
    let client = args.cluster.client().await?;
    let namespace = &args.cluster.namespace;
    cluster::instance(&client, namespace, &args.instance).await?;
    bounded(instances(&client, namespace).delete(&args.instance, &DeleteParams::foreground())).await?;
    println!("instance {namespace}/{} deleted", args.instance);
    if args.wait.wait {
        cluster::wait_for(&client, namespace, &args.instance, args.wait.limit(), |i| i.is_none()).await?;
        println!("instance {namespace}/{} is gone", args.instance);
    }
    Ok(())
}

pub async fn trigger(args: &TriggerArgs) -> anyhow::Result<()> {
    let client = args.cluster.client().await?;
    let namespace = &args.cluster.namespace;
    let uid = uuid::Uuid::new_v4().to_string();
    cluster::instance(&client, namespace, &args.instance).await?;
    let patch = json!({"spec": {"planExecution": {"planName": args.name, "uid": uid}}});
    patch_instance(&client, namespace, &args.instance, &patch).await?;
    println!("plan {} triggered on {namespace}/{}", args.name, args.instance);
    if args.wait.wait {
        let end = PlanEnd { plan: args.name.clone(), uid, updated_since: None, or_refused: true };
        let instance = end.wait(&client, namespace, &args.instance, args.wait.limit()).await?;
        report(&instance, Some(&args.name))?;
    }
    Ok(())
}

/// Sets the running plan's `spec.planExecution.status` to FATAL_ERROR (KUDO's hand edit for a
/// stuck plan, kudo#1764); the engine then ends the plan there.
pub async fn abandon(args: &InstanceArgs) -> anyhow::Result<()> {
    let client = args.cluster.client().await?;
    let namespace = &args.cluster.namespace;
    let (_, instance) = cluster::instance(&client, namespace, &args.instance).await?;
    let execution = instance.spec.plan_execution.clone();
    if execution.plan_name.is_empty() {
        bail!("no plan is running on {namespace}/{}: nothing to abandon", args.instance);
    }
    let patch = json!({"spec": {"planExecution": {"status": pass::FATAL_ERROR}}});
    patch_instance(&client, namespace, &args.instance, &patch).await?;
    println!("plan {} of {namespace}/{} is being abandoned", execution.plan_name, args.instance);
    if args.wait.wait {
        let end = PlanEnd {
            plan: execution.plan_name.clone(),
            uid: execution.uid.clone(),
            updated_since: None,
            or_refused: false,
        };
        let instance = end.wait(&client, namespace, &args.instance, args.wait.limit()).await?;
        let state = instance.status.as_ref().and_then(|s| s.plan_status.get(&execution.plan_name));
        let state = state.map_or("gone", |p| p.status.as_str());
        println!("plan {} of {namespace}/{} is {state}", execution.plan_name, args.instance);
    }
    Ok(())
}

/// Runs the last plan again once it has ended in FATAL_ERROR (kudo#1752): by default the
/// engine resumes the same execution at its first unfinished step (the retry annotation names
/// its uid); `--from-start` triggers the plan anew.
pub async fn retry(args: &RetryArgs) -> anyhow::Result<()> {
    let client = args.cluster.client().await?;
    let namespace = &args.cluster.namespace;
    let (_, instance) = cluster::instance(&client, namespace, &args.instance).await?;
    let running = &instance.spec.plan_execution.plan_name;
    if !running.is_empty() {
        bail!("plan {running} is running on {namespace}/{}: abandon it first", args.instance);
    }
    let statuses = instance.status.as_ref().map(|s| s.plan_status.clone()).unwrap_or_default();
    let Some(last) = pass::latest(statuses.values()).cloned() else {
        bail!("no plan has run on {namespace}/{}: nothing to retry", args.instance);
    };
    if last.status != FATAL_ERROR {
        bail!(
            "the last plan of {namespace}/{}, {}, is {}: only a plan that ended in FATAL_ERROR is retried",
            args.instance,
            last.name,
            last.status
        );
    }
    let uid = if args.from_start {
        let uid = uuid::Uuid::new_v4().to_string();
        let patch = json!({"spec": {"planExecution": {"planName": last.name, "uid": uid}}});
        patch_instance(&client, namespace, &args.instance, &patch).await?;
        println!("plan {} of {namespace}/{} runs again from the start", last.name, args.instance);
        uid
    } else {
        let patch = json!({"metadata": {"annotations": {maestro_operator::select::RETRY_ANNOTATION: last.uid}}});
        patch_instance(&client, namespace, &args.instance, &patch).await?;
        println!("plan {} of {namespace}/{} runs again from its first unfinished step", last.name, args.instance);
        last.uid.clone()
    };
    if args.wait.wait {
        // A resumed execution keeps its uid: it has ended again once its status moved on.
        let updated_since = Some(last.last_updated_timestamp.clone());
        let end = PlanEnd { plan: last.name.clone(), uid, updated_since, or_refused: false };
        let instance = end.wait(&client, namespace, &args.instance, args.wait.limit()).await?;
        report(&instance, Some(&last.name))?;
    }
    Ok(())
}

/// The end of one plan execution, which `--wait` waits for.
struct PlanEnd {
    plan: String,
    uid: String,
    /// When set, the execution's status must also have been updated after this timestamp.
    updated_since: Option<Option<String>>,
    /// Also stop when the engine refused the change that asked for the plan.
    or_refused: bool,
}

impl PlanEnd {
    fn reached(&self, instance: &Instance) -> bool {
        let ended = instance.status.as_ref().and_then(|s| s.plan_status.get(&self.plan)).is_some_and(|p| {
            p.uid == self.uid
                && pass::is_terminal(&p.status)
                && self.updated_since.as_ref().is_none_or(|since| &p.last_updated_timestamp != since)
        });
        ended || (self.or_refused && refusal(instance).is_some())
    }

    /// Waits for the end (or the Instance's deletion) and returns the Instance as it is then.
    async fn wait(
        self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
        limit: Duration,
    ) -> anyhow::Result<Instance> {
        cluster::wait_for(client, namespace, name, limit, move |i| i.is_none_or(|i| self.reached(i))).await?;
        let (_, instance) = cluster::instance(client, namespace, name).await?;
        Ok(instance)
    }
}

async fn patch_instance(client: &kube::Client, namespace: &str, name: &str, patch: &Value) -> anyhow::Result<()> {
    bounded(instances(client, namespace).patch(name, &PatchParams::default(), &Patch::Merge(patch)))
        .await
        .with_context(|| format!("updating instance {name}"))?;
    Ok(())
}

/// Why the engine refused the Instance's current spec, if it did.
fn refusal(instance: &Instance) -> Option<String> {
    let conditions = &instance.status.as_ref()?.conditions;
    let refused = conditions.iter().find(|c| c["type"] == "SpecAccepted" && c["status"] == "False")?;
    Some(refused["message"].as_str().unwrap_or_default().to_string())
}

/// The engine has acted on the current spec and no plan is scheduled.
fn settled(instance: &Instance) -> bool {
    Snapshot::from_annotations(&instance.metadata.annotations).as_ref() == Some(&Snapshot::of(&instance.spec))
        && instance.spec.plan_execution.plan_name.is_empty()
}

/// Waits until the engine has acted on the Instance's spec and its plan is over, then reports
/// the plan that ran since `before` (the Instance as it was before the change).
async fn settle(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    limit: Duration,
    before: Option<&Instance>,
) -> anyhow::Result<()> {
    cluster::wait_for(client, namespace, name, limit, |i| i.is_none_or(|i| settled(i) || refusal(i).is_some())).await?;
    let (_, instance) = cluster::instance(client, namespace, name).await?;
    let uid = |i: &Instance, plan: &str| i.status.as_ref().and_then(|s| s.plan_status.get(plan)).map(|p| p.uid.clone());
    let ran = instance.status.as_ref().and_then(|s| {
        s.plan_status
            .iter()
            .filter(|(_, p)| p.status != maestro_operator::pass::NEVER_RUN)
            .find(|(plan, _)| before.is_none_or(|b| uid(b, plan) != uid(&instance, plan)))
            .map(|(plan, _)| plan.clone())
    });
    report(&instance, ran.as_deref())
}

/// Prints how the last plan (or `plan`) ended; an error when it failed or was refused.
fn report(instance: &Instance, plan: Option<&str>) -> anyhow::Result<()> {
    if let Some(rule) = refusal(instance) {
        bail!("the change was refused: {rule}");
    }
    let statuses: BTreeMap<_, _> = instance.status.as_ref().map(|s| s.plan_status.clone()).unwrap_or_default();
    let last = match plan {
        Some(plan) => statuses.get(plan),
        None => pass::latest(statuses.values()),
    };
    let Some(last) = last else { return Ok(()) };
    if last.status == FATAL_ERROR {
        let failed = last.phases.iter().flat_map(|p| p.steps.iter()).find(|s| s.status == FATAL_ERROR);
        let message = failed.map(|s| format!("step {}: {}", s.name, s.message)).unwrap_or_default();
        bail!("plan {} of {} failed: {message}", last.name, instance.metadata.name);
    }
    println!("plan {} of {} is {}", last.name, instance.metadata.name, last.status);
    Ok(())
}
