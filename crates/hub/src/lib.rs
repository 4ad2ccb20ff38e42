//! The hub: the REST API, the services every writer goes through, and the hub's side of the
//! transport (outbox to broker, agents' statuses to the store). [`start`] opens the store,
//! applies migrations and serves until told to stop.
//!
//! Imports model, search, store, plugins, wire and net; never the agent, the simulator or the
//! benchmarks.

pub mod api;
pub mod metrics;
pub mod service;
pub mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::auth::{Auth, AuthConfig, AuthConfigError};
use crate::api::{ApiState, Limits};
use crate::metrics::Metrics;
use crate::service::Services;
use crate::transport::{Transport, TransportConfig};
use maestro_plugins::{PluginConfig, PluginError, PluginRuntime};
use maestro_store::wakeup::{POLICY_CHANNEL, Wakeup};
use maestro_store::{DbOptions, Store, StoreError, redact_url};

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub bind: SocketAddr,
    pub database_url: String,
    pub db: DbOptions,
    pub limits: Limits,
    pub auth: AuthConfig,
    /// Plugins (`--plugin-dir`); none runs without it.
    pub plugins: Option<PluginConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    #[error(
        "refusing to serve {0} without authentication: set --auth-token-file or a --jwt-* key, or bind to 127.0.0.1"
    )]
    UnauthenticatedRemote(SocketAddr),
    #[error("database {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error("plugins: {0}")]
    Plugins(#[from] PluginError),
    #[error("cannot listen on {addr} (set --bind to a free address): {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("transport: {0}")]
    Transport(#[from] crate::transport::TransportError),
}

/// A hub serving in the background; dropping it does not stop it, [`RunningHub::shutdown`] does.
pub struct RunningHub {
    pub addr: SocketAddr,
    pub store: Arc<Store>,
    /// The write services: what any in-process writer (engines, other APIs) must call instead
    /// of the store, so that its writes are checked like the REST API's.
    pub services: Services,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    transport: Option<Transport>,
    /// Reloads the stored plugin policies when another hub changes them.
    policy_sync: Option<JoinHandle<()>>,
    /// Force-deletes deletes no agent confirmed in time (`--stale-delete-after`).
    stale_sweep: Option<JoinHandle<()>>,
}

impl RunningHub {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The MQTT broker this hub's transport uses (the embedded one's `mqtt://127.0.0.1:<port>`
    /// unless `--mqtt-url` named another); `None` when the hub runs without transport.
    pub fn broker_url(&self) -> Option<&str> {
        self.transport.as_ref().map(|t| t.broker_url.as_str())
    }

    /// The running transport, if any (tests wait on its connection).
    pub fn transport(&self) -> Option<&Transport> {
        self.transport.as_ref()
    }

    fn stop_background(&mut self) {
        for task in [self.policy_sync.take(), self.stale_sweep.take()].into_iter().flatten() {
            task.abort();
        }
    }

    /// Stops accepting, lets requests in flight finish, stops the transport (rows not yet
    /// dispatched stay queued), then closes the database pool.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.stop_background();
        let served = self.task.await.unwrap_or_else(|join| Err(std::io::Error::other(join)));
        if let Some(transport) = self.transport.take() {
            transport.shutdown().await;
        }
        self.store.close().await;
        served
    }

    /// Serves until `signal` completes, then shuts down gracefully; or until serving fails.
    pub async fn run_until(mut self, signal: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        let failed = tokio::select! {
            served = &mut self.task => Some(served),
            () = signal => None,
        };
        match failed {
            Some(served) => {
                self.stop_background();
                if let Some(transport) = self.transport.take() {
                    transport.shutdown().await;
                }
                self.store.close().await;
                served.unwrap_or_else(|join| Err(std::io::Error::other(join)))
            }
            None => {
                tracing::info!("stopping: finishing requests in flight");
                self.shutdown().await
            }
        }
    }
}

/// Starts a hub without transport: the REST API and the store only.
pub async fn start(config: HubConfig) -> Result<RunningHub, HubError> {
    start_with_transport(config, None).await
}

/// Starts a hub; with a transport config it also connects to (or embeds) the MQTT broker and
/// dispatches the outbox to agents.
pub async fn start_with_transport(
    config: HubConfig,
    transport: Option<TransportConfig>,
) -> Result<RunningHub, HubError> {
    let auth = Auth::from_config(&config.auth)?;
    if !auth.is_on() && !config.bind.ip().is_loopback() {
        return Err(HubError::UnauthenticatedRemote(config.bind));
    }
    let store_error = |source| HubError::Store { url: redact_url(&config.database_url), source };
    let store = Store::connect(&config.database_url, config.db.clone()).await.map_err(store_error)?;
    store.migrate().await.map_err(store_error)?;
    let store = Arc::new(store);
    let mut metrics = Metrics::default();
    let plugins = match &config.plugins {
        Some(plugin_config) => {
            let runtime = PluginRuntime::start(plugin_config.clone()).await?;
            let policies = store.list_plugin_policies().await.map_err(store_error)?;
            runtime.set_stored_policies(policies.into_iter().map(|p| p.spec).collect());
            runtime.metrics().register(metrics.registry_mut());
            Some(runtime)
        }
        None => None,
    };
    let metrics = Arc::new(metrics);
    let codecs = maestro_wire::codec::Codecs::new(plugins.clone());
    let policy_sync = plugins.clone().map(|runtime| tokio::spawn(follow_stored_policies(store.clone(), runtime)));
    let listener =
        TcpListener::bind(config.bind).await.map_err(|source| HubError::Bind { addr: config.bind, source })?;
    let addr = listener.local_addr().map_err(|source| HubError::Bind { addr: config.bind, source })?;
    let transport = match transport {
        Some(transport) => Some(Transport::start(&transport, store.clone(), metrics.transport.clone(), codecs).await?),
        None => None,
    };
    let services =
        Services::new(store.clone(), plugins.clone(), config.limits.manifests.clone(), metrics.force_deletes.clone());
    let stale_sweep =
        config.limits.stale_delete_after.map(|after| tokio::spawn(retire_stale_deletes(services.clone(), after)));
    let state = ApiState {
        services: services.clone(),
        store: store.clone(),
        limits: Arc::new(config.limits.clone()),
        metrics: metrics.clone(),
        auth: Arc::new(auth),
        plugins,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let app = api::router(state);
    let listener = api::ShapedErrors(axum::serve::ListenerExt::tap_io(listener, maestro_net::set_nodelay));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, database = %redact_url(&config.database_url), "hub serving /api/maestro/v1");
    Ok(RunningHub { addr, store, services, stop: Some(stop), task, transport, policy_sync, stale_sweep })
}

/// Force-deletes bundles whose delete no agent confirmed within `after`, looking a few times
/// per `after` (at least every second, at most every minute): a timer, because what makes a
/// delete stale is time passing, which no notification announces.
async fn retire_stale_deletes(services: Services, after: Duration) {
    let every = (after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        match services.bundles.retire_stale_deletes(after).await {
            Ok(0) => {}
            Ok(retired) => tracing::warn!(retired, ?after, "stale deletes retired"),
            Err(err) => tracing::warn!(error = %err, "cannot retire stale deletes; will try again"),
        }
        tokio::time::sleep(every).await;
    }
}

/// How often a hub re-reads the stored policies when no notification comes: the fallback for
/// a lost `LISTEN` connection, and all there is on SQLite (whose one hub sees its own writes).
const POLICY_POLL: Duration = Duration::from_secs(30);

/// Keeps the runtime's stored policies in step with the database while other hubs change them:
/// on each `NOTIFY maestro_plugin_policies` (PostgreSQL), and every [`POLICY_POLL`]. This hub's
/// own changes are put in force by the policy service at once.
async fn follow_stored_policies(store: Arc<Store>, runtime: Arc<PluginRuntime>) {
    let mut wakeup = Wakeup::new(&store, &[POLICY_CHANNEL], None, POLICY_POLL).await;
    loop {
        // Also right after (re)subscribing: a change made before the LISTEN took effect is seen.
        match store.list_plugin_policies().await {
            Ok(policies) => runtime.set_stored_policies(policies.into_iter().map(|p| p.spec).collect()),
            Err(err) => {
                tracing::warn!(error = %err, "cannot reload the stored plugin policies; keeping the ones in force")
            }
        }
        wakeup.wait(&store).await;
    }
}
