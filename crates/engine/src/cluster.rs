//! The engine's access to the API server: discovery of any kind (cached per kind; a kind the
//! server does not serve yet is asked again next time, its CRD may be on the way), and every
//! call bounded in time. Errors keep the server's reason and say whether a later pass may
//! succeed, which is what decides between a transient and a fatal task error (SPEC.md §2.6).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

/// The name the engine writes under, in `managedFields` and as the source of its Events.
pub const FIELD_MANAGER: &str = "maestro-operator";

/// Bounds every call to the API server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The server answered with an error status.
    #[error("{reason} ({code}): {message}")]
    Api { code: u16, reason: String, message: String },
    /// The server did not answer in time, or the connection failed.
    #[error("API server unreachable: {0}")]
    Unreachable(String),
    /// The server does not serve this kind (now).
    #[error("the API server does not serve {0}")]
    UnknownKind(String),
}

impl CallError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, CallError::Api { code: 404, .. })
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, CallError::Api { code: 409, .. })
    }

    fn from_kube(err: kube::Error) -> CallError {
        match err {
            kube::Error::Api(status) => {
                CallError::Api { code: status.code, reason: status.reason.clone(), message: status.message.clone() }
            }
            other => CallError::Unreachable(other.to_string()),
        }
    }
}

/// Runs one API call within [`REQUEST_TIMEOUT`].
pub async fn bounded<T>(call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, CallError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(result) => result.map_err(CallError::from_kube),
        Err(_) => Err(CallError::Unreachable(format!("no answer within {REQUEST_TIMEOUT:?}"))),
    }
}

/// A kind as the server serves it.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl Kind {
    /// Writes the object under the version the server serves (a removed beta version becomes
    /// its successor).
    pub fn served(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(self.resource.api_version.clone()));
        }
    }

    /// The API of this kind in `namespace` (ignored for cluster-scoped kinds).
    pub fn api(&self, client: &Client, namespace: &str) -> Api<DynamicObject> {
        if self.namespaced {
            Api::namespaced_with(client.clone(), namespace, &self.resource)
        } else {
            Api::all_with(client.clone(), &self.resource)
        }
    }
}

/// The API server, with the kinds looked up so far.
pub struct Cluster {
    pub client: Client,
    kinds: Mutex<HashMap<(String, String), Kind>>,
}

impl Cluster {
    pub fn new(client: Client) -> Cluster {
        Cluster { client, kinds: Mutex::new(HashMap::new()) }
    }

    /// The kind of an object (its `apiVersion` and `kind`).
    pub async fn kind_of(&self, object: &Value) -> Result<Kind, CallError> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        self.kind(api_version, kind).await
    }

    /// The kind as served. A kind whose version the server no longer serves is served under
    /// its successor when Kubernetes kept the schema (see [`successor`]).
    pub async fn kind(&self, api_version: &str, kind: &str) -> Result<Kind, CallError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.kinds.lock().ok().and_then(|kinds| kinds.get(&key).cloned()) {
            return Ok(found);
        }
        let found = match self.discover(api_version, kind).await {
            Err(CallError::UnknownKind(unknown)) => match successor(api_version, kind) {
                Some(newer) => {
                    let found = self.discover(newer, kind).await.map_err(|_| CallError::UnknownKind(unknown))?;
                    tracing::info!(
                        kind,
                        from = api_version,
                        to = newer,
                        "a removed API version is written as its successor"
                    );
                    found
                }
                None => return Err(CallError::UnknownKind(unknown)),
            },
            other => other?,
        };
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.insert(key, found.clone());
        }
        Ok(found)
    }

    /// Server-side apply of `object` as `field_manager`, taking over fields others set (as
    /// KUDO's engine owns what a plan applies).
    pub async fn apply(&self, kind: &Kind, namespace: &str, object: &Value) -> Result<Value, CallError> {
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let api = kind.api(&self.client, namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let live = bounded(api.patch(name, &params, &Patch::Apply(object))).await?;
        Ok(serde_json::to_value(live).unwrap_or(Value::Null))
    }

    async fn discover(&self, api_version: &str, kind: &str) -> Result<Kind, CallError> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        match bounded(kube::discovery::pinned_kind(&self.client, &gvk)).await {
            Ok((resource, capabilities)) => Ok(Kind { resource, namespaced: capabilities.scope == Scope::Namespaced }),
            Err(CallError::Unreachable(message)) => Err(CallError::Unreachable(message)),
            Err(_) => Err(CallError::UnknownKind(format!("kind {kind} in {api_version}"))),
        }
    }
}

/// The version that replaced a removed beta version with the same schema. KUDO's packages
/// were written for Kubernetes 1.15–1.20; clusters since 1.22/1.25 serve only these successors,
/// and the fields the packages use did not change.
pub fn successor(api_version: &str, kind: &str) -> Option<&'static str> {
    match (api_version, kind) {
        ("policy/v1beta1", "PodDisruptionBudget") => Some("policy/v1"),
        ("rbac.authorization.k8s.io/v1beta1", "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding") => {
            Some("rbac.authorization.k8s.io/v1")
        }
        ("batch/v1beta1", "CronJob") => Some("batch/v1"),
        ("scheduling.k8s.io/v1beta1", "PriorityClass") => Some("scheduling.k8s.io/v1"),
        (
            "apps/v1beta1" | "apps/v1beta2" | "extensions/v1beta1",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet",
        ) => Some("apps/v1"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn only_kinds_whose_schema_survived_get_a_successor() {
        assert_eq!(successor("policy/v1beta1", "PodDisruptionBudget"), Some("policy/v1"));
        assert_eq!(successor("rbac.authorization.k8s.io/v1beta1", "ClusterRole"), Some("rbac.authorization.k8s.io/v1"));
        assert_eq!(successor("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"), None, "its schema changed");
        assert_eq!(successor("networking.k8s.io/v1beta1", "Ingress"), None, "its schema changed");
    }
}
