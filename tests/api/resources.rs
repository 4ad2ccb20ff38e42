//! The single-resource API of the original Maestro README: stored as bundles of one manifest,
//! so the two views always agree.

use maestro_tests::{TestHub, config_map, deployment, on_both_databases};
use serde_json::json;

use crate::{assert_error, bundle, consumer, error_fields};

on_both_databases!(
    a_resource_is_a_bundle_of_one_manifest,
    resources_update_and_delete_like_bundles,
    resource_errors_name_the_fields_the_client_sent,
);

async fn a_resource_is_a_bundle_of_one_manifest(hub: &TestHub) {
    consumer(hub, "cluster1", json!({})).await;
    let created = hub
        .post(
            "/api/maestro/v1/resources",
            &json!({"consumer_name": "cluster1", "version": 1, "manifest": deployment("nginx"),
                    "update_strategy": {"type": "ServerSideApply"}, "feedback_rules": [{"type": "WellKnownStatus"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id");
    assert_eq!(created.body["kind"], "Resource");
    assert_eq!(created.body["href"], format!("/api/maestro/v1/resources/{id}"));
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["manifest"], deployment("nginx"));
    assert_eq!(created.body["update_strategy"], json!({"type": "ServerSideApply"}));
    assert_eq!(created.body["status"], json!({}));

    let as_bundle = hub.get(&format!("/api/maestro/v1/resource-bundles/{id}")).await;
    assert_eq!(as_bundle.body["manifests"], json!([deployment("nginx")]));
    assert_eq!(
        as_bundle.body["manifest_configs"][0]["resourceIdentifier"],
        json!({"group": "apps", "resource": "deployments", "name": "nginx", "namespace": "default"}),
        "the config identifies the manifest as an OCM agent expects"
    );

    let multi =
        bundle(hub, json!({"consumer_name": "cluster1", "manifests": [deployment("a"), config_map("b")]})).await;
    let multi_id = multi["id"].as_str().expect("id");
    let not_single = hub.get(&format!("/api/maestro/v1/resources/{multi_id}")).await;
    assert_error(&not_single, 404, 7);
    assert!(not_single.body["reason"].as_str().unwrap_or("").contains("resource-bundles"), "it says where to look");

    let resources = hub.get("/api/maestro/v1/resources").await;
    assert_eq!(resources.body["kind"], "ResourceList");
    assert_eq!(resources.body["total"], 1, "a bundle of two manifests is not a resource");
    assert_eq!(resources.body["items"][0]["id"], id);
    assert_eq!(hub.get("/api/maestro/v1/resource-bundles").await.body["total"], 2);
}

async fn resources_update_and_delete_like_bundles(hub: &TestHub) {
    consumer(hub, "cluster1", json!({})).await;
    let created = hub
        .post("/api/maestro/v1/resources", &json!({"consumer_name": "cluster1", "manifest": deployment("nginx")}))
        .await;
    let path = format!("/api/maestro/v1/resources/{}", created.body["id"].as_str().expect("id"));
    let mut manifest = deployment("nginx");
    manifest["spec"]["replicas"] = json!(4);
    let updated = hub.put(&path, &json!({"version": 1, "manifest": manifest})).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["version"], 2);
    assert_eq!(updated.body["manifest"]["spec"]["replicas"], 4);
    assert_error(&hub.put(&path, &json!({"version": 1, "manifest": deployment("nginx")})).await, 409, 6);

    assert_eq!(hub.delete(&path).await.status, 204);
    assert!(hub.get(&path).await.body["deleted_at"].as_str().is_some());
    assert_error(&hub.put(&path, &json!({"version": 2, "manifest": deployment("nginx")})).await, 409, 6);
}

async fn resource_errors_name_the_fields_the_client_sent(hub: &TestHub) {
    consumer(hub, "cluster1", json!({})).await;
    let mut manifest = deployment("nginx");
    manifest["metadata"]["name"] = json!("Not_Valid");
    let reply = hub
        .post(
            "/api/maestro/v1/resources",
            &json!({"consumer_name": "cluster1", "manifest": manifest, "update_strategy": {"type": "Whenever"}}),
        )
        .await;
    assert_error(&reply, 400, 8);
    let fields = error_fields(&reply);
    assert!(fields.contains(&"manifest.metadata.name".to_string()), "{fields:?}");
    assert!(fields.contains(&"update_strategy.type".to_string()), "{fields:?}");
    let missing = hub.post("/api/maestro/v1/resources", &json!({"consumer_name": "cluster1"})).await;
    assert_error(&missing, 400, 8);
    assert!(missing.body["reason"].as_str().unwrap_or("").contains("manifest"), "{}", missing.body);
}
