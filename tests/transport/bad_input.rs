//! Bad agent events are logged with a reason, counted and dropped; the hub keeps serving.

use maestro_tests::agent::{TestAgent, applied_status};
use maestro_tests::{Backend, MOSQUITTO, TestHub, transport_on, unique_source};
use maestro_wire::agent_link::AgentLink;
use maestro_wire::mqtt::MqttConfig;
use maestro_wire::wire::{self, ManifestBundleStatus, StatusReport};
use serde_json::json;

use crate::delivery::{consumer, create_resource};

async fn raw_link(source: &str, consumer: &str) -> AgentLink {
    let client_id = format!("bad-{consumer}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let link = AgentLink::connect(MqttConfig::new(MOSQUITTO, client_id), source, consumer).expect("link");
    link.connected(std::time::Duration::from_secs(30)).await.expect("connects");
    link
}

fn status<'a>(id: &'a str, version: i64, sequence_id: u64, status: &'a ManifestBundleStatus) -> StatusReport<'a> {
    StatusReport {
        resource_id: id,
        resource_version: version,
        cluster_name: "c1",
        original_source: "maestro",
        sequence_id,
        status,
    }
}

async fn dropped(hub: &TestHub, reason: &str) -> f64 {
    hub.metric(&format!("maestro_transport_events_dropped_total{{reason=\"{reason}\"}}")).await
}

async fn wait_dropped(hub: &TestHub, reason: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while dropped(hub, reason).await < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "no event was dropped for {reason:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_agent_events_are_counted_and_dropped_and_the_hub_keeps_serving() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "c1").await;
    let agent = TestAgent::start(MOSQUITTO, &source, "c1").await;
    let id = create_resource(&hub, "c1", "web").await;
    let path = format!("/api/maestro/v1/resources/{id}");
    hub.wait_for(&path, "the first status", |r| r.body["status"]["ReconcileStatus"]["ObservedVersion"] == 1).await;
    let link = raw_link(&source, "c1").await;
    let good = applied_status(7);

    // Not JSON.
    let mut message = wire::encode(&wire::status_event("c1-work-agent", &status(&id, 1, u64::MAX / 2, &good)));
    message.payload = b"this is not json".to_vec();
    link.send_raw(message).await.unwrap();
    wait_dropped(&hub, "invalid data").await;

    // Not a CloudEvent at all.
    link.send_raw(wire::MqttMessage { payload: b"{}".to_vec(), ..Default::default() }).await.unwrap();
    wait_dropped(&hub, "not a cloudevent").await;

    // A wrong type.
    let mut wrong = wire::status_event("c1-work-agent", &status(&id, 1, u64::MAX / 2, &good));
    cloudevents::AttributesWriter::set_type(
        &mut wrong,
        "io.open-cluster-management.works.v1alpha1.manifestbundles.status.patch_request",
    );
    link.send(wrong).await.unwrap();
    wait_dropped(&hub, "unknown type").await;

    // No resourceid.
    let mut anonymous = wire::status_event("c1-work-agent", &status(&id, 1, u64::MAX / 2, &good));
    anonymous.remove_extension("resourceid");
    link.send(anonymous).await.unwrap();
    wait_dropped(&hub, "missing extension").await;

    // A stale version: the resource is at version 1.
    link.publish_status(&status(&id, 7, u64::MAX / 2, &good)).await.unwrap();
    wait_dropped(&hub, "status of another version").await;

    // A stale sequence id: older than the agent's last status.
    link.publish_status(&status(&id, 1, 1, &good)).await.unwrap();
    wait_dropped(&hub, "stale sequence id").await;

    // 10 MB of data.
    let big = ManifestBundleStatus {
        conditions: vec![json!({"type": "Applied", "pad": "x".repeat(10 * 1024 * 1024)})],
        ..Default::default()
    };
    link.publish_status(&status(&id, 1, u64::MAX / 2, &big)).await.unwrap();
    wait_dropped(&hub, "too large").await;

    // A consumer the hub does not know.
    let stranger = raw_link(&source, "nobody").await;
    stranger.publish_status(&status(&id, 1, u64::MAX / 2, &good)).await.unwrap();
    wait_dropped(&hub, "unknown consumer").await;

    // None of that changed the status, and the hub still records a good one.
    let shown = hub.get(&path).await;
    assert_eq!(shown.body["status"]["ContentStatus"], json!({"readyReplicas": 1}));
    link.publish_status(&status(&id, 1, u64::MAX / 2, &good)).await.unwrap();
    hub.wait_for(&path, "the good status", |r| r.body["status"]["ContentStatus"] == json!({"readyReplicas": 7})).await;
    assert_eq!(hub.get("/healthz").await.status, 200);
    stranger.close().await;
    link.close().await;
    agent.stop().await;
    hub.stop().await;
}

/// A sequence id that claims the wall-clock time `ms_from_now` away (agents use milliseconds
/// since the epoch `<< 22`).
fn sequence_at(ms_from_now: i64) -> u64 {
    let ms = chrono::Utc::now().timestamp_millis() + ms_from_now;
    u64::try_from(ms).expect("after the epoch") << 22
}

fn ready(shown: &maestro_tests::Reply) -> serde_json::Value {
    shown.body["status"]["ContentStatus"]["readyReplicas"].clone()
}

/// Ordering data comes from agents: a forged sequence id, a clock that ran ahead, or a status
/// without one must not stop later statuses or the delete of the bundle.
async fn ordering_data_cannot_freeze_a_bundle(backend: Backend) {
    let source = unique_source();
    let hub = TestHub::start_with_transport(backend, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "c1").await;
    // No agent but this link, so every status the hub holds is one sent here.
    let link = raw_link(&source, "c1").await;
    let id = create_resource(&hub, "c1", "web").await;
    let path = format!("/api/maestro/v1/resources/{id}");

    // The largest id there is, then one 40 s ahead of the clock: the first is bounded by the
    // hub's clock, so the second is still newer.
    link.publish_status(&status(&id, 1, u64::MAX, &applied_status(1))).await.unwrap();
    hub.wait_for(&path, "the forged status", |r| ready(r) == 1).await;
    link.publish_status(&status(&id, 1, sequence_at(40_000), &applied_status(2))).await.unwrap();
    hub.wait_for(&path, "a status after the forged one", |r| ready(r) == 2).await;

    // A new version starts a new order: its first status counts though the clock is back to now.
    let current = hub.get(&path).await;
    let manifest = current.body["manifest"].clone();
    assert_eq!(hub.put(&path, &json!({"version": 1, "manifest": manifest})).await.status, 200);
    link.publish_status(&status(&id, 2, sequence_at(0), &applied_status(3))).await.unwrap();
    hub.wait_for(&path, "the first status of version 2", |r| ready(r) == 3).await;

    // A status without a sequence id never replaces one that has it.
    let mut unordered = wire::status_event("c1-work-agent", &status(&id, 2, 0, &applied_status(4)));
    unordered.remove_extension("sequenceid");
    link.send(unordered).await.unwrap();
    wait_dropped(&hub, "stale sequence id").await;
    assert_eq!(ready(&hub.get(&path).await), 3);

    // The objects are gone: the bundle is purged whatever the sequence id says.
    assert_eq!(hub.delete(&path).await.status, 204);
    let deleted = maestro_tests::agent::deleted_status();
    link.publish_status(&status(&id, 2, 1, &deleted)).await.unwrap();
    hub.wait_for(&path, "the purge", |r| r.status == 404).await;
    assert_eq!(hub.delete("/api/maestro/v1/consumers/c1").await.status, 204, "nothing holds the consumer");
    link.close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_data_cannot_freeze_a_bundle_on_sqlite() {
    ordering_data_cannot_freeze_a_bundle(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_data_cannot_freeze_a_bundle_on_postgres() {
    ordering_data_cannot_freeze_a_bundle(Backend::Postgres).await;
}

/// One 23-byte request made the hub re-send every bundle of the consumer: a flood of them is
/// answered at most once per consumer per second, the rest coalesced and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_resync_requests_is_coalesced() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "c1").await;
    let mut link = raw_link(&source, "c1").await;
    let ids = [create_resource(&hub, "c1", "a").await, create_resource(&hub, "c1", "b").await];
    let everything = wire::ResourceVersionList { resource_versions: Vec::new() };
    for _ in 0..200 {
        link.request_resync(&everything).await.unwrap();
    }
    let coalesced = r#"maestro_transport_resyncs_total{kind="spec_coalesced"}"#;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while hub.metric(coalesced).await < 150.0 {
        assert!(tokio::time::Instant::now() < deadline, "requests were not coalesced");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Whatever is still to be answered is answered within a gap or two; then count.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut specs: std::collections::HashMap<String, usize> = Default::default();
    while let Ok(Some(Ok(event))) = tokio::time::timeout(std::time::Duration::from_millis(500), link.next()).await {
        if let maestro_wire::wire::WorkEvent::Spec(spec) = event {
            *specs.entry(spec.context.resource_id.clone()).or_default() += 1;
        }
    }
    let answered = hub.metric(r#"maestro_transport_resyncs_total{kind="spec_answered"}"#).await;
    assert!((1.0..=15.0).contains(&answered), "{answered} answers to 200 requests");
    for id in &ids {
        // Two creates (the outbox's, then at least one answer), never one per request.
        let count = specs.get(id).copied().unwrap_or(0);
        assert!((2..=16).contains(&count), "{count} spec events for {id}: {specs:?}");
    }
    // Every request was either answered or merged into one that was.
    assert_eq!(hub.metric(coalesced).await + answered, 200.0);
    link.close().await;
    hub.stop().await;
}
