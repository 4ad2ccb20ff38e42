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
mod creates;
pub mod kuttl;
mod lists;
pub mod operator;
mod payloads;
pub mod plugins;
mod raw;
mod scratch;
pub mod templates;
pub mod transport;

use creates::*;
use lists::*;
use payloads::*;
use raw::*;
use scratch::*;

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
    /// KUDO templates: every golden template parsed and rendered N times, beside Go's.
    Templates(crate::templates::TemplateBenchArgs),
    /// The universal operator: step-to-step latency, a zookeeper deploy, a fleet of Instances
    /// and the engine's memory, on a simulated cluster.
    Operator(crate::operator::OperatorBenchArgs),
    /// `maestro test`: KUDO's zookeeper upgrade test beside the sum of its steps' minimal times.
    Kuttl(crate::kuttl::KuttlBenchArgs),
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
        Some(BenchTarget::Templates(templates)) => return crate::templates::run(templates),
        Some(BenchTarget::Operator(operator)) => return interruptible(crate::operator::run(operator)).await,
        Some(BenchTarget::Kuttl(kuttl)) => return interruptible(crate::kuttl::run(kuttl)).await,
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
