//! Plugin policies to agents: the hub answers an agent's `policies.resync_request` from the
//! database with `policies.update_request` on that consumer's topic, in the documented shape,
//! and sends a consumer its new list when its labels change.

use std::time::Duration;

use maestro_plugins::policy::PolicySpec;
use maestro_tests::{Backend, MOSQUITTO, TestHub, transport_on, unique_source};
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
    hub.store().create_plugin_policy(&spec).await.expect("policy stored");

    let (tx, mut rx) = mpsc::channel(64);
    let client_id = format!("policies-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let topics = vec![wire::source_events_topic(&source, "prod1"), wire::source_events_topic(&source, "dev1")];
    let agent = MqttLink::start(&MqttConfig::new(MOSQUITTO, client_id), topics, tx).expect("link");
    agent.connected(Duration::from_secs(30)).await.expect("connects");
    let ask = |consumer: &str| {
        let event = wire::policies_resync_event(&format!("{consumer}-work-agent"), consumer);
        (wire::agent_events_topic(&source, consumer), wire::encode(&event))
    };

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
