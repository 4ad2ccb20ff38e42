//! Reading and writing KUDO's objects: the Instance (its spec and metadata first, then its
//! status subresource, the order KUDO keeps so a finalizer is never removed before the status
//! that justifies it is written), OperatorVersions, and the Events a user reads with
//! `kubectl describe`.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use kube::{Client, ResourceExt};
use maestro_package::crd::{API_VERSION, GROUP, Instance, OperatorVersion, VERSION};
use serde_json::{Value, json};

use crate::cluster::{CallError, FIELD_MANAGER, bounded};

/// KUDO's finalizer, added when the operator version has a `cleanup` plan.
pub const CLEANUP_FINALIZER: &str = "kudo.dev.instance.cleanup";

/// A kind of KUDO's group (`kudo.dev/v1beta1`), by kind and plural.
pub fn kudo_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: API_VERSION.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn instance_resource() -> ApiResource {
    kudo_resource("Instance", "instances")
}

pub fn operator_version_resource() -> ApiResource {
    kudo_resource("OperatorVersion", "operatorversions")
}

pub fn instances(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &instance_resource())
}

/// An Instance as read, with what KUDO's types do not model (uid, resourceVersion,
/// deletionTimestamp, finalizers) at hand.
#[derive(Debug, Clone)]
pub struct Live {
    pub instance: Instance,
    pub uid: String,
    pub resource_version: String,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Live {
    pub fn read(object: &DynamicObject) -> Result<Live, String> {
        let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
        let instance: Instance =
            serde_json::from_value(value).map_err(|e| format!("the Instance is malformed: {e}"))?;
        Ok(Live {
            uid: object.uid().unwrap_or_default(),
            resource_version: object.resource_version().unwrap_or_default(),
            deleting: object.metadata.deletion_timestamp.is_some(),
            finalizers: object.finalizers().to_vec(),
            instance,
        })
    }

    pub fn name(&self) -> &str {
        &self.instance.metadata.name
    }

    pub fn namespace(&self) -> &str {
        &self.instance.metadata.namespace
    }
}

/// Reads an Instance; `None` when it is gone.
pub async fn get(client: &Client, namespace: &str, name: &str) -> Result<Option<DynamicObject>, CallError> {
    bounded(instances(client, namespace).get_opt(name)).await
}

/// The OperatorVersion an Instance names; `None` when it does not exist.
pub async fn operator_version(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Result<OperatorVersion, String>>, CallError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &operator_version_resource());
    let Some(object) = bounded(api.get_opt(name)).await? else { return Ok(None) };
    let parsed = serde_json::to_value(&object)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value(v).map_err(|e| format!("OperatorVersion {name:?} is malformed: {e}")));
    Ok(Some(parsed))
}

/// A JSON merge patch of the Instance's metadata and spec, guarded by the resourceVersion it
/// was computed from (a concurrent edit makes it fail with a conflict, and the engine reads
/// again instead of overwriting).
pub async fn patch_main(client: &Client, live: &Live, mut patch: Value) -> Result<DynamicObject, CallError> {
    if let Some(metadata) = patch.as_object_mut().map(|p| p.entry("metadata").or_insert_with(|| json!({}))) {
        metadata["resourceVersion"] = Value::String(live.resource_version.clone());
    }
    let api = instances(client, live.namespace());
    bounded(api.patch(live.name(), &PatchParams::default(), &Patch::Merge(&patch))).await
}

/// A JSON merge patch of the status subresource.
pub async fn patch_status(client: &Client, live: &Live, status: Value) -> Result<DynamicObject, CallError> {
    let api = instances(client, live.namespace());
    let patch = json!({ "status": status });
    bounded(api.patch_status(live.name(), &PatchParams::default(), &Patch::Merge(&patch))).await
}

/// Records an Event on the Instance. Events are for people; failing to write one is logged,
/// never an error of the plan.
pub async fn event(client: &Client, live: &Live, warning: bool, reason: &str, message: &str) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{}.{}", live.name(), uuid::Uuid::new_v4().simple()), "namespace": live.namespace()},
        "involvedObject": {"apiVersion": API_VERSION, "kind": "Instance", "name": live.name(), "namespace": live.namespace(), "uid": live.uid},
        "reason": reason,
        "message": message,
        "type": if warning { "Warning" } else { "Normal" },
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let resource = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Event".into(),
        plural: "events".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), live.namespace(), &resource);
    let Ok(object) = serde_json::from_value::<DynamicObject>(event) else { return };
    if let Err(err) = bounded(api.create(&PostParams::default(), &object)).await {
        tracing::debug!(%err, reason, "event not recorded");
    }
}
