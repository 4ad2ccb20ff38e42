//! The universal operator end to end: the engine (`maestro-engine`) runs KUDO's real packages
//! on a simulated cluster over HTTP, and the tests read what a KUDO user reads — the Instance's
//! plan status, the objects the plans applied, the Events.

mod dependencies;
mod packages;
mod pipe;
mod semantics;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use maestro_engine::instance::kudo_resource;
use maestro_package::crd::{Instance, PlanStatus};
use maestro_package::{Limits, read_path};
use maestro_sim::{RunningSim, SimCluster, SimOptions};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A simulated cluster with the engine running against it.
pub struct Cluster {
    pub sim: RunningSim,
    pub client: Client,
    engine: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

pub fn package_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/kudo/repository").join(name)
}

impl Cluster {
    /// A cluster whose workloads get ready `ready_delay` after each change, with the engine.
    pub async fn start(ready_delay: Duration) -> Cluster {
        Cluster::start_with(SimOptions { ready_delay, ..SimOptions::default() }).await
    }

    /// A cluster started with `options`, with the engine.
    pub async fn start_with(options: SimOptions) -> Cluster {
        let sim = SimCluster::start(options).await.unwrap_or_else(|e| panic!("start simulator: {e}"));
        let client = sim.client().unwrap_or_else(|e| panic!("client: {e}"));
        let mut cluster = Cluster { sim, client, engine: None };
        cluster.start_engine();
        cluster
    }

    pub fn start_engine(&mut self) {
        let (stop, stopped) = oneshot::channel::<()>();
        let client = self.client.clone();
        let options = maestro_engine::Options { poll: Duration::from_millis(200), ..Default::default() };
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = maestro_engine::run(client, options, shutdown).await {
                panic!("engine: {e}");
            }
        });
        self.engine = Some((stop, task));
    }

    /// Kills the engine (as a crash would: no graceful end of a pass).
    pub async fn kill_engine(&mut self) {
        if let Some((_, task)) = self.engine.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub fn instances(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &kudo_resource("Instance", "instances"))
    }

    /// Installs the package in `dir` (its Operator and OperatorVersion) into `namespace`, and
    /// an Instance of it unless `instance` is `None`, as `kubectl kudo install` does.
    pub async fn install(&self, dir: &Path, namespace: &str, instance: Option<(&str, &[(&str, &str)])>) {
        let package = read_path(dir, &Limits::default()).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
        self.install_packages(std::slice::from_ref(&package), namespace, instance).await;
    }

    /// Installs packages (dependencies first; the last one is the one an Instance is made of).
    pub async fn install_packages(
        &self,
        packages: &[maestro_package::Package],
        namespace: &str,
        instance: Option<(&str, &[(&str, &str)])>,
    ) {
        self.namespace(namespace).await;
        let mut last = None;
        for package in packages {
            let (operator, version) = package.resources(namespace);
            self.apply(namespace, "Operator", "operators", serde_json::to_value(&operator).unwrap()).await;
            self.apply(namespace, "OperatorVersion", "operatorversions", serde_json::to_value(&version).unwrap()).await;
            last = Some((package, version));
        }
        let Some((package, version)) = last else { return };
        if let Some((name, params)) = instance {
            let params: BTreeMap<&str, &str> = params.iter().copied().collect();
            let object = json!({
                "apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
                "metadata": {"name": name, "namespace": namespace, "labels": {"kudo.dev/operator": package.operator.name}},
                "spec": {"operatorVersion": {"name": version.metadata.name}, "parameters": params},
            });
            self.apply(namespace, "Instance", "instances", object).await;
        }
    }

    /// Creates the namespace (as a user would before installing into it).
    pub async fn namespace(&self, name: &str) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        api.patch(name, &PatchParams::apply("test"), &Patch::Apply(&object)).await.unwrap();
    }

    async fn apply(&self, namespace: &str, kind: &str, plural: &str, object: Value) {
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &kudo_resource(kind, plural));
        eventually(&format!("{kind} {name} applied"), || {
            let (api, object, name) = (api.clone(), object.clone(), name.clone());
            async move { api.patch(&name, &PatchParams::apply("test").force(), &Patch::Apply(&object)).await.ok() }
        })
        .await;
    }

    pub async fn instance(&self, namespace: &str, name: &str) -> Instance {
        let object = self.instances(namespace).get(name).await.unwrap_or_else(|e| panic!("get {name}: {e}"));
        serde_json::from_value(serde_json::to_value(object).unwrap()).unwrap()
    }

    /// Patches the Instance's spec (a JSON merge patch), as `kubectl kudo update` does.
    pub async fn patch_spec(&self, namespace: &str, name: &str, spec: Value) {
        let patch = json!({"spec": spec});
        self.instances(namespace).patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }

    /// Waits until `plan` of the Instance has `status` and no plan is scheduled any more, and
    /// returns the plan's status.
    pub async fn wait_plan(&self, namespace: &str, name: &str, plan: &str, status: &str) -> PlanStatus {
        self.wait_plan_for(namespace, name, plan, status, Duration::from_secs(60)).await
    }

    pub async fn wait_plan_for(
        &self,
        namespace: &str,
        name: &str,
        plan: &str,
        status: &str,
        limit: Duration,
    ) -> PlanStatus {
        let deadline = Instant::now() + limit;
        loop {
            let Some(object) = self.instances(namespace).get_opt(name).await.unwrap() else {
                assert!(Instant::now() < deadline, "instance {namespace}/{name} never appeared");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let instance: Instance = serde_json::from_value(serde_json::to_value(object).unwrap()).unwrap();
            let found = instance.status.as_ref().and_then(|s| s.plan_status.get(plan)).cloned();
            if let Some(found) = &found
                && found.status == status
                && (instance.spec.plan_execution.plan_name.is_empty() || !matches!(status, "COMPLETE" | "FATAL_ERROR"))
            {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "plan {plan} of {namespace}/{name} never reached {status}: {}",
                serde_json::to_string_pretty(&instance.status).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An object of a built-in or custom kind, if it exists.
    pub async fn object(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let (resource, _) = kube::discovery::pinned_kind(&self.client, &gvk).await.unwrap();
        let api: Api<DynamicObject> = match namespace {
            "" => Api::all_with(self.client.clone(), &resource),
            namespace => Api::namespaced_with(self.client.clone(), namespace, &resource),
        };
        api.get_opt(name).await.unwrap().map(|o| serde_json::to_value(o).unwrap())
    }

    /// Server-side applies `fields` to an object (creating it if missing), as a user with
    /// kubectl would, under field manager `tester`.
    pub async fn patch_object(&self, api_version: &str, kind: &str, namespace: &str, name: &str, mut fields: Value) {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let (resource, _) = kube::discovery::pinned_kind(&self.client, &gvk).await.unwrap();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &resource);
        fields["apiVersion"] = json!(api_version);
        fields["kind"] = json!(kind);
        fields["metadata"]["name"] = json!(name);
        api.patch(name, &PatchParams::apply("tester").force(), &Patch::Apply(&fields))
            .await
            .unwrap_or_else(|e| panic!("apply {kind} {namespace}/{name}: {e}"));
    }

    /// The reasons of the Events recorded on an Instance, oldest first.
    pub async fn events(&self, namespace: &str, instance: &str) -> Vec<(String, String)> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            namespace,
            &ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "Event".into(),
                plural: "events".into(),
            },
        );
        let mut events: Vec<Value> = api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .filter(|e| e["involvedObject"]["name"] == instance)
            .collect();
        events
            .sort_by(|a, b| a["metadata"]["resourceVersion"].as_str().cmp(&b["metadata"]["resourceVersion"].as_str()));
        events
            .iter()
            .map(|e| (e["reason"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// The Events of an Instance once one has `reason` (an Event follows the status it tells
    /// of, so it may arrive a moment after the status is seen).
    pub async fn events_once(&self, namespace: &str, instance: &str, reason: &str) -> Vec<(String, String)> {
        eventually(&format!("an event {reason} on {namespace}/{instance}"), || async {
            let events = self.events(namespace, instance).await;
            events.iter().any(|(r, _)| r == reason).then_some(events)
        })
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((stop, task)) = self.engine.take() {
            let _ = stop.send(());
            task.abort();
        }
    }
}

/// Polls `check` until it yields a value, for up to 60 seconds (generous: CI machines are slow).
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    maestro_tests::poll_until(what, Duration::from_secs(60), check).await
}

/// The statuses of a plan's phases and steps, `phase=STATUS`, `phase.step=STATUS`.
pub fn tree(plan: &PlanStatus) -> Vec<String> {
    let mut out = Vec::new();
    for phase in &plan.phases {
        out.push(format!("{}={}", phase.name, phase.status));
        out.extend(phase.steps.iter().map(|s| format!("{}.{}={}", phase.name, s.name, s.status)));
    }
    out
}
