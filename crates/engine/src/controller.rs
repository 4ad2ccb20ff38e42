//! The controller (kube-runtime's decide + schedule shape): one watch on Instances drives the
//! reconciles, and watches on what plans wait for wake the owning Instance the moment an
//! object changes — StatefulSets, Deployments, Jobs, Pods, Services and child Instances
//! through their owner references, OperatorVersions through the Instances that name them. A
//! running plan is also looked at again after a while, so nothing depends on one event.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use maestro_operator::enhance::INSTANCE_LABEL;
use serde_json::Value;

use crate::cluster::CallError;
use crate::instance::{instance_resource, operator_version_resource};
use crate::reconcile::{self, Caches, Context};
use crate::tasks::WATCHED;

/// The Instances an object belongs to: any owner reference to a kudo.dev Instance, and the
/// Instance its `kudo.dev/instance` label names (the watches select `heritage=kudo`). The label
/// reaches what the Instance does not own itself, such as the pods of its workloads, whose
/// readiness is part of the Instance's `Ready`.
fn owners(object: &DynamicObject) -> Vec<ObjectRef<DynamicObject>> {
    let namespace = object.namespace();
    let at = |name: &str| {
        let reference = ObjectRef::new_with(name, instance_resource());
        match &namespace {
            Some(namespace) => reference.within(namespace),
            None => reference,
        }
    };
    let mut found: Vec<ObjectRef<DynamicObject>> = object
        .owner_references()
        .iter()
        .filter(|owner| owner.kind == "Instance" && owner.api_version.starts_with("kudo.dev/"))
        .map(|owner| at(&owner.name))
        .collect();
    let labelled =
        object.labels().get(INSTANCE_LABEL).filter(|_| object.types.as_ref().is_none_or(|t| t.kind != "Instance"));
    if let Some(name) = labelled {
        let reference = at(name);
        if !found.contains(&reference) {
            found.push(reference);
        }
    }
    found
}

/// The Instances in the store that name this OperatorVersion.
fn users(store: &Store<DynamicObject>, version: &DynamicObject) -> Vec<ObjectRef<DynamicObject>> {
    let name = version.name_any();
    let namespace = version.namespace();
    store
        .state()
        .into_iter()
        .filter(|instance| instance.namespace() == namespace)
        .filter(|instance| instance.data.pointer("/spec/operatorVersion/name").and_then(Value::as_str) == Some(&name))
        .map(|instance| ObjectRef::from_obj_with(instance.as_ref(), instance_resource()))
        .collect()
}

/// A watch that keeps a store, as a trigger stream for the controller.
fn reflected(
    api: Api<DynamicObject>,
    resource: &ApiResource,
    config: watcher::Config,
) -> (Store<DynamicObject>, impl futures::Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static) {
    let writer = Writer::new(resource.clone());
    let reader = writer.as_reader();
    let stream = watcher::watcher(api, config).default_backoff().reflect(writer).touched_objects();
    (reader, stream)
}

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    cluster: crate::cluster::Cluster,
    options: &crate::Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), CallError> {
    let client = cluster.client.clone();
    let namespace = options.namespace.clone();
    let api = |resource: &ApiResource| -> Api<DynamicObject> {
        match &namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
            None => Api::all_with(client.clone(), resource),
        }
    };
    let config = watcher::Config::default();
    let owned = config.clone().labels("heritage=kudo");
    let mut controller = Controller::new_with(api(&instance_resource()), config.clone(), instance_resource());
    let instances = controller.store();
    let (operator_versions, versions) =
        reflected(api(&operator_version_resource()), &operator_version_resource(), config.clone());
    controller = controller.watches_stream_with(
        versions,
        move |version| users(&instances, &version),
        operator_version_resource(),
    );
    let mut stores = HashMap::new();
    for (api_version, kind) in WATCHED {
        let found = cluster.kind(api_version, kind).await?;
        let watch_config = if kind == "Instance" { config.clone() } else { owned.clone() };
        let (store, stream) = reflected(api(&found.resource), &found.resource, watch_config);
        stores.insert(kind, store);
        controller = controller.watches_stream_with(stream, |object| owners(&object), found.resource.clone());
    }
    let take = |kind: &str| stores.get(kind).cloned().ok_or_else(|| CallError::UnknownKind(kind.to_string()));
    let caches = Caches {
        operator_versions,
        stateful_sets: take("StatefulSet")?,
        deployments: take("Deployment")?,
        pods: take("Pod")?,
    };
    let context = Arc::new(Context::new(cluster, options.poll, options.resync, caches, options.metrics.clone()));
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
    Ok(())
}
