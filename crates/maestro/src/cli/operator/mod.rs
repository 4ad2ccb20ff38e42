//! `maestro operator`: the universal operator against one cluster, with `kubectl kudo`'s verbs
//! and flags (SPEC.md §5), so its users switch by changing the command's name. `run` is the
//! controller (the drop-in for KUDO's manager); the rest write KUDO's objects and read their
//! status. See docs/operators.md.

pub mod cluster;
pub mod install;
pub mod plan;
pub mod run;

use anyhow::Context;
use kube::api::{DynamicObject, ListParams};
use maestro_engine::instance::{instances, operator_version};

use cluster::{ClusterArgs, bounded};

#[derive(Debug, clap::Subcommand)]
pub enum OperatorCmd {
    /// Run the operator engine (the controller) against a cluster until Ctrl-C.
    Run(run::RunArgs),
    /// Install a package's Operator and OperatorVersion (with its dependencies) and an Instance.
    Install(install::InstallArgs),
    /// Change an Instance's parameters (runs the plan they trigger).
    Update(install::UpdateArgs),
    /// Move an Instance to another version of its package (runs `upgrade`, else `update`, else `deploy`).
    Upgrade(install::UpgradeArgs),
    /// Delete an Instance (its `cleanup` plan runs first when it has one).
    Uninstall(install::InstanceArgs),
    /// An Instance's plans: status, history, trigger.
    #[command(subcommand)]
    Plan(PlanCmd),
    /// List Instances.
    #[command(subcommand)]
    Get(GetCmd),
}

#[derive(Debug, clap::Subcommand)]
pub enum PlanCmd {
    /// The tree of plans, phases and steps with their status.
    Status(StatusArgs),
    /// When each plan last ran, and how it ended.
    History(HistoryArgs),
    /// Run a plan by name.
    Trigger(install::TriggerArgs),
    /// End the running plan as FATAL_ERROR where it stands (a step stuck in transient errors);
    /// nothing in the cluster is touched, and a later change or trigger can run again.
    Abandon(install::InstanceArgs),
    /// Run the last plan again after it ended in FATAL_ERROR: from its first unfinished step,
    /// or from the start with --from-start.
    Retry(install::RetryArgs),
}

#[derive(Debug, clap::Subcommand)]
pub enum GetCmd {
    /// The Instances of a namespace.
    Instances(ListArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub instance: String,
    /// Print `status.planStatus` as YAML or JSON instead of the tree.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
    #[command(flatten)]
    pub wait: install::WaitArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[arg(long)]
    pub instance: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

pub async fn run(cmd: OperatorCmd) -> anyhow::Result<()> {
    match cmd {
        OperatorCmd::Run(args) => run::run(args).await,
        OperatorCmd::Install(args) => install::install(&args).await,
        OperatorCmd::Update(args) => install::update(&args).await,
        OperatorCmd::Upgrade(args) => install::upgrade(&args).await,
        OperatorCmd::Uninstall(args) => install::uninstall(&args).await,
        OperatorCmd::Plan(PlanCmd::Status(args)) => status(&args).await,
        OperatorCmd::Plan(PlanCmd::History(args)) => history(&args).await,
        OperatorCmd::Plan(PlanCmd::Trigger(args)) => install::trigger(&args).await,
        OperatorCmd::Plan(PlanCmd::Abandon(args)) => install::abandon(&args).await,
        OperatorCmd::Plan(PlanCmd::Retry(args)) => install::retry(&args).await,
        OperatorCmd::Get(GetCmd::Instances(args)) => list(&args).await,
    }
}

async fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let client = args.cluster.client().await?;
    let namespace = &args.cluster.namespace;
    if args.wait.wait {
        let limit = std::time::Duration::from_secs(args.wait.wait_time);
        cluster::wait_for(&client, namespace, &args.instance, limit, |i| {
            i.is_none_or(|i| i.spec.plan_execution.plan_name.is_empty())
        })
        .await?;
    }
    let (_, instance) = cluster::instance(&client, namespace, &args.instance).await?;
    let plans = instance.status.as_ref().map(|s| s.plan_status.clone()).unwrap_or_default();
    match args.output {
        Some(Format::Json) => println!("{}", serde_json::to_string_pretty(&plans)?),
        Some(Format::Yaml) => print!("{}", serde_yaml::to_string(&plans)?),
        None => {
            let reference = &instance.spec.operator_version;
            let version_namespace = if reference.namespace.is_empty() { namespace } else { &reference.namespace };
            let version = operator_version(&client, version_namespace, &reference.name)
                .await
                .context("reading the OperatorVersion")?
                .and_then(Result::ok);
            print!("{}", plan::status_tree(&instance, version.as_ref()));
        }
    }
    Ok(())
}

async fn history(args: &HistoryArgs) -> anyhow::Result<()> {
    let client = args.cluster.client().await?;
    let (_, instance) = cluster::instance(&client, &args.cluster.namespace, &args.instance).await?;
    print!("{}", plan::history(&instance));
    Ok(())
}

async fn list(args: &ListArgs) -> anyhow::Result<()> {
    let client = args.cluster.client().await?;
    let list = bounded(instances(&client, &args.cluster.namespace).list(&ListParams::default())).await?;
    let parsed: Vec<_> = list.items.iter().map(|o: &DynamicObject| cluster::parse(o)).collect::<Result<_, _>>()?;
    print!("{}", plan::instance_table(&parsed));
    Ok(())
}
