//! Several `maestro server` processes on one PostgreSQL database and one broker (the shared
//! Mosquitto on 127.0.0.1:1883) share the work; when one is killed, the others finish it.
//! Also: the embedded broker's start-up refusal names the flag to change.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maestro_wire::agent_link::AgentLink;
use maestro_wire::mqtt::MqttConfig;
use maestro_wire::wire::{ManifestBundleStatus, StatusReport, WorkEvent};
use serde_json::json;
use sqlx::Connection;

const MOSQUITTO: &str = "mqtt://127.0.0.1:1883";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn admin_url() -> String {
    std::env::var("MAESTRO_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_string())
}

/// A fresh database named like the harness's (`maestro_t_<pid>_...`), so a crashed run's is
/// swept by the next suite.
async fn fresh_database() -> (String, String) {
    let admin = admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL on 127.0.0.1:5432");
    let name = format!("maestro_t_{}_hubs_{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await.unwrap();
    let (server, _) = admin.rsplit_once('/').unwrap();
    (format!("{server}/{name}"), name)
}

async fn drop_database(name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
            .execute(&mut conn)
            .await;
    }
}

struct Hub {
    child: Child,
    url: String,
}

fn start_hub(database_url: &str, source: &str, data_dir: &std::path::Path) -> Hub {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["server", "--bind", &format!("127.0.0.1:{port}"), "--database-url", database_url])
        .args(["--mqtt-url", MOSQUITTO, "--source", source, "--status-resync-interval", "2s"])
        .env("MAESTRO_DATA_DIR", data_dir)
        .env_remove("MAESTRO_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn maestro server");
    Hub { child, url: format!("http://127.0.0.1:{port}") }
}

async fn wait_ready(client: &reqwest::Client, hub: &Hub) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{}/readyz", hub.url)).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "hub {} never became ready", hub.url);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the agent received: per resource, the version of every spec event.
type Seen = Arc<Mutex<HashMap<String, Vec<i64>>>>;

/// An agent that answers each spec at once with an Applied status, and re-sends the statuses a
/// hub lacks when asked (a status in flight to a killed hub is recovered that way).
fn run_agent(mut link: AgentLink, seen: Seen) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let status = ManifestBundleStatus {
            conditions: vec![json!({"type": "Applied", "status": "True"})],
            ..Default::default()
        };
        let hash = maestro_wire::wire::status_hash(&status);
        let mut held: HashMap<String, i64> = HashMap::new();
        while let Some(event) = link.next().await {
            let to_report: Vec<(String, i64)> = match event {
                Ok(WorkEvent::Spec(spec)) => {
                    let (id, version) = (spec.context.resource_id, spec.context.resource_version);
                    seen.lock().unwrap().entry(id.clone()).or_default().push(version);
                    held.insert(id.clone(), version);
                    // Duplicates are answered too: the hub drops a status it already has.
                    vec![(id, version)]
                }
                Ok(WorkEvent::StatusResync { hashes, .. }) => {
                    let known: HashSet<(String, String)> =
                        hashes.status_hashes.into_iter().map(|h| (h.resource_id, h.status_hash)).collect();
                    held.iter()
                        .filter(|(id, _)| !known.contains(&((*id).clone(), hash.clone())))
                        .map(|(id, v)| (id.clone(), *v))
                        .collect()
                }
                _ => continue,
            };
            for (id, version) in to_report {
                let report = StatusReport {
                    resource_id: &id,
                    resource_version: version,
                    cluster_name: link.consumer(),
                    original_source: "maestro",
                    sequence_id: link.next_sequence_id(),
                    status: &status,
                };
                let _ = link.publish_status(&report).await;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_share_the_work_and_the_survivor_finishes_what_a_killed_one_left() {
    maestro_net::install_crypto_provider();
    let (database_url, database) = fresh_database().await;
    let source = format!("t-{}-hubs-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..6]);
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();

    let mut first = start_hub(&database_url, &source, dir.path());
    wait_ready(&client, &first).await;
    let second = start_hub(&database_url, &source, dir.path());
    wait_ready(&client, &second).await;

    let reply =
        client.post(format!("{}/api/maestro/v1/consumers", first.url)).json(&json!({"name": "c1"})).send().await;
    assert_eq!(reply.unwrap().status(), 201);
    let link = AgentLink::connect(MqttConfig::new(MOSQUITTO, format!("agent-{source}")), &source, "c1").unwrap();
    link.connected(Duration::from_secs(30)).await.unwrap();
    link.request_resync(&Default::default()).await.unwrap();
    let seen: Seen = Arc::default();
    let agent = run_agent(link, seen.clone());

    // Creates go to both hubs; the first is killed half-way, with work in flight.
    let total = 120;
    let mut created = HashSet::new();
    for n in 0..total {
        let hub = if n % 2 == 0 && n < total / 2 { &first } else { &second };
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("cm-{n}"), "namespace": "default"}});
        let body = json!({"consumer_name": "c1", "manifest": manifest});
        if let Ok(reply) = client.post(format!("{}/api/maestro/v1/resources", hub.url)).json(&body).send().await
            && reply.status() == 201
        {
            let body: serde_json::Value = reply.json().await.unwrap();
            created.insert(body["id"].as_str().unwrap().to_string());
        }
        if n == total / 2 {
            first.child.kill().expect("kill the first hub");
            let _ = first.child.wait();
        }
    }
    assert!(created.len() >= total - 1, "creates answered 201: {}", created.len());

    // Final state: every stored bundle reached the agent, the outbox is empty, and every
    // status is recorded, by the survivor alone.
    let mut db = sqlx::PgConnection::connect(&database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT id, CAST(status AS TEXT) FROM resource_bundles").fetch_all(&mut db).await.unwrap();
        let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(&mut db).await.unwrap();
        let received: HashSet<String> = seen.lock().unwrap().keys().cloned().collect();
        let stored_ids: HashSet<String> = stored.iter().map(|(id, _)| id.clone()).collect();
        let without_status = stored.iter().filter(|(_, s)| s.is_none()).count();
        if outbox == 0 && received == stored_ids && without_status == 0 {
            assert!(created.is_subset(&stored_ids), "every create answered 201 is stored");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not finished: outbox {outbox}, stored {}, received {}, without status {without_status}",
            stored_ids.len(),
            received.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = seen.lock().unwrap().clone();
    let duplicates: usize = seen.values().map(|v| v.len() - 1).sum();
    assert!(seen.values().all(|versions| versions.iter().all(|v| *v == 1)), "only version 1 exists");
    eprintln!(
        "{} resources, each delivered at least once; {duplicates} duplicate deliveries (dropped as stale by agents)",
        seen.len()
    );

    agent.abort();
    let mut second = second;
    let _ = second.child.kill();
    let _ = second.child.wait();
    drop_database(&database).await;
}

#[test]
fn the_embedded_broker_refuses_a_taken_port_and_names_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args([
            "server",
            "--bind",
            &format!("127.0.0.1:{}", free_port()),
            "--mqtt-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("MAESTRO_DATA_DIR", dir.path())
        .env_remove("MAESTRO_CONFIG")
        .env_remove("MAESTRO_MQTT_URL")
        .output()
        .expect("run maestro server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--mqtt-listen") && stderr.contains(&port.to_string()), "{stderr}");
}
