//! The ways out of a delete whose agent never confirms: `?force=true`, a consumer delete with
//! `?cascade=true`, and `--stale-delete-after`. No agent runs here, so every delete stays
//! pending until one of them ends it.

use std::time::Duration;

use maestro_hub::api::Limits;
use maestro_tests::{Backend, HubSetup, TestHub, deployment, on_both_databases};
use serde_json::json;

use crate::{assert_error, bundle, consumer};

on_both_databases!(
    a_forced_delete_purges_a_bundle_whose_agent_never_answers,
    a_consumer_delete_cascades_only_when_asked,
    delete_flags_are_checked_like_list_parameters,
);

async fn a_forced_delete_purges_a_bundle_whose_agent_never_answers(hub: &TestHub) {
    consumer(hub, "gone", json!({})).await;
    let created = bundle(hub, json!({"consumer_name": "gone", "manifests": [deployment("web")]})).await;
    let path = format!("/api/maestro/v1/resource-bundles/{}", created["id"].as_str().expect("id"));
    assert_eq!(hub.delete(&path).await.status, 204);
    // Stuck: the bundle waits for an agent that never comes, and holds its consumer.
    assert!(hub.get(&path).await.body["deleted_at"].is_string());
    assert_error(&hub.put(&path, &json!({"version": 1, "manifests": [deployment("web")]})).await, 409, 6);
    assert_error(&hub.delete("/api/maestro/v1/consumers/gone").await, 409, 6);

    assert_eq!(hub.delete(&format!("{path}?force=true")).await.status, 204);
    assert_error(&hub.get(&path).await, 404, 7);
    assert_eq!(hub.delete("/api/maestro/v1/consumers/gone").await.status, 204);
    assert_eq!(hub.metric(r#"maestro_bundles_force_deleted_total{trigger="api"}"#).await, 1.0);

    // A live resource may be forced too (through the resource view), and a second force is 404.
    consumer(hub, "c1", json!({})).await;
    let resource =
        hub.post("/api/maestro/v1/resources", &json!({"consumer_name": "c1", "manifest": deployment("a")})).await;
    let path = format!("/api/maestro/v1/resources/{}", resource.body["id"].as_str().expect("id"));
    assert_eq!(hub.delete(&format!("{path}?force=true")).await.status, 204);
    assert_error(&hub.delete(&format!("{path}?force=true")).await, 404, 7);
    assert_eq!(hub.metric(r#"maestro_bundles_force_deleted_total{trigger="api"}"#).await, 2.0);
}

async fn a_consumer_delete_cascades_only_when_asked(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    consumer(hub, "c2", json!({})).await;
    let live = bundle(hub, json!({"consumer_name": "c1", "manifests": [deployment("a")]})).await;
    let deleting = bundle(hub, json!({"consumer_name": "c1", "manifests": [deployment("b")]})).await;
    let other = bundle(hub, json!({"consumer_name": "c2", "manifests": [deployment("c")]})).await;
    let item = |b: &serde_json::Value| format!("/api/maestro/v1/resource-bundles/{}", b["id"].as_str().expect("id"));
    assert_eq!(hub.delete(&item(&deleting)).await.status, 204);

    assert_error(&hub.delete("/api/maestro/v1/consumers/c1").await, 409, 6);
    assert_eq!(hub.get(&item(&live)).await.status, 200, "a refused delete takes nothing with it");
    assert_eq!(hub.delete("/api/maestro/v1/consumers/c1?cascade=true").await.status, 204);
    assert_error(&hub.get("/api/maestro/v1/consumers/c1").await, 404, 7);
    assert_error(&hub.get(&item(&live)).await, 404, 7);
    assert_error(&hub.get(&item(&deleting)).await, 404, 7);
    assert_eq!(hub.get(&item(&other)).await.status, 200, "another consumer's bundles stay");
    assert_eq!(hub.metric(r#"maestro_bundles_force_deleted_total{trigger="cascade"}"#).await, 2.0);
}

async fn delete_flags_are_checked_like_list_parameters(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let created = bundle(hub, json!({"consumer_name": "c1", "manifests": [deployment("a")]})).await;
    let path = format!("/api/maestro/v1/resource-bundles/{}", created["id"].as_str().expect("id"));
    for query in ["force=yes", "forse=true", "force=true&force=true", "cascade=true"] {
        let reply = hub.delete(&format!("{path}?{query}")).await;
        assert_error(&reply, 400, 21);
    }
    assert_error(&hub.delete("/api/maestro/v1/consumers/c1?force=true").await, 400, 21);
    let shown = hub.get(&path).await;
    assert!(shown.body["deleted_at"].is_null(), "a refused delete changes nothing: {}", shown.body);
}

async fn stale_deletes_are_forced_after_the_configured_time(backend: Backend) {
    let limits = Limits { stale_delete_after: Some(Duration::from_secs(1)), ..Limits::default() };
    let hub = TestHub::start_with(backend, HubSetup { limits, ..HubSetup::default() }).await;
    consumer(&hub, "c1", json!({})).await;
    let kept = bundle(&hub, json!({"consumer_name": "c1", "manifests": [deployment("a")]})).await;
    let stale = bundle(&hub, json!({"consumer_name": "c1", "manifests": [deployment("b")]})).await;
    let item = |b: &serde_json::Value| format!("/api/maestro/v1/resource-bundles/{}", b["id"].as_str().expect("id"));
    assert_eq!(hub.delete(&item(&stale)).await.status, 204);
    hub.wait_for(&item(&stale), "the stale delete forced", |r| r.status == 404).await;
    assert_eq!(hub.get(&item(&kept)).await.status, 200, "only deletes go stale");
    assert_eq!(hub.metric(r#"maestro_bundles_force_deleted_total{trigger="stale"}"#).await, 1.0);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_deletes_are_forced_after_the_configured_time_on_sqlite() {
    stale_deletes_are_forced_after_the_configured_time(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_deletes_are_forced_after_the_configured_time_on_postgres() {
    stale_deletes_are_forced_after_the_configured_time(Backend::Postgres).await;
}
