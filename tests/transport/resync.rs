//! Nothing accepted is lost when an agent or the broker goes away, or when statuses are lost:
//! agents resync on (re)connect, the hub asks for statuses when it (re)connects.

use std::time::Duration;

use maestro_hub::transport::TransportConfig;
use maestro_tests::agent::{Applied, TestAgent, applied_status};
use maestro_tests::{Backend, MOSQUITTO, PrivateMosquitto, TestHub, deployment, transport_on, unique_source};
use maestro_wire::wire::EventAction;
use serde_json::json;
use sqlx::Connection;

use crate::delivery::{consumer, create_resource};

fn observed(reply: &maestro_tests::Reply) -> serde_json::Value {
    reply.body["status"]["ReconcileStatus"]["ObservedVersion"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_was_away_gets_everything_on_connect() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "c1").await;
    let a = create_resource(&hub, "c1", "a").await;
    let b = create_resource(&hub, "c1", "b").await;
    let gone = create_resource(&hub, "c1", "gone").await;
    assert_eq!(hub.delete(&format!("/api/maestro/v1/resources/{gone}")).await.status, 204);
    // Published to nobody: the outbox drains, and only resync can bring these to the agent.
    wait_outbox_empty(&hub).await;

    let agent = TestAgent::start(MOSQUITTO, &source, "c1").await;
    let held = agent
        .wait_for("every resource", |s| {
            s.applied.contains_key(&a) && s.applied.contains_key(&b) && s.applied.get(&gone).is_some_and(|g| g.deleted)
        })
        .await;
    assert!(held.spec_events.contains(&(gone.clone(), 1, EventAction::Delete)));
    hub.wait_for(&format!("/api/maestro/v1/resources/{a}"), "a's status", |r| observed(r) == json!(1)).await;
    hub.wait_for(&format!("/api/maestro/v1/resources/{gone}"), "the purge", |r| r.status == 404).await;
    assert!(hub.metric("maestro_transport_resyncs_total{kind=\"spec_answered\"}").await >= 1.0);
    agent.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_gets_only_what_changed_and_drops_what_the_hub_forgot() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Postgres, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "c1").await;
    let agent = TestAgent::start(MOSQUITTO, &source, "c1").await;
    let a = create_resource(&hub, "c1", "a").await;
    let b = create_resource(&hub, "c1", "b").await;
    agent.wait_for("a and b", |s| s.applied.contains_key(&a) && s.applied.contains_key(&b)).await;
    let mut held = agent.stop().await;

    let mut manifest = deployment("a");
    manifest["spec"]["replicas"] = json!(5);
    let path_a = format!("/api/maestro/v1/resources/{a}");
    assert_eq!(hub.put(&path_a, &json!({"version": 1, "manifest": manifest})).await.status, 200);
    let c = create_resource(&hub, "c1", "c").await;
    wait_outbox_empty(&hub).await;
    // The agent also holds something the hub never had (or purged long ago).
    let ghost = "00000000-0000-0000-0000-00000000abcd".to_string();
    held.applied.insert(
        ghost.clone(),
        Applied { version: 4, bundle: Default::default(), deleted: false, status: applied_status(1) },
    );
    held.spec_events.clear();

    let agent = TestAgent::start_with_state(MOSQUITTO, &source, "c1", held).await;
    let seen = agent
        .wait_for("a v2, c and the ghost's delete", |s| {
            s.applied.get(&a).is_some_and(|x| x.version == 2)
                && s.applied.contains_key(&c)
                && s.applied.get(&ghost).is_some_and(|g| g.deleted)
        })
        .await;
    assert_eq!(seen.applied[&a].bundle.manifests[0]["spec"]["replicas"], 5);
    assert!(
        !seen.spec_events.iter().any(|(id, _, _)| id == &b),
        "b did not change, so the resync must not resend it: {:?}",
        seen.spec_events
    );
    hub.wait_for(&path_a, "a's status at version 2", |r| observed(r) == json!(2)).await;
    agent.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_starts_asks_agents_for_the_statuses_it_lacks() {
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Postgres, transport_on(MOSQUITTO, &source)).await;
    consumer(&hub, "c1").await;
    let agent = TestAgent::start(MOSQUITTO, &source, "c1").await;
    let a = create_resource(&hub, "c1", "a").await;
    let path = format!("/api/maestro/v1/resources/{a}");
    hub.wait_for(&path, "a's status", |r| observed(r) == json!(1)).await;

    // The status is lost (as if the agent sent it while no hub listened).
    let mut db = sqlx::PgConnection::connect(&hub.database_url).await.expect("connect");
    sqlx::query("UPDATE resource_bundles SET status = NULL WHERE id = $1").bind(&a).execute(&mut db).await.unwrap();
    assert_eq!(hub.get(&path).await.body["status"], json!({}));

    // A second hub on the same database starts, asks for statuses, and gets a's back.
    let config = maestro_hub::HubConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: hub.database_url.clone(),
        db: Default::default(),
        limits: Default::default(),
        auth: Default::default(),
        plugins: None,
    };
    let second = maestro_hub::start_with_transport(config, Some(transport_on(MOSQUITTO, &source))).await.unwrap();
    agent.wait_for("the new hub's status resync request", |s| s.status_resyncs >= 1).await;
    hub.wait_for(&path, "a's status again", |r| observed(r) == json!(1)).await;
    second.shutdown().await.unwrap();
    agent.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_accepted_is_lost_when_the_broker_disappears() {
    let mut broker = PrivateMosquitto::start_open().await;
    let url = broker.url();
    let source = unique_source();
    let hub = TestHub::start_with_transport(Backend::Postgres, transport_on(&url, &source)).await;
    consumer(&hub, "c1").await;
    let agent = TestAgent::start(&url, &source, "c1").await;
    let first = create_resource(&hub, "c1", "first").await;
    agent.wait_for("first", |s| s.applied.contains_key(&first)).await;

    broker.kill();
    let mut connection = hub.hub.transport().unwrap().state();
    tokio::time::timeout(Duration::from_secs(30), connection.wait_for(|s| !s.connected))
        .await
        .expect("the hub notices the broker is gone")
        .unwrap();
    // Accepted while the broker is away.
    let second = create_resource(&hub, "c1", "second").await;
    assert_eq!(hub.delete(&format!("/api/maestro/v1/resources/{first}")).await.status, 204);
    assert!(hub.metric("maestro_transport_broker_connected").await == 0.0);

    broker.restart().await;
    agent
        .wait_for("second and the delete of first", |s| {
            s.applied.contains_key(&second) && s.applied.get(&first).is_some_and(|f| f.deleted)
        })
        .await;
    hub.wait_for(&format!("/api/maestro/v1/resources/{second}"), "second's status", |r| observed(r) == json!(1)).await;
    hub.wait_for(&format!("/api/maestro/v1/resources/{first}"), "first purged", |r| r.status == 404).await;
    wait_outbox_empty(&hub).await;
    assert!(hub.metric("maestro_transport_broker_connects_total").await >= 2.0);
    agent.stop().await;
    hub.stop().await;
}

/// Answers lost on their way to the hub (to a member of the hubs' group that drops them, say)
/// are asked for again once unconfirmed for `confirm_after`: a status, and a delete's `Deleted`.
async fn unconfirmed_changes_are_asked_for_again(backend: Backend) {
    let source = unique_source();
    let transport = TransportConfig { confirm_after: Duration::from_secs(1), ..transport_on(MOSQUITTO, &source) };
    let hub = TestHub::start_with_transport(backend, transport).await;
    consumer(&hub, "c1").await;
    let agent = TestAgent::start(MOSQUITTO, &source, "c1").await;
    let kept = create_resource(&hub, "c1", "kept").await;
    let gone = create_resource(&hub, "c1", "gone").await;
    let path = |id: &str| format!("/api/maestro/v1/resources/{id}");
    for id in [&kept, &gone] {
        hub.wait_for(&path(id), "the first status", |r| observed(r) == json!(1)).await;
    }

    // A minute ago: kept's status never arrived, and gone was marked deleting with its
    // `Deleted` lost (here: no delete was even sent).
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let lose_status = "UPDATE resource_bundles SET status = NULL, updated_at = $1 WHERE id = $2";
    execute(&hub, lose_status, past, &kept).await;
    execute(&hub, "UPDATE resource_bundles SET deleted_at = $1, updated_at = $1 WHERE id = $2", past, &gone).await;
    assert_eq!(hub.get(&path(&kept)).await.body["status"], json!({}));

    hub.wait_for(&path(&kept), "kept's status asked for again", |r| observed(r) == json!(1)).await;
    hub.wait_for(&path(&gone), "gone's delete sent again and confirmed", |r| r.status == 404).await;
    agent.wait_for("the delete", |s| s.applied.get(&gone).is_some_and(|g| g.deleted)).await;
    assert!(hub.metric("maestro_transport_resyncs_total{kind=\"confirm_requested\"}").await >= 1.0);
    agent.stop().await;
    hub.stop().await;
}

async fn execute(hub: &TestHub, sql: &'static str, at: chrono::DateTime<chrono::Utc>, id: &str) {
    match hub.backend {
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(&hub.database_url).await.expect("connect");
            sqlx::query(sql).bind(at).bind(id).execute(&mut db).await.expect("update");
        }
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(&hub.database_url).await.expect("connect");
            sqlx::query(sql).bind(at).bind(id).execute(&mut db).await.expect("update");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_changes_are_asked_for_again_on_sqlite() {
    unconfirmed_changes_are_asked_for_again(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfirmed_changes_are_asked_for_again_on_postgres() {
    unconfirmed_changes_are_asked_for_again(Backend::Postgres).await;
}

pub async fn wait_outbox_empty(hub: &TestHub) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !hub.store().outbox_after(0, 10).await.expect("outbox").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "outbox never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
