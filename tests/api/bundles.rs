//! Resource bundles: writes Maestro answers with 501 and we accept, optimistic concurrency,
//! versions that move only on change, two-phase delete, and an outbox row for every change.

use maestro_tests::{TestHub, config_map, conformance_sample, deployment, on_both_databases};
use serde_json::{Value, json};

use crate::{assert_error, bundle, consumer, error_fields};

on_both_databases!(
    a_bundle_reads_back_as_it_was_written,
    the_version_moves_only_when_content_changes,
    a_stale_version_is_refused_with_the_current_one,
    delete_is_two_phase,
    every_change_writes_one_outbox_row,
    the_conformance_sample_bundle_is_accepted,
    bundles_are_checked_before_anything_is_stored,
    identity_cannot_change,
    manifests_come_back_as_the_client_wrote_them,
    concurrent_creates_each_get_their_own_answer,
);

fn web_bundle() -> Value {
    json!({
        "consumer_name": "c1",
        "name": "web",
        "metadata": {"labels": {"team": "payments"}},
        "manifests": [deployment("web"), config_map("web-config")],
        "manifest_configs": [{
            "resourceIdentifier": {"group": "apps", "resource": "deployments", "name": "web", "namespace": "default"},
            "feedbackRules": [{"type": "WellKnownStatus"}],
            "updateStrategy": {"type": "ServerSideApply"}
        }],
        "delete_option": {"propagationPolicy": "Foreground"}
    })
}

async fn a_bundle_reads_back_as_it_was_written(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let created = bundle(hub, web_bundle()).await;
    let id = created["id"].as_str().expect("id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "ids are UUIDs as in Maestro");
    assert_eq!(created["kind"], "ResourceBundle");
    assert_eq!(created["href"], format!("/api/maestro/v1/resource-bundles/{id}"));
    assert_eq!(created["version"], 1);
    assert_eq!(created["name"], "web");
    assert_eq!(created["consumer_name"], "c1");
    assert_eq!(created["manifests"], web_bundle()["manifests"]);
    assert_eq!(created["manifest_configs"], web_bundle()["manifest_configs"]);
    assert_eq!(created["delete_option"], json!({"propagationPolicy": "Foreground"}));
    assert_eq!(created["status"], json!({}), "no status before an agent reports");
    assert!(created.get("deleted_at").is_none());

    let read = hub.get(&format!("/api/maestro/v1/resource-bundles/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created);
    assert_error(&hub.get("/api/maestro/v1/resource-bundles/00000000-0000-0000-0000-000000000000").await, 404, 7);
}

fn replace_body(current: &Value, manifests: Value) -> Value {
    json!({"version": current["version"], "manifests": manifests, "metadata": current["metadata"],
           "manifest_configs": current["manifest_configs"], "delete_option": current["delete_option"]})
}

async fn the_version_moves_only_when_content_changes(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let created = bundle(hub, web_bundle()).await;
    let path = format!("/api/maestro/v1/resource-bundles/{}", created["id"].as_str().expect("id"));

    let same = hub.put(&path, &replace_body(&created, created["manifests"].clone())).await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.body["version"], 1, "re-applying the same content is not a change");

    let mut manifests = created["manifests"].clone();
    manifests[0]["spec"]["replicas"] = json!(3);
    let changed = hub.put(&path, &replace_body(&created, manifests)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["version"], 2);
    assert_eq!(changed.body["manifests"][0]["spec"]["replicas"], 3);
    assert_eq!(hub.get(&path).await.body["version"], 2);
}

async fn a_stale_version_is_refused_with_the_current_one(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let created = bundle(hub, web_bundle()).await;
    let path = format!("/api/maestro/v1/resource-bundles/{}", created["id"].as_str().expect("id"));
    let mut first = created["manifests"].clone();
    first[0]["spec"]["replicas"] = json!(2);
    assert_eq!(hub.put(&path, &replace_body(&created, first)).await.status, 200);

    let mut second = created["manifests"].clone();
    second[0]["spec"]["replicas"] = json!(5);
    let stale = hub.put(&path, &replace_body(&created, second)).await;
    assert_error(&stale, 409, 6);
    assert_eq!(stale.body["current_version"], 2);
    assert_eq!(hub.get(&path).await.body["manifests"][0]["spec"]["replicas"], 2, "the stale write changed nothing");

    let mut no_version = replace_body(&created, created["manifests"].clone());
    no_version.as_object_mut().expect("object").remove("version");
    let missing = hub.put(&path, &no_version).await;
    assert_error(&missing, 400, 8);
    assert_eq!(error_fields(&missing), vec!["version"]);
}

async fn delete_is_two_phase(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let created = bundle(hub, web_bundle()).await;
    let id = created["id"].as_str().expect("id");
    let path = format!("/api/maestro/v1/resource-bundles/{id}");

    assert_eq!(hub.delete(&path).await.status, 204);
    let deleting = hub.get(&path).await;
    assert_eq!(deleting.status, 200, "the bundle stays until its agent confirms");
    assert!(deleting.body["deleted_at"].as_str().is_some());
    assert_eq!(hub.get("/api/maestro/v1/resource-bundles?search=deleted_at is not null").await.body["total"], 1);

    assert_error(&hub.put(&path, &replace_body(&created, created["manifests"].clone())).await, 409, 6);
    assert_eq!(hub.delete(&path).await.status, 204, "deleting again is harmless");

    assert!(hub.store().purge_bundle(id).await.expect("purge"), "the agent's confirmation removes it");
    assert_error(&hub.get(&path).await, 404, 7);
    assert!(!hub.store().purge_bundle(id).await.expect("purge"));
}

async fn every_change_writes_one_outbox_row(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let created = bundle(hub, web_bundle()).await;
    let id = created["id"].as_str().expect("id");
    let path = format!("/api/maestro/v1/resource-bundles/{id}");
    hub.put(&path, &replace_body(&created, created["manifests"].clone())).await; // no change
    let mut manifests = created["manifests"].clone();
    manifests[1]["data"]["k"] = json!("w");
    assert_eq!(hub.put(&path, &replace_body(&created, manifests)).await.status, 200);
    assert_eq!(hub.delete(&path).await.status, 204);
    hub.delete(&path).await; // already deleting

    let rows = hub.store().outbox_after(0, 100).await.expect("outbox");
    let seen: Vec<(String, i64)> = rows.iter().map(|r| (r.action.clone(), r.resource_version)).collect();
    assert_eq!(seen, vec![("create".into(), 1), ("update".into(), 2), ("delete".into(), 2)]);
    assert!(rows.iter().all(|r| r.resource_id == id && r.consumer_name == "c1"));
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq), "rows are drained in seq order");
}

async fn the_conformance_sample_bundle_is_accepted(hub: &TestHub) {
    let sample = conformance_sample("cloudevents.spec.maestro.json");
    consumer(hub, "cluster1", json!({})).await;
    let created = bundle(
        hub,
        json!({
            "id": sample["resourceid"],
            "consumer_name": "cluster1",
            "manifests": sample["data"]["manifests"],
            "manifest_configs": sample["data"]["manifestConfigs"],
        }),
    )
    .await;
    assert_eq!(created["id"], sample["resourceid"], "a client-chosen UUID is kept");
    assert_eq!(created["manifest_configs"], sample["data"]["manifestConfigs"]);
}

async fn bundles_are_checked_before_anything_is_stored(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let unknown_consumer = hub
        .post("/api/maestro/v1/resource-bundles", &json!({"consumer_name": "nope", "manifests": [deployment("a")]}))
        .await;
    assert_error(&unknown_consumer, 400, 8);
    assert_eq!(error_fields(&unknown_consumer), vec!["consumer_name"]);

    let duplicate = hub
        .post(
            "/api/maestro/v1/resource-bundles",
            &json!({"consumer_name": "c1", "manifests": [deployment("a"), deployment("a")]}),
        )
        .await;
    assert_error(&duplicate, 400, 8);
    assert!(error_fields(&duplicate).iter().any(|f| f.starts_with("manifests[1]")), "{}", duplicate.body);

    let mut nameless = deployment("a");
    nameless["metadata"].as_object_mut().expect("metadata").remove("name");
    let broken = hub
        .post(
            "/api/maestro/v1/resource-bundles",
            &json!({"consumer_name": "c1", "manifests": [nameless, {"kind": "x"}], "manifest_configs": [{"updateStrategy": {"type": "Sometimes"}}]}),
        )
        .await;
    assert_error(&broken, 400, 8);
    let fields = error_fields(&broken);
    for expected in ["manifests[0].metadata.name", "manifests[1].apiVersion", "manifest_configs[0].updateStrategy.type"]
    {
        assert!(fields.iter().any(|f| f == expected), "{expected} not in {fields:?}");
    }
    let empty = hub.post("/api/maestro/v1/resource-bundles", &json!({"consumer_name": "c1", "manifests": []})).await;
    assert_error(&empty, 400, 8);
    let bad_id = hub
        .post(
            "/api/maestro/v1/resource-bundles",
            &json!({"id": "not-a-uuid", "consumer_name": "c1", "manifests": [deployment("a")]}),
        )
        .await;
    assert_eq!(error_fields(&bad_id), vec!["id"]);

    assert_eq!(hub.get("/api/maestro/v1/resource-bundles").await.body["total"], 0);
    assert!(hub.store().outbox_after(0, 10).await.expect("outbox").is_empty(), "a refused write publishes nothing");
}

async fn identity_cannot_change(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    consumer(hub, "c2", json!({})).await;
    let created = bundle(hub, web_bundle()).await;
    let path = format!("/api/maestro/v1/resource-bundles/{}", created["id"].as_str().expect("id"));
    let mut body = replace_body(&created, created["manifests"].clone());
    body["name"] = json!("other");
    body["consumer_name"] = json!("c2");
    let moved = hub.put(&path, &body).await;
    assert_error(&moved, 400, 8);
    assert_eq!(error_fields(&moved), vec!["name", "consumer_name"]);

    let taken = hub.post("/api/maestro/v1/resource-bundles", &web_bundle()).await;
    assert_error(&taken, 409, 6);
    assert!(taken.body["reason"].as_str().unwrap_or("").contains("web"));
}

async fn manifests_come_back_as_the_client_wrote_them(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let created = bundle(hub, json!({"consumer_name": "c1", "manifests": [deployment("web")]})).await;
    let path = format!("/api/maestro/v1/resource-bundles/{}", created["id"].as_str().expect("id"));
    let body = hub.client.get(hub.url(&path)).send().await.expect("get").text().await.expect("body");
    let text = &body[body.find("\"manifests\"").expect("manifests")..];
    let position = |key: &str| text.find(&format!("\"{key}\"")).unwrap_or_else(|| panic!("{key} missing in {text}"));
    assert!(
        position("apiVersion") < position("kind")
            && position("kind") < position("metadata")
            && position("metadata") < position("spec"),
        "keys keep the order the client sent: {text}"
    );
}

/// Creates that arrive together are written together on PostgreSQL; one refused row must not
/// take the others down with it, nor let a refused one in.
async fn concurrent_creates_each_get_their_own_answer(hub: &TestHub) {
    consumer(hub, "c1", json!({})).await;
    let bodies: Vec<Value> = (0..48)
        .map(|i| {
            let mut body = web_bundle();
            body["name"] = json!(format!("web-{}", i % 40)); // 8 names are sent twice
            if i % 12 == 5 {
                body["consumer_name"] = json!("nobody"); // an unknown consumer
            }
            body
        })
        .collect();
    let replies =
        futures::future::join_all(bodies.iter().map(|body| hub.post("/api/maestro/v1/resource-bundles", body))).await;

    let mut created = std::collections::BTreeSet::new();
    for (body, reply) in bodies.iter().zip(&replies) {
        match reply.status.as_u16() {
            201 => assert!(created.insert(body["name"].as_str().expect("name").to_string()), "{body}"),
            400 => assert_eq!(body["consumer_name"], "nobody", "{}", reply.body),
            409 => assert!(reply.body["reason"].as_str().unwrap_or("").contains("already has"), "{}", reply.body),
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    let refused_consumer = replies.iter().filter(|r| r.status == 400).count();
    assert_eq!(refused_consumer, 4, "every create naming an unknown consumer is refused");
    let names_sent: std::collections::BTreeSet<_> = bodies
        .iter()
        .filter(|b| b["consumer_name"] == "c1")
        .map(|b| b["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(created, names_sent, "each name is created exactly once");

    let listed = hub.get("/api/maestro/v1/resource-bundles?size=100").await;
    assert_eq!(listed.body["total"], created.len());
    let queued = hub.store().outbox_after(0, 1000).await.expect("outbox");
    assert_eq!(queued.len(), created.len(), "one create event per stored bundle, none for refused ones");
}
