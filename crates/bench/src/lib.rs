//! `maestro bench`: measures a hub the way users meet it, through its REST API, on a fresh
//! PostgreSQL database and a fresh SQLite file.
//!
//! Three figures matter: how fast resources can be created (and at what latency), how that
//! compares with what the same PostgreSQL does for plain single-row inserts of the same payload
//! (the ceiling any hub on that database can reach), and how long listing a large fleet's worth
//! of bundles takes. Each phase gets its own database so one phase's rows never skew another's.
//!
//! This is a benchmark, not a test: it prints figures, and fails only when the hub answered
//! wrongly (a create that was not 201, a list that lost or repeated bundles).

pub mod agent;
pub mod plugins;
pub mod transport;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::types::Json;

use maestro_hub::api::auth::AuthConfig;
use maestro_hub::api::{BASE_PATH, Limits};
use maestro_hub::{HubConfig, RunningHub};
use maestro_model::BundleContent;
use maestro_store::{DbOptions, NewBundle, Store, redact_url};

/// The established Maestro's published figures, printed beside ours for scale.
const ESTABLISHED_CREATES_PER_SEC: f64 = 54.0;
const ESTABLISHED_LIST_6000_MS: f64 = 28_000.0;
/// Targets: hub creates at least this share of raw inserts, and 6,000 bundles listed within this.
const TARGET_RATIO: f64 = 0.5;
const TARGET_LIST_MS: f64 = 300.0;
const TARGET_LIST_BUNDLES: usize = 6000;
/// The largest page the hub allows by default; listing uses it to need the fewest requests.
const LIST_PAGE_SIZE: usize = 1000;
/// Annotation values are padded in pieces of this size, like ordinary annotations rather than one huge one.
const PAD_CHUNK: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatabaseChoice {
    Postgres,
    Sqlite,
    Both,
}

/// `--postgres-url`: the server every bench that needs PostgreSQL makes its scratch databases on.
#[derive(Debug, Clone, clap::Args)]
pub struct ScratchPostgres {
    /// A PostgreSQL server the bench may create and drop scratch databases on
    /// (`maestro_bench_<pid>_<random>`); the database in the URL is only used to connect.
    #[arg(
        long,
        env = "MAESTRO_BENCH_POSTGRES_URL",
        default_value = "postgres://root@127.0.0.1:5432/test",
        hide_env_values = true
    )]
    pub postgres_url: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Which database(s) to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub database: DatabaseChoice,
    #[command(flatten)]
    pub postgres: ScratchPostgres,
    /// Resources to create through POST /resources.
    #[arg(long, default_value_t = 5000)]
    pub creates: usize,
    /// Concurrent client tasks creating resources (and seeding bundles).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Bundles to seed and then list in full through GET /resource-bundles.
    #[arg(long, default_value_t = 6000)]
    pub list_bundles: usize,
    /// Size of each manifest as compact JSON, reached by padding its annotations.
    #[arg(long, default_value_t = 3000)]
    pub payload_bytes: usize,
    /// Consumers the resources are spread over.
    #[arg(long, default_value_t = 10)]
    pub consumers: usize,
    /// Connections inserting concurrently in the raw PostgreSQL comparison.
    #[arg(long, default_value_t = 8)]
    pub raw_connections: usize,
    /// How long the raw PostgreSQL comparison inserts; seconds rather than rows, because a
    /// second's worth of inserts is too short to give a steady rate.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub raw_duration: Duration,
    /// Times the full list is repeated; min and median are reported.
    #[arg(long, default_value_t = 5)]
    pub list_repeats: usize,
    /// Hub database pool size [default: --concurrency for PostgreSQL, 1 for SQLite, which has a
    /// single writer].
    #[arg(long)]
    pub pool_size: Option<u32>,
    /// Bound on each HTTP request and database call of the bench, and on the hub's database calls.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub what: Option<BenchTarget>,
}

/// Benchmarks other than the hub's REST API.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchTarget {
    /// Plugin calls per extension point against native Rust, reload time, memory per plugin.
    Plugins(crate::plugins::PluginBenchArgs),
    /// Outbox-to-broker dispatch rate and create-to-status latency through an MQTT broker,
    /// beside the broker's own QoS 1 throughput.
    Transport(crate::transport::TransportBenchArgs),
    /// The agent: apply throughput, create-to-Available latency and memory.
    Agent(crate::agent::AgentBenchArgs),
}

impl BenchArgs {
    /// Refuses settings that would measure nothing or divide by zero, before any database is made.
    fn check(&self) -> anyhow::Result<()> {
        let positive = [
            ("--creates", self.creates),
            ("--concurrency", self.concurrency),
            ("--list-bundles", self.list_bundles),
            ("--consumers", self.consumers),
            ("--raw-connections", self.raw_connections),
            ("--list-repeats", self.list_repeats),
        ];
        if let Some((flag, _)) = positive.iter().find(|(_, value)| *value == 0) {
            bail!("{flag} must be at least 1");
        }
        if self.pool_size == Some(0) {
            bail!("--pool-size must be at least 1");
        }
        if self.timeout.is_zero() || self.raw_duration.is_zero() {
            bail!("--timeout and --raw-duration must be more than zero");
        }
        Ok(())
    }

    /// Pool size for a database: one connection per client task on PostgreSQL, so no request
    /// waits for a connection; one on SQLite, whose writers serialize anyway and otherwise spin
    /// in its busy handler.
    fn pool_for(&self, kind: DbKind) -> u32 {
        self.pool_size.unwrap_or(match kind {
            DbKind::Postgres => u32::try_from(self.concurrency).unwrap_or(u32::MAX).min(64),
            DbKind::Sqlite => 1,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbKind {
    Postgres,
    Sqlite,
}

impl DbKind {
    fn label(self) -> &'static str {
        match self {
            DbKind::Postgres => "PostgreSQL",
            DbKind::Sqlite => "SQLite",
        }
    }
}

/// What one database's run measured.
struct DbReport {
    kind: DbKind,
    pool: u32,
    creates: CreateReport,
    raw: Option<RawReport>,
    list: ListReport,
}

/// Runs the benchmark on the chosen databases and prints the figures and a summary.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what.clone() {
        Some(BenchTarget::Plugins(plugins)) => return crate::plugins::run(plugins).await,
        Some(BenchTarget::Transport(transport)) => return interruptible(crate::transport::run(transport)).await,
        Some(BenchTarget::Agent(agent)) => return crate::agent::run(agent).await,
        None => {}
    }
    args.check()?;
    let client = http_client(&args)?;
    let kinds: &[DbKind] = match args.database {
        DatabaseChoice::Postgres => &[DbKind::Postgres],
        DatabaseChoice::Sqlite => &[DbKind::Sqlite],
        DatabaseChoice::Both => &[DbKind::Postgres, DbKind::Sqlite],
    };
    print_setup(&args);
    let mut reports = Vec::new();
    for &kind in kinds {
        println!("\n== {} (pool {}) ==", kind.label(), args.pool_for(kind));
        let report = interruptible(bench_database(&args, &client, kind)).await?;
        reports.push(report);
    }
    print_summary(&args, &reports);
    check_correctness(&args, &reports)
}

/// Stops at Ctrl-C with an error, so the callers' cleanup (dropping scratch databases) runs.
async fn interruptible<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

/// One keep-alive HTTP/1.1 client for all requests, with a connection per client task, so the
/// figures show the hub and not connection set-up.
fn http_client(args: &BenchArgs) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(args.concurrency)
        .tcp_nodelay(true)
        .connect_timeout(args.timeout)
        .timeout(args.timeout)
        .build()
        .context("building the HTTP client")
}

fn print_setup(args: &BenchArgs) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "maestro bench {}: {} creates by {} tasks, raw inserts by {} connections for {:?}, {} bundles listed {} times, \
         manifests of {} bytes, {} consumers, {} cores",
        env!("CARGO_PKG_VERSION"),
        args.creates,
        args.concurrency,
        args.raw_connections,
        args.raw_duration,
        args.list_bundles,
        args.list_repeats,
        args.payload_bytes,
        args.consumers,
        cores
    );
}

/// All phases on one database: creates (then the raw comparison on PostgreSQL) on one fresh
/// database, listing on another.
async fn bench_database(args: &BenchArgs, client: &reqwest::Client, kind: DbKind) -> anyhow::Result<DbReport> {
    let pool = args.pool_for(kind);
    let (creates, raw) = with_scratch_database(args, kind, async |url: String| {
        let creates =
            with_hub(&url, pool, args.timeout, async |hub: &RunningHub| create_phase(args, client, hub).await).await?;
        let raw = match kind {
            DbKind::Postgres => Some(raw_insert_phase(args, &url).await?),
            DbKind::Sqlite => None,
        };
        Ok((creates, raw))
    })
    .await?;
    if let Some(raw) = &raw {
        println!(
            "raw PostgreSQL: {} single-row INSERTs by {} connections in {:.2} s = {:.0} rows/s; hub/raw = {:.0}%",
            raw.rows,
            raw.connections,
            raw.elapsed.as_secs_f64(),
            raw.rate(),
            100.0 * creates.rate() / raw.rate()
        );
    }
    let list = with_scratch_database(args, kind, async |url: String| {
        with_hub(&url, pool, args.timeout, async |hub: &RunningHub| list_phase(args, client, hub).await).await
    })
    .await?;
    Ok(DbReport { kind, pool, creates, raw, list })
}

// ---------------------------------------------------------------------------------------------
// Scratch databases and hubs
// ---------------------------------------------------------------------------------------------

/// A name no other run picks: the process id tells whose it is, the random part keeps phases apart.
fn scratch_name() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("maestro_bench_{}_{}", std::process::id(), &random[..12])
}

/// Runs `work` on a fresh database and removes it afterwards, whether `work` succeeded or not.
async fn with_scratch_database<T>(
    args: &BenchArgs,
    kind: DbKind,
    work: impl AsyncFnOnce(String) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match kind {
        DbKind::Postgres => with_scratch_postgres(&args.postgres.postgres_url, args.timeout, work).await,
        DbKind::Sqlite => {
            let name = scratch_name();
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let url = format!("sqlite://{}", dir.join("maestro.db").display());
            let result = work(url).await;
            let removed = std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()));
            finish(result, removed)
        }
    }
}

/// Runs `work` on a fresh database of the PostgreSQL server at `admin_url` and drops it
/// afterwards, whether `work` succeeded or not. Each statement is bounded by `limit`.
pub(crate) async fn with_scratch_postgres<T>(
    admin_url: &str,
    limit: Duration,
    work: impl AsyncFnOnce(String) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let name = scratch_name();
    let url = with_database(admin_url, &name)?;
    admin_sql(admin_url, &format!("CREATE DATABASE {name}"), limit).await?;
    let result = work(url).await;
    // FORCE ends connections a failed phase may have left, so the drop cannot be refused.
    let dropped = admin_sql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), limit).await;
    finish(result, dropped.with_context(|| format!("dropping scratch database {name}")))
}

/// The work's own error wins over a cleanup error, which is then only reported.
fn finish<T>(result: anyhow::Result<T>, cleanup: anyhow::Result<()>) -> anyhow::Result<T> {
    match (result, cleanup) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(err)) => Err(err),
        (Err(err), Ok(())) => Err(err),
        (Err(err), Err(cleanup)) => {
            eprintln!("also failed to clean up: {cleanup:#}");
            Err(err)
        }
    }
}

/// Runs one statement on its own connection to the admin URL: CREATE and DROP DATABASE cannot
/// run inside the scratch database itself, nor in a transaction.
async fn admin_sql(admin_url: &str, sql: &str, limit: Duration) -> anyhow::Result<()> {
    let work = async {
        let mut conn = PgConnection::connect(admin_url).await?;
        // The statement is built only from constants and a name made by `scratch_name`.
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await?;
        conn.close().await
    };
    bounded(limit, work).await.with_context(|| format!("{sql} through {}", redact_url(admin_url)))
}

/// Points a PostgreSQL URL at another database, keeping user, host and query parameters.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (scheme, rest) =
        url.split_once("://").context("--postgres-url must look like postgres://user@host:port/database")?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // The path starts at the first '/' after the credentials, which may themselves hold '/'.
    let host_start = before_query.rfind('@').map_or(0, |at| at + 1);
    let authority_end = before_query[host_start..].find('/').map_or(before_query.len(), |slash| host_start + slash);
    let authority = &before_query[..authority_end];
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// Starts an in-process hub on `url` for `work`, and always shuts it down afterwards, so its
/// pool is closed before the database is dropped.
async fn with_hub<T>(
    url: &str,
    pool: u32,
    limit: Duration,
    work: impl AsyncFnOnce(&RunningHub) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let config = HubConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: url.to_string(),
        db: DbOptions { max_connections: pool, timeout: limit },
        limits: Limits { request_timeout: limit, ..Limits::default() },
        auth: AuthConfig::default(),
        plugins: None,
    };
    let hub = bounded(limit, maestro_hub::start(config))
        .await
        .with_context(|| format!("starting a hub on {}", redact_url(url)))?;
    let result = work(&hub).await;
    let stopped = bounded(limit, hub.shutdown()).await.context("stopping the hub");
    finish(result, stopped)
}

/// Bounds a fallible future in time, turning both its error and the timeout into one error.
async fn bounded<T, E>(limit: Duration, work: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, work).await {
        Ok(result) => Ok(result?),
        Err(_) => bail!("no answer within {limit:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

/// A Deployment like the ones Maestro ships, padded with annotations to exactly `target` bytes
/// of compact JSON (or left as is when it is already larger). The name has a fixed width, so
/// every manifest of a run has the same size.
pub(crate) fn padded_manifest(name: &str, target: usize) -> Value {
    let mut manifest = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "bench", "app.kubernetes.io/name": "bench", "app.kubernetes.io/part-of": "maestro-bench"},
            "annotations": {},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "web", "image": "quay.io/nginx/nginx-unprivileged:1.27", "ports": [{"containerPort": 8080}]}]},
            },
        },
    });
    // Annotations start as `{}`; the rest of the manifest does not change while they grow.
    let others = json_len(&manifest).saturating_sub(2);
    if let Some(Value::Object(annotations)) = manifest.pointer_mut("/metadata/annotations") {
        pad_annotations(annotations, target.saturating_sub(others));
    }
    manifest
}

/// Fills `annotations` (starting empty) with `bench.maestro.io/pad-N` entries until the object
/// takes `target` bytes as compact JSON. Values are ASCII, so each character adds one byte.
fn pad_annotations(annotations: &mut Map<String, Value>, target: usize) {
    let mut index = 0;
    loop {
        let len = json_len(&Value::Object(annotations.clone()));
        if len >= target {
            return;
        }
        let key = format!("bench.maestro.io/pad-{index}");
        annotations.insert(key.clone(), Value::String(String::new()));
        let with_key = json_len(&Value::Object(annotations.clone()));
        if with_key > target {
            // No room for another entry: lengthen the last one instead, if there is one.
            annotations.remove(&key);
            if let Some((_, Value::String(last))) = annotations.iter_mut().next_back() {
                last.push_str(&"x".repeat(target - len));
            }
            return;
        }
        let fill = (target - with_key).min(PAD_CHUNK);
        annotations.insert(key, Value::String("x".repeat(fill)));
        index += 1;
    }
}

/// Bytes of compact JSON, as the hub measures manifests and as they travel.
fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}

/// The consumer names of a run; resources and bundles go to them in turn.
fn consumer_names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("bench-consumer-{i:03}")).collect()
}

/// Every create request body, built before the clock starts so the client's own JSON work is
/// not measured as the hub's.
fn create_bodies(args: &BenchArgs, consumers: &[String]) -> anyhow::Result<Vec<Bytes>> {
    let template = padded_manifest("bench-000000", args.payload_bytes);
    (0..args.creates)
        .map(|i| {
            let mut manifest = template.clone();
            if let Some(name) = manifest.pointer_mut("/metadata/name") {
                *name = Value::String(format!("bench-{i:06}"));
            }
            let consumer = &consumers[i % consumers.len()];
            let body = serde_json::to_vec(&json!({"consumer_name": consumer, "manifest": manifest}))?;
            Ok(Bytes::from(body))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Creates
// ---------------------------------------------------------------------------------------------

/// What the create phase measured. Latencies are sorted.
struct CreateReport {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    body_bytes: usize,
    failures: Failures,
}

impl CreateReport {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Answers other than 201, by status, with the first few bodies to show what went wrong.
#[derive(Default)]
struct Failures {
    by_status: BTreeMap<String, usize>,
    samples: Vec<String>,
}

impl Failures {
    const SAMPLES: usize = 3;

    fn record(&mut self, status: String, detail: String) {
        *self.by_status.entry(status).or_default() += 1;
        if self.samples.len() < Self::SAMPLES {
            self.samples.push(detail.chars().take(400).collect());
        }
    }

    fn merge(&mut self, other: Failures) {
        for (status, count) in other.by_status {
            *self.by_status.entry(status).or_default() += count;
        }
        for sample in other.samples {
            if self.samples.len() < Self::SAMPLES {
                self.samples.push(sample);
            }
        }
    }

    fn total(&self) -> usize {
        self.by_status.values().sum()
    }
}

/// Creates the consumers, then times `--creates` resource creates by `--concurrency` tasks.
async fn create_phase(args: &BenchArgs, client: &reqwest::Client, hub: &RunningHub) -> anyhow::Result<CreateReport> {
    let consumers = consumer_names(args.consumers);
    create_consumers(client, &hub.url(), &consumers).await?;
    let bodies = create_bodies(args, &consumers)?;
    let body_bytes = bodies.first().map_or(0, Bytes::len);
    let report =
        timed_creates(client, &format!("{}{BASE_PATH}/resources", hub.url()), bodies, args.concurrency, body_bytes)
            .await?;
    print_creates(&report);
    Ok(report)
}

async fn create_consumers(client: &reqwest::Client, base: &str, names: &[String]) -> anyhow::Result<()> {
    let url = format!("{base}{BASE_PATH}/consumers");
    for name in names {
        let response = client.post(&url).json(&json!({"name": name})).send().await.context("creating a consumer")?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let body = response.text().await.unwrap_or_default();
            bail!("creating consumer {name}: {status}: {body}");
        }
    }
    Ok(())
}

/// Sends every body with `concurrency` tasks pulling from one queue, so a slow request holds up
/// only its own task. The wall time spans the first send to the last answer read.
async fn timed_creates(
    client: &reqwest::Client,
    url: &str,
    bodies: Vec<Bytes>,
    concurrency: usize,
    body_bytes: usize,
) -> anyhow::Result<CreateReport> {
    let requests = bodies.len();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, bodies, next) = (client.clone(), url.to_string(), bodies.clone(), next.clone());
        tasks.spawn(async move { create_worker(&client, &url, &bodies, &next).await });
    }
    let mut latencies = Vec::with_capacity(requests);
    let mut failures = Failures::default();
    while let Some(joined) = tasks.join_next().await {
        let (mine, failed) = joined.context("a create task panicked")?;
        latencies.extend(mine);
        failures.merge(failed);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(CreateReport { requests, elapsed, latencies, body_bytes, failures })
}

/// One client task: takes the next body until none are left, timing each request until its
/// answer is read in full.
async fn create_worker(
    client: &reqwest::Client,
    url: &str,
    bodies: &[Bytes],
    next: &AtomicUsize,
) -> (Vec<Duration>, Failures) {
    let mut latencies = Vec::new();
    let mut failures = Failures::default();
    while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
        let sent = Instant::now();
        let answer =
            client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone()).send().await;
        match answer {
            Ok(response) => {
                let status = response.status();
                let text = response.bytes().await;
                latencies.push(sent.elapsed());
                match text {
                    Ok(_) if status == reqwest::StatusCode::CREATED => {}
                    Ok(bytes) => failures.record(status.to_string(), String::from_utf8_lossy(&bytes).into_owned()),
                    Err(err) => failures.record("body unreadable".into(), err.to_string()),
                }
            }
            Err(err) => {
                latencies.push(sent.elapsed());
                failures.record("no answer".into(), format!("{err:#}"));
            }
        }
    }
    (latencies, failures)
}

/// The smallest sample with at least `p` percent of samples at or below it (nearest rank), so
/// every percentile reported is a latency that was actually seen.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or_else(|| "-".to_string(), |d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
}

fn print_creates(report: &CreateReport) {
    println!(
        "creates: {} in {:.2} s = {:.0} creates/s; latency p50 {}, p90 {}, p99 {}, max {}; request body {} bytes",
        report.requests,
        report.elapsed.as_secs_f64(),
        report.rate(),
        millis(percentile(&report.latencies, 50.0)),
        millis(percentile(&report.latencies, 90.0)),
        millis(percentile(&report.latencies, 99.0)),
        millis(report.latencies.last().copied()),
        report.body_bytes
    );
    if report.failures.total() > 0 {
        println!("FAILED creates: {} not 201: {:?}", report.failures.total(), report.failures.by_status);
        for sample in &report.failures.samples {
            println!("  e.g. {sample}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw PostgreSQL inserts
// ---------------------------------------------------------------------------------------------

struct RawReport {
    rows: usize,
    connections: usize,
    elapsed: Duration,
}

impl RawReport {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// What the same PostgreSQL does with the same payload and no hub: single-row autocommit
/// INSERTs into a table with only a primary key, from `--raw-connections` connections, for
/// `--raw-duration`.
async fn raw_insert_phase(args: &BenchArgs, url: &str) -> anyhow::Result<RawReport> {
    let connections = args.raw_connections;
    let pool = bounded(
        args.timeout,
        PgPoolOptions::new()
            .max_connections(u32::try_from(connections).unwrap_or(u32::MAX))
            .acquire_timeout(args.timeout)
            .connect(url),
    )
    .await
    .context("connecting for the raw insert comparison")?;
    let setup = sqlx::query("CREATE TABLE raw_inserts (id TEXT PRIMARY KEY, payload JSONB)").execute(&pool);
    bounded(args.timeout, setup).await.context("creating the raw insert table")?;
    let payload = Arc::new(padded_manifest("bench-000000", args.payload_bytes));
    // Open every connection before the clock starts, as the hub's pool is warm by then too.
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        held.push(bounded(args.timeout, pool.acquire()).await.context("opening a raw insert connection")?);
    }
    let inserted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + args.raw_duration;
    let mut tasks = tokio::task::JoinSet::new();
    for conn in held {
        let (payload, inserted, limit) = (payload.clone(), inserted.clone(), args.timeout);
        tasks.spawn(async move { raw_insert_worker(conn, &payload, &inserted, deadline, limit).await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a raw insert task panicked")??;
    }
    let elapsed = started.elapsed();
    // Closing only tidies up; a server slow to say goodbye must not hold the benchmark.
    let _ = tokio::time::timeout(args.timeout, pool.close()).await;
    Ok(RawReport { rows: inserted.load(Ordering::Relaxed), connections, elapsed })
}

/// Inserts rows on its own connection until the deadline, counting those the database took.
async fn raw_insert_worker(
    mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    payload: &Value,
    inserted: &AtomicUsize,
    deadline: Instant,
    limit: Duration,
) -> anyhow::Result<()> {
    while Instant::now() < deadline {
        let id = uuid::Uuid::new_v4().to_string();
        let insert = sqlx::query("INSERT INTO raw_inserts (id, payload) VALUES ($1, $2)")
            .bind(id)
            .bind(Json(payload))
            .execute(&mut *conn);
        bounded(limit, insert).await.context("raw insert")?;
        inserted.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------

/// What the list phase measured: per repetition, the time in HTTP (requests sent and bodies
/// read in full) and the time including the client decoding the pages.
struct ListReport {
    bundles: usize,
    pages: usize,
    bytes: usize,
    http: Vec<Duration>,
    with_decode: Vec<Duration>,
    seed: Duration,
    problems: Vec<String>,
}

/// The parts of a list page the bench checks; the rest of each item is skipped.
#[derive(Deserialize)]
struct ListPage {
    total: usize,
    items: Vec<ListItem>,
}

#[derive(Deserialize)]
struct ListItem {
    id: String,
}

/// Seeds `--list-bundles` bundles through the hub's store, then lists them all `--list-repeats` times.
async fn list_phase(args: &BenchArgs, client: &reqwest::Client, hub: &RunningHub) -> anyhow::Result<ListReport> {
    let consumers = consumer_names(args.consumers);
    create_consumers(client, &hub.url(), &consumers).await?;
    let started = Instant::now();
    seed_bundles(args, &hub.store, &consumers).await?;
    let seed = started.elapsed();
    println!("seeded {} bundles through the store in {:.2} s", args.list_bundles, seed.as_secs_f64());
    let mut report = ListReport {
        bundles: args.list_bundles,
        pages: 0,
        bytes: 0,
        http: vec![],
        with_decode: vec![],
        seed,
        problems: vec![],
    };
    for round in 1..=args.list_repeats {
        let run = list_all(client, &hub.url(), args.list_bundles).await?;
        println!(
            "list {round}: {} bundles in {} pages, {:.1} MB: {:.0} ms in HTTP, {:.0} ms with decoding",
            run.ids.len(),
            run.pages,
            run.bytes as f64 / 1e6,
            run.http.as_secs_f64() * 1000.0,
            run.with_decode.as_secs_f64() * 1000.0
        );
        report
            .problems
            .extend(list_problems(&run, args.list_bundles).into_iter().map(|p| format!("list {round}: {p}")));
        (report.pages, report.bytes) = (run.pages, run.bytes);
        report.http.push(run.http);
        report.with_decode.push(run.with_decode);
    }
    report.http.sort_unstable();
    report.with_decode.sort_unstable();
    Ok(report)
}

/// Writes the same rows the API's create does, `--concurrency` at a time; seeding is not
/// what is measured, so it takes the shortest way.
async fn seed_bundles(args: &BenchArgs, store: &Arc<Store>, consumers: &[String]) -> anyhow::Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let template = padded_manifest("list-000000", args.payload_bytes);
    futures::stream::iter(0..args.list_bundles)
        .map(|i| {
            let mut manifest = template.clone();
            if let Some(name) = manifest.pointer_mut("/metadata/name") {
                *name = Value::String(format!("list-{i:06}"));
            }
            let id = uuid::Uuid::new_v4().to_string();
            let new = NewBundle {
                name: id.clone(),
                id,
                consumer_name: consumers[i % consumers.len()].clone(),
                content: BundleContent { manifests: vec![manifest], ..BundleContent::default() },
            };
            async move { bounded(args.timeout, store.create_bundle(&new)).await.context("seeding a bundle") }
        })
        .buffer_unordered(args.concurrency)
        .try_for_each(|_| async { Ok(()) })
        .await
}

struct ListRun {
    pages: usize,
    bytes: usize,
    totals: Vec<usize>,
    ids: Vec<String>,
    http: Duration,
    with_decode: Duration,
}

/// Lists every bundle with the largest page, one page after another as a client must (the
/// next request depends on whether the last page was full). `expected` only bounds the pages
/// followed, so a hub that never ends its list cannot keep the bench going.
async fn list_all(client: &reqwest::Client, base: &str, expected: usize) -> anyhow::Result<ListRun> {
    let url = format!("{base}{BASE_PATH}/resource-bundles");
    let mut run =
        ListRun { pages: 0, bytes: 0, totals: vec![], ids: vec![], http: Duration::ZERO, with_decode: Duration::ZERO };
    let started = Instant::now();
    let max_pages = expected / LIST_PAGE_SIZE + 2;
    for page in 1..=max_pages {
        let sent = Instant::now();
        let response = client
            .get(&url)
            .query(&[("page", page), ("size", LIST_PAGE_SIZE)])
            .send()
            .await
            .context("listing bundles")?;
        let status = response.status();
        let body = response.bytes().await.context("reading a list page")?;
        run.http += sent.elapsed();
        if status != reqwest::StatusCode::OK {
            bail!("listing page {page}: {status}: {}", String::from_utf8_lossy(&body));
        }
        let parsed: ListPage =
            serde_json::from_slice(&body).with_context(|| format!("list page {page} is not a bundle list"))?;
        run.pages += 1;
        run.bytes += body.len();
        run.totals.push(parsed.total);
        let count = parsed.items.len();
        run.ids.extend(parsed.items.into_iter().map(|item| item.id));
        if count < LIST_PAGE_SIZE || run.ids.len() >= parsed.total {
            break;
        }
    }
    run.with_decode = started.elapsed();
    Ok(run)
}

/// Whatever makes a full list wrong: a lost or repeated bundle, or a `total` that disagrees.
fn list_problems(run: &ListRun, expected: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if run.ids.len() != expected {
        problems.push(format!("listed {} bundles, expected {expected}", run.ids.len()));
    }
    let distinct: HashSet<&String> = run.ids.iter().collect();
    if distinct.len() != run.ids.len() {
        problems.push(format!("{} bundles listed more than once", run.ids.len() - distinct.len()));
    }
    if let Some(total) = run.totals.iter().find(|total| **total != expected) {
        problems.push(format!("a page said total {total}, expected {expected}"));
    }
    problems
}

/// The middle element of sorted samples (the upper one of an even count).
fn median(sorted: &[Duration]) -> Option<Duration> {
    sorted.get(sorted.len() / 2).copied()
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

fn print_summary(args: &BenchArgs, reports: &[DbReport]) {
    println!("\n== summary ==");
    println!(
        "{:<11} {:>5} {:>10} {:>9} {:>9} {:>9} {:>12} {:>7} {:>12} {:>12} {:>15}",
        "database",
        "pool",
        "creates/s",
        "p50",
        "p90",
        "p99",
        "raw rows/s",
        "ratio",
        "list min",
        "list median",
        "min w/ decode"
    );
    for r in reports {
        let c = &r.creates;
        let ratio = r.raw.as_ref().map(|raw| c.rate() / raw.rate());
        let ms = |d: Option<Duration>| d.map_or_else(|| "-".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0));
        println!(
            "{:<11} {:>5} {:>10.0} {:>9} {:>9} {:>9} {:>12} {:>7} {:>12} {:>12} {:>15}",
            r.kind.label(),
            r.pool,
            c.rate(),
            millis(percentile(&c.latencies, 50.0)),
            millis(percentile(&c.latencies, 90.0)),
            millis(percentile(&c.latencies, 99.0)),
            r.raw.as_ref().map_or_else(|| "-".into(), |raw| format!("{:.0}", raw.rate())),
            ratio.map_or_else(|| "-".into(), |x| format!("{:.0}%", x * 100.0)),
            ms(r.list.http.first().copied()),
            ms(median(&r.list.http)),
            ms(r.list.with_decode.first().copied()),
        );
    }
    println!(
        "for scale, the established Maestro: {ESTABLISHED_CREATES_PER_SEC:.0} creates/s, {:.0} s to list {TARGET_LIST_BUNDLES}",
        ESTABLISHED_LIST_6000_MS / 1000.0
    );
    for r in reports {
        print_targets(args, r);
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// States each target with its measured figure; the list target only applies to the list size it names.
fn print_targets(args: &BenchArgs, r: &DbReport) {
    if let Some(raw) = &r.raw {
        let ratio = r.creates.rate() / raw.rate();
        println!(
            "target {}: hub creates/s >= {:.0}% of raw inserts/s: {:.0}% {}",
            r.kind.label(),
            TARGET_RATIO * 100.0,
            ratio * 100.0,
            verdict(ratio >= TARGET_RATIO)
        );
    }
    let Some(min) = r.list.http.first() else { return };
    let min_ms = min.as_secs_f64() * 1000.0;
    if args.list_bundles == TARGET_LIST_BUNDLES {
        println!(
            "target {}: list {TARGET_LIST_BUNDLES} bundles <= {TARGET_LIST_MS:.0} ms: min {min_ms:.0} ms {} ({} pages, {:.1} MB; seeded in {:.1} s)",
            r.kind.label(),
            verdict(min_ms <= TARGET_LIST_MS),
            r.list.pages,
            r.list.bytes as f64 / 1e6,
            r.list.seed.as_secs_f64()
        );
    } else {
        println!(
            "target {}: list target is for {TARGET_LIST_BUNDLES} bundles; listed {}: min {min_ms:.0} ms",
            r.kind.label(),
            r.list.bundles
        );
    }
}

/// The run fails, after printing everything, when the hub answered wrongly.
fn check_correctness(args: &BenchArgs, reports: &[DbReport]) -> anyhow::Result<()> {
    let mut wrong = Vec::new();
    for r in reports {
        if r.creates.failures.total() > 0 {
            wrong.push(format!(
                "{}: {} of {} creates were not 201",
                r.kind.label(),
                r.creates.failures.total(),
                args.creates
            ));
        }
        wrong.extend(r.list.problems.iter().map(|p| format!("{}: {p}", r.kind.label())));
    }
    if !wrong.is_empty() {
        bail!("the hub answered wrongly:\n  {}", wrong.join("\n  "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank_samples() {
        let sorted = ms(1..=100);
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 90.0), Some(Duration::from_millis(90)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&ms([7]), 99.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&ms([1, 2, 3]), 0.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(median(&ms([1, 2, 3, 4])), Some(Duration::from_millis(3)));
    }

    #[test]
    fn manifests_are_padded_to_exactly_the_payload_size_and_stay_valid() {
        for target in [1000, 1024, 3000, 3001, 10_000] {
            let manifest = padded_manifest("bench-000001", target);
            assert_eq!(json_len(&manifest), target, "target {target}");
            let mut violations = Vec::new();
            maestro_model::validate::validate_manifest(&manifest, "manifest", &Default::default(), &mut violations);
            assert!(violations.is_empty(), "{violations:?}");
        }
    }

    #[test]
    fn a_payload_smaller_than_the_bare_manifest_leaves_it_unpadded() {
        let bare = padded_manifest("bench-000001", 0);
        assert_eq!(bare.pointer("/metadata/annotations"), Some(&json!({})));
        assert_eq!(json_len(&padded_manifest("bench-000001", 10)), json_len(&bare));
    }

    #[test]
    fn scratch_urls_keep_credentials_host_and_parameters() {
        let url = with_database("postgres://root@127.0.0.1:5432/test", "db1").unwrap();
        assert_eq!(url, "postgres://root@127.0.0.1:5432/db1");
        let url = with_database("postgres://u:p/w@h/x?sslmode=disable", "db2").unwrap();
        assert_eq!(url, "postgres://u:p/w@h/db2?sslmode=disable");
        assert_eq!(with_database("postgresql://h", "db3").unwrap(), "postgresql://h/db3");
        assert!(with_database("not a url", "db").is_err());
    }
}
