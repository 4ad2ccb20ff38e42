//! The `maestro` command line. This is the binary's edge: commands report errors with `anyhow`
//! for people, while the library underneath keeps typed errors.

pub mod agent;
pub mod client;
pub mod operator;
pub mod output;
pub mod package;
pub mod package_source;
pub mod plugin;
pub mod plugin_try;
pub mod sim;
pub mod test;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::{DatabaseArgs, ServerArgs, flags_from_file};

#[derive(Debug, Parser)]
#[command(
    name = "maestro",
    version,
    about = "Ships Kubernetes resources from a hub to fleets of clusters and brings their status back."
)]
pub struct Cli {
    /// Log lines as text for people or JSON for collectors. Verbosity: MAESTRO_LOG (e.g. debug).
    #[arg(long, global = true, env = "MAESTRO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Address of the REST API.
    #[arg(long, env = "MAESTRO_BIND", default_value = "127.0.0.1:8000")]
    pub bind: std::net::SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Simulated clusters to run, each with its agent and a consumer cluster1..N.
    #[arg(long, default_value_t = 2)]
    pub clusters: usize,
    /// Directory of WebAssembly plugins to load and watch (e.g. target/plugins).
    #[arg(long, env = "MAESTRO_PLUGIN_DIR")]
    pub plugin_dir: Option<std::path::PathBuf>,
}

impl DevArgs {
    pub fn hub_config(&self) -> Result<maestro_hub::HubConfig, crate::config::ConfigError> {
        Ok(maestro_hub::HubConfig {
            bind: self.bind,
            database_url: self.database.url()?,
            db: self.database.options(),
            limits: Default::default(),
            auth: Default::default(),
            plugins: self.plugin_dir.clone().map(maestro_plugins::PluginConfig::new),
        })
    }
}

/// What `maestro dev` prints once the hub is up: enough to try every part by hand.
pub fn dev_banner(url: &str, database: &str) -> String {
    format!(
        "\nMaestro is running.\n  API       {url}/api/maestro/v1  (OpenAPI at /api/maestro/v1/openapi)\n  database  {database}\n  metrics   {url}/metrics\n\nTry it:\n  curl -s -X POST {url}/api/maestro/v1/consumers -H 'Content-Type: application/json' -d '{{\"name\": \"cluster1\"}}'\n  maestro consumer list --server {url}\n\nStop with Ctrl-C.\n"
    )
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: REST API and database (migrated at start).
    Server(Box<ServerArgs>),
    /// Try Maestro on this machine with nothing installed: a hub on embedded SQLite, with
    /// the commands to talk to it printed. Stop with Ctrl-C.
    Dev(DevArgs),
    /// Apply pending database migrations, then exit.
    Migrate(DatabaseArgs),
    /// Run a consumer's agent: apply its bundles to a cluster and report their status.
    Agent(agent::AgentArgs),
    /// Consumers (clusters) of a hub, through its REST API.
    Consumer(client::ConsumerCmd),
    /// Single-manifest resources of a hub, through its REST API.
    Resource(client::ResourceCmd),
    /// Resource bundles of a hub, through its REST API.
    Bundle(client::BundleCmd),
    /// Measure a hub: create rate and latency, and listing, on PostgreSQL and SQLite.
    Bench(maestro_bench::BenchArgs),
    /// Simulate Kubernetes clusters (an API server with controllers, in memory) for the agent,
    /// kubectl and tests; writes a kubeconfig per cluster. Stop with Ctrl-C.
    SimCluster(sim::SimClusterArgs),
    /// Write, check, run and measure WebAssembly plugins (see docs/plugins.md).
    Plugin(plugin::PluginCmd),
    /// KUDO operator packages: scaffold, verify, render, archive, index (see docs/operators.md).
    #[command(subcommand)]
    Package(package::PackageCmd),
    /// The universal operator: run KUDO packages' plans on a cluster, with `kubectl kudo`'s
    /// verbs (see docs/operators.md).
    #[command(subcommand)]
    Operator(operator::OperatorCmd),
    /// Run kuttl test suites (numbered YAML steps and partial-object asserts) against a
    /// simulated cluster with the universal operator, or any cluster (see docs/testing.md).
    Test(test::TestArgs),
}

impl Cli {
    /// Parses the command line, then folds in `maestro server --config FILE` beneath the flags
    /// and environment variables.
    pub fn parse_with_config() -> anyhow::Result<Cli> {
        let args: Vec<OsString> = std::env::args_os().collect();
        let command = Cli::command();
        let matches = command.clone().get_matches_from(&args);
        let cli = Cli::from_arg_matches(&matches)?;
        let Command::Server(server) = &cli.command else { return Ok(cli) };
        let Some(path) = &server.config else { return Ok(cli) };
        let server_command = command.find_subcommand("server").ok_or_else(|| anyhow::anyhow!("no server command"))?;
        let server_matches =
            matches.subcommand_matches("server").ok_or_else(|| anyhow::anyhow!("no server matches"))?;
        let extra = flags_from_file(path, server_command, server_matches)?;
        let matches = Cli::command().try_get_matches_from(args.into_iter().chain(extra))?;
        Ok(Cli::from_arg_matches(&matches)?)
    }
}
