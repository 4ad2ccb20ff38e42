//! Discovery: built-in kinds, and custom resources registered and removed at run time.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use kube::discovery::{self, Discovery, Scope};
use serde_json::json;

use crate::{Sim, eventually};

#[tokio::test]
async fn discovery_lists_the_built_in_kinds_in_both_discovery_forms() {
    let s = Sim::start().await;
    let classic = Discovery::new(s.client.clone()).run().await.unwrap_or_else(|e| panic!("discovery: {e}"));
    let aggregated =
        Discovery::new(s.client.clone()).run_aggregated().await.unwrap_or_else(|e| panic!("aggregated: {e}"));
    for found in [&classic, &aggregated] {
        for (group, version, kind, namespaced) in [
            ("", "v1", "Namespace", false),
            ("", "v1", "ConfigMap", true),
            ("", "v1", "Secret", true),
            ("", "v1", "ServiceAccount", true),
            ("", "v1", "PersistentVolumeClaim", true),
            ("apps", "v1", "Deployment", true),
            ("apps", "v1", "StatefulSet", true),
            ("apps", "v1", "DaemonSet", true),
            ("batch", "v1", "Job", true),
            ("rbac.authorization.k8s.io", "v1", "ClusterRole", false),
            ("rbac.authorization.k8s.io", "v1", "RoleBinding", true),
            ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", false),
        ] {
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let (_, caps) = found.resolve_gvk(&gvk).unwrap_or_else(|| panic!("{kind} not discovered"));
            assert_eq!(caps.scope == Scope::Namespaced, namespaced, "{kind} scope");
        }
    }
    let info = s.client.apiserver_version().await.unwrap_or_else(|e| panic!("version: {e}"));
    assert_eq!(info.major, "1");
    s.stop().await;
}

fn widget_crd() -> CustomResourceDefinition {
    crate::json(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}
            }]
        }
    }))
}

#[tokio::test]
async fn a_crd_created_at_run_time_is_discoverable_and_usable_and_deleting_it_removes_it() {
    let s = Sim::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    assert!(discovery::pinned_kind(&s.client, &gvk).await.is_err(), "Widget served before its CRD exists");

    crds.create(&PostParams::default(), &widget_crd()).await.unwrap_or_else(|e| panic!("create CRD: {e}"));
    let established = eventually("CRD Established", || async {
        let crd = crds.get("widgets.example.com").await.ok()?;
        let conditions = crd.status?.conditions?;
        conditions.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
    })
    .await;
    let () = established;

    let (resource, caps) =
        discovery::pinned_kind(&s.client, &gvk).await.unwrap_or_else(|e| panic!("Widget not discovered: {e}"));
    assert_eq!(caps.scope, Scope::Namespaced);
    let widgets: Api<DynamicObject> = Api::namespaced_with(s.client.clone(), "default", &resource);
    let widget: DynamicObject = crate::json(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    }));
    widgets.create(&PostParams::default(), &widget).await.unwrap_or_else(|e| panic!("create widget: {e}"));
    let stored = widgets.get("w1").await.unwrap_or_else(|e| panic!("get widget: {e}"));
    assert_eq!(stored.data["spec"]["size"], 3);

    crds.delete("widgets.example.com", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("delete CRD: {e}"));
    eventually("Widget gone from discovery", || async {
        discovery::pinned_kind(&s.client, &gvk).await.is_err().then_some(())
    })
    .await;
    let status = crate::api_error(widgets.get("w1").await);
    assert_eq!(status.code, 404);
    s.stop().await;
}
