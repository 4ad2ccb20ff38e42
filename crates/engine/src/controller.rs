//! The controller (kube-runtime's decide + schedule shape): one watch on Instances drives the
//! reconciles, and watches on what plans wait for wake the owning Instance the moment an
//! object changes — StatefulSets, Deployments, Jobs, Pods, Services and child Instances
//! through their owner references, OperatorVersions through the Instances that name them. A
//! running plan is also looked at again after a while, so nothing depends on one event.

use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::Value;

use crate::cluster::CallError;
use crate::instance::{instance_resource, operator_version_resource};
use crate::reconcile::{self, Context};
use crate::tasks::WATCHED;

/// The Instances an object is owned by (any owner reference to a kudo.dev Instance).
fn owners(object: &DynamicObject) -> Vec<ObjectRef<DynamicObject>> {
    let namespace = object.namespace();
    object
        .owner_references()
        .iter()
        .filter(|owner| owner.kind == "Instance" && owner.api_version.starts_with("kudo.dev/"))
        .map(|owner| {
            let reference = ObjectRef::new_with(&owner.name, instance_resource());
            match &namespace {
                Some(namespace) => reference.within(namespace),
                None => reference,
            }
        })
        .collect()
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

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace.
pub async fn run(
    context: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), CallError> {
    let client = context.cluster.client.clone();
    let api = |resource: &kube::discovery::ApiResource| -> Api<DynamicObject> {
        match &namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
            None => Api::all_with(client.clone(), resource),
        }
    };
    let config = watcher::Config::default();
    let mut controller = Controller::new_with(api(&instance_resource()), config.clone(), instance_resource());
    let store = controller.store();
    controller = controller.watches_with(
        api(&operator_version_resource()),
        operator_version_resource(),
        config.clone(),
        move |version| users(&store, &version),
    );
    for (api_version, kind) in WATCHED {
        let found = context.cluster.kind(api_version, kind).await?;
        let owned_config = config.clone().labels("heritage=kudo");
        let owned_config = if kind == "Instance" { config.clone() } else { owned_config };
        controller = controller
            .watches_with(api(&found.resource), found.resource.clone(), owned_config, |object| owners(&object));
    }
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
