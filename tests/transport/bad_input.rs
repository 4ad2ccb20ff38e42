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
