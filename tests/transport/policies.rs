//! Plugin policies to agents: the hub answers an agent's `policies.resync_request` from the
//! database with `policies.update_request` on that consumer's topic, in the documented shape,
//! and sends a consumer its new list when its labels change or a policy selecting it changes,
//! through the policy outbox: a change the API acknowledged is pushed even when the hub that
//! took it never gets to.

use std::time::Duration;

use maestro_plugins::policy::PolicySpec;
use maestro_tests::{Backend, HubSetup, MOSQUITTO, TestHub, transport_on, unique_source};
use maestro_wire::mqtt::{MqttConfig, MqttLink, Received};
use maestro_wire::wire;
use serde_json::{Value, json};
use tokio::sync::mpsc;

async fn consumer(hub: &TestHub, name: &str, labels: Value) {
    let reply = hub.post("/api/maestro/v1/consumers", &json!({"name": name, "labels": labels})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

async fn next_update(rx: &mut mpsc::Receiver<Received>) -> (String, Value) {
    let received = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("an update").expect("link");
    check_update(received)
}

/// The next policy update, past the status resync requests a starting hub sends every consumer.
async fn next_update_skipping_resyncs(rx: &mut mpsc::Receiver<Received>) -> (String, Value) {
    loop {
        let received =
            tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("an update").expect("link");
        let event = wire::decode(received.message.clone()).expect("a binary-mode CloudEvent");
        if cloudevents::AttributesReader::ty(&event) == wire::POLICIES_UPDATE {
            return check_update(received);
        }
    }
}

fn check_update(received: Received) -> (String, Value) {
    let topic = received.topic.clone();
    let data: Value = serde_json::from_slice(&received.message.payload).expect("JSON data");
    let event = wire::decode(received.message).expect("a binary-mode CloudEvent");
    assert_eq!(cloudevents::AttributesReader::ty(&event), wire::POLICIES_UPDATE);
    assert_eq!(cloudevents::AttributesReader::datacontenttype(&event), Some("application/json"));
    (topic, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_answers_policy_resyncs_with_the_policies_that_match_and_follows_label_changes() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "prod1", json!({"env": "prod"})).await;
    consumer(&hub, "dev1", json!({})).await;
    let spec: PolicySpec = serde_json::from_value(json!({"name": "prod-only", "selector": {"labels": {"env": "prod"}},
        "status-feedback": {"plugins": [{"plugin": "rollout-health"}]}}))
    .unwrap();

    let (tx, mut rx) = mpsc::channel(64);
    let client_id = format!("policies-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let topics = vec![wire::source_events_topic(&source, "prod1"), wire::source_events_topic(&source, "dev1")];
    let agent = MqttLink::start(&MqttConfig::new(MOSQUITTO, client_id), topics, tx).expect("link");
    agent.connected(Duration::from_secs(30)).await.expect("connects");
    hub.store().create_plugin_policy(&spec).await.expect("policy stored");
    let ask = |consumer: &str| {
        let event = wire::policies_resync_event(&format!("{consumer}-work-agent"), consumer);
        (wire::agent_events_topic(&source, consumer), wire::encode(&event))
    };

    // Storing the policy queued a push to prod1 (only: dev1 is not selected); an agent's resync
    // is answered with the same list.
    let (topic, data) = next_update(&mut rx).await;
    assert_eq!(topic, wire::source_events_topic(&source, "prod1"));
    assert_eq!(data["policies"][0]["name"], "prod-only");
    let (topic, message) = ask("prod1");
    agent.publish(&topic, message).await.unwrap().wait(Duration::from_secs(30)).await.unwrap();
    let (topic, data) = next_update(&mut rx).await;
    assert_eq!(topic, wire::source_events_topic(&source, "prod1"));
    assert_eq!(data["consumer_labels"], json!({"env": "prod"}));
    assert_eq!(data["policies"][0]["name"], "prod-only");
    assert_eq!(data["policies"].as_array().map(Vec::len), Some(1));

    let (topic, message) = ask("dev1");
    agent.publish(&topic, message).await.unwrap().wait(Duration::from_secs(30)).await.unwrap();
    let (topic, data) = next_update(&mut rx).await;
    assert_eq!(topic, wire::source_events_topic(&source, "dev1"));
    assert_eq!(data, json!({"consumer_labels": {}, "policies": []}), "none applies: an empty list");

    // An unknown consumer's request is counted and dropped.
    let (topic, message) = ask("ghost");
    agent.publish(&topic, message).await.unwrap().wait(Duration::from_secs(30)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while hub.metric("maestro_transport_events_dropped_total{reason=\"unknown consumer\"}").await < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "the ghost's request was never dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // dev1 labelled prod over REST: it now gets the policy, without asking.
    let reply = hub.patch("/api/maestro/v1/consumers/dev1", &json!({"labels": {"env": "prod"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (topic, data) = next_update(&mut rx).await;
    assert_eq!(topic, wire::source_events_topic(&source, "dev1"));
    assert_eq!(data["policies"][0]["name"], "prod-only");
    assert!(rx.try_recv().is_err(), "prod1 heard nothing of dev1's change");
    agent.close().await;
    hub.stop().await;
}

/// A plugin directory holding the rollout-health component, so that policies naming it can be
/// stored (the hub refuses a policy whose plugin is not loaded).
fn plugins_with_rollout_health(dir: &std::path::Path) -> maestro_plugins::PluginConfig {
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/rollout-health.wasm");
    let bytes = std::fs::read(&built)
        .unwrap_or_else(|err| panic!("{}: {err}; run `scripts/build-plugins` first", built.display()));
    std::fs::write(dir.join("rollout-health.wasm"), bytes).expect("plugin copied");
    let mut config = maestro_plugins::PluginConfig::new(dir.to_path_buf());
    config.cache_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugin-test-cache");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_pushes_survive_a_hub_that_answered_but_never_sent_them_sqlite() {
    policy_pushes_queued_by_a_hub_that_never_sends_them_are_sent_by_the_next(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_pushes_survive_a_hub_that_answered_but_never_sent_them_postgres() {
    policy_pushes_queued_by_a_hub_that_never_sends_them_are_sent_by_the_next(Backend::Postgres).await;
}

/// Hub A takes a policy and a label change over REST and answers, but has no transport: like a
/// hub killed right after answering, it never publishes anything. Hub B, started later on the
/// same database, finds both pushes queued and sends them, each consumer its current list.
async fn policy_pushes_queued_by_a_hub_that_never_sends_them_are_sent_by_the_next(backend: Backend) {
    let source = unique_source();
    let dir = tempfile::tempdir().expect("plugin dir");
    let setup = || HubSetup { plugins: Some(plugins_with_rollout_health(dir.path())), ..HubSetup::default() };
    let a = TestHub::start_with(backend, setup()).await;
    consumer(&a, "prod1", json!({"env": "prod"})).await;
    consumer(&a, "dev1", json!({})).await;
    consumer(&a, "other", json!({})).await;
    let body = json!({"name": "prod-only", "selector": {"labels": {"env": "prod"}},
        "status-feedback": {"plugins": [{"plugin": "rollout-health"}]}});
    let reply = a.post("/api/maestro/v1/plugin-policies", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = a.patch("/api/maestro/v1/consumers/dev1", &json!({"labels": {"env": "prod"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(a.store().policy_pushes_queued().await.expect("count"), 2, "prod1 (policy) and dev1 (labels)");

    let (tx, mut rx) = mpsc::channel(64);
    let client_id = format!("policies-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let topics = ["prod1", "dev1", "other"].map(|c| wire::source_events_topic(&source, c)).to_vec();
    let agent = MqttLink::start(&MqttConfig::new(MOSQUITTO, client_id), topics, tx).expect("link");
    agent.connected(Duration::from_secs(30)).await.expect("connects");

    let b = a.start_beside_with_transport(setup(), transport_on(MOSQUITTO, &source)).await;
    let mut got = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let (topic, data) = next_update_skipping_resyncs(&mut rx).await;
        got.insert(topic, data);
    }
    for consumer in ["prod1", "dev1"] {
        let data = &got[&wire::source_events_topic(&source, consumer)];
        assert_eq!(data["consumer_labels"], json!({"env": "prod"}), "{consumer}: {data}");
        assert_eq!(data["policies"][0]["name"], "prod-only", "{consumer}: {data}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(received) = rx.try_recv() {
        let event = wire::decode(received.message).expect("a binary-mode CloudEvent");
        assert_ne!(cloudevents::AttributesReader::ty(&event), wire::POLICIES_UPDATE, "no other policy update is sent");
    }
    assert_eq!(b.store().policy_pushes_queued().await.expect("count"), 0, "acknowledged pushes leave the queue");
    agent.close().await;
    b.stop().await;
    a.stop().await;
}

/// A bundle written right after a policy change is applied under that policy: its agent gets
/// the policy update first, even when both wait in their queues for the same dispatch (here:
/// written by a hub without transport, sent by the next).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_change_reaches_the_agent_before_a_bundle_written_after_it() {
    let source = unique_source();
    let dir = tempfile::tempdir().expect("plugin dir");
    let setup = || HubSetup { plugins: Some(plugins_with_rollout_health(dir.path())), ..HubSetup::default() };
    let a = TestHub::start_with(Backend::Postgres, setup()).await;
    consumer(&a, "prod1", json!({"env": "prod"})).await;
    let body = json!({"name": "prod-only", "selector": {"labels": {"env": "prod"}},
        "status-feedback": {"plugins": [{"plugin": "rollout-health"}]}});
    assert_eq!(a.post("/api/maestro/v1/plugin-policies", &body).await.status, 201);
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}});
    let reply = a.post("/api/maestro/v1/resources", &json!({"consumer_name": "prod1", "manifest": manifest})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    let (tx, mut rx) = mpsc::channel(64);
    let client_id = format!("order-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let topic = wire::source_events_topic(&source, "prod1");
    let agent = MqttLink::start(&MqttConfig::new(MOSQUITTO, client_id), vec![topic], tx).expect("link");
    agent.connected(Duration::from_secs(30)).await.expect("connects");
    let b = a.start_beside_with_transport(setup(), transport_on(MOSQUITTO, &source)).await;
    let mut order = Vec::new();
    while order.len() < 2 {
        let received = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("an event").expect("link");
        let event = wire::decode(received.message).expect("a binary-mode CloudEvent");
        let ty = cloudevents::AttributesReader::ty(&event).to_string();
        if !ty.ends_with("status.resync_request") {
            order.push(ty);
        }
    }
    assert_eq!(order[0], wire::POLICIES_UPDATE, "{order:?}");
    assert!(order[1].ends_with("spec.create_request"), "{order:?}");
    agent.close().await;
    b.stop().await;
    a.stop().await;
}
