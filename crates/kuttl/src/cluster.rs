//! The runner's access to the cluster under test, through `kube` only: discovery of any kind
//! (cached), kuttl's create-or-update (create, else a JSON merge patch of the given fields),
//! reads, deletes, and watches used as wake-ups. Every call is bounded in time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use kube::runtime::watcher;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Bounds every call to the API server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}: {message}")]
    Api { what: String, code: u16, message: String },
    #[error("{what}: the API server did not answer within {REQUEST_TIMEOUT:?}")]
    Timeout { what: String },
    #[error("{what}: {message}")]
    Unreachable { what: String, message: String },
    #[error("the cluster does not serve {kind} in {api_version}")]
    UnknownKind { api_version: String, kind: String },
}

impl ClusterError {
    fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::Api { code: 404, .. })
    }
}

async fn bounded<T>(what: impl Fn() -> String, call: impl Future<Output = kube::Result<T>>) -> Result<T, ClusterError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(kube::Error::Api(status))) => {
            Err(ClusterError::Api { what: what(), code: status.code, message: status.message.clone() })
        }
        Ok(Err(other)) => Err(ClusterError::Unreachable { what: what(), message: other.to_string() }),
        Err(_) => Err(ClusterError::Timeout { what: what() }),
    }
}

/// A kind as the cluster serves it.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// An object the runner names: kind, namespace (empty when cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace.as_str() {
            "" => write!(f, "{} {}", self.kind, self.name),
            namespace => write!(f, "{} {namespace}/{}", self.kind, self.name),
        }
    }
}

pub fn text<'a>(object: &'a Value, path: &str) -> &'a str {
    object.pointer(path).and_then(Value::as_str).unwrap_or_default()
}

/// The cluster under test.
pub struct Cluster {
    pub client: Client,
    kinds: Mutex<HashMap<(String, String), Kind>>,
}

impl Cluster {
    pub fn new(client: Client) -> Cluster {
        Cluster { client, kinds: Mutex::new(HashMap::new()) }
    }

    /// The kind of `object` as served. A kind not served yet is asked again next time: its CRD
    /// may be on the way.
    pub async fn kind_of(&self, object: &Value) -> Result<Kind, ClusterError> {
        self.kind(text(object, "/apiVersion"), text(object, "/kind")).await
    }

    pub async fn kind(&self, api_version: &str, kind: &str) -> Result<Kind, ClusterError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.kinds.lock().ok().and_then(|k| k.get(&key).cloned()) {
            return Ok(found);
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let unknown = || ClusterError::UnknownKind { api_version: api_version.into(), kind: kind.into() };
        let (resource, capabilities) =
            match bounded(|| format!("discovering {kind}"), kube::discovery::pinned_kind(&self.client, &gvk)).await {
                Ok(found) => found,
                Err(ClusterError::Api { .. }) => return Err(unknown()),
                Err(other) => return Err(other),
            };
        let found = Kind { resource, namespaced: capabilities.scope == Scope::Namespaced };
        if let Ok(mut kinds) = self.kinds.lock() {
            kinds.insert(key, found.clone());
        }
        Ok(found)
    }

    pub fn api(&self, kind: &Kind, namespace: &str) -> Api<DynamicObject> {
        if kind.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &kind.resource)
        } else {
            Api::all_with(self.client.clone(), &kind.resource)
        }
    }

    /// Where `object` lives: its own namespace, else `namespace` for a namespaced kind.
    pub async fn locate(&self, object: &Value, namespace: &str) -> Result<(Kind, ObjectRef), ClusterError> {
        let kind = self.kind_of(object).await?;
        let own = text(object, "/metadata/namespace");
        let namespace = match (kind.namespaced, own) {
            (false, _) => "",
            (true, "") => namespace,
            (true, own) => own,
        };
        let reference = ObjectRef {
            api_version: text(object, "/apiVersion").to_string(),
            kind: text(object, "/kind").to_string(),
            namespace: namespace.to_string(),
            name: text(object, "/metadata/name").to_string(),
        };
        Ok((kind, reference))
    }

    /// kuttl's create-or-update: creates `object`, or JSON-merge-patches the fields it gives
    /// onto the object that exists. Returns where it is and whether this call created it.
    pub async fn apply(&self, object: &Value, namespace: &str) -> Result<(ObjectRef, bool), ClusterError> {
        let (kind, reference) = self.locate(object, namespace).await?;
        let api = self.api(&kind, &reference.namespace);
        let mut object = object.clone();
        if kind.namespaced {
            object["metadata"]["namespace"] = Value::String(reference.namespace.clone());
        }
        let what = || format!("applying {reference}");
        if reference.name.is_empty() {
            // generateName: always a new object.
            let created: DynamicObject = serde_json::from_value(object).map_err(|e| ClusterError::Api {
                what: what(),
                code: 400,
                message: e.to_string(),
            })?;
            let created = bounded(what, api.create(&PostParams::default(), &created)).await?;
            let name = created.metadata.name.unwrap_or_default();
            return Ok((ObjectRef { name, ..reference }, true));
        }
        let existing = bounded(what, api.get_opt(&reference.name)).await?;
        if existing.is_some() {
            bounded(what, api.patch(&reference.name, &PatchParams::default(), &Patch::Merge(&object))).await?;
            return Ok((reference, false));
        }
        let created: DynamicObject = serde_json::from_value(object).map_err(|e| ClusterError::Api {
            what: what(),
            code: 400,
            message: e.to_string(),
        })?;
        bounded(what, api.create(&PostParams::default(), &created)).await?;
        Ok((reference, true))
    }

    pub async fn get(&self, kind: &Kind, reference: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let api = self.api(kind, &reference.namespace);
        let found = bounded(|| format!("reading {reference}"), api.get_opt(&reference.name)).await?;
        Ok(found.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)))
    }

    /// The objects of a kind in a namespace that carry all of `labels`.
    pub async fn list(
        &self,
        kind: &Kind,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<Value>, ClusterError> {
        let api = self.api(kind, namespace);
        let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let params = ListParams::default().labels(&selector.join(","));
        let what = || format!("listing {} in {namespace}", kind.resource.kind);
        let list = bounded(what, api.list(&params)).await?;
        Ok(list.items.into_iter().map(|o| serde_json::to_value(o).unwrap_or(Value::Null)).collect())
    }

    /// Deletes an object (foreground); gone already is fine.
    pub async fn delete(&self, kind: &Kind, reference: &ObjectRef) -> Result<(), ClusterError> {
        let api = self.api(kind, &reference.namespace);
        match bounded(|| format!("deleting {reference}"), api.delete(&reference.name, &DeleteParams::foreground()))
            .await
        {
            Err(err) if !err.is_not_found() => Err(err),
            _ => Ok(()),
        }
    }

    /// Wake-ups: a message whenever an object of one of `kinds` changes in its namespace (or
    /// anywhere, for cluster-scoped kinds). Checks run on these instead of a fixed poll; the
    /// watches stop when the returned set is dropped.
    pub fn wake_ups(&self, kinds: &[(Kind, String)]) -> (mpsc::Receiver<()>, JoinSet<()>) {
        let (tx, rx) = mpsc::channel(1);
        let mut tasks = JoinSet::new();
        for (kind, namespace) in kinds {
            let api = self.api(kind, namespace);
            let tx = tx.clone();
            tasks.spawn(async move {
                let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
                while let Some(event) = events.next().await {
                    if event.is_err() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    // A full channel already holds a wake-up: changes coalesce.
                    let _ = tx.try_send(());
                }
            });
        }
        (rx, tasks)
    }
}
