//! Consumers: create, read by id or name, relabel, delete; names are unique; a consumer with
//! resources cannot be deleted.

use maestro_tests::{TestHub, deployment, on_both_databases};
use serde_json::json;

use crate::{assert_error, consumer, error_fields};

on_both_databases!(
    a_consumer_goes_through_its_whole_life,
    names_are_unique,
    names_must_be_dns_subdomains_and_labels_valid,
    a_consumer_with_resources_cannot_be_deleted,
);

async fn a_consumer_goes_through_its_whole_life(hub: &TestHub) {
    let created = consumer(hub, "cluster-east", json!({"env": "prod"})).await;
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["kind"], "Consumer");
    assert_eq!(created["name"], "cluster-east");
    assert_eq!(created["href"], format!("/api/maestro/v1/consumers/{id}"));
    assert_eq!(created["labels"], json!({"env": "prod"}));
    assert!(created["created_at"].as_str().is_some());

    let by_id = hub.get(&format!("/api/maestro/v1/consumers/{id}")).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.body, created, "what is read back is what was returned at creation");
    let by_name = hub.get("/api/maestro/v1/consumers/cluster-east").await;
    assert_eq!(by_name.body["id"], id.as_str());

    let patched = hub
        .patch(&format!("/api/maestro/v1/consumers/{id}"), &json!({"labels": {"env": "staging", "zone": "a"}}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["labels"], json!({"env": "staging", "zone": "a"}));
    assert_eq!(hub.get(&format!("/api/maestro/v1/consumers/{id}")).await.body["labels"]["zone"], "a");

    let list = hub.get("/api/maestro/v1/consumers").await;
    assert_eq!(list.body["kind"], "ConsumerList");
    assert_eq!(list.body["total"], 1);

    assert_eq!(hub.delete(&format!("/api/maestro/v1/consumers/{id}")).await.status, 204);
    assert_error(&hub.get(&format!("/api/maestro/v1/consumers/{id}")).await, 404, 7);
    assert_error(&hub.delete(&format!("/api/maestro/v1/consumers/{id}")).await, 404, 7);
}

async fn names_are_unique(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let again = hub.post("/api/maestro/v1/consumers", &json!({"name": "c1"})).await;
    assert_error(&again, 409, 6);
    assert!(again.body["reason"].as_str().unwrap_or("").contains("c1"));
    let without_name = hub.post("/api/maestro/v1/consumers", &json!({})).await;
    assert_eq!(without_name.status, 201, "a consumer without a name is named by its id");
    assert_eq!(without_name.body["name"], without_name.body["id"]);
}

async fn names_must_be_dns_subdomains_and_labels_valid(hub: &TestHub) {
    let bad =
        hub.post("/api/maestro/v1/consumers", &json!({"name": "Cluster/East", "labels": {"bad key!": "x"}})).await;
    assert_error(&bad, 400, 8);
    let fields = error_fields(&bad);
    assert!(fields.iter().any(|f| f == "name"), "{fields:?}");
    assert!(fields.iter().any(|f| f.starts_with("labels")), "{fields:?}");
    let list = hub.get("/api/maestro/v1/consumers").await;
    assert_eq!(list.body["total"], 0, "nothing is stored from a refused request");
}

async fn a_consumer_with_resources_cannot_be_deleted(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let resource =
        hub.post("/api/maestro/v1/resources", &json!({"consumer_name": "c1", "manifest": deployment("web")})).await;
    assert_eq!(resource.status, 201, "{}", resource.body);
    assert_error(&hub.delete("/api/maestro/v1/consumers/c1").await, 409, 6);

    // Deleting the resource is only the first phase: its agent has not confirmed yet.
    let id = resource.body["id"].as_str().expect("id");
    assert_eq!(hub.delete(&format!("/api/maestro/v1/resources/{id}")).await.status, 204);
    assert_error(&hub.delete("/api/maestro/v1/consumers/c1").await, 409, 6);

    assert!(hub.store().purge_bundle(id).await.expect("purge"));
    assert_eq!(hub.delete("/api/maestro/v1/consumers/c1").await.status, 204);
}
