//! The cluster `maestro operator` talks to: a `kube` client from `--kubeconfig` (default as
//! kubectl's: `$KUBECONFIG`, `~/.kube/config`, or the pod's service account), KUDO's objects
//! written by server-side apply, and waits that watch (never poll) until a condition holds.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use maestro_engine::instance::{instance_resource, instances, kudo_resource};
use maestro_package::crd::Instance;
use serde_json::Value;

/// Who writes what the CLI applies.
pub const FIELD_MANAGER: &str = "maestro-cli";

/// Where the cluster is and which namespace the command works in.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Kubeconfig of the cluster [default: $KUBECONFIG, ~/.kube/config, or the pod's service
    /// account].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace of the instance.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

impl ClusterArgs {
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        maestro_net::install_crypto_provider();
        let config = kube_config(self.kubeconfig.as_deref()).await?;
        kube::Client::try_from(config).context("a client for the cluster")
    }
}

/// The cluster of `--kubeconfig`, else as kubectl finds it (`$KUBECONFIG`, `~/.kube/config`,
/// the pod's service account). Shared by `maestro agent` and `maestro operator`.
pub async fn kube_config(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Config> {
    match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("--kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))
        }
        None => {
            kube::Config::infer().await.context("no cluster found: set --kubeconfig or KUBECONFIG, or run in a pod")
        }
    }
}

/// Writes a namespaced object of KUDO's kinds (server-side apply, taking over the fields).
pub async fn apply(client: &kube::Client, namespace: &str, object: &Value) -> anyhow::Result<()> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let resource = kudo_resource(kind, &format!("{}s", kind.to_lowercase()));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    bounded(api.patch(name, &params, &Patch::Apply(object))).await.with_context(|| format!("writing {kind} {name}"))?;
    Ok(())
}

/// One call within the CLI's time limit.
pub async fn bounded<T>(call: impl Future<Output = Result<T, kube::Error>>) -> anyhow::Result<T> {
    match tokio::time::timeout(Duration::from_secs(30), call).await {
        Ok(result) => Ok(result?),
        Err(_) => bail!("the API server did not answer within 30s"),
    }
}

pub fn parse(object: &DynamicObject) -> anyhow::Result<Instance> {
    let value = serde_json::to_value(object)?;
    serde_json::from_value(value).context("the Instance is malformed")
}

/// Reads an Instance, saying which one is missing.
pub async fn instance(client: &kube::Client, namespace: &str, name: &str) -> anyhow::Result<(DynamicObject, Instance)> {
    let Some(object) = bounded(instances(client, namespace).get_opt(name)).await? else {
        bail!("instance {name:?} does not exist in namespace {namespace:?}");
    };
    let parsed = parse(&object)?;
    Ok((object, parsed))
}

/// Waits up to `limit` until `done` holds for the Instance (or it is gone: `done(None)`).
pub async fn wait_for(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    limit: Duration,
    done: impl Fn(Option<&Instance>) -> bool + Send + 'static,
) -> anyhow::Result<()> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &instance_resource());
    let condition = move |object: Option<&DynamicObject>| {
        let parsed = object.and_then(|o| parse(o).ok());
        done(parsed.as_ref())
    };
    match tokio::time::timeout(limit, await_condition(api, name, condition)).await {
        Ok(result) => {
            result.context("watching the instance")?;
            Ok(())
        }
        Err(_) => bail!(
            "instance {name:?} did not get there within {limit:?}: is the operator engine running for this cluster \
             (`maestro operator run`, or an agent with --operators)?"
        ),
    }
}
