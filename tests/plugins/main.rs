//! WebAssembly plugins, end to end with real components built from `plugins/` by
//! `scripts/build-plugins`: validators through the hub over HTTP (policies, failure modes,
//! hostile plugins, hot reload), the other worlds through the runtime API.

mod codecs;
mod examples;
mod hostile;
mod reload;
mod runtime;
mod validators;

use std::path::{Path, PathBuf};
use std::time::Duration;

use maestro_plugins::PluginConfig;
use maestro_tests::{Backend, HubSetup, Reply, TestHub};
use serde_json::{Value, json};

/// Where `scripts/build-plugins` puts the components.
pub fn built_plugins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins")
}

/// The bytes of a test component; fails with the fix when it was not built.
pub fn component(name: &str) -> Vec<u8> {
    let path = built_plugins().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}. The plugin tests need the test components: run `scripts/build-plugins` first",
            path.display()
        )
    })
}

/// Writes a file into the plugin directory the way operators should: beside it, then renamed in.
pub fn drop_file(dir: &Path, file: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, bytes).expect("write plugin file");
    std::fs::rename(&tmp, dir.join(file)).expect("rename plugin file");
}

/// A plugin directory holding the named test components, with a fast scan and the compile
/// cache shared by every test of the run (compiling is the slow part).
pub fn plugin_config(dir: &Path, plugins: &[&str]) -> PluginConfig {
    for name in plugins {
        drop_file(dir, &format!("{name}.wasm"), &component(name));
    }
    let mut config = PluginConfig::new(dir.to_path_buf());
    config.cache_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugin-test-cache");
    config.scan_interval = Duration::from_millis(20);
    config
}

/// A hub on `backend` with a plugin directory holding `plugins`.
pub async fn hub_with(backend: Backend, plugins: &[&str]) -> (TestHub, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("plugin dir");
    let setup = HubSetup { plugins: Some(plugin_config(dir.path(), plugins)), ..HubSetup::default() };
    (TestHub::start_with(backend, setup).await, dir)
}

pub async fn consumer(hub: &TestHub, name: &str, labels: Value) {
    let reply = hub.post("/api/maestro/v1/consumers", &json!({"name": name, "labels": labels})).await;
    assert_eq!(reply.status, 201, "creating consumer {name}: {}", reply.body);
}

pub async fn policy(hub: &TestHub, body: Value) {
    let reply = hub.post("/api/maestro/v1/plugin-policies", &body).await;
    assert_eq!(reply.status, 201, "creating policy: {}", reply.body);
}

/// A Deployment whose containers use `images`.
pub fn deployment(name: &str, images: &[&str]) -> Value {
    let containers: Vec<Value> =
        images.iter().enumerate().map(|(i, image)| json!({"name": format!("c{i}"), "image": image})).collect();
    let mut manifest = maestro_tests::deployment(name);
    manifest["spec"]["template"]["spec"]["containers"] = Value::Array(containers);
    manifest
}

pub async fn post_bundle(hub: &TestHub, consumer: &str, manifest: Value) -> Reply {
    hub.post("/api/maestro/v1/resource-bundles", &json!({"consumer_name": consumer, "manifests": [manifest]})).await
}

/// `(field, message)` of every violation of an error reply.
pub fn violations(reply: &Reply) -> Vec<(String, String)> {
    reply.body["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .map(|d| {
                    (d["field"].as_str().unwrap_or("").to_string(), d["message"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The plugin entry of `GET /plugins`, or Null.
pub async fn plugin_entry(hub: &TestHub, name: &str) -> Value {
    let reply = hub.get("/api/maestro/v1/plugins").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// Polls `GET /plugins` until `check` holds for the entry of `name` (up to 30 s).
pub async fn wait_for_plugin(hub: &TestHub, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let entry = plugin_entry(hub, name).await;
        if check(&entry) {
            return entry;
        }
        assert!(std::time::Instant::now() < deadline, "plugin {name} never became {what}; last seen: {entry}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the metric line that starts with `prefix` and contains every `parts`.
pub async fn metric(hub: &TestHub, name: &str, parts: &[&str]) -> Option<f64> {
    let text = hub.client.get(hub.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .next()
}
