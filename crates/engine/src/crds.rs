//! KUDO's three CRDs (`maestro_package::crd::CRDS`), applied when missing and waited for until
//! established, so the engine's watches start on served resources.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use maestro_package::crd::CRDS;
use serde_json::Value;

use crate::cluster::FIELD_MANAGER;
use crate::cluster::{CallError, bounded};

/// How long the CRDs get to become established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);

fn crd_api(client: &Client) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    };
    Api::all_with(client.clone(), &resource)
}

fn established(object: &DynamicObject) -> bool {
    object.data.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Established")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    })
}

/// Creates each CRD that does not exist (an existing one is left as it is: a cluster may run a
/// newer KUDO's), then waits until all are established.
pub async fn install(client: &Client) -> Result<(), CallError> {
    let api = crd_api(client);
    let mut names = Vec::new();
    for text in CRDS {
        let crd: DynamicObject = serde_yaml::from_str(text)
            .map_err(|e| CallError::Unreachable(format!("a built-in CRD does not parse: {e}")))?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        if bounded(api.get_opt(&name)).await?.is_none() {
            bounded(api.patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&crd))).await?;
            tracing::info!(crd = %name, "CRD installed");
        }
        names.push(name);
    }
    let deadline = tokio::time::Instant::now() + ESTABLISH_TIMEOUT;
    for name in names {
        loop {
            let found = bounded(api.get_opt(&name)).await?;
            if found.as_ref().is_some_and(established) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(CallError::Unreachable(format!("CRD {name} not established within {ESTABLISH_TIMEOUT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
