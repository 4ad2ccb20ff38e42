//! The universal operator's controller: KUDO's plans carried out against a cluster through
//! `kube`, in `maestro operator run` and beside the agent (`maestro agent --operators`).
//!
//! The decisions (which plan, the pass, health, the enhancer, rendering) are
//! `maestro-operator`'s pure functions; this crate reads and writes the cluster around them:
//!
//! - [`cluster`]: discovery of any kind and bounded calls, errors that say transient or not.
//! - [`instance`]: KUDO's objects read and written (spec before status), and Events.
//! - [`tasks`]: the task kinds, each answering the pass.
//! - [`pipe`]: a `Pipe` task: the pipe pod, pods/exec, the artifacts.
//! - [`reconcile`]: one reconcile of one Instance.
//! - [`controller`]: the watches that schedule reconciles.
//! - [`crds`]: KUDO's CRDs installed when missing.
//! - [`metrics`]: reconciles, plans and passes, with fixed labels.

pub mod cluster;
pub mod controller;
pub mod crds;
pub mod instance;
pub mod metrics;
pub mod pipe;
pub mod reconcile;
pub mod tasks;

use std::time::Duration;

pub use cluster::CallError;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only this namespace; all when `None`.
    pub namespace: Option<String>,
    /// Install KUDO's CRDs when they are missing.
    pub install_crds: bool,
    /// How soon a plan waiting on something unwatched (or retrying an error) is looked at again.
    pub poll: Duration,
    /// The longest a running plan goes without a pass.
    pub resync: Duration,
    /// Where the engine counts (the caller registers and serves them).
    pub metrics: metrics::Metrics,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            namespace: None,
            install_crds: true,
            poll: Duration::from_secs(1),
            resync: Duration::from_secs(30),
            metrics: metrics::Metrics::default(),
        }
    }
}

/// Runs the engine against the cluster `client` talks to, until `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), CallError> {
    if options.install_crds {
        crds::install(&client).await?;
    }
    tracing::info!(namespace = ?options.namespace, "operator engine started");
    controller::run(cluster::Cluster::new(client), &options, shutdown).await
}
