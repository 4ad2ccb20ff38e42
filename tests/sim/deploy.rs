//! The manifests in `deploy/` applied to a simulated cluster, as `kube` (server-side apply
//! through discovery) and as `kubectl` apply them, until their workloads are ready.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};
use maestro_sim::SimOptions;
use serde_json::Value;

use crate::{Sim, eventually};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml")
            && path.file_name().is_some_and(|n| n != "kustomization.yaml")
        {
            out.push(path);
        }
    }
}

/// Every Kubernetes object in `deploy/`, one per YAML document.
fn manifests() -> Vec<Value> {
    let mut files = Vec::new();
    yaml_files(&deploy_dir(), &mut files);
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value =
                serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if value.get("kind").is_some() {
                docs.push(value);
            }
        }
    }
    docs
}

/// Namespaces and CRDs first, as `kubectl apply` users order them.
fn rank(doc: &Value) -> u8 {
    match doc.get("kind").and_then(Value::as_str) {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    }
}

fn ready(obj: &DynamicObject) -> bool {
    let data = &obj.data;
    let generation = obj.metadata.generation.unwrap_or(0);
    let want = data["spec"]["replicas"].as_i64().unwrap_or(1);
    data["status"]["observedGeneration"].as_i64() == Some(generation)
        && data["status"]["readyReplicas"].as_i64() == Some(want)
}

#[tokio::test]
async fn every_deploy_manifest_applies_server_side_and_its_workloads_become_ready() {
    let s = Sim::start_with(SimOptions { ready_delay: Duration::from_millis(200), ..SimOptions::default() }).await;
    let mut docs = manifests();
    assert!(docs.iter().any(|d| d["kind"] == "Deployment"), "deploy/ has no Deployment?");
    docs.sort_by_key(rank);
    let mut discovery = Discovery::new(s.client.clone()).run().await.unwrap_or_else(|e| panic!("{e}"));
    let mut workloads = Vec::new();
    for doc in &docs {
        let (api_version, kind) = (doc["apiVersion"].as_str().unwrap_or(""), doc["kind"].as_str().unwrap_or(""));
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if discovery.resolve_gvk(&gvk).is_none() {
            discovery = Discovery::new(s.client.clone()).run().await.unwrap_or_else(|e| panic!("{e}"));
        }
        let (resource, caps) =
            discovery.resolve_gvk(&gvk).unwrap_or_else(|| panic!("{api_version} {kind} is not served"));
        let name = doc["metadata"]["name"].as_str().unwrap_or_else(|| panic!("{kind} without a name"));
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                s.client.clone(),
                doc["metadata"]["namespace"].as_str().unwrap_or("default"),
                &resource,
            ),
            Scope::Cluster => Api::all_with(s.client.clone(), &resource),
        };
        api.patch(name, &PatchParams::apply("deploy-test"), &Patch::Apply(doc))
            .await
            .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
        if matches!(kind, "Deployment" | "StatefulSet") {
            workloads.push((api, name.to_owned()));
        }
    }
    for (api, name) in workloads {
        eventually(&format!("{name} ready"), || async { api.get(&name).await.ok().filter(ready) }).await;
    }
    s.stop().await;
}

/// `kubectl`, when this machine has it (the project's machines do): the README's commands.
/// Its discovery cache goes next to the kubeconfig, not into the home directory.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Option<std::process::Output> {
    let cache = kubeconfig.with_file_name("kube-cache");
    let output = std::process::Command::new("kubectl")
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .ok()?;
    Some(output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_hub_kustomization_and_sees_the_rollout_finish() {
    let s = Sim::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, s.sim.kubeconfig()).unwrap_or_else(|e| panic!("{e}"));
    let hub = deploy_dir().join("hub");
    let hub = hub.to_str().unwrap_or_default().to_owned();
    let run = |args: Vec<&str>| {
        let kubeconfig = kubeconfig.clone();
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kubectl(&kubeconfig, &args)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let Some(version) = run(vec!["version", "--client"]).await else {
        eprintln!("kubectl is not installed here: skipping the kubectl check");
        s.stop().await;
        return;
    };
    assert!(version.status.success());
    let ok = |out: Option<std::process::Output>, what: &str| {
        let out = out.unwrap_or_else(|| panic!("kubectl vanished"));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "kubectl {what} failed:\n{text}");
        text
    };
    // The simulator serves no OpenAPI document, so client-side validation is off.
    let applied = ok(run(vec!["apply", "--validate=false", "-k", &hub]).await, "apply -k");
    assert!(applied.contains("deployment.apps/maestro-hub created"), "{applied}");
    ok(
        run(vec!["-n", "maestro", "rollout", "status", "deployment/maestro-hub", "--timeout=60s"]).await,
        "rollout status",
    );
    ok(
        run(vec!["-n", "maestro", "rollout", "status", "statefulset/maestro-postgres", "--timeout=60s"]).await,
        "rollout status",
    );
    // `kubectl get` prints the server's Table columns.
    let table = ok(run(vec!["-n", "maestro", "get", "deployments"]).await, "get deployments");
    let row: Vec<&str> =
        table.lines().find(|l| l.starts_with("maestro-hub")).unwrap_or("").split_whitespace().collect();
    assert!(table.contains("READY") && row.get(1) == Some(&"2/2"), "{table}");
    ok(run(vec!["-n", "maestro", "scale", "deployment/maestro-hub", "--replicas=3"]).await, "scale");
    let replicas = ok(
        run(vec!["-n", "maestro", "get", "deployment", "maestro-hub", "-o", "jsonpath={.spec.replicas}"]).await,
        "get",
    );
    assert_eq!(replicas.trim(), "3");
    let again = ok(run(vec!["apply", "--validate=false", "-k", &hub]).await, "re-apply");
    assert!(again.contains("namespace/maestro unchanged"), "{again}");
    ok(run(vec!["delete", "namespace", "maestro", "--timeout=60s"]).await, "delete namespace");
    s.stop().await;
}
