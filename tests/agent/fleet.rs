//! One hub, one broker, one simulated cluster and its agent, with helpers to drive and observe them.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use maestro_agent::{Agent, AgentConfig, RunningAgent};
use maestro_hub::transport::TransportConfig;
use maestro_plugins::PluginConfig;
use maestro_sim::{RunningSim, SimCluster, SimOptions, StoppedSim};
use maestro_tests::{Backend, HubSetup, TestHub, transport_on, unique_source};
use maestro_wire::mqtt::{MqttConfig, MqttLink};
use maestro_wire::wire;
use serde_json::{Value, json};

pub const CONSUMER: &str = "cluster1";
const DEADLINE: Duration = Duration::from_secs(45);

pub struct Fleet {
    pub hub: TestHub,
    /// `None` while [`Fleet::stop_cluster`] has it down.
    sim: Option<RunningSim>,
    stopped: Option<StoppedSim>,
    sim_addr: SocketAddr,
    pub agent: Option<RunningAgent>,
    pub source: String,
    pub broker: String,
    data: tempfile::TempDir,
    /// The agent's plugin directory, when it runs plugins.
    agent_plugins: Option<tempfile::TempDir>,
    _hub_plugins: Option<tempfile::TempDir>,
}

impl Fleet {
    /// Publishes a spec event that is not a CloudEvent to this cluster's topic, as a stranger
    /// on the broker could, and waits for the broker's acknowledgement.
    pub async fn publish_malformed_spec(&self) {
        let (tx, _incoming) = tokio::sync::mpsc::channel(16);
        let link = MqttLink::start(&MqttConfig::new(self.broker.clone(), "intruder"), Vec::new(), tx).expect("link");
        link.connected(Duration::from_secs(30)).await.expect("connects");
        let topic = wire::source_events_topic(&self.source, CONSUMER);
        let garbage = wire::MqttMessage {
            user_properties: vec![("ce-specversion".into(), "1.0".into())],
            content_type: Some("application/json".into()),
            payload: b"{ not json".to_vec(),
        };
        link.publish(&topic, garbage).await.expect("publish").wait(Duration::from_secs(30)).await.expect("acked");
        link.close().await;
    }

    /// Hub with the embedded broker.
    pub async fn start() -> Fleet {
        let source = unique_source();
        let transport =
            TransportConfig { source: source.clone(), poll_interval: Duration::from_millis(500), ..Default::default() };
        Self::start_with(transport, source).await
    }

    /// Hub and agent on an external broker.
    pub async fn start_on(broker: &str) -> Fleet {
        let source = unique_source();
        Self::start_with(transport_on(broker, &source), source).await
    }

    /// Hub and agent each with a plugin directory holding the named components of
    /// `target/plugins` (as operators deploy them: the same files on both sides).
    pub async fn start_with_plugins(plugins: &[&str]) -> Fleet {
        let source = unique_source();
        let transport =
            TransportConfig { source: source.clone(), poll_interval: Duration::from_millis(500), ..Default::default() };
        let hub_dir = plugin_dir(plugins);
        let setup = HubSetup { plugins: Some(plugin_config(hub_dir.path())), ..HubSetup::default() };
        let hub = TestHub::start_with_setup_and_transport(Backend::Sqlite, setup, transport).await;
        let mut fleet = Self::around(hub, source, Some(plugin_dir(plugins))).await;
        fleet._hub_plugins = Some(hub_dir);
        fleet
    }

    async fn start_with(transport: TransportConfig, source: String) -> Fleet {
        let hub = TestHub::start_with_transport(Backend::Sqlite, transport).await;
        Self::around(hub, source, None).await
    }

    async fn around(hub: TestHub, source: String, agent_plugins: Option<tempfile::TempDir>) -> Fleet {
        let broker = hub.broker_url();
        let sim = SimCluster::start(sim_options(SimOptions::default().bind)).await.expect("simulated cluster starts");
        let sim_addr = sim.addr();
        let reply = hub.post("/api/maestro/v1/consumers", &json!({"name": CONSUMER})).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let data = tempfile::tempdir().expect("temp dir");
        let mut fleet = Fleet {
            hub,
            sim: Some(sim),
            stopped: None,
            sim_addr,
            agent: None,
            source,
            broker,
            data,
            agent_plugins,
            _hub_plugins: None,
        };
        fleet.start_agent().await;
        fleet
    }

    /// Another consumer with `labels`, its own simulated cluster and agent, on this hub and
    /// broker, running the same plugins as the first agent.
    pub async fn extra_cluster(&self, consumer: &str, labels: Value) -> ExtraCluster {
        let reply = self.hub.post("/api/maestro/v1/consumers", &json!({"name": consumer, "labels": labels})).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let options = SimOptions { ready_delay: Duration::from_millis(100), ..Default::default() };
        let sim = SimCluster::start(options).await.expect("simulated cluster starts");
        let data = tempfile::tempdir().expect("temp dir");
        let plugins = self.agent_plugins.as_ref().map(|dir| {
            let copy = tempfile::tempdir().expect("plugin dir");
            for entry in std::fs::read_dir(dir.path()).expect("plugin dir").flatten() {
                if entry.path().extension().is_some_and(|e| e == "wasm") {
                    std::fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy plugin");
                }
            }
            copy
        });
        let mut config = AgentConfig::new(
            consumer,
            MqttConfig::new(self.broker.clone(), ""),
            sim.config().expect("kube config"),
            data.path().to_path_buf(),
        );
        config.source = self.source.clone();
        config.plugins = plugins.as_ref().map(|dir| plugin_config(dir.path()));
        let agent = Agent::start(config).await.expect("agent starts");
        agent.connected(Duration::from_secs(30)).await.expect("agent connects to the broker");
        if agent.plugins().is_some() {
            eventually("the agent's first plugin policies", || async { (agent.policy_updates() > 0).then_some(()) })
                .await;
        }
        ExtraCluster { sim, agent, _dirs: (data, plugins) }
    }

    pub async fn start_agent(&mut self) {
        let mut config = AgentConfig::new(
            CONSUMER,
            MqttConfig::new(self.broker.clone(), ""),
            self.cluster_config(),
            self.data.path().to_path_buf(),
        );
        config.source = self.source.clone();
        // Every agent test serves its endpoints too, on a free port.
        config.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.plugins = self.agent_plugins.as_ref().map(|dir| plugin_config(dir.path()));
        let agent = Agent::start(config).await.expect("agent starts");
        agent.connected(Duration::from_secs(30)).await.expect("agent connects to the broker");
        if agent.plugins().is_some() {
            // The hub's answer to the agent's first policy resync: later changes come after it.
            eventually("the agent's first plugin policies", || async { (agent.policy_updates() > 0).then_some(()) })
                .await;
        }
        self.agent = Some(agent);
    }

    pub async fn stop_agent(&mut self) {
        if let Some(agent) = self.agent.take() {
            agent.shutdown().await;
        }
    }

    pub fn agent(&self) -> &RunningAgent {
        self.agent.as_ref().expect("agent running")
    }

    pub async fn stop(mut self) {
        self.stop_agent().await;
        self.stop_cluster().await;
        self.hub.stop().await;
    }

    /// The cluster's API server goes away (connections refused) until [`Fleet::restart_cluster`];
    /// its objects are kept, as etcd keeps them when an API server restarts.
    pub async fn stop_cluster(&mut self) {
        if let Some(sim) = self.sim.take() {
            self.stopped = Some(sim.stop().await.expect("the simulated cluster stops"));
        }
    }

    /// The API server is back on the same address with the objects it had.
    pub async fn restart_cluster(&mut self) {
        let stopped = self.stopped.take().expect("the cluster was stopped");
        self.sim = Some(stopped.resume().await.expect("the simulated cluster resumes on its port"));
    }

    fn cluster_config(&self) -> kube::Config {
        kube::Config::new(format!("http://{}", self.sim_addr).parse().expect("cluster URL"))
    }

    /// A client for the cluster (it fails to connect while the cluster is stopped).
    pub fn cluster_client(&self) -> kube::Client {
        maestro_net::install_crypto_provider();
        kube::Client::try_from(self.cluster_config()).expect("kube client")
    }

    /// `http://<agent metrics address><path>`.
    pub fn agent_endpoint(&self, path: &str) -> String {
        format!("http://{}{path}", self.agent().metrics_addr().expect("the agent serves metrics"))
    }

    /// The agent's `/metrics` text.
    pub async fn agent_metrics(&self) -> String {
        let reply = reqwest::get(self.agent_endpoint("/metrics")).await.expect("scrape the agent");
        assert_eq!(reply.status(), 200);
        reply.text().await.expect("metrics text")
    }

    /// The HTTP status of one of the agent's probes.
    pub async fn agent_probe(&self, path: &str) -> u16 {
        reqwest::get(self.agent_endpoint(path)).await.expect("probe the agent").status().as_u16()
    }

    // ---- the REST API --------------------------------------------------------------------

    /// Creates a single resource; returns its id.
    pub async fn create_resource(&self, body: Value) -> String {
        let mut body = body;
        body["consumer_name"] = json!(CONSUMER);
        let reply = self.hub.post("/api/maestro/v1/resources", &body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    /// Creates a bundle; returns its id.
    pub async fn create_bundle(&self, name: &str, body: Value) -> String {
        let mut body = body;
        body["consumer_name"] = json!(CONSUMER);
        body["name"] = json!(name);
        let reply = self.hub.post("/api/maestro/v1/resource-bundles", &body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    pub async fn replace_bundle(&self, id: &str, version: i64, body: Value) {
        let mut body = body;
        body["version"] = json!(version);
        let reply = self.hub.put(&format!("/api/maestro/v1/resource-bundles/{id}"), &body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    pub async fn delete_bundle(&self, id: &str) {
        let reply = self.hub.delete(&format!("/api/maestro/v1/resource-bundles/{id}")).await;
        assert_eq!(reply.status, 204, "{}", reply.body);
    }

    /// Polls the bundle until `check` accepts its status; returns the status.
    pub async fn bundle_status(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/maestro/v1/resource-bundles/{id}");
        let reply = self.hub.wait_for(&path, what, |r| r.status == 200 && check(&r.body["status"])).await;
        reply.body["status"].clone()
    }

    /// Polls until the bundle is gone from the hub (the agent confirmed the delete).
    pub async fn bundle_purged(&self, id: &str) {
        let path = format!("/api/maestro/v1/resource-bundles/{id}");
        self.hub.wait_for(&path, "the purge after the agent's Deleted status", |r| r.status == 404).await;
    }

    // ---- the cluster ---------------------------------------------------------------------

    pub fn api(&self, api_version: &str, kind: &str, plural: &str, namespace: Option<&str>) -> Api<DynamicObject> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        };
        let client = self.cluster_client();
        match namespace {
            Some(namespace) => Api::namespaced_with(client, namespace, &resource),
            None => Api::all_with(client, &resource),
        }
    }

    pub fn config_maps(&self) -> Api<DynamicObject> {
        self.api("v1", "ConfigMap", "configmaps", Some("default"))
    }

    pub fn deployments(&self) -> Api<DynamicObject> {
        self.api("apps/v1", "Deployment", "deployments", Some("default"))
    }

    /// Polls the cluster until `check` accepts the object (`None`: absent).
    pub async fn object(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        what: &str,
        check: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        eventually(what, || async {
            let object =
                api.get_opt(name).await.expect("cluster answers").map(|o| serde_json::to_value(o).expect("json"));
            check(object.as_ref()).then_some(object)
        })
        .await
    }
}

fn sim_options(bind: SocketAddr) -> SimOptions {
    SimOptions { bind, ready_delay: Duration::from_millis(100), ..Default::default() }
}

/// The value of one sample (`name{labels}`, exactly) in Prometheus text; `None` when absent.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A second cluster of a [`Fleet`]: its simulator and agent.
pub struct ExtraCluster {
    pub sim: RunningSim,
    pub agent: RunningAgent,
    _dirs: (tempfile::TempDir, Option<tempfile::TempDir>),
}

impl ExtraCluster {
    pub fn config_maps(&self) -> Api<DynamicObject> {
        self.sim.config_maps("default").expect("kube client")
    }

    pub async fn stop(self) {
        self.agent.shutdown().await;
        let _ = self.sim.shutdown().await;
    }
}

/// A plugin directory holding the named components built by `scripts/build-plugins`.
fn plugin_dir(plugins: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("plugin dir");
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    for name in plugins {
        let from = built.join(format!("{name}.wasm"));
        std::fs::copy(&from, dir.path().join(format!("{name}.wasm"))).unwrap_or_else(|err| {
            panic!("{}: {err}. These tests need the example plugins: run `scripts/build-plugins` first", from.display())
        });
    }
    dir
}

/// The compile cache is shared by every test of the run: compiling is the slow part.
fn plugin_config(dir: &Path) -> PluginConfig {
    let mut config = PluginConfig::new(dir.to_path_buf());
    config.cache_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugin-test-cache");
    config.scan_interval = Duration::from_millis(50);
    config
}

/// Polls `probe` until it returns `Some`, for up to 45 s.
pub async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, probe: impl Fn() -> F) -> T {
    maestro_tests::poll_until(what, DEADLINE, probe).await
}

/// A ConfigMap manifest in `default`.
pub fn config_map(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": {"key": value}})
}

/// A manifest config for the ConfigMap `name`.
pub fn config_map_config(name: &str, extra: Value) -> Value {
    let mut config =
        json!({"resourceIdentifier": {"group": "", "resource": "configmaps", "name": name, "namespace": "default"}});
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    config
}

/// The condition of `kind` in a list of conditions.
pub fn condition<'v>(conditions: &'v Value, kind: &str) -> Option<&'v Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == kind)
}

pub fn condition_is(conditions: &Value, kind: &str, status: &str) -> bool {
    condition(conditions, kind).is_some_and(|c| c["status"] == status)
}

/// The `resourceStatus` entry of the manifest named `name`.
pub fn manifest_status<'v>(status: &'v Value, name: &str) -> Option<&'v Value> {
    status["resourceStatus"].as_array()?.iter().find(|r| r["resourceMeta"]["name"] == name)
}

/// Whether the manifest `name` has condition `kind` = `value`.
pub fn manifest_condition_is(status: &Value, name: &str, kind: &str, value: &str) -> bool {
    manifest_status(status, name).is_some_and(|r| condition_is(&r["conditions"], kind, value))
}

pub fn data_key(object: Option<&Value>) -> Option<&str> {
    object?.pointer("/data/key")?.as_str()
}
