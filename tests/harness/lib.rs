//! Test harness for the end-to-end suites: a real hub over real HTTP, on SQLite or on the
//! PostgreSQL of the machine (127.0.0.1:5432, or `MAESTRO_TEST_POSTGRES_URL`).
//!
//! Every PostgreSQL hub gets a database of its own, named after the test process, so runs on
//! one server never see each other's rows; databases left by processes that died are dropped
//! the next time a suite starts.

pub mod agent;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use maestro_hub::api::Limits;
use maestro_hub::api::auth::AuthConfig;
use maestro_hub::transport::TransportConfig;
use maestro_hub::{HubConfig, RunningHub};
use maestro_store::{DbOptions, Store};
use maestro_wire::mqtt::MqttConfig;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::OnceCell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The administrative URL: a database the suite may connect to in order to create others.
pub fn postgres_admin_url() -> String {
    std::env::var("MAESTRO_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_string())
}

fn with_database(url: &str, database: &str) -> String {
    match url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => format!("{url}/{database}"),
    }
}

const PREFIX: &str = "maestro_t_";
static SWEPT: OnceCell<()> = OnceCell::const_new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Drops test databases whose process is gone (a panicking test cannot drop its own).
async fn sweep_stale_databases(admin: &mut sqlx::PgConnection) {
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'maestro\\_t\\_%'")
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for name in names {
        let pid = name.trim_start_matches(PREFIX).split('_').next().unwrap_or("");
        let alive = !pid.is_empty() && std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// Creates an empty database for one hub and returns its URL and name.
pub async fn fresh_postgres_database() -> (String, String) {
    let admin_url = postgres_admin_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {admin_url} is needed for these tests (.ci/run starts it): {err}"));
    SWEPT.get_or_init(|| sweep_stale_databases(&mut admin)).await;
    let name = format!(
        "{PREFIX}{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or("x")
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
    (with_database(&admin_url, &name), name)
}

async fn drop_postgres_database(name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
            .execute(&mut admin)
            .await;
    }
}

/// A configuration for a hub on a loopback port chosen by the OS.
#[derive(Default)]
pub struct HubSetup {
    pub limits: Limits,
    pub auth: AuthConfig,
    pub token: Option<String>,
    pub plugins: Option<maestro_plugins::PluginConfig>,
}

pub struct TestHub {
    pub hub: RunningHub,
    pub backend: Backend,
    pub client: reqwest::Client,
    pub token: Option<String>,
    pub database_url: String,
    _dir: tempfile::TempDir,
    pg_database: Option<String>,
}

/// A response: status, JSON body (Null when there is none) and headers.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestHub {
    pub async fn start(backend: Backend) -> TestHub {
        Self::start_with(backend, HubSetup::default()).await
    }

    pub async fn start_with(backend: Backend, setup: HubSetup) -> TestHub {
        Self::start_full(backend, setup, None).await
    }

    /// A hub with transport: on `transport.mqtt`'s broker, or on an embedded one when `None`.
    /// Waits until the hub is connected and subscribed.
    pub async fn start_with_transport(backend: Backend, transport: TransportConfig) -> TestHub {
        Self::start_full(backend, HubSetup::default(), Some(transport)).await
    }

    /// A hub with both a setup of its own (plugins) and transport; waits for the broker.
    pub async fn start_with_setup_and_transport(
        backend: Backend,
        setup: HubSetup,
        transport: TransportConfig,
    ) -> TestHub {
        Self::start_full(backend, setup, Some(transport)).await
    }

    /// A hub set up as `setup` says, with transport when given (waiting until connected).
    pub async fn start_full(backend: Backend, setup: HubSetup, transport: Option<TransportConfig>) -> TestHub {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg_database) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir.path().join("maestro.db").display()), None),
            Backend::Postgres => {
                let (url, name) = fresh_postgres_database().await;
                (url, Some(name))
            }
        };
        Self::start_on(backend, dir, database_url, pg_database, setup, transport).await
    }

    /// Another hub on this hub's database (PostgreSQL: several hubs share one). Stopping it
    /// leaves the database to the first hub.
    pub async fn start_beside(&self, setup: HubSetup) -> TestHub {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_on(self.backend, dir, self.database_url.clone(), None, setup, None).await
    }

    /// Another hub on this hub's database, with transport: it takes over what this one left
    /// queued. Stopping it leaves the database to the first hub.
    pub async fn start_beside_with_transport(&self, setup: HubSetup, transport: TransportConfig) -> TestHub {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_on(self.backend, dir, self.database_url.clone(), None, setup, Some(transport)).await
    }

    async fn start_on(
        backend: Backend,
        dir: tempfile::TempDir,
        database_url: String,
        pg_database: Option<String>,
        setup: HubSetup,
        transport: Option<TransportConfig>,
    ) -> TestHub {
        maestro_net::install_crypto_provider();
        let config = HubConfig {
            bind: "127.0.0.1:0".parse().expect("address"),
            database_url: database_url.clone(),
            db: DbOptions { max_connections: 8, timeout: Duration::from_secs(10) },
            limits: setup.limits,
            auth: setup.auth,
            plugins: setup.plugins,
        };
        let hub = maestro_hub::start_with_transport(config, transport).await.expect("hub starts");
        if let Some(transport) = hub.transport() {
            transport.connected(Duration::from_secs(30)).await.expect("hub connects to the broker");
        }
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        TestHub { hub, backend, client, token: setup.token, database_url, _dir: dir, pg_database }
    }

    pub fn store(&self) -> &Store {
        &self.hub.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub.url())
    }

    pub async fn stop(self) {
        let _ = self.hub.shutdown().await;
        if let Some(name) = &self.pg_database {
            drop_postgres_database(name).await;
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::reply(request).await
    }

    /// Sends a request built by the test, for headers or raw bodies of its own.
    pub async fn reply(request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("hub answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, body, headers }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Polls `GET path` for up to 30 s until `check` accepts the reply.
    pub async fn wait_for(&self, path: &str, what: &str, check: impl Fn(&Reply) -> bool) -> Reply {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.get(path).await;
            if check(&reply) {
                return reply;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("GET {path} never showed {what}; last answer {} {}", reply.status, reply.body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of one sample line of `/metrics` (`name{labels}`), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.client.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        text.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The broker URL of the hub's transport.
    pub fn broker_url(&self) -> String {
        self.hub.broker_url().expect("hub runs with transport").to_string()
    }
}

/// The Mosquitto every development machine and CI runs (scripts/services.sh).
pub const MOSQUITTO: &str = "mqtt://127.0.0.1:1883";

/// A topic source no other test or run uses, so runs on one broker never see each other.
pub fn unique_source() -> String {
    format!(
        "t-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    )
}

/// Transport over an external broker at `url`, with its own topic source.
pub fn transport_on(url: &str, source: &str) -> TransportConfig {
    TransportConfig {
        mqtt: Some(MqttConfig::new(url, "")),
        source: source.to_string(),
        poll_interval: Duration::from_millis(500),
        ..Default::default()
    }
}

/// Runs each named `async fn(&TestHub)` once on SQLite and once on PostgreSQL, as
/// `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let hub = $crate::TestHub::start($crate::Backend::Sqlite).await;
                super::$test(&hub).await;
                hub.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let hub = $crate::TestHub::start($crate::Backend::Postgres).await;
                super::$test(&hub).await;
                hub.stop().await;
            }
        }
    )*};
}

/// A small valid Deployment.
pub fn deployment(name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}
        }
    })
}

pub fn config_map(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}})
}

/// Reads a conformance sample from ../shared (beside the repository, as in CI).
pub fn conformance_sample(file: &str) -> Value {
    // `MAESTRO_SHARED_DIR` serves checkouts that do not sit beside shared/ (git worktrees).
    let shared = std::env::var_os("MAESTRO_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let path = shared.join("conformance/maestro").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).expect("sample is JSON")
}

/// A Mosquitto of the test's own on a free loopback port (the `mosquitto` binary on PATH), for
/// tests that stop the broker or need a configuration of their own. The shared one on 1883 is
/// never touched.
pub struct PrivateMosquitto {
    pub port: u16,
    config: std::path::PathBuf,
    child: Option<std::process::Child>,
    _dir: tempfile::TempDir,
}

impl PrivateMosquitto {
    /// Starts one with `extra` appended to a loopback listener on a free port.
    pub async fn start(extra: &str) -> PrivateMosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("mosquitto.conf");
        let text = format!(
            "listener {port} 127.0.0.1\npersistence false\nset_tcp_nodelay true\nlog_dest stderr\nlog_type error\n{extra}\n"
        );
        std::fs::write(&config, text).expect("write mosquitto.conf");
        let mut broker = PrivateMosquitto { port, config, child: None, _dir: dir };
        broker.restart().await;
        broker
    }

    /// One that lets anyone in, like the shared one.
    pub async fn start_open() -> PrivateMosquitto {
        Self::start("allow_anonymous true").await
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Starts it (again) on the same port and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let child = std::process::Command::new("mosquitto")
            .arg("-c")
            .arg(&self.config)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the mosquitto binary is on PATH (scripts/services.sh installs it)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "private mosquitto did not start on {}", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills it, as a broker that disappears.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 50 ms until it yields a value; fails after `limit`, naming `what`. Each
/// suite wraps it with the limit its waits need.
pub async fn poll_until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
