//! A Kubernetes API simulator: an HTTP server that speaks enough of the Kubernetes REST API for
//! `kube` and `kubectl`, with controllers that make it behave like a small cluster. Tests and
//! `maestro dev` run the agent against it; `maestro sim-cluster` serves it from the command line.
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use maestro_sim::{SimCluster, SimOptions};
//! use std::time::Duration;
//!
//! let sim = SimCluster::start(SimOptions { ready_delay: Duration::from_millis(200), ..Default::default() }).await?;
//! let client = sim.client()?; // a kube::Client for http://127.0.0.1:<port>
//! std::fs::write("/tmp/kubeconfig", sim.kubeconfig())?; // for kubectl or Config::from_custom_kubeconfig
//! // ... drive it with kube: Api<Deployment>, Api<DynamicObject>, watcher(), Discovery ...
//! sim.shutdown().await?;
//!
//! // Many clusters in one process (each its own listener, store and controllers):
//! let fleet = SimCluster::start_many(50, SimOptions::default()).await?;
//! # Ok(()) }
//! ```
//!
//! # What it serves
//!
//! - Discovery: `/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`, classic and aggregated
//!   (`as=APIGroupDiscoveryList`); built-in types (`discovery.rs`), and custom resources as soon as
//!   their CustomResourceDefinition is created (gone once it is deleted). `/version`, `/healthz`,
//!   `/livez`, `/readyz`.
//! - Get, list (label and field selectors, `limit`/`continue`), watch (from a resourceVersion,
//!   bookmarks, `sendInitialEvents`, `timeoutSeconds`, 410 `Expired` past the retained history).
//! - Create (`generateName` too), update (PUT with resourceVersion preconditions), patch (JSON
//!   merge, strategic merge, JSON patch), server-side apply with field managers and conflicts,
//!   delete with propagation (Background, Foreground, Orphan), preconditions and finalizers,
//!   delete-collection, `dryRun=All`, and the `/status` subresource.
//! - Namespaces: `default`, `kube-system`, `kube-public` and `kube-node-lease` exist at start; a
//!   namespaced write into a missing namespace answers 404, into a terminating one 403.
//! - Controllers (`controllers.rs`): workloads become ready after a delay, Jobs complete or fail,
//!   namespaces empty themselves when deleted, garbage collection by ownerReferences.
//! - Errors are `Status` objects with the real reasons and codes (404 NotFound, 409
//!   AlreadyExists/Conflict, 422 Invalid, 400 BadRequest, 403 Forbidden, 405, 415, 410 Expired).
//!
//! # Differences from a real API server
//!
//! Read these before trusting a test that passes here:
//! - **No schemas.** Bodies are not validated against OpenAPI schemas: unknown fields are kept
//!   (even with `fieldValidation=Strict`), wrong types are stored as sent, immutable fields
//!   (selectors, Job templates) can change. Only names (RFC 1123 rules), `apiVersion`/`kind`,
//!   namespaces and CRD definitions are checked. Few defaults are filled in (`spec.replicas`,
//!   Secret `type`, Service `spec.type`, port `protocol` and a `clusterIP` derived from the
//!   Service's name, namespace finalizers). Resource quantities are stored in canonical form
//!   (`0.3` reads back `300m`, `quantity.rs`); a malformed one is stored as sent.
//! - **List merge keys are guessed** (see `apply.rs`): a list of objects is keyed by `name` (else
//!   `type`, `uid`, `mountPath`, `containerPort`, `port`, `ip`) when every item has a distinct
//!   one; real keys are sometimes compound (ports are keyed by port *and* protocol).
//!   `metadata.finalizers` is a set; other lists are atomic. This drives server-side apply
//!   ownership and strategic merge patch, which is otherwise a JSON merge patch (no
//!   `$setElementOrder`, `$retainKeys` or `$deleteFromPrimitiveList`).
//! - **No version conversion.** A resource is stored once; served under another version of a
//!   CRD only `apiVersion` changes. Built-in types are served at one version each.
//! - **Lists are always current.** `resourceVersion`/`resourceVersionMatch` on a list are
//!   ignored; a `continue` page reads the current state (not a snapshot) but reports the first
//!   page's resourceVersion.
//! - **Watch history is bounded** by `SimOptions::watch_history` events per cluster (not by
//!   time); a watcher that falls more than 4096 events behind is closed and resumes.
//! - **No Pods or ReplicaSets** are created for workloads, and no scheduling, probes, images or
//!   volumes: only workload status moves, on a timer. Jobs never retry.
//! - **Deletion is simplified.** Grace periods are ignored (deletion is immediate unless
//!   finalizers hold it). Orphan propagation strips ownerReferences synchronously, inside the
//!   DELETE request, instead of through an `orphan` finalizer. A CRD is removed at once and its
//!   custom resources are then deleted by the controller (no `customresourcecleanup` finalizer).
//!   Jobs default to Background propagation (the real default for batch/v1 Jobs is Orphan).
//! - **No authentication, authorization or admission.** Every request is allowed; RBAC objects
//!   are stored but not enforced; webhooks are not called. Plain HTTP only.
//! - **No protobuf**, no `/log`, `/proxy` or other subresources than `/status` and `/scale`;
//!   `pods/exec`, `pods/attach` and `pods/portforward` of an existing pod answer 400 BadRequest
//!   saying no container runtime runs here (a Pipe task reports that reason) unless a test
//!   scripts exec's answers ([`SimOptions::exec`]), no OpenAPI documents (`kubectl apply` needs `--validate=false`). `kubectl get`
//!   Tables have the usual columns for common kinds and `Name`/`Age` for the rest. `kubectl
//!   create <kind> ...` generators send protobuf, which is refused with 415: use
//!   `kubectl create -f` / `apply` (JSON).
//! - **No persistence**: a stopped cluster is gone.

mod apply;
mod controllers;
mod delete;
mod discovery;
mod gc;
mod handlers;
mod object;
mod quantity;
mod selector;
mod status;
mod store;
mod table;
mod target;
mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

use discovery::Registry;
use store::{Change, Entry, ObjKey, Store};

pub use controllers::{FAIL_ANNOTATION, READY_DELAY_ANNOTATION};
pub use handlers::exec::{ExecReply, ExecScript};

/// How a simulated cluster behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Where to listen; port 0 picks a free one. With [`SimCluster::start_many`], every cluster
    /// binds this address (so use port 0).
    pub bind: SocketAddr,
    /// The cluster's name in its kubeconfig.
    pub name: String,
    /// How long a workload generation takes to become ready and a Job to finish.
    pub ready_delay: Duration,
    /// How many past events watches can resume from before answering 410 Expired.
    pub watch_history: usize,
    /// How often a watch that allows bookmarks gets one.
    pub bookmark_interval: Duration,
    /// Nodes a DaemonSet is scheduled on.
    pub nodes: u32,
    /// What `pods/exec` answers. Empty: no container runtime, exec is refused with that reason.
    pub exec: ExecScript,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: "sim".into(),
            ready_delay: Duration::from_secs(1),
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(10),
            nodes: 1,
            exec: ExecScript::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr} (choose a free address, or port 0): {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("building a Kubernetes client for {url}: {source}")]
    Client { url: String, source: kube::Error },
    #[error("invalid cluster URL {0}")]
    Url(String),
}

/// One simulated cluster's state, shared by its handlers and controllers.
pub(crate) struct ClusterState {
    pub store: Arc<Store>,
    registry: Arc<RwLock<Registry>>,
    pub options: SimOptions,
    pub addr: SocketAddr,
    pub stop: signal::Receiver<bool>,
}

impl ClusterState {
    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn registry_mut(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts simulated clusters.
pub struct SimCluster;

impl SimCluster {
    /// Starts one cluster: its listener, its store with the initial namespaces and node, and
    /// its controllers.
    pub async fn start(options: SimOptions) -> Result<RunningSim, SimError> {
        let store = Arc::new(Store::new(options.watch_history));
        let registry = Arc::new(RwLock::new(Registry::builtin()));
        Self::serve(options, store, registry, true).await
    }

    async fn serve(
        options: SimOptions,
        store: Arc<Store>,
        registry: Arc<RwLock<Registry>>,
        fresh: bool,
    ) -> Result<RunningSim, SimError> {
        let listener =
            TcpListener::bind(options.bind).await.map_err(|source| SimError::Bind { addr: options.bind, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr: options.bind, source })?;
        let (stop, stopped) = signal::channel(false);
        let state = Arc::new(ClusterState { store, registry, options: options.clone(), addr, stop: stopped.clone() });
        if fresh {
            seed(&state);
        }
        let controllers = tokio::spawn(controllers::run(state.clone()));
        let app = handlers::router(state.clone());
        let mut shutdown = stopped;
        let listener = axum::serve::ListenerExt::tap_io(listener, maestro_net::set_nodelay);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::info!(%addr, cluster = %options.name, "simulated Kubernetes API serving");
        Ok(RunningSim { name: options.name, addr, stop, server, controllers, state })
    }

    /// Starts `count` clusters in this process, named `<name>-1` ... `<name>-<count>`, each with
    /// its own listener, store and controllers.
    pub async fn start_many(count: usize, options: SimOptions) -> Result<Vec<RunningSim>, SimError> {
        let mut clusters = Vec::with_capacity(count);
        for i in 1..=count {
            let options = SimOptions { name: format!("{}-{i}", options.name), ..options.clone() };
            match SimCluster::start(options).await {
                Ok(sim) => clusters.push(sim),
                Err(err) => {
                    for sim in clusters {
                        let _ = sim.shutdown().await;
                    }
                    return Err(err);
                }
            }
        }
        Ok(clusters)
    }
}

/// The objects a fresh cluster has: its namespaces and one Ready node.
fn seed(state: &ClusterState) {
    let mut objects: Vec<(ObjKey, Value)> = ["default", "kube-system", "kube-public", "kube-node-lease"]
        .into_iter()
        .map(|ns| {
            let key = ObjKey { rid: "/namespaces".into(), namespace: String::new(), name: ns.into() };
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            (key, obj)
        })
        .collect();
    for i in 1..=state.options.nodes.max(1) {
        let name = format!("sim-node-{i}");
        let key = ObjKey { rid: "/nodes".into(), namespace: String::new(), name: name.clone() };
        let obj = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated"}]},
        });
        objects.push((key, obj));
    }
    for (key, obj) in objects {
        let _ = state.store.write(&key, false, |_| Ok(Change::Put(Entry { obj, managers: Vec::new() })));
    }
}

/// A simulated cluster serving in the background; dropping it does not stop it,
/// [`RunningSim::shutdown`] does.
pub struct RunningSim {
    name: String,
    addr: SocketAddr,
    stop: signal::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    controllers: JoinHandle<()>,
    state: Arc<ClusterState>,
}

/// A cluster whose API server is stopped while its objects are kept, as when a real API server
/// restarts and etcd does not: [`StoppedSim::resume`] serves them again on the same address.
pub struct StoppedSim {
    options: SimOptions,
    store: Arc<Store>,
    registry: Arc<RwLock<Registry>>,
}

impl StoppedSim {
    /// Listens on the address the cluster had, with its objects, resourceVersions and watch
    /// history (a watch resumes across the restart as it would against the same etcd).
    pub async fn resume(self) -> Result<RunningSim, SimError> {
        SimCluster::serve(self.options, self.store, self.registry, false).await
    }
}

impl RunningSim {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (YAML) for this cluster: plain HTTP, no credentials, namespace `default`.
    pub fn kubeconfig(&self) -> String {
        kubeconfig(&self.name, &self.url())
    }

    /// A `kube` configuration for this cluster.
    pub fn config(&self) -> Result<kube::Config, SimError> {
        let uri = self.url().parse().map_err(|_| SimError::Url(self.url()))?;
        Ok(kube::Config::new(uri))
    }

    /// A `kube` client for this cluster.
    pub fn client(&self) -> Result<kube::Client, SimError> {
        maestro_net::install_crypto_provider();
        kube::Client::try_from(self.config()?).map_err(|source| SimError::Client { url: self.url(), source })
    }

    /// The ConfigMaps of `namespace`, through `kube` as a client of this cluster sees them.
    pub fn config_maps(&self, namespace: &str) -> Result<kube::Api<kube::api::DynamicObject>, SimError> {
        let resource = kube::discovery::ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
        };
        Ok(kube::Api::namespaced_with(self.client()?, namespace, &resource))
    }

    /// Ends watches, stops accepting, lets requests in flight finish, and stops the controllers.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.stop().await.map(drop)
    }

    /// Like [`RunningSim::shutdown`], keeping the objects so [`StoppedSim::resume`] can serve
    /// them again on the same address (connections are refused in between).
    pub async fn stop(self) -> std::io::Result<StoppedSim> {
        let _ = self.stop.send(true);
        let served = self.server.await.unwrap_or_else(|join| Err(std::io::Error::other(join)));
        let _ = self.controllers.await;
        let options = SimOptions { bind: self.addr, ..self.state.options.clone() };
        served.map(|()| StoppedSim { options, store: self.state.store.clone(), registry: self.state.registry.clone() })
    }
}

/// A kubeconfig for a cluster named `name` at `url`.
pub fn kubeconfig(name: &str, url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {url}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    namespace: default\ncurrent-context: {name}\nusers:\n- name: {name}\n  user: {{}}\npreferences: {{}}\n"
    )
}
