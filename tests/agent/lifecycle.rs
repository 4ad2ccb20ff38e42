//! Create, update and delete of resources and bundles reach the cluster, and their status
//! comes back to the REST API.

use serde_json::{Value, json};

use crate::fleet::{Fleet, condition_is, config_map, data_key, manifest_condition_is, manifest_status};

fn web(replicas: i64) -> Value {
    let mut manifest = maestro_tests::deployment("web");
    manifest["spec"]["replicas"] = json!(replicas);
    manifest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_is_applied_becomes_available_updates_and_is_deleted() {
    let fleet = Fleet::start().await;
    let body = |replicas: i64| {
        json!({
            "manifest": web(replicas),
            "update_strategy": {"type": "ServerSideApply"},
            "feedback_rules": [{"type": "WellKnownStatus"},
                               {"type": "JSONPaths", "jsonPaths": [{"name": "available", "path": ".status.conditions[?(@.type==\"Available\")].status"}]}]
        })
    };
    let id = fleet.create_resource(body(1)).await;
    let path = format!("/api/maestro/v1/resources/{id}");

    // Created in the cluster by server-side apply, with our field manager.
    let live = fleet.object(&fleet.deployments(), "web", "the Deployment", |o| o.is_some()).await.unwrap();
    let managers: Vec<&str> =
        live["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
    assert!(managers.contains(&"maestro-agent"), "{managers:?}");

    // The status comes back: applied, available once ready, with typed feedback.
    let reply = fleet
        .hub
        .wait_for(&path, "Available with feedback", |r| {
            let status = &r.body["status"];
            condition_is(&status["ReconcileStatus"]["Conditions"], "Available", "True")
                && status["ContentStatus"]["ReadyReplicas"] == 1
        })
        .await;
    let status = &reply.body["status"];
    assert!(condition_is(&status["ReconcileStatus"]["Conditions"], "Applied", "True"), "{status}");
    assert!(condition_is(&status["ReconcileStatus"]["Conditions"], "StatusFeedbackSynced", "True"), "{status}");
    assert_eq!(status["ContentStatus"]["available"], "True");
    // Nobody touched the object: no drift may be seen in our own writes.
    assert!(crate::fleet::condition(&status["ReconcileStatus"]["Conditions"], "Drifted").is_none(), "{status}");
    assert_eq!(fleet.agent().drift_corrections(), 0);
    assert_eq!(status["ReconcileStatus"]["ObservedVersion"], 1);

    // An update reaches the cluster and its status follows.
    let mut update = body(3);
    update["version"] = json!(1);
    let updated = fleet.hub.put(&path, &update).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    fleet.object(&fleet.deployments(), "web", "3 replicas", |o| o.is_some_and(|o| o["spec"]["replicas"] == 3)).await;
    fleet
        .hub
        .wait_for(&path, "version 2 ready", |r| {
            r.body["status"]["ReconcileStatus"]["ObservedVersion"] == 2
                && r.body["status"]["ContentStatus"]["ReadyReplicas"] == 3
        })
        .await;

    // Delete removes the object, then the resource once the agent reports Deleted.
    assert_eq!(fleet.hub.delete(&path).await.status, 204);
    fleet.object(&fleet.deployments(), "web", "the Deployment gone", |o| o.is_none()).await;
    fleet.hub.wait_for(&path, "the purge", |r| r.status == 404).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_update_deletes_the_objects_it_drops_and_applies_the_new_ones() {
    let fleet = Fleet::start().await;
    let id = fleet.create_bundle("app", json!({"manifests": [config_map("a", "1"), config_map("b", "1")]})).await;
    fleet.bundle_status(&id, "both applied", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    fleet.object(&fleet.config_maps(), "b", "b", |o| o.is_some()).await;

    fleet.replace_bundle(&id, 1, json!({"manifests": [config_map("a", "2"), config_map("c", "1")]})).await;
    fleet.object(&fleet.config_maps(), "b", "b deleted", |o| o.is_none()).await;
    fleet.object(&fleet.config_maps(), "c", "c created", |o| o.is_some()).await;
    fleet.object(&fleet.config_maps(), "a", "a updated", |o| data_key(o) == Some("2")).await;
    let status = fleet
        .bundle_status(&id, "version 2 applied", |s| {
            s["ObservedVersion"] == 2 && manifest_condition_is(s, "c", "Applied", "True")
        })
        .await;
    assert!(manifest_status(&status, "b").is_none(), "{status}");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_the_api_server_refuses_fails_alone_with_the_servers_reason() {
    let fleet = Fleet::start().await;
    let unknown =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}});
    let missing_namespace =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "namespace": "nowhere"}, "data": {}});
    let id =
        fleet.create_bundle("mixed", json!({"manifests": [unknown, config_map("good", "1"), missing_namespace]})).await;
    let status = fleet
        .bundle_status(&id, "the refusals and the applied manifest", |s| {
            manifest_condition_is(s, "good", "Applied", "True")
                && manifest_condition_is(s, "w", "Applied", "False")
                && manifest_condition_is(s, "m", "Applied", "False")
        })
        .await;
    assert!(condition_is(&status["conditions"], "Applied", "False"), "{status}");
    let reason = |name: &str| {
        let conditions = &manifest_status(&status, name).unwrap()["conditions"];
        crate::fleet::condition(conditions, "Applied").unwrap()["reason"].clone()
    };
    assert_eq!(reason("w"), "UnknownKind");
    assert_eq!(reason("m"), "NotFound");
    fleet.object(&fleet.config_maps(), "good", "the good ConfigMap", |o| o.is_some()).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_applies_once_its_crd_is_in_the_same_bundle() {
    let fleet = Fleet::start().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "default"}, "spec": {"size": 3}});
    let id = fleet
        .create_bundle("crd", json!({
            "manifests": [crd, widget],
            "manifest_configs": [{"resourceIdentifier": {"group": "apiextensions.k8s.io", "resource": "customresourcedefinitions", "name": "widgets.example.com"},
                                  "feedbackRules": [{"type": "WellKnownStatus"}]}]
        }))
        .await;
    let status = fleet
        .bundle_status(&id, "the CRD and its custom resource applied", |s| {
            condition_is(&s["conditions"], "Applied", "True")
        })
        .await;
    let crd_status = manifest_status(&status, "widgets.example.com").unwrap();
    assert_eq!(crd_status["resourceMeta"]["resource"], "customresourcedefinitions");
    let widgets = fleet.api("example.com/v1", "Widget", "widgets", Some("default"));
    fleet.object(&widgets, "w1", "the Widget", |o| o.is_some_and(|o| o["spec"]["size"] == 3)).await;
    fleet.stop().await;
}
