//! `maestro test`: kuttl's declarative tests (crate `maestro-kuttl`) against a simulated
//! cluster with the universal operator running (the default), or against any cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use maestro_kuttl::cluster::Cluster;
use maestro_kuttl::model::{Suite, is_kuttl};
use maestro_kuttl::report::SuiteReport;
use maestro_kuttl::run::{self, Options, TestDir};
use maestro_sim::{SimCluster, SimOptions};

use super::operator::run::EngineTask;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Junit,
    Json,
}

/// Runs kuttl test suites: every sub-folder of a test folder is a case of numbered steps.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test folders, each sub-folder a case [default: the suite file's testDirs].
    pub dirs: Vec<PathBuf>,
    /// The TestSuite file (kuttl.dev/v1beta1 or kudo.dev/v1alpha1) [default: ./kuttl-test.yaml
    /// when no folder is given and it exists]. Its relative paths start at its folder.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run only the case of this name.
    #[arg(long)]
    pub test: Option<String>,
    /// Test against the cluster of this kubeconfig instead of a simulated one.
    #[arg(long, conflicts_with = "simulate")]
    pub kubeconfig: Option<PathBuf>,
    /// Test against a simulated cluster with the universal operator running (the default).
    #[arg(long)]
    pub simulate: bool,
    /// How long the simulated cluster's workloads take to become ready.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub sim_ready_delay: Duration,
    /// Cases run at once [default: the suite's parallel, else 8].
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Seconds a step's asserts may take [default: the suite's timeout, else 30]; a
    /// TestAssert's own timeout still wins for its step.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Also write a report: JUnit XML or JSON [default: the suite's reportFormat, if any].
    #[arg(long, value_enum)]
    pub report: Option<ReportFormat>,
    /// Where the report goes [default: the suite's artifactsDir, else the current folder].
    #[arg(long)]
    pub artifacts_dir: Option<PathBuf>,
    /// Keep what the cases created (and their namespaces), to look at afterwards.
    #[arg(long)]
    pub skip_delete: bool,
    /// Run KUDO CLI calls in commands (`kubectl kudo ...`, `./bin/kubectl-kudo ...`) as
    /// `maestro operator ...`, so suites written for KUDO run unchanged; each rewrite is shown.
    #[arg(long)]
    pub kudo_compat: bool,
    /// Where `maestro operator install` looks up packages that commands name without a path
    /// (dependencies of KudoOperator tasks), as MAESTRO_OPERATOR_REPO [default with
    /// --kudo-compat: the suite folder's `repository/`, kudobuilder/operators' layout, when it
    /// exists; KUDO looked in its community repository].
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
}

/// The suite file (or an empty suite) and the folder its relative paths start at.
fn suite(args: &TestArgs) -> anyhow::Result<(Suite, PathBuf)> {
    let default = PathBuf::from("kuttl-test.yaml");
    let path = match &args.config {
        Some(path) => path.clone(),
        None if args.dirs.is_empty() && default.is_file() => default,
        None => return Ok((Suite::default(), PathBuf::from("."))),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("--config {}", path.display()))?;
    let value: serde_json::Value =
        serde_yaml::from_str(&text).with_context(|| format!("--config {}: not valid YAML", path.display()))?;
    if !is_kuttl(&value, "TestSuite") {
        bail!("--config {}: not a TestSuite of kuttl.dev/v1beta1 or kudo.dev/v1alpha1", path.display());
    }
    let suite: Suite = serde_json::from_value(value).with_context(|| format!("--config {}", path.display()))?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    Ok((suite, base))
}

/// The test folders to run, as given, with their cases.
fn test_dirs(args: &TestArgs, suite: &Suite, base: &Path) -> anyhow::Result<Vec<TestDir>> {
    let given: Vec<(String, PathBuf)> = if args.dirs.is_empty() {
        suite.test_dirs.iter().map(|d| (d.clone(), base.join(d))).collect()
    } else {
        args.dirs.iter().map(|d| (d.display().to_string(), d.clone())).collect()
    };
    if given.is_empty() {
        bail!("no test folder: name one, or a suite file (--config) with testDirs");
    }
    let mut dirs = Vec::new();
    for (label, path) in given {
        let cases =
            maestro_kuttl::files::cases(&path, args.test.as_deref()).with_context(|| format!("test folder {label}"))?;
        dirs.push(TestDir { label, cases });
    }
    if args.test.is_some() && dirs.iter().all(|d| d.cases.is_empty()) {
        bail!("--test {}: no case of that name", args.test.as_deref().unwrap_or_default());
    }
    Ok(dirs)
}

/// The cluster under test: the one a kubeconfig names, or a simulated one with the engine.
struct Target {
    cluster: Cluster,
    kubeconfig: PathBuf,
    _simulated: Option<(maestro_sim::RunningSim, EngineTask, tempfile::TempDir)>,
}

async fn target(args: &TestArgs, suite: &Suite) -> anyhow::Result<Target> {
    let starts_cluster = suite.start_kind || suite.start_control_plane;
    if let Some(path) = &args.kubeconfig {
        if starts_cluster {
            eprintln!(
                "the suite asks to start a cluster (startKIND/startControlPlane): testing the --kubeconfig cluster instead"
            );
        }
        let config = super::operator::cluster::kube_config(Some(path)).await?;
        let client = kube::Client::try_from(config).context("a client for the --kubeconfig cluster")?;
        return Ok(Target { cluster: Cluster::new(client), kubeconfig: path.clone(), _simulated: None });
    }
    if starts_cluster {
        eprintln!(
            "the suite asks to start a cluster (startKIND/startControlPlane): a simulated cluster stands in for it"
        );
    }
    let options = SimOptions { name: "kuttl".into(), ready_delay: args.sim_ready_delay, ..SimOptions::default() };
    let sim = SimCluster::start(options).await.context("starting a simulated cluster")?;
    let dir = tempfile::tempdir().context("a folder for the simulated cluster's kubeconfig")?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig()).with_context(|| format!("writing {}", kubeconfig.display()))?;
    let engine = EngineTask::start(sim.client()?, "kuttl", Default::default());
    maestro_engine::crds::install(&sim.client()?).await.context("installing KUDO's CRDs")?;
    let cluster = Cluster::new(sim.client()?);
    Ok(Target { cluster, kubeconfig, _simulated: Some((sim, engine, dir)) })
}

fn write_report(args: &TestArgs, suite: &Suite, base: &Path, report: &SuiteReport) -> anyhow::Result<Option<PathBuf>> {
    let format = match (args.report, suite.report_format.as_deref().map(str::to_ascii_lowercase).as_deref()) {
        (Some(format), _) => format,
        (None, Some("xml" | "junit")) => ReportFormat::Junit,
        (None, Some("json")) => ReportFormat::Json,
        (None, Some(other)) => bail!("the suite's reportFormat {other:?} is neither JSON nor XML"),
        (None, None) => return Ok(None),
    };
    let dir = match (&args.artifacts_dir, &suite.artifacts_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(dir)) => base.join(dir),
        (None, None) => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = suite.report_name.clone().unwrap_or_else(|| "kuttl-report".into());
    let (file, text) = match format {
        ReportFormat::Junit => (dir.join(format!("{name}.xml")), report.junit()),
        ReportFormat::Json => (dir.join(format!("{name}.json")), report.json()),
    };
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    Ok(Some(file))
}

/// What commands get besides `NAMESPACE` and `KUBECONFIG`: this `maestro` first on their
/// PATH (so a step can call `maestro operator ...`), and the package repository, if any.
fn environment(args: &TestArgs, base: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let exe = std::env::current_exe().context("finding maestro's own path")?;
    let mut path: Vec<PathBuf> = exe.parent().map(Path::to_path_buf).into_iter().collect();
    path.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
    let path = std::env::join_paths(path).context("building the commands' PATH")?;
    let mut env = vec![("PATH".to_string(), path.to_string_lossy().into_owned())];
    if let Some(repo) = repository(args, base) {
        env.push(("MAESTRO_OPERATOR_REPO".to_string(), repo));
    }
    Ok(env)
}

/// The package repository commands get, if any.
fn repository(args: &TestArgs, base: &Path) -> Option<String> {
    if let Some(repo) = &args.repo {
        return Some(repo.clone());
    }
    let local = base.join("repository");
    (args.kudo_compat && local.is_dir()).then(|| std::path::absolute(&local).unwrap_or(local).display().to_string())
}

pub async fn run(args: TestArgs) -> anyhow::Result<()> {
    let (suite, base) = suite(&args)?;
    let dirs = test_dirs(&args, &suite, &base)?;
    let target = target(&args, &suite).await?;
    let options = Options {
        kubeconfig: std::path::absolute(&target.kubeconfig).unwrap_or_else(|_| target.kubeconfig.clone()),
        kudo_compat: if args.kudo_compat {
            Some(std::env::current_exe().context("finding maestro's own path")?)
        } else {
            None
        },
        timeout: args.timeout.map(Duration::from_secs),
        parallel: args.parallel,
        skip_delete: args.skip_delete,
        env: environment(&args, &base)?,
    };
    let report = run::run(&target.cluster, &suite, &base, dirs, &options).await;
    print!("{}", report.text());
    if let Some(file) = write_report(&args, &suite, &base, &report)? {
        eprintln!("report written to {}", file.display());
    }
    if report.setup_failure.is_some() {
        bail!("the suite's set-up failed");
    }
    if !report.passed() {
        bail!("{} of {} test cases failed", report.failed_cases(), report.cases.len());
    }
    Ok(())
}
