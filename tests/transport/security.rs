//! The broker configuration in deploy/mosquitto confines each agent to its own consumer's
//! topics, with passwords; and hub and agents connect over TLS with client certificates.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use maestro_hub::transport::TransportConfig;
use maestro_tests::agent::{AgentState, TestAgent};
use maestro_tests::{Backend, PrivateMosquitto, TestHub, unique_source};
use maestro_wire::mqtt::{MqttConfig, MqttError, MqttLink};
use maestro_wire::wire::{self, ManifestBundleStatus, StatusReport};
use tokio::sync::mpsc;

use crate::delivery::{consumer, create_resource};

fn acl_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mosquitto/acl")
}

fn passwords(dir: &Path, users: &[&str]) -> std::path::PathBuf {
    let file = dir.join("passwd");
    for (n, user) in users.iter().enumerate() {
        let mut command = Command::new("mosquitto_passwd");
        if n == 0 {
            command.arg("-c");
        }
        let status = command.arg("-b").arg(&file).arg(user).arg(format!("pw-{user}")).status();
        assert!(status.is_ok_and(|s| s.success()), "mosquitto_passwd (package mosquitto) makes the password file");
    }
    file
}

/// A Mosquitto with passwords for `users` and deploy/mosquitto's ACL (the directory holds the
/// password file: keep it as long as the broker).
async fn deploy_acl_broker(users: &[&str]) -> (tempfile::TempDir, PrivateMosquitto) {
    let dir = tempfile::tempdir().unwrap();
    let passwd = passwords(dir.path(), users);
    let broker = PrivateMosquitto::start(&format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}",
        passwd.display(),
        acl_file().display()
    ))
    .await;
    (dir, broker)
}

/// A status of c2's bundle `id`, as if c2's agent sent it.
fn forged_status(id: &str) -> wire::MqttMessage {
    let status = ManifestBundleStatus::default();
    let report = StatusReport {
        resource_id: id,
        resource_version: 1,
        cluster_name: "c2",
        original_source: "maestro",
        sequence_id: u64::MAX / 2,
        status: &status,
    };
    wire::encode(&wire::status_event("c2-work-agent", &report))
}

fn login(url: &str, user: &str) -> MqttConfig {
    MqttConfig { username: Some(user.into()), password: Some(format!("pw-{user}")), ..MqttConfig::new(url, "") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_can_neither_read_nor_write_another_consumers_topics() {
    let (_dir, broker) = deploy_acl_broker(&["maestro-hub", "c1", "c2"]).await;
    let url = broker.url();
    let source = unique_source();
    let transport =
        TransportConfig { mqtt: Some(login(&url, "maestro-hub")), source: source.clone(), ..Default::default() };
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport).await;
    consumer(&hub, "c1").await;
    consumer(&hub, "c2").await;
    let c1 = TestAgent::start_with_config(login(&url, "c1"), &source, "c1", AgentState::default()).await;
    let c2 = TestAgent::start_with_config(login(&url, "c2"), &source, "c2", AgentState::default()).await;

    // Logged in as c1, subscribed to c2's topic and to its own.
    let (tx, mut snooped) = mpsc::channel(64);
    let intruder = MqttLink::start(
        &MqttConfig { client_id: "intruder".into(), ..login(&url, "c1") },
        vec![wire::source_events_topic(&source, "c2"), wire::source_events_topic(&source, "c1")],
        tx,
    )
    .unwrap();
    intruder.connected(Duration::from_secs(30)).await.unwrap();

    let for_c2 = create_resource(&hub, "c2", "secret").await;
    c2.wait_for("its own resource", |s| s.applied.contains_key(&for_c2)).await;
    let for_c1 = create_resource(&hub, "c1", "mine").await;
    c1.wait_for("its own resource", |s| s.applied.contains_key(&for_c1)).await;
    // The broker delivers one publisher's messages to a subscriber in order: had c2's event
    // been readable, it would have come before c1's.
    let first = tokio::time::timeout(Duration::from_secs(30), snooped.recv()).await.unwrap().unwrap();
    assert_eq!(first.topic, wire::source_events_topic(&source, "c1"), "c1 read another consumer's topic");
    while let Ok(more) = snooped.try_recv() {
        assert_ne!(more.topic, wire::source_events_topic(&source, "c2"));
    }

    // Writing a status as c2 is refused.
    let forged = forged_status(&for_c2);
    let ack = intruder.publish(&wire::agent_events_topic(&source, "c2"), forged).await.unwrap();
    match ack.wait(Duration::from_secs(30)).await {
        Err(MqttError::Refused(reason)) => assert!(reason.contains("NotAuthorized"), "{reason}"),
        other => panic!("a forged status must be refused, got {other:?}"),
    }
    intruder.close().await;
    c1.stop().await;
    c2.stop().await;
    hub.stop().await;
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl").args(args).current_dir(dir).stderr(std::process::Stdio::null()).status();
    assert!(status.is_ok_and(|s| s.success()), "openssl {args:?}");
}

/// A CA, a server certificate for 127.0.0.1 and client certificates, all signed by the CA.
fn certificates(dir: &Path, clients: &[&str]) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=maestro-test-ca",
        ],
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ext) in std::iter::once(("server", "server.ext")).chain(clients.iter().map(|c| (*c, "client.ext"))) {
        let (key, csr, crt) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"));
        openssl(
            dir,
            &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                ext,
            ],
        );
    }
    // Mosquitto started as root drops to its own user before it reads the TLS files.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::set_permissions(entry.unwrap().path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

fn tls(port: u16, dir: &Path, client: &str) -> MqttConfig {
    MqttConfig {
        ca_file: Some(dir.join("ca.crt")),
        cert_file: Some(dir.join(format!("{client}.crt"))),
        key_file: Some(dir.join(format!("{client}.key"))),
        ..MqttConfig::new(format!("mqtts://127.0.0.1:{port}"), "")
    }
}

/// An ACL file checks deliveries, not subscriptions: any client allowed to connect can join the
/// hubs' shared-subscription group if it can name it, take its share of agent events, and have
/// the broker refuse to deliver them; half of every consumer's statuses would vanish. With the
/// group a secret (deploy/hub reads it from its Secret), or no sharing at all for a single hub,
/// an agent that joins the well-known group takes nothing from the hub. With `confirm_after`,
/// the hub asks again for what its agents have not confirmed.
async fn statuses_reach_the_hub_past_an_agent_in_the_default_share_group(group: &str, confirm_after: Duration) {
    let (_dir, broker) = deploy_acl_broker(&["maestro-hub", "c1", "c2"]).await;
    let url = broker.url();
    let source = unique_source();
    let transport = TransportConfig {
        mqtt: Some(login(&url, "maestro-hub")),
        source: source.clone(),
        share_group: group.into(),
        confirm_after,
        ..Default::default()
    };
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport).await;
    consumer(&hub, "c1").await;
    let agent = TestAgent::start_with_config(login(&url, "c1"), &source, "c1", AgentState::default()).await;

    // Another consumer's agent joins the group every hub ships with by default.
    let (tx, _stolen) = mpsc::channel(64);
    let shared =
        format!("$share/{}/{}", maestro_hub::transport::DEFAULT_SHARE_GROUP, wire::all_agent_events_filter(&source));
    let intruder =
        MqttLink::start(&MqttConfig { client_id: "intruder".into(), ..login(&url, "c2") }, vec![shared], tx).unwrap();
    intruder.connected(Duration::from_secs(30)).await.unwrap();

    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(create_resource(&hub, "c1", &format!("web-{n}")).await);
    }
    for id in &ids {
        let path = format!("/api/maestro/v1/resources/{id}");
        hub.wait_for(&path, "its status", |r| r.body["status"]["ReconcileStatus"]["ObservedVersion"] == 1).await;
    }
    // The agent's `Deleted` confirmations go the same way.
    for id in &ids {
        assert_eq!(hub.delete(&format!("/api/maestro/v1/resources/{id}")).await.status, 204);
    }
    for id in &ids {
        let path = format!("/api/maestro/v1/resources/{id}");
        hub.wait_for(&path, "the purge after the agent's Deleted", |r| r.status == 404).await;
    }
    intruder.close().await;
    agent.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_share_group_keeps_an_agent_from_taking_statuses() {
    statuses_reach_the_hub_past_an_agent_in_the_default_share_group("hubs-5f0c1e9a7b", Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_hub_without_sharing_keeps_an_agent_from_taking_statuses() {
    statuses_reach_the_hub_past_an_agent_in_the_default_share_group("", Duration::ZERO).await;
}

/// The group leaked anyway: the intruder is in the hubs' own group and drops its share. The hub
/// asks again for every status and `Deleted` not confirmed within `confirm_after` (here 2 s),
/// so nothing stays lost past a few asks (confirm.rs documents the window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_taken_by_an_agent_in_the_hubs_own_group_are_asked_for_again() {
    let group = maestro_hub::transport::DEFAULT_SHARE_GROUP;
    statuses_reach_the_hub_past_an_agent_in_the_default_share_group(group, Duration::from_secs(2)).await;
}

/// The embedded broker with users (`--mqtt-broker-users`, or API authentication on): no login,
/// no connection; and each agent reaches only its own consumer's topics, as deploy/mosquitto's
/// ACL has it. A refused subscribe or publish closes the client's connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_requires_a_login_and_keeps_each_agent_to_its_own_topics() {
    let users = [("c1", "pw-c1"), ("c2", "pw-c2")].map(|(u, p)| (u.to_string(), p.to_string())).into();
    let source = unique_source();
    let transport = TransportConfig { source: source.clone(), embedded_users: Some(users), ..Default::default() };
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport).await;
    let url = hub.hub.broker_url().expect("embedded broker").to_string();
    consumer(&hub, "c1").await;
    consumer(&hub, "c2").await;

    for (name, config) in [
        ("anonymous", MqttConfig::new(&url, "anonymous")),
        ("wrong password", MqttConfig { password: Some("guess".into()), ..login(&url, "c1") }),
    ] {
        let (tx, _rx) = mpsc::channel(1);
        let link =
            MqttLink::start(&MqttConfig { client_id: format!("try-{}", name.len()), ..config }, vec![], tx).unwrap();
        assert!(link.connected(Duration::from_secs(3)).await.is_err(), "{name} connected");
        link.close().await;
    }

    let c1 = TestAgent::start_with_config(login(&url, "c1"), &source, "c1", AgentState::default()).await;
    let c2 = TestAgent::start_with_config(login(&url, "c2"), &source, "c2", AgentState::default()).await;
    let for_c1 = create_resource(&hub, "c1", "mine").await;
    c1.wait_for("its own resource", |s| s.applied.contains_key(&for_c1)).await;
    let path = format!("/api/maestro/v1/resources/{for_c1}");
    hub.wait_for(&path, "c1's status", |r| r.body["status"]["ReconcileStatus"]["ObservedVersion"] == 1).await;

    // Logged in as c1, reading c2's topic: the broker closes the connection at the SUBSCRIBE.
    let (tx, mut snooped) = mpsc::channel(64);
    let snoop = MqttConfig { client_id: "snoop".into(), ..login(&url, "c1") };
    let snooper = MqttLink::start(&snoop, vec![wire::source_events_topic(&source, "c2")], tx).unwrap();
    let for_c2 = create_resource(&hub, "c2", "secret").await;
    c2.wait_for("its own resource", |s| s.applied.contains_key(&for_c2)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(snooped.try_recv().is_err(), "c1 read c2's spec");
    snooper.close().await;

    // Writing a status as c2 (for c2's bundle) is refused, and the hub records nothing.
    let (tx, _rx) = mpsc::channel(1);
    let forger = MqttLink::start(&MqttConfig { client_id: "forger".into(), ..login(&url, "c1") }, vec![], tx).unwrap();
    forger.connected(Duration::from_secs(30)).await.unwrap();
    let path = format!("/api/maestro/v1/resources/{for_c2}");
    hub.wait_for(&path, "c2's own status", |r| r.body["status"]["ReconcileStatus"]["ObservedVersion"] == 1).await;
    let before = hub.get(&path).await.body["status"].clone();
    let forged = forged_status(&for_c2);
    let sent = match forger.publish(&wire::agent_events_topic(&source, "c2"), forged).await {
        Ok(ack) => ack.wait(Duration::from_secs(5)).await,
        Err(err) => Err(err),
    };
    assert!(sent.is_err(), "a forged status must be refused");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hub.get(&path).await.body["status"], before, "the hub recorded a forged status");
    forger.close().await;
    c1.stop().await;
    c2.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_and_agent_talk_over_tls_with_client_certificates() {
    maestro_net::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path(), &["hub", "c1"]);
    let d = dir.path().display();
    let broker = PrivateMosquitto::start(&format!(
        "allow_anonymous true\ncafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\nrequire_certificate true"
    ))
    .await;
    // Without a client certificate the broker refuses the connection.
    let (tx, _rx) = mpsc::channel(1);
    let no_cert = MqttConfig {
        cert_file: None,
        key_file: None,
        client_id: "no-cert".into(),
        ..tls(broker.port, dir.path(), "c1")
    };
    let refused = MqttLink::start(&no_cert, vec![], tx).unwrap();
    assert!(refused.connected(Duration::from_secs(3)).await.is_err(), "connected without a client certificate");
    refused.close().await;

    let source = unique_source();
    let transport = TransportConfig {
        mqtt: Some(tls(broker.port, dir.path(), "hub")),
        source: source.clone(),
        ..Default::default()
    };
    let hub = TestHub::start_with_transport(Backend::Sqlite, transport).await;
    consumer(&hub, "c1").await;
    let agent =
        TestAgent::start_with_config(tls(broker.port, dir.path(), "c1"), &source, "c1", AgentState::default()).await;
    let id = create_resource(&hub, "c1", "web").await;
    agent.wait_for("the resource over TLS", |s| s.applied.contains_key(&id)).await;
    hub.wait_for(&format!("/api/maestro/v1/resources/{id}"), "its status over TLS", |r| {
        r.body["status"]["ReconcileStatus"]["ObservedVersion"] == 1
    })
    .await;
    agent.stop().await;
    hub.stop().await;
}
