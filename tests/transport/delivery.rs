//! Create, update and delete reach a test agent as CloudEvents, and its statuses come back into
//! the REST API, through the real Mosquitto (on both databases) and through the embedded broker.

use maestro_hub::transport::TransportConfig;
use maestro_tests::agent::TestAgent;
use maestro_tests::{Backend, MOSQUITTO, TestHub, deployment, transport_on, unique_source};
use maestro_wire::wire::EventAction;
use serde_json::{Value, json};

pub async fn consumer(hub: &TestHub, name: &str) {
    let reply = hub.post("/api/maestro/v1/consumers", &json!({"name": name})).await;
    assert_eq!(reply.status, 201, "creating consumer {name}: {}", reply.body);
}

pub async fn create_resource(hub: &TestHub, consumer: &str, name: &str) -> String {
    let body = json!({"consumer_name": consumer, "manifest": deployment(name), "feedback_rules": [{"type": "JSONPaths", "jsonPaths": [{"name": "status", "path": ".status"}]}]});
    let reply = hub.post("/api/maestro/v1/resources", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().expect("id").to_string()
}

fn observed_version(reply: &maestro_tests::Reply) -> Value {
    reply.body["status"]["ReconcileStatus"]["ObservedVersion"].clone()
}

/// The whole life of a resource, seen from the REST API and from the agent.
async fn lifecycle(hub: &TestHub, broker: &str, source: &str) {
    consumer(hub, "cluster1").await;
    let agent = TestAgent::start(broker, source, "cluster1").await;
    let id = create_resource(hub, "cluster1", "web").await;
    let path = format!("/api/maestro/v1/resources/{id}");

    let held = agent.wait_for("the created resource", |s| s.applied.get(&id).is_some_and(|a| a.version == 1)).await;
    assert_eq!(held.applied[&id].bundle.manifests, vec![deployment("web")]);
    assert_eq!(held.spec_events[0], (id.clone(), 1, EventAction::Create));
    let shown = hub.wait_for(&path, "the agent's status", |r| observed_version(r) == json!(1)).await;
    assert_eq!(shown.body["status"]["ContentStatus"], json!({"readyReplicas": 1}), "{}", shown.body);
    assert_eq!(shown.body["status"]["ReconcileStatus"]["Conditions"][1]["type"], "Available");
    let bundle = hub.get(&format!("/api/maestro/v1/resource-bundles/{id}")).await;
    assert_eq!(bundle.body["status"]["conditions"][0]["type"], "Applied", "{}", bundle.body);
    assert_eq!(bundle.body["status"]["ObservedVersion"], 1);

    let mut manifest = deployment("web");
    manifest["spec"]["replicas"] = json!(3);
    let updated = hub.put(&path, &json!({"version": 1, "manifest": manifest})).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let held = agent.wait_for("version 2", |s| s.applied.get(&id).is_some_and(|a| a.version == 2)).await;
    assert_eq!(held.applied[&id].bundle.manifests[0]["spec"]["replicas"], 3);
    hub.wait_for(&path, "the status of version 2", |r| observed_version(r) == json!(2)).await;

    assert_eq!(hub.delete(&path).await.status, 204);
    agent.wait_for("the delete", |s| s.applied.get(&id).is_some_and(|a| a.deleted)).await;
    hub.wait_for(&path, "the purge after the agent's Deleted status", |r| r.status == 404).await;

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !hub.store().outbox_after(0, 10).await.expect("outbox").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "outbox never drained");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(hub.metric("maestro_transport_events_sent_total{type=\"spec.create\"}").await >= 1.0);
    assert!(hub.metric("maestro_transport_events_received_total{type=\"status.update\"}").await >= 3.0);
    assert_eq!(hub.metric("maestro_transport_broker_connected").await, 1.0);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_live_and_die_through_mosquitto_on_sqlite() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport_on(MOSQUITTO, &source)).await;
    lifecycle(&hub, MOSQUITTO, &source).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_live_and_die_through_mosquitto_on_postgres() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Postgres, transport_on(MOSQUITTO, &source)).await;
    lifecycle(&hub, MOSQUITTO, &source).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_live_and_die_through_the_embedded_broker() {
    let hub = TestHub::start_with_transport(Backend::Sqlite, TransportConfig::default()).await;
    let url = hub.broker_url();
    assert!(url.starts_with("mqtt://127.0.0.1:") && !url.ends_with(":1883"), "{url}");
    lifecycle(&hub, &url, "maestro").await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_of_several_manifests_travels_whole() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "c2").await;
    let agent = TestAgent::start(MOSQUITTO, &source, "c2").await;
    let body = json!({"consumer_name": "c2", "version": 1, "manifests": [deployment("a"), deployment("b")],
                      "delete_option": {"propagationPolicy": "Orphan"},
                      "manifest_configs": [{"resourceIdentifier": {"group": "apps", "resource": "deployments", "name": "a", "namespace": "default"}, "updateStrategy": {"type": "Update"}}]});
    let reply = hub.post("/api/maestro/v1/resource-bundles", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_string();
    let held = agent.wait_for("the bundle", |s| s.applied.contains_key(&id)).await;
    let bundle = &held.applied[&id].bundle;
    assert_eq!(bundle.manifests, vec![deployment("a"), deployment("b")]);
    assert_eq!(bundle.delete_option, Some(json!({"propagationPolicy": "Orphan"})));
    assert_eq!(bundle.manifest_configs[0]["updateStrategy"]["type"], "Update");
    agent.stop().await;
    hub.stop().await;
}

/// Engines wait on agents' statuses through the store's status feed instead of polling: a
/// status the hub records, and the purge that completes a delete, each name their bundle.
async fn the_status_feed_names_each_bundle_whose_status_is_recorded_or_purged(backend: Backend) {
    use maestro_store::wakeup::StatusChange;
    let source = unique_source();
    let hub = TestHub::start_with_transport(backend, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "cluster1").await;
    let mut feed = hub.hub.store.status_feed(std::time::Duration::from_secs(30)).await;
    let agent = TestAgent::start(MOSQUITTO, &source, "cluster1").await;
    let next_naming = async |feed: &mut maestro_store::wakeup::StatusFeed, id: &str| {
        let wait = async {
            loop {
                if feed.next().await == StatusChange::Recorded(id.to_string()) {
                    return;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), wait).await.expect("the feed names the bundle");
    };
    let id = create_resource(&hub, "cluster1", "web").await;
    next_naming(&mut feed, &id).await;
    let path = format!("/api/maestro/v1/resources/{id}");
    let shown = hub.get(&path).await;
    assert_eq!(observed_version(&shown), json!(1), "the status is stored when the feed tells: {}", shown.body);

    assert_eq!(hub.delete(&path).await.status, 204);
    // Earlier statuses may still be queued in the feed: the purge is the news that finds the
    // bundle gone (without it, the loop would wait in vain).
    loop {
        next_naming(&mut feed, &id).await;
        if hub.get(&path).await.status == 404 {
            break;
        }
    }
    drop(feed); // its LISTEN connection is the pool's: closing the store waits for it
    agent.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_feed_follows_recorded_statuses_on_sqlite() {
    the_status_feed_names_each_bundle_whose_status_is_recorded_or_purged(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_feed_follows_recorded_statuses_on_postgres() {
    the_status_feed_names_each_bundle_whose_status_is_recorded_or_purged(Backend::Postgres).await;
}

/// A forced delete does not wait for the agent, but still tells it: the row goes at once and
/// the agent deletes the objects when the event reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_delete_still_reaches_the_agent() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Postgres, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "cluster1").await;
    let agent = TestAgent::start(MOSQUITTO, &source, "cluster1").await;
    let id = create_resource(&hub, "cluster1", "web").await;
    agent.wait_for("the created resource", |s| s.applied.contains_key(&id)).await;
    let path = format!("/api/maestro/v1/resources/{id}");
    assert_eq!(hub.delete(&format!("{path}?force=true")).await.status, 204);
    assert_eq!(hub.get(&path).await.status, 404, "gone without waiting for the agent");
    agent.wait_for("the delete", |s| s.applied.get(&id).is_some_and(|a| a.deleted)).await;
    agent.stop().await;
    hub.stop().await;
}
