//! Test harness for the end-to-end suites: a real hub over real HTTP, on SQLite or on the
//! PostgreSQL of the machine (127.0.0.1:5432, or `MAESTRO_TEST_POSTGRES_URL`).
//!
//! Every PostgreSQL hub gets a database of its own, named after the test process, so runs on
//! one server never see each other's rows; databases left by processes that died are dropped
//! the next time a suite starts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use maestro::api::Limits;
use maestro::api::auth::AuthConfig;
use maestro::hub::{HubConfig, RunningHub};
use maestro::store::{DbOptions, Store};
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
    pub plugins: Option<maestro::plugins::PluginConfig>,
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
        maestro::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg_database) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir.path().join("maestro.db").display()), None),
            Backend::Postgres => {
                let (url, name) = fresh_postgres_database().await;
                (url, Some(name))
            }
        };
        let config = HubConfig {
            bind: "127.0.0.1:0".parse().expect("address"),
            database_url: database_url.clone(),
            db: DbOptions { max_connections: 8, timeout: Duration::from_secs(10) },
            limits: setup.limits,
            auth: setup.auth,
            plugins: setup.plugins,
        };
        let hub = maestro::hub::start(config).await.expect("hub starts");
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
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/maestro").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_str(&text).expect("sample is JSON")
}
