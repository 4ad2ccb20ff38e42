//! `maestro bench transport`: how fast the outbox reaches the broker, and how long a create
//! takes until its agent's status is recorded, through a real MQTT broker (Mosquitto on
//! 127.0.0.1:1883 by default); and, in the same run, the broker's own QoS 1 throughput for the
//! same payload size, the ceiling any hub on it can reach.
//!
//! A benchmark, not a test: it prints figures, and fails only when something was lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::mpsc;

use maestro_hub::HubConfig;
use maestro_hub::transport::metrics::TransportMetrics;
use maestro_hub::transport::{Transport, TransportConfig};
use maestro_model::BundleContent;
use maestro_store::{DbOptions, NewBundle, Store, redact_url};
use maestro_wire::agent_link::AgentLink;
use maestro_wire::mqtt::{MqttConfig, MqttLink, Received};
use maestro_wire::wire::{self, ManifestBundleStatus, StatusReport, WorkEvent};

const TARGET_DISPATCH_PER_SEC: f64 = 2000.0;
const TARGET_P99_MS: f64 = 100.0;

#[derive(Debug, Clone, clap::Args)]
pub struct TransportBenchArgs {
    /// The broker, as agents and hubs would use it.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    #[command(flatten)]
    pub postgres: crate::ScratchPostgres,
    /// Bundles queued in the outbox, then dispatched and timed.
    #[arg(long, default_value_t = 10_000)]
    pub dispatch_events: usize,
    /// Messages of the raw broker comparison.
    #[arg(long, default_value_t = 20_000)]
    pub raw_messages: usize,
    /// Size of each manifest as compact JSON.
    #[arg(long, default_value_t = 3000)]
    pub payload_bytes: usize,
    /// Creates per second of the latency phase.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Length of the latency phase.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
}

pub async fn run(args: TransportBenchArgs) -> anyhow::Result<()> {
    if args.dispatch_events == 0 || args.raw_messages == 0 || args.rate == 0 {
        bail!("--dispatch-events, --raw-messages and --rate must be at least 1");
    }
    maestro_net::install_crypto_provider();
    let manifest = crate::padded_manifest("bench", args.payload_bytes);
    println!(
        "maestro bench transport: broker {}, manifest {} bytes, {} dispatch events, {} creates/s for {:?}",
        args.mqtt_url,
        serde_json::to_vec(&manifest)?.len(),
        args.dispatch_events,
        args.rate,
        args.duration
    );
    let spec_bytes = spec_event_bytes(&manifest);
    let raw = raw_broker_rate(&args, spec_bytes).await?;
    println!("\nbroker alone: QoS 1, {spec_bytes}-byte messages, one publisher, one subscriber: {raw:.0} msg/s");

    let admin_url = &args.postgres.postgres_url;
    crate::with_scratch_postgres(admin_url, Duration::from_secs(30), async |url: String| {
        phases(&args, &url, &manifest, raw).await
    })
    .await
}

async fn phases(args: &TransportBenchArgs, url: &str, manifest: &Value, raw: f64) -> anyhow::Result<()> {
    let dispatch = dispatch_rate(args, url, manifest).await?;
    println!(
        "outbox -> broker: {} events in {:.2} s = {:.0} events/s ({:.0}% of the broker alone) [target >= {TARGET_DISPATCH_PER_SEC:.0}: {}]",
        args.dispatch_events,
        dispatch.as_secs_f64(),
        args.dispatch_events as f64 / dispatch.as_secs_f64(),
        100.0 * args.dispatch_events as f64 / dispatch.as_secs_f64() / raw,
        verdict(args.dispatch_events as f64 / dispatch.as_secs_f64() >= TARGET_DISPATCH_PER_SEC)
    );
    let latencies = create_to_status(args, url, manifest).await?;
    let p = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "create -> status recorded, {} creates at {}/s: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms [target p99 <= {TARGET_P99_MS:.0} ms: {}]",
        latencies.len(),
        args.rate,
        ms(p(0.50)),
        ms(p(0.90)),
        ms(p(0.99)),
        ms(p(1.0)),
        verdict(ms(p(0.99)) <= TARGET_P99_MS)
    );
    Ok(())
}

fn verdict(pass: bool) -> &'static str {
    if pass { "met" } else { "NOT met" }
}

/// The size of the MQTT payload the hub publishes for one bundle of this manifest.
fn spec_event_bytes(manifest: &Value) -> usize {
    let bundle = wire::ManifestBundle { manifests: vec![manifest.clone()], ..Default::default() };
    serde_json::to_vec(&bundle).map(|b| b.len()).unwrap_or(0)
}

fn mqtt(url: &str, role: &str) -> MqttConfig {
    MqttConfig::new(url, format!("bench-{role}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]))
}

/// One publisher with up to 1,000 unacknowledged messages, one subscriber; until the
/// subscriber has every message.
async fn raw_broker_rate(args: &TransportBenchArgs, bytes: usize) -> anyhow::Result<f64> {
    let topic = format!("maestro-bench/{}/raw", uuid::Uuid::new_v4().simple());
    let (tx, mut rx) = mpsc::channel::<Received>(4096);
    let subscriber = MqttLink::start(&mqtt(&args.mqtt_url, "sub"), vec![topic.clone()], tx)?;
    let (unused, _rx) = mpsc::channel(1);
    let publisher = MqttLink::start(&mqtt(&args.mqtt_url, "pub"), vec![], unused)?;
    subscriber.connected(Duration::from_secs(10)).await.context("connecting to the broker")?;
    publisher.connected(Duration::from_secs(10)).await.context("connecting to the broker")?;
    let payload = vec![b'x'; bytes];
    let count = args.raw_messages;
    let started = Instant::now();
    let receiving = tokio::spawn(async move {
        let mut got = 0;
        while got < count {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(_)) => got += 1,
                _ => break,
            }
        }
        got
    });
    let mut window = std::collections::VecDeque::new();
    for _ in 0..count {
        let message = wire::MqttMessage { payload: payload.clone(), ..Default::default() };
        window.push_back(publisher.publish(&topic, message).await?);
        if window.len() >= 1000
            && let Some(ack) = window.pop_front()
        {
            ack.wait(Duration::from_secs(30)).await?;
        }
    }
    for ack in window {
        ack.wait(Duration::from_secs(30)).await?;
    }
    let got = receiving.await?;
    let elapsed = started.elapsed();
    subscriber.close().await;
    publisher.close().await;
    if got < count {
        bail!("the broker delivered {got} of {count} messages");
    }
    Ok(count as f64 / elapsed.as_secs_f64())
}

async fn open_store(url: &str) -> anyhow::Result<Arc<Store>> {
    let store = Store::connect(url, DbOptions { max_connections: 16, timeout: Duration::from_secs(30) })
        .await
        .with_context(|| format!("database {}", redact_url(url)))?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

/// Queues N bundles, then starts a transport and times until a subscriber has all N events
/// and the outbox is empty.
async fn dispatch_rate(args: &TransportBenchArgs, url: &str, manifest: &Value) -> anyhow::Result<Duration> {
    let store = open_store(url).await?;
    store.create_consumer(&uuid::Uuid::new_v4().to_string(), "bench-dispatch", &Default::default()).await?;
    let content = BundleContent { manifests: vec![manifest.clone()], ..Default::default() };
    let seeding = futures::stream::iter(0..args.dispatch_events).map(|n| {
        let store = store.clone();
        let content = content.clone();
        async move {
            let id = uuid::Uuid::new_v4().to_string();
            let new = NewBundle { name: format!("b-{n}"), id, consumer_name: "bench-dispatch".into(), content };
            store.create_bundle(&new).await
        }
    });
    let results: Vec<_> = seeding.buffer_unordered(16).collect().await;
    if let Some(err) = results.into_iter().find_map(Result::err) {
        bail!("seeding the outbox: {err}");
    }
    let source = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (tx, mut rx) = mpsc::channel::<Received>(4096);
    let agent = MqttLink::start(
        &mqtt(&args.mqtt_url, "agent"),
        vec![wire::source_events_topic(&source, "bench-dispatch")],
        tx,
    )?;
    agent.connected(Duration::from_secs(10)).await?;
    let config =
        TransportConfig { mqtt: Some(MqttConfig::new(args.mqtt_url.clone(), "")), source, ..Default::default() };
    let started = Instant::now();
    let transport = Transport::start(&config, store.clone(), TransportMetrics::default(), Default::default()).await?;
    let mut got = 0;
    while got < args.dispatch_events {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(_)) => got += 1,
            _ => bail!("only {got} of {} events arrived", args.dispatch_events),
        }
    }
    let mut drained = store.outbox_stats().await?.depth == 0;
    while !drained {
        tokio::time::sleep(Duration::from_millis(5)).await;
        drained = store.outbox_stats().await?.depth == 0;
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the outbox did not drain");
        }
    }
    let elapsed = started.elapsed();
    transport.shutdown().await;
    agent.close().await;
    store.close().await;
    Ok(elapsed)
}

/// An agent that answers every spec with a status at once.
fn answering_agent(mut link: AgentLink) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let status = ManifestBundleStatus {
            conditions: vec![json!({"type": "Applied", "status": "True"})],
            ..Default::default()
        };
        while let Some(event) = link.next().await {
            let Ok(WorkEvent::Spec(spec)) = event else { continue };
            let report = StatusReport {
                resource_id: &spec.context.resource_id,
                resource_version: spec.context.resource_version,
                cluster_name: link.consumer(),
                original_source: "maestro",
                sequence_id: link.next_sequence_id(),
                status: &status,
            };
            let _ = link.publish_status(&report).await;
        }
    })
}

/// Creates at a steady rate through the REST API of a hub with transport; each latency is from
/// sending the POST until the status is in the database (watched by polling every 2 ms).
async fn create_to_status(args: &TransportBenchArgs, url: &str, manifest: &Value) -> anyhow::Result<Vec<Duration>> {
    let source = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let config = HubConfig {
        bind: "127.0.0.1:0".parse()?,
        database_url: url.to_string(),
        db: DbOptions { max_connections: 16, timeout: Duration::from_secs(30) },
        limits: Default::default(),
        auth: Default::default(),
        plugins: None,
    };
    let transport = TransportConfig {
        mqtt: Some(MqttConfig::new(args.mqtt_url.clone(), "")),
        source: source.clone(),
        ..Default::default()
    };
    let hub = maestro_hub::start_with_transport(config, Some(transport)).await?;
    if let Some(t) = hub.transport() {
        t.connected(Duration::from_secs(10)).await?;
    }
    let client = reqwest::Client::builder().tcp_nodelay(true).timeout(Duration::from_secs(30)).build()?;
    let base = format!("{}{}", hub.url(), maestro_hub::api::BASE_PATH);
    let reply = client.post(format!("{base}/consumers")).json(&json!({"name": "bench-latency"})).send().await?;
    if reply.status() != 201 {
        bail!("creating the consumer: {}", reply.status());
    }
    let link = AgentLink::connect(mqtt(&args.mqtt_url, "latency-agent"), &source, "bench-latency")?;
    link.connected(Duration::from_secs(10)).await?;
    let agent = answering_agent(link);

    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let total = (args.rate as f64 * args.duration.as_secs_f64()).round() as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let creating = {
        let client = client.clone();
        let manifest = manifest.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            let mut handles = Vec::new();
            for n in 0..total {
                ticker.tick().await;
                let client = client.clone();
                let sent_tx = sent_tx.clone();
                let mut manifest = manifest.clone();
                manifest["metadata"]["name"] = json!(format!("lat-{n}"));
                let url = format!("{base}/resources");
                handles.push(tokio::spawn(async move {
                    let started = Instant::now();
                    let body = json!({"consumer_name": "bench-latency", "manifest": manifest});
                    let reply = client.post(url).json(&body).send().await.ok()?;
                    let body: Value = reply.json().await.ok()?;
                    let _ = sent_tx.send((body["id"].as_str()?.to_string(), started));
                    Some(())
                }));
            }
            futures::future::join_all(handles).await.into_iter().filter(|r| matches!(r, Ok(Some(())))).count()
        })
    };
    let mut db = sqlx::PgConnection::connect(url).await?;
    let mut pending: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(total);
    let deadline = Instant::now() + args.duration + Duration::from_secs(60);
    while latencies.len() < total && Instant::now() < deadline {
        while let Ok((id, started)) = sent_rx.try_recv() {
            pending.insert(id, started);
        }
        if !pending.is_empty() {
            let ids: Vec<&str> = pending.keys().map(String::as_str).collect();
            let done: Vec<String> =
                sqlx::query_scalar("SELECT id FROM resource_bundles WHERE id = ANY($1) AND status IS NOT NULL")
                    .bind(&ids)
                    .fetch_all(&mut db)
                    .await?;
            let now = Instant::now();
            for id in done {
                if let Some(started) = pending.remove(&id) {
                    latencies.push(now - started);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let created = creating.await?;
    agent.abort();
    hub.shutdown().await?;
    if latencies.len() < total || created < total {
        bail!("{} creates answered, {} statuses recorded, of {total}", created, latencies.len());
    }
    latencies.sort();
    Ok(latencies)
}
