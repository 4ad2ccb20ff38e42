//! Writing manifests to the cluster with `kube`: discovery finds each kind's resource and scope
//! (cached, so any kind works, CRDs included, at one lookup per kind), then the dynamic API
//! writes the object with the manifest's update strategy. Errors keep the API server's own
//! reason, so a refused manifest is reported as the server explained it.

use std::collections::HashMap;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::status::{ApplyResult, Live};
use maestro_model::config::{FIELD_MANAGER, ManifestPlan, UpdateStrategy};
use maestro_model::validate::ObjectKey;

/// Bounds every call to the API server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a write did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The API server refused it; `retry` when the cause may go away by itself (a namespace or
    /// a CRD that another manifest is about to create).
    #[error("{reason}: {message}")]
    Refused { reason: String, message: String, retry: bool },
    /// The API server could not be reached, timed out or failed (5xx, 429).
    #[error("API server unreachable: {message}")]
    Unreachable { message: String },
}

impl ApplyError {
    pub fn should_retry(&self) -> bool {
        match self {
            ApplyError::Refused { retry, .. } => *retry,
            ApplyError::Unreachable { .. } => true,
        }
    }

    pub fn result(&self) -> ApplyResult {
        match self {
            ApplyError::Refused { reason, message, .. } => {
                ApplyResult::Refused { reason: reason.clone(), message: message.clone() }
            }
            ApplyError::Unreachable { message } => ApplyResult::Retrying {
                reason: "ApiServerUnreachable".into(),
                message: format!("{message}; retrying with backoff"),
            },
        }
    }

    fn from_kube(err: kube::Error) -> ApplyError {
        match err {
            kube::Error::Api(status) if status.code >= 500 || status.code == 429 => {
                ApplyError::Unreachable { message: format!("{} ({})", status.message, status.code) }
            }
            kube::Error::Api(status) => {
                let reason =
                    if status.reason.is_empty() { format!("Http{}", status.code) } else { status.reason.clone() };
                // NotFound on a write means the namespace is missing, which may be created later.
                ApplyError::Refused { reason, message: status.message.clone(), retry: status.code == 404 }
            }
            kube::Error::Discovery(err) => {
                ApplyError::Refused { reason: "UnknownKind".into(), message: err.to_string(), retry: true }
            }
            other => ApplyError::Unreachable { message: other.to_string() },
        }
    }
}

/// Runs one API call within [`REQUEST_TIMEOUT`].
async fn bounded<T>(call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, ApplyError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(result) => result.map_err(ApplyError::from_kube),
        Err(_) => Err(ApplyError::Unreachable { message: format!("no answer within {REQUEST_TIMEOUT:?}") }),
    }
}

/// Where an object lives: its resource (from discovery), namespace and name.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    pub fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        }
    }
}

/// Discovery results per group/version/kind, kept for the agent's life. A kind the server
/// does not know is looked up again next time: its CRD may have been created since.
pub struct Discovery {
    client: Client,
    cache: HashMap<(String, String, String), (ApiResource, Scope)>,
}

impl Discovery {
    pub fn new(client: Client) -> Discovery {
        Discovery { client, cache: HashMap::new() }
    }

    pub async fn resolve(&mut self, key: &ObjectKey) -> Result<Target, ApplyError> {
        let cache_key = (key.group.clone(), key.version.clone(), key.kind.clone());
        if !self.cache.contains_key(&cache_key) {
            let gvk = GroupVersionKind::gvk(&key.group, &key.version, &key.kind);
            let (resource, capabilities) =
                bounded(kube::discovery::pinned_kind(&self.client, &gvk)).await.map_err(|err| match err {
                    ApplyError::Refused { message, .. } => ApplyError::Refused {
                        reason: "UnknownKind".into(),
                        message: format!("the API server does not serve {}: {message}", describe(key)),
                        retry: true,
                    },
                    unreachable => unreachable,
                })?;
            self.cache.insert(cache_key.clone(), (resource, capabilities.scope));
        }
        let Some((resource, scope)) = self.cache.get(&cache_key) else {
            return Err(ApplyError::Unreachable { message: "discovery cache lost an entry".into() });
        };
        let namespace = match scope {
            Scope::Namespaced => Some(key.namespace.clone().unwrap_or_else(|| "default".into())),
            Scope::Cluster => None,
        };
        Ok(Target { resource: resource.clone(), namespace, name: key.name.clone() })
    }
}

fn describe(key: &ObjectKey) -> String {
    if key.group.is_empty() {
        format!("kind {} in v{}", key.kind, key.version.trim_start_matches('v'))
    } else {
        format!("kind {} in {}/{}", key.kind, key.group, key.version)
    }
}

/// What a write achieved: the object as the server returned it, and a message for Applied.
#[derive(Debug, Clone)]
pub struct Written {
    pub live: Live,
    pub result: ApplyResult,
}

/// The manifest as sent: the namespace made explicit (or removed for cluster-scoped kinds).
fn desired(plan: &ManifestPlan, target: &Target) -> Result<DynamicObject, ApplyError> {
    let mut manifest = plan.manifest.clone();
    if let Some(metadata) = manifest.get_mut("metadata").and_then(Value::as_object_mut) {
        match &target.namespace {
            Some(namespace) => metadata.insert("namespace".into(), Value::String(namespace.clone())),
            None => metadata.remove("namespace"),
        };
    }
    serde_json::from_value(manifest).map_err(|err| ApplyError::Refused {
        reason: "InvalidManifest".into(),
        message: err.to_string(),
        retry: false,
    })
}

fn to_live(object: &DynamicObject) -> Live {
    Live::Present(serde_json::to_value(object).unwrap_or(Value::Null))
}

fn applied(message: &str) -> ApplyResult {
    ApplyResult::Applied { message: message.into() }
}

/// Writes one manifest with its strategy.
pub async fn write(client: &Client, target: &Target, plan: &ManifestPlan) -> Result<Written, ApplyError> {
    let api = target.api(client);
    let name = target.name.as_str();
    match &plan.strategy {
        UpdateStrategy::ServerSideApply { field_manager, force } => {
            let object = desired(plan, target)?;
            let mut params = PatchParams::apply(field_manager);
            if *force {
                params = params.force();
            }
            let live = bounded(api.patch(name, &params, &Patch::Apply(&object))).await?;
            Ok(Written { live: to_live(&live), result: applied("Apply manifest complete") })
        }
        UpdateStrategy::Update => update(&api, name, desired(plan, target)?).await,
        UpdateStrategy::CreateOnly => match bounded(api.get_opt(name)).await? {
            Some(existing) => Ok(Written {
                live: to_live(&existing),
                result: applied("The object exists; CreateOnly leaves it as it is"),
            }),
            None => {
                let created = bounded(api.create(&post_params(), &desired(plan, target)?)).await?;
                Ok(Written { live: to_live(&created), result: applied("Apply manifest complete") })
            }
        },
        UpdateStrategy::ReadOnly => {
            let live = match bounded(api.get_opt(name)).await? {
                Some(existing) => to_live(&existing),
                None => Live::Absent,
            };
            Ok(Written { live, result: applied("Read only") })
        }
    }
}

fn post_params() -> PostParams {
    PostParams { dry_run: false, field_manager: Some(FIELD_MANAGER.into()) }
}

/// Create, or replace with the live resourceVersion; a conflict (someone wrote in between) is
/// retried once with the newer version.
async fn update(api: &Api<DynamicObject>, name: &str, object: DynamicObject) -> Result<Written, ApplyError> {
    let mut last_conflict = None;
    for _ in 0..2 {
        let Some(existing) = bounded(api.get_opt(name)).await? else {
            let created = bounded(api.create(&post_params(), &object)).await?;
            return Ok(Written { live: to_live(&created), result: applied("Apply manifest complete") });
        };
        let mut replacement = object.clone();
        replacement.metadata.resource_version = existing.resource_version();
        match bounded(api.replace(name, &post_params(), &replacement)).await {
            Ok(live) => return Ok(Written { live: to_live(&live), result: applied("Apply manifest complete") }),
            Err(ApplyError::Refused { reason, message, .. }) if reason == "Conflict" => {
                last_conflict = Some(ApplyError::Refused { reason, message, retry: true });
            }
            Err(other) => return Err(other),
        }
    }
    Err(last_conflict.unwrap_or(ApplyError::Unreachable { message: "update did not complete".into() }))
}

/// Where a delete stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    Gone,
    /// Accepted; the object stays until its finalizers and dependents are done.
    InProgress,
}

/// Deletes one object in the foreground (its dependents first), as OCM's default does.
pub async fn delete(client: &Client, target: &Target) -> Result<Deletion, ApplyError> {
    let api = target.api(client);
    match bounded(api.delete(&target.name, &DeleteParams::foreground())).await {
        Ok(either) => Ok(if either.is_right() { Deletion::Gone } else { Deletion::InProgress }),
        Err(ApplyError::Refused { reason, .. }) if reason == "NotFound" => Ok(Deletion::Gone),
        Err(other) => Err(other),
    }
}

/// Whether the object is still there.
pub async fn exists(client: &Client, target: &Target) -> Result<bool, ApplyError> {
    Ok(bounded(target.api(client).get_opt(&target.name)).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("the message", reason).with_code(code)))
    }

    #[test]
    fn refusals_keep_the_servers_reason_and_message() {
        let err = ApplyError::from_kube(api_error(422, "Invalid"));
        assert_eq!(err, ApplyError::Refused { reason: "Invalid".into(), message: "the message".into(), retry: false });
        assert!(!err.should_retry());
        assert_eq!(err.result(), ApplyResult::Refused { reason: "Invalid".into(), message: "the message".into() });
    }

    #[test]
    fn server_failures_and_throttling_are_retried_as_unreachable() {
        for code in [500, 503, 429] {
            let err = ApplyError::from_kube(api_error(code, "InternalError"));
            assert!(matches!(err, ApplyError::Unreachable { .. }), "{code}");
            assert!(err.should_retry());
            assert!(
                matches!(err.result(), ApplyResult::Retrying { ref reason, .. } if reason == "ApiServerUnreachable")
            );
        }
    }

    #[test]
    fn a_missing_namespace_is_retried_but_forbidden_is_not() {
        assert!(ApplyError::from_kube(api_error(404, "NotFound")).should_retry());
        assert!(!ApplyError::from_kube(api_error(403, "Forbidden")).should_retry());
    }
}
