//! `maestro package`: KUDO operator packages on the author's machine — scaffold, verify, render,
//! archive and index them (see docs/operators.md). Everything here works offline; pushing to a
//! hub's package repository is the hub's API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use maestro_package::index::{Entry, IndexFile};
use maestro_package::render::{Meta, Outcome};
use maestro_package::{Limits, Package, archive, read_path, read_tgz, verify};

use super::client::HubArgs;
use super::output::{Table, emit};
use super::package_source::{SourceArgs, resolve};

#[derive(Debug, clap::Subcommand)]
pub enum PackageCmd {
    /// Write a new package (operator.yaml, params.yaml, a template) that verifies and renders,
    /// and a kuttl test case for it under tests/ that `maestro test tests` runs.
    New {
        name: String,
        /// Folder to create the package folder in.
        #[arg(short = 'd', long, default_value = ".")]
        destination: PathBuf,
    },
    /// Check a package (a folder, a .tgz, its URL, or a name with --repo) as KUDO does; exit
    /// status 1 when it has errors.
    Verify {
        package: String,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Write a reproducible archive of a package folder, named as KUDO names it
    /// (`<name>-<appVersion>_<operatorVersion>.tgz`); prints its path.
    Create {
        dir: PathBuf,
        #[arg(short = 'd', long, default_value = ".")]
        destination: PathBuf,
        /// Replace an archive of the same name.
        #[arg(short = 'w', long)]
        overwrite: bool,
    },
    /// List a package's parameters, plans or tasks; without arguments, the packages of a
    /// hub's repository.
    List {
        #[arg(value_enum, requires = "package")]
        what: Option<ListWhat>,
        package: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Upload an archive to a hub's package repository (verified there before it is stored).
    Push {
        file: PathBuf,
        #[command(flatten)]
        hub: HubArgs,
    },
    /// Render a package's templates for an instance, as its plans would.
    Render(RenderArgs),
    /// Write a repository's index.yaml for the archives in a folder.
    Index {
        dir: PathBuf,
        /// Where the archives will be served; each entry's URL is `<url>/<archive>`.
        #[arg(long, default_value = "http://localhost")]
        url: String,
        /// An existing index.yaml whose entries are kept.
        #[arg(long)]
        merge: Option<PathBuf>,
        /// Where to write it [default: DIR/index.yaml].
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ListWhat {
    Params,
    Plans,
    Tasks,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The package: a folder, a .tgz, its URL, or a name with --repo.
    pub package: String,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub values: ParameterArgs,
    /// The instance's name [default: `<operator>-instance`, as KUDO's CLI].
    #[arg(long)]
    pub instance: Option<String>,
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The plan being run (`.PlanName`).
    #[arg(long, default_value = "deploy")]
    pub plan: String,
    /// The phase (`.PhaseName`).
    #[arg(long)]
    pub phase: Option<String>,
    /// The step (`.StepName`).
    #[arg(long)]
    pub step: Option<String>,
    /// Render only the templates the tasks of `--step` (in `--plan`, `--phase`) use.
    #[arg(long, requires = "step")]
    pub step_only: bool,
    /// `yaml`: the rendered documents; `json`: `{"templates": {...}}` with each template's
    /// text or error.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: RenderFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RenderFormat {
    Yaml,
    Json,
}

pub async fn run(cmd: PackageCmd) -> anyhow::Result<()> {
    match cmd {
        PackageCmd::List { what: None, hub, .. } => super::client::list_packages(&hub).await,
        PackageCmd::List { what: Some(what), package: Some(package), source, .. } => {
            list(what, &resolve(&package, &source).await?)
        }
        PackageCmd::List { .. } => bail!("list params|plans|tasks needs a package"),
        PackageCmd::Push { file, hub } => super::client::push_package(&hub, &file).await,
        PackageCmd::Verify { package, source } => verify_command(&package, resolve(&package, &source).await?),
        PackageCmd::Render(args) => {
            let package = resolve(&args.package, &args.source).await?;
            render(&args, &package)
        }
        PackageCmd::New { name, destination } => new(&name, &destination),
        PackageCmd::Create { dir, destination, overwrite } => create(&dir, &destination, overwrite),
        PackageCmd::Index { dir, url, merge, output } => index(&dir, &url, merge.as_deref(), output.as_deref()),
    }
}

fn read(path: &Path) -> anyhow::Result<Package> {
    read_path(path, &Limits::default()).with_context(|| format!("reading the package {}", path.display()))
}

fn verify_command(path: &str, package: Package) -> anyhow::Result<()> {
    let report = verify::verify(&package);
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    for error in &report.errors {
        println!("error: {error}");
    }
    if !report.is_ok() {
        bail!("{path}: {} error(s), {} warning(s)", report.errors.len(), report.warnings.len());
    }
    println!(
        "{} {} is valid ({} warning(s))",
        package.operator.name,
        package.operator.operator_version,
        report.warnings.len()
    );
    Ok(())
}

fn create(dir: &Path, destination: &Path, overwrite: bool) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("{} is not a package folder", dir.display());
    }
    let package = read(dir)?;
    let report = verify::verify(&package);
    if !report.is_ok() {
        bail!(
            "{} does not verify ({} error(s)); run `maestro package verify` for them",
            dir.display(),
            report.errors.len()
        );
    }
    let target = destination.join(package.operator.archive_name());
    if target.exists() && !overwrite {
        bail!("{} exists; --overwrite replaces it", target.display());
    }
    let bytes = archive::create(&package)?;
    std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
    println!("{}", target.display());
    Ok(())
}

fn list(what: ListWhat, package: &Package) -> anyhow::Result<()> {
    let mut table;
    match what {
        ListWhat::Params => {
            table = Table::new(&["NAME", "DEFAULT", "REQUIRED", "TYPE", "TRIGGER"]);
            for p in &package.params.parameters {
                let default = p.default.as_ref().map(maestro_gotmpl::kudo::scalar_text).unwrap_or_default();
                let trigger = if p.trigger.is_empty() { "-".to_string() } else { p.trigger.clone() };
                table.push(vec![
                    p.name.clone(),
                    one_line(&default),
                    p.is_required().to_string(),
                    p.value_type().into(),
                    trigger,
                ]);
            }
        }
        ListWhat::Plans => {
            table = Table::new(&["PLAN", "PHASE", "STEP", "STRATEGY", "TASKS"]);
            for (name, plan) in &package.operator.plans {
                table.push(vec![name.clone(), String::new(), String::new(), strategy(&plan.strategy), String::new()]);
                for phase in &plan.phases {
                    table.push(vec![
                        String::new(),
                        phase.name.clone(),
                        String::new(),
                        strategy(&phase.strategy),
                        String::new(),
                    ]);
                    for step in &phase.steps {
                        table.push(vec![
                            String::new(),
                            String::new(),
                            step.name.clone(),
                            String::new(),
                            step.tasks.join(","),
                        ]);
                    }
                }
            }
        }
        ListWhat::Tasks => {
            table = Table::new(&["NAME", "KIND", "RESOURCES"]);
            for task in &package.operator.tasks {
                let templates: Vec<&str> = task.templates().collect();
                table.push(vec![task.name.clone(), task.kind.clone(), templates.join(",")]);
            }
        }
    }
    emit(&table.render())?;
    Ok(())
}

/// KUDO runs anything but `serial` in parallel; say so.
fn strategy(written: &str) -> String {
    if written == "serial" { "serial".into() } else { "parallel".into() }
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.len() < text.trim_end().len() { format!("{line}…") } else { line.to_string() }
}

/// Parameter values as `kubectl kudo` takes them: `-P` files, then `-p` flags.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ParameterArgs {
    /// A parameter value, `NAME=VALUE` (repeatable).
    #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
    pub parameters: Vec<String>,
    /// A YAML file of parameter values (repeatable; `-p` wins).
    #[arg(short = 'P', long = "parameter-file", value_name = "FILE")]
    pub parameter_files: Vec<PathBuf>,
}

impl ParameterArgs {
    /// The values: files first, then `-p` flags, each naming what is wrong.
    pub fn values(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        for file in &self.parameter_files {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let map: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(&text)
                .with_context(|| format!("{}: a YAML map of parameter values", file.display()))?;
            for (name, value) in map {
                let text = match value {
                    serde_yaml::Value::Sequence(_) | serde_yaml::Value::Mapping(_) => serde_yaml::to_string(&value)?,
                    other => maestro_gotmpl::kudo::scalar_text(&other),
                };
                values.insert(name, text);
            }
        }
        for flag in &self.parameters {
            let Some((name, value)) = flag.split_once('=') else {
                bail!("-p {flag:?}: a parameter is NAME=VALUE");
            };
            values.insert(name.to_string(), value.to_string());
        }
        Ok(values)
    }
}

fn render(args: &RenderArgs, package: &Package) -> anyhow::Result<()> {
    let values = args.values.values()?;
    let only = step_templates(package, args)?;
    let meta = Meta {
        instance: args.instance.clone().unwrap_or_else(|| format!("{}-instance", package.operator.name)),
        namespace: args.namespace.clone(),
        plan: args.plan.clone(),
        phase: args.phase.clone().unwrap_or_default(),
        step: args.step.clone().unwrap_or_default(),
    };
    let data = package.data(&meta, &values, BTreeMap::new()).map_err(anyhow::Error::msg)?;
    let mut outcomes = package.render_all(&data);
    if let Some(only) = &only {
        outcomes.retain(|key, _| only.contains(key));
    }
    match args.output {
        RenderFormat::Json => {
            emit(&format!("{}\n", serde_json::to_string_pretty(&serde_json::json!({"templates": outcomes}))?))?;
            Ok(())
        }
        RenderFormat::Yaml => yaml_documents(&outcomes),
    }
}

/// With `--step-only`: the templates the step's tasks use (`--phase`, when given, must be its
/// phase).
fn step_templates(package: &Package, args: &RenderArgs) -> anyhow::Result<Option<Vec<String>>> {
    let Some(step_name) = args.step.as_ref().filter(|_| args.step_only) else { return Ok(None) };
    let plan =
        package.operator.plans.get(&args.plan).with_context(|| format!("--plan {:?}: no such plan", args.plan))?;
    let step = plan
        .phases
        .iter()
        .filter(|phase| args.phase.as_ref().is_none_or(|p| p == &phase.name))
        .flat_map(|phase| &phase.steps)
        .find(|step| &step.name == step_name)
        .with_context(|| format!("--step {step_name:?}: no such step in plan {:?}", args.plan))?;
    let tasks = package.operator.tasks.iter().filter(|t| step.tasks.contains(&t.name));
    let templates = tasks.flat_map(|t| t.templates().map(str::to_string)).collect();
    Ok(Some(templates))
}

fn yaml_documents(outcomes: &BTreeMap<String, Outcome>) -> anyhow::Result<()> {
    let mut failed = 0;
    for (key, outcome) in outcomes {
        match outcome {
            Outcome::Rendered(text) => emit(&format!("---\n# Source: {key}\n{}\n", text.trim_end()))?,
            Outcome::Error(error) => {
                eprintln!("error: {error}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} template(s) did not render");
    }
    Ok(())
}

fn index(dir: &Path, url: &str, merge: Option<&Path>, output: Option<&Path>) -> anyhow::Result<()> {
    let mut index = IndexFile::new(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tgz"))
        .collect();
    archives.sort();
    for path in &archives {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let package = read_tgz(&bytes, &Limits::default()).with_context(|| format!("reading {}", path.display()))?;
        index.add(Entry::of(&package, &bytes, url), true);
    }
    if let Some(merge) = merge {
        let text = std::fs::read_to_string(merge).with_context(|| format!("reading {}", merge.display()))?;
        index.merge(serde_yaml::from_str(&text).with_context(|| format!("{}: not an index.yaml", merge.display()))?);
    }
    let target = output.map(Path::to_path_buf).unwrap_or_else(|| dir.join("index.yaml"));
    std::fs::write(&target, index.to_yaml()).with_context(|| format!("writing {}", target.display()))?;
    println!("{} ({} archive(s))", target.display(), archives.len());
    Ok(())
}

const NEW_OPERATOR: &str = "apiVersion: kudo.dev/v1beta1
name: NAME
operatorVersion: 0.1.0
appVersion: 1.0.0
description: A new operator.
maintainers:
  - name: Your Name
    email: you@example.com
tasks:
  - name: app
    kind: Apply
    spec:
      resources:
        - deployment.yaml
plans:
  deploy:
    strategy: serial
    phases:
      - name: main
        strategy: parallel
        steps:
          - name: everything
            tasks:
              - app
";

const NEW_PARAMS: &str = "apiVersion: kudo.dev/v1beta1
parameters:
  - name: REPLICAS
    description: How many pods run the application.
    default: 1
    type: integer
  - name: IMAGE
    description: The container image.
    default: nginx:1.27
";

const NEW_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Name }}
  namespace: {{ .Namespace }}
spec:
  replicas: {{ .Params.REPLICAS }}
  selector:
    matchLabels:
      app: {{ .Name }}
  template:
    metadata:
      labels:
        app: {{ .Name }}
    spec:
      containers:
        - name: app
          image: {{ .Params.IMAGE }}
";

/// The new package's test case: install it into the case's namespace, then the plan and
/// the Deployment must get there. Commands find the running `maestro` first on their PATH.
const NEW_TEST_INSTALL: &str = "apiVersion: kuttl.dev/v1beta1
kind: TestStep
commands:
  - command: maestro operator install ../../NAME --instance NAME -p REPLICAS=2
    namespaced: true
";

const NEW_TEST_ASSERT: &str = "apiVersion: kudo.dev/v1beta1
kind: Instance
metadata:
  name: NAME
status:
  planStatus:
    deploy:
      status: COMPLETE
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: NAME
spec:
  replicas: 2
status:
  readyReplicas: 2
";

fn new(name: &str, destination: &Path) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        bail!("{name:?}: a package name is lower-case letters, digits and '-' (a DNS label)");
    }
    let root = destination.join(name);
    if root.exists() {
        bail!("{} exists", root.display());
    }
    std::fs::create_dir_all(root.join("templates")).with_context(|| format!("creating {}", root.display()))?;
    std::fs::write(root.join("operator.yaml"), NEW_OPERATOR.replace("NAME", name))?;
    std::fs::write(root.join("params.yaml"), NEW_PARAMS)?;
    std::fs::write(root.join("templates/deployment.yaml"), NEW_DEPLOYMENT)?;
    let case = destination.join("tests").join(format!("{name}-deploy"));
    if !case.exists() {
        std::fs::create_dir_all(&case).with_context(|| format!("creating {}", case.display()))?;
        std::fs::write(case.join("00-install.yaml"), NEW_TEST_INSTALL.replace("NAME", name))?;
        std::fs::write(case.join("00-assert.yaml"), NEW_TEST_ASSERT.replace("NAME", name))?;
    }
    println!(
        "{} (try: maestro package verify {0}; maestro package render {0}; maestro test {})",
        root.display(),
        destination.join("tests").display()
    );
    Ok(())
}
