//! The `maestro` binary: parses the command line, sets up logging, runs one command.

use anyhow::Context;
use maestro::cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("MAESTRO_LOG").unwrap_or_else(|_| EnvFilter::new("info,rumqttd=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    maestro_net::install_crypto_provider();
    let cli = Cli::parse_with_config()?;
    init_logging(cli.log_format);
    match cli.command {
        Command::Server(args) => serve(*args).await,
        Command::Dev(args) => dev(args).await,
        Command::Agent(args) => agent(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Consumer(cmd) => maestro::cli::client::consumer(cmd).await,
        Command::Resource(cmd) => maestro::cli::client::resource(cmd).await,
        Command::Bundle(cmd) => maestro::cli::client::bundle(cmd).await,
        Command::Bench(args) => maestro_bench::run(args).await,
        Command::SimCluster(args) => maestro::cli::sim::run(args, stop_signal()).await,
        Command::Plugin(cmd) => maestro::cli::plugin::run(cmd).await,
        Command::Package(cmd) => maestro::cli::package::run(cmd).await,
        Command::Operator(cmd) => maestro::cli::operator::run(cmd).await,
        Command::Test(args) => maestro::cli::test::run(args).await,
    }
}

async fn serve(args: maestro::config::ServerArgs) -> anyhow::Result<()> {
    let mut transport = args.transport.transport_config()?;
    let api_auth = args.auth_token_file.is_some()
        || args.jwt_hs256_secret_file.is_some()
        || args.jwt_rs256_public_key_file.is_some();
    transport.embedded_users = args.transport.embedded_users(api_auth)?;
    let hub = maestro_hub::start_with_transport(args.hub_config()?, Some(transport)).await?;
    hub.run_until(stop_signal()).await.context("hub stopped serving")
}

/// Ctrl-C, or SIGTERM as Kubernetes sends to stop a pod.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the hub");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

async fn dev(args: maestro::cli::DevArgs) -> anyhow::Result<()> {
    let config = args.hub_config()?;
    let database = maestro_store::redact_url(&config.database_url);
    // Every agent logs in to the embedded broker with a password of its own, made now.
    let users = maestro::cli::agent::dev_broker_users(args.clusters);
    let users_file = maestro::cli::agent::write_broker_users(&args.database.data_dir(), &users)?;
    let transport =
        maestro_hub::transport::TransportConfig { embedded_users: Some(users.clone()), ..Default::default() };
    let hub = maestro_hub::start_with_transport(config, Some(transport)).await?;
    eprintln!("{}", maestro::cli::dev_banner(&hub.url(), &database));
    let Some(broker) = hub.broker_url().map(str::to_owned) else {
        return hub.run_until(stop_signal()).await.context("hub stopped serving");
    };
    eprintln!(
        "  MQTT      {broker}  (embedded broker; agents use --source maestro and log in as their consumer,\n            \
         passwords in {})\n",
        users_file.display()
    );
    let clusters =
        maestro::cli::agent::DevClusters::start(&hub.store, &broker, &users, args.clusters, &args.database.data_dir())
            .await?;
    eprintln!("Simulated clusters, each with its agent:\n{}", clusters.describe());
    let served = hub.run_until(stop_signal()).await.context("hub stopped serving");
    clusters.shutdown().await;
    served
}

async fn agent(args: maestro::cli::agent::AgentArgs) -> anyhow::Result<()> {
    let mut config = args.agent_config().await?;
    let engine = match args.operators {
        true => {
            let client = kube::Client::try_from(config.kube.clone()).context("a client for the cluster")?;
            // The engine's series are served on the agent's /metrics.
            let metrics = maestro_engine::metrics::Metrics::default();
            let registered = metrics.clone();
            config.metrics_beside =
                Some(maestro_agent::metrics::Beside(std::sync::Arc::new(move |r| registered.register(r))));
            Some(maestro::cli::operator::run::EngineTask::start(client, &args.consumer, metrics))
        }
        false => None,
    };
    let agent = maestro_agent::Agent::start(config).await?;
    if let Some(addr) = agent.metrics_addr() {
        eprintln!("metrics on http://{addr}/metrics");
    }
    stop_signal().await;
    if let Some(engine) = engine {
        engine.shutdown().await;
    }
    agent.shutdown().await;
    Ok(())
}

async fn migrate(args: maestro::config::DatabaseArgs) -> anyhow::Result<()> {
    let url = args.url()?;
    let store = maestro_store::Store::connect(&url, args.options())
        .await
        .with_context(|| format!("database {}", maestro_store::redact_url(&url)))?;
    store.migrate().await.context("applying migrations")?;
    tracing::info!(database = %maestro_store::redact_url(&url), "migrations applied");
    Ok(())
}
