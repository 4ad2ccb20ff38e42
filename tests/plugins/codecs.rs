//! Codec plugins on the wire, end to end: a hub whose policy gives consumer `coded` the example
//! codecs `hmac-codec` then `gzip-codec`, the real Mosquitto, a plain MQTT subscriber reading
//! the raw events, and our agent (with the same plugins and policy in its plugin directory)
//! applying to a simulated cluster. Also: several hubs on one database see policy changes.

use std::time::Duration;

use kube::api::{Api, DynamicObject};
use maestro_agent::{Agent, AgentConfig, RunningAgent};
use maestro_sim::{RunningSim, SimCluster, SimOptions};
use maestro_tests::{Backend, HubSetup, MOSQUITTO, TestHub, config_map, transport_on, unique_source};
use maestro_wire::mqtt::{MqttConfig, MqttLink, Received};
use maestro_wire::wire::{self, ManifestBundleStatus, MqttMessage, StatusReport};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{consumer, drop_file, metric, plugin_config, policy};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const CODECS: &str = "hmac-codec,gzip-codec";
const DEADLINE: Duration = Duration::from_secs(45);

/// The policy as the hub stores it and as the agent's `policies.toml` holds it.
fn codec_policy() -> Value {
    json!({"name": "wire", "selector": {"consumers": ["coded"]},
        "codec": {"plugins": [{"plugin": "hmac-codec", "settings": {"key_hex": KEY}}, {"plugin": "gzip-codec"}]}})
}

fn codec_policy_toml() -> String {
    format!(
        "[[policy]]\nname = \"wire\"\nselector = {{ labels = {{ wire = \"signed\" }} }}\n[policy.codec]\n\
         plugins = [{{ plugin = \"hmac-codec\", settings = {{ key_hex = \"{KEY}\" }} }}, {{ plugin = \"gzip-codec\" }}]\n"
    )
}

/// A hub on Mosquitto with the codec plugins, consumers `coded` (with the codec policy) and
/// `plain` (without).
async fn coded_hub() -> (TestHub, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("plugin dir");
    let source = unique_source();
    let setup =
        HubSetup { plugins: Some(plugin_config(dir.path(), &["hmac-codec", "gzip-codec"])), ..HubSetup::default() };
    let hub = TestHub::start_full(Backend::Sqlite, setup, Some(transport_on(MOSQUITTO, &source))).await;
    consumer(&hub, "coded", json!({"wire": "signed"})).await;
    consumer(&hub, "plain", json!({})).await;
    policy(&hub, codec_policy()).await;
    (hub, dir, source)
}

/// A plain MQTT client subscribed to `topics`: what it receives is the raw wire.
async fn listen(topics: Vec<String>) -> (MqttLink, mpsc::Receiver<Received>) {
    let (tx, rx) = mpsc::channel(256);
    let id = format!("raw-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let link = MqttLink::start(&MqttConfig::new(MOSQUITTO, &id), topics, tx).expect("link");
    link.connected(Duration::from_secs(30)).await.expect("listener connects");
    (link, rx)
}

fn property<'m>(message: &'m MqttMessage, name: &str) -> Option<&'m str> {
    message.user_properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The next message on `topic` whose `ce-type` ends with `type_suffix`.
async fn next_event(rx: &mut mpsc::Receiver<Received>, topic: &str, type_suffix: &str) -> MqttMessage {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let received = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {type_suffix} event on {topic}"))
            .expect("listener open");
        let ty = property(&received.message, "ce-type").unwrap_or_default();
        if received.topic == topic && ty.ends_with(type_suffix) {
            return received.message;
        }
    }
}

async fn start_agent(
    source: &str,
    plugins: Option<maestro_plugins::PluginConfig>,
) -> (RunningAgent, RunningSim, tempfile::TempDir) {
    let sim = SimCluster::start(SimOptions::default()).await.expect("simulated cluster starts");
    let data = tempfile::tempdir().expect("agent data dir");
    let kube = sim.config().expect("kube config");
    let mut config = AgentConfig::new("coded", MqttConfig::new(MOSQUITTO, ""), kube, data.path().to_path_buf());
    config.source = source.to_string();
    config.plugins = plugins;
    let agent = Agent::start(config).await.expect("agent starts");
    agent.connected(Duration::from_secs(30)).await.expect("agent connects");
    if agent.plugins().is_some() {
        // Its file policy selects by label: the labels come with the hub's first policy update.
        eventually("the agent's first policy update", async || agent.policy_updates() > 0).await;
    }
    (agent, sim, data)
}

async fn create_bundle(hub: &TestHub, consumer: &str, manifest: Value) -> String {
    let reply = hub
        .post("/api/maestro/v1/resource-bundles", &json!({"consumer_name": consumer, "manifests": [manifest]}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().expect("id").to_string()
}

fn config_maps(sim: &RunningSim) -> Api<DynamicObject> {
    sim.config_maps("default").expect("kube client")
}

fn applied(status: &Value) -> bool {
    status["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Applied" && c["status"] == "True"))
}

/// Polls `check` every 50 ms until it holds, up to the deadline.
async fn eventually(what: &str, check: impl AsyncFn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_with_codecs_gets_encoded_events_and_its_agent_answers_in_kind() {
    let (hub, _dir, source) = coded_hub().await;
    let coded_topic = wire::source_events_topic(&source, "coded");
    let plain_topic = wire::source_events_topic(&source, "plain");
    let status_topic = wire::agent_events_topic(&source, "coded");
    let (listener, mut rx) = listen(vec![coded_topic.clone(), plain_topic.clone(), status_topic.clone()]).await;

    let agent_dir = tempfile::tempdir().expect("agent plugin dir");
    let plugins = plugin_config(agent_dir.path(), &["hmac-codec", "gzip-codec"]);
    drop_file(agent_dir.path(), "policies.toml", codec_policy_toml().as_bytes());
    let (agent, sim, _data) = start_agent(&source, Some(plugins)).await;

    let coded = create_bundle(&hub, "coded", config_map("coded-cm")).await;
    let spec = next_event(&mut rx, &coded_topic, "spec.create_request").await;
    assert_eq!(property(&spec, "ce-maestrocodec"), Some(CODECS));
    assert_eq!(property(&spec, "ce-resourceid"), Some(coded.as_str()), "extensions stay readable");
    assert!(spec.payload.starts_with(&[0x1f, 0x8b]), "gzip is the last codec applied");
    assert!(serde_json::from_slice::<Value>(&spec.payload).is_err(), "the bundle is not on the wire in the clear");

    let plain = create_bundle(&hub, "plain", config_map("plain-cm")).await;
    let spec = next_event(&mut rx, &plain_topic, "spec.create_request").await;
    assert_eq!(property(&spec, "ce-maestrocodec"), None);
    assert_eq!(property(&spec, "ce-resourceid"), Some(plain.as_str()));
    let data: Value = serde_json::from_slice(&spec.payload).expect("plain JSON");
    assert_eq!(data["manifests"][0]["metadata"]["name"], "plain-cm");

    // The agent decoded the spec (the object exists), encoded its status, and the hub decoded it.
    let status = next_event(&mut rx, &status_topic, "status.update_request").await;
    assert_eq!(property(&status, "ce-maestrocodec"), Some(CODECS));
    assert!(status.payload.starts_with(&[0x1f, 0x8b]));
    let path = format!("/api/maestro/v1/resource-bundles/{coded}");
    hub.wait_for(&path, "the agent's status, decoded", |r| applied(&r.body["status"])).await;
    config_maps(&sim).get("coded-cm").await.expect("the agent applied the decoded bundle");
    assert_eq!(agent.malformed_events(), 0);

    listener.close().await;
    agent.shutdown().await;
    let _ = sim.shutdown().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_the_codec_drops_encoded_events_as_malformed() {
    agent_drops_what_it_cannot_decode(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_another_key_drops_encoded_events_as_malformed() {
    let dir = tempfile::tempdir().expect("agent plugin dir");
    let plugins = plugin_config(dir.path(), &["hmac-codec", "gzip-codec"]);
    let other_key = codec_policy_toml().replace(KEY, &KEY.replace('0', "f"));
    drop_file(dir.path(), "policies.toml", other_key.as_bytes());
    agent_drops_what_it_cannot_decode(Some(plugins)).await;
}

async fn agent_drops_what_it_cannot_decode(plugins: Option<maestro_plugins::PluginConfig>) {
    let (hub, _dir, source) = coded_hub().await;
    let (agent, sim, _data) = start_agent(&source, plugins).await;
    let id = create_bundle(&hub, "coded", config_map("never")).await;
    eventually("the encoded spec counted as malformed", async || agent.malformed_events() >= 1).await;
    assert!(config_maps(&sim).get_opt("never").await.expect("read").is_none(), "nothing applied");
    let reply = hub.get(&format!("/api/maestro/v1/resource-bundles/{id}")).await;
    assert!(!applied(&reply.body["status"]), "{}", reply.body);
    agent.shutdown().await;
    let _ = sim.shutdown().await;
    hub.stop().await;
}

async fn dropped(hub: &TestHub, reason: &str) -> f64 {
    hub.metric(&format!("maestro_transport_events_dropped_total{{reason=\"{reason}\"}}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_drops_agent_events_that_do_not_decode_and_keeps_serving() {
    let (hub, _dir, source) = coded_hub().await;
    let id = create_bundle(&hub, "coded", config_map("cm")).await;
    let (publisher, _rx) = listen(Vec::new()).await;
    let topic = wire::agent_events_topic(&source, "coded");
    let body = ManifestBundleStatus {
        conditions: vec![json!({"type": "Applied", "status": "True", "reason": "x", "message": "",
            "lastTransitionTime": "2026-11-22T00:00:00Z"})],
        ..Default::default()
    };
    let report = StatusReport {
        resource_id: &id,
        resource_version: 1,
        cluster_name: "coded",
        original_source: "maestro",
        sequence_id: 1,
        status: &body,
    };
    let send = async |codecs: &str, payload: &[u8]| {
        let mut message = wire::encode(&wire::status_event("coded-work-agent", &report));
        message.user_properties.push(("ce-maestrocodec".into(), codecs.into()));
        message.payload = payload.to_vec();
        publisher.publish(&topic, message).await.expect("publish").wait(Duration::from_secs(10)).await.expect("ack");
    };

    send(CODECS, b"not gzip at all").await;
    eventually("a decode failure counted", async || dropped(&hub, "decode failed").await >= 1.0).await;
    send("no-such-codec", b"{}").await;
    eventually("an unknown codec counted", async || dropped(&hub, "decode failed").await >= 2.0).await;
    send("two words", b"{}").await;
    eventually("a malformed extension counted", async || dropped(&hub, "invalid extension").await >= 1.0).await;
    let reply = hub.get(&format!("/api/maestro/v1/resource-bundles/{id}")).await;
    assert!(!applied(&reply.body["status"]), "nothing undecodable was recorded: {}", reply.body);
    assert_eq!(hub.get("/healthz").await.status, 200);
    publisher.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_cannot_be_encoded_stays_queued_and_never_goes_out_in_the_clear_sqlite() {
    encode_failure_holds_the_row(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_cannot_be_encoded_stays_queued_and_never_goes_out_in_the_clear_postgres() {
    encode_failure_holds_the_row(Backend::Postgres).await;
}

async fn encode_failure_holds_the_row(backend: Backend) {
    // The file policy names a codec the directory does not hold yet: encoding fails (closed).
    let dir = tempfile::tempdir().expect("plugin dir");
    let policy = "[[policy]]\nname = \"late\"\nselector = { consumers = [\"coded\"] }\n\
                  [policy.codec]\nplugins = [{ plugin = \"late-codec\" }]\n";
    drop_file(dir.path(), "policies.toml", policy.as_bytes());
    let source = unique_source();
    let setup = HubSetup { plugins: Some(plugin_config(dir.path(), &[])), ..HubSetup::default() };
    let hub = TestHub::start_full(backend, setup, Some(transport_on(MOSQUITTO, &source))).await;
    consumer(&hub, "coded", json!({"wire": "signed"})).await;
    let topic = wire::source_events_topic(&source, "coded");
    let (listener, mut rx) = listen(vec![topic.clone()]).await;

    let id = create_bundle(&hub, "coded", config_map("cm")).await;
    let failures = async || metric(&hub, "maestro_transport_encode_failures_total", &[]).await.unwrap_or(0.0);
    eventually("the encode failure retried", async || failures().await >= 2.0).await;
    assert_eq!(hub.metric("maestro_transport_outbox_depth").await, 1.0, "the row stays queued");

    // Once the codec is there the row goes out, and the first event ever seen is encoded.
    drop_file(dir.path(), "late-codec.wasm", &crate::component("gzip-codec"));
    let spec = next_event(&mut rx, &topic, "spec.create_request").await;
    assert_eq!(property(&spec, "ce-resourceid"), Some(id.as_str()));
    assert_eq!(property(&spec, "ce-maestrocodec"), Some("late-codec"));
    assert!(spec.payload.starts_with(&[0x1f, 0x8b]));
    listener.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_created_through_one_hub_is_enforced_by_another_on_the_same_database() {
    let (first, _first_dir) = crate::hub_with(Backend::Postgres, &["image-policy"]).await;
    let second_dir = tempfile::tempdir().expect("plugin dir");
    let setup = HubSetup { plugins: Some(plugin_config(second_dir.path(), &["image-policy"])), ..HubSetup::default() };
    let second = first.start_beside(setup).await;
    consumer(&first, "c1", json!({})).await;
    let latest = || crate::deployment("web", &["nginx:latest"]);
    let reply = crate::post_bundle(&second, "c1", latest()).await;
    assert_eq!(reply.status, 201, "no policy yet: {}", reply.body);

    policy(
        &first,
        json!({"name": "no-latest", "validate": {"plugins": [{"plugin": "image-policy",
        "settings": {"forbidden_tags": ["latest"]}}]}}),
    )
    .await;
    eventually("the second hub deny the image", async || {
        let reply = crate::post_bundle(&second, "c1", latest()).await;
        reply.status == 400 && crate::violations(&reply).iter().any(|(_, m)| m.contains("image-policy"))
    })
    .await;

    let reply = first.delete("/api/maestro/v1/plugin-policies/no-latest").await;
    assert_eq!(reply.status, 204);
    eventually("the second hub accept it again", async || {
        crate::post_bundle(&second, "c1", latest()).await.status == 201
    })
    .await;
    second.stop().await;
    first.stop().await;
}
