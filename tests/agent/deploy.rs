//! `deploy/`: every manifest parses into its `k8s-openapi` type, and the agent's manifests apply
//! to a simulated cluster, run, and start `maestro agent` with flags the binary accepts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, Patch, PatchParams};
use maestro::sim::{SimCluster, SimOptions};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::fleet::eventually;

fn documents(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        if file.is_dir() {
            docs.extend(documents(&file));
            continue;
        }
        let is_yaml = file.extension().is_some_and(|x| x == "yaml")
            && file.file_name().is_some_and(|n| n != "kustomization.yaml");
        if !is_yaml {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value =
                serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if value.get("kind").is_some() {
                docs.push((file.clone(), value));
            }
        }
    }
    docs
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn parse<T: DeserializeOwned>(file: &Path, doc: &Value) -> T {
    serde_path_to_error::deserialize(doc).unwrap_or_else(|e| panic!("{} ({}): {e}", file.display(), doc["kind"]))
}

fn check_type(file: &Path, doc: &Value) {
    match doc["kind"].as_str().unwrap_or_default() {
        "Namespace" => drop(parse::<Namespace>(file, doc)),
        "ServiceAccount" => drop(parse::<ServiceAccount>(file, doc)),
        "ClusterRole" => drop(parse::<ClusterRole>(file, doc)),
        "ClusterRoleBinding" => drop(parse::<ClusterRoleBinding>(file, doc)),
        "Deployment" => drop(parse::<Deployment>(file, doc)),
        "StatefulSet" => drop(parse::<StatefulSet>(file, doc)),
        "Service" => drop(parse::<Service>(file, doc)),
        "PersistentVolumeClaim" => drop(parse::<PersistentVolumeClaim>(file, doc)),
        "PodDisruptionBudget" => drop(parse::<PodDisruptionBudget>(file, doc)),
        other => panic!("{}: no typed check for kind {other}; add it here", file.display()),
    }
}

#[test]
fn every_deploy_manifest_parses_into_its_kubernetes_type() {
    let docs = documents(&deploy_dir());
    assert!(docs.iter().any(|(f, _)| f.starts_with(deploy_dir().join("agent"))), "deploy/agent is missing");
    for (file, doc) in &docs {
        check_type(file, doc);
    }
}

/// The agent's container arguments, with `$(CONSUMER)` filled in as the kubelet does.
fn agent_command(deployment: &Deployment) -> Vec<String> {
    let container = &deployment.spec.template.spec.as_ref().unwrap().containers[0];
    let consumer =
        container.env.as_ref().unwrap().iter().find(|e| e.name == "CONSUMER").unwrap().value.clone().unwrap();
    let mut command = container.command.clone().unwrap();
    command.extend(container.args.clone().unwrap().into_iter().map(|a| a.replace("$(CONSUMER)", &consumer)));
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_manifests_apply_run_and_start_maestro_agent_with_valid_flags() {
    maestro::install_crypto_provider();
    let sim =
        SimCluster::start(SimOptions { ready_delay: Duration::from_millis(100), ..Default::default() }).await.unwrap();
    let client = sim.client().unwrap();
    let params = PatchParams::apply("deploy-test").force();
    let mut deployment = None;
    let mut docs = documents(&deploy_dir().join("agent"));
    // The namespace first, as `kubectl apply -k` orders it.
    docs.sort_by_key(|(_, doc)| doc["kind"] != "Namespace");
    for (file, doc) in docs {
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        let namespace = doc["metadata"]["namespace"].as_str().map(str::to_owned);
        macro_rules! apply {
            ($t:ty, $api:expr) => {{
                let typed: $t = parse(&file, &doc);
                let api: Api<$t> = $api;
                api.patch(&name, &params, &Patch::Apply(&typed))
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            }};
        }
        let ns = || namespace.clone().expect("namespaced");
        match doc["kind"].as_str().unwrap() {
            "Namespace" => drop(apply!(Namespace, Api::all(client.clone()))),
            "ServiceAccount" => drop(apply!(ServiceAccount, Api::namespaced(client.clone(), &ns()))),
            "ClusterRole" => {
                let role = apply!(ClusterRole, Api::all(client.clone()));
                let rules = role.rules.unwrap_or_default();
                let everything = rules.iter().any(|r| {
                    r.resources.as_ref().is_some_and(|x| x.contains(&"*".to_owned()))
                        && r.verbs.contains(&"watch".to_owned())
                });
                assert!(everything, "the agent must be able to apply and watch any kind");
            }
            "ClusterRoleBinding" => drop(apply!(ClusterRoleBinding, Api::all(client.clone()))),
            "PersistentVolumeClaim" => drop(apply!(PersistentVolumeClaim, Api::namespaced(client.clone(), &ns()))),
            "Deployment" => deployment = Some(apply!(Deployment, Api::namespaced(client.clone(), &ns()))),
            other => panic!("unexpected kind {other} in deploy/agent"),
        }
    }
    let deployment = deployment.expect("deploy/agent has the agent Deployment");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "maestro-agent");
    eventually("the agent Deployment ready", || async {
        let live = api.get("maestro-agent").await.ok()?;
        (live.status?.ready_replicas? == 1).then_some(())
    })
    .await;
    let pod = &deployment.spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("maestro-agent"));

    let command = agent_command(&deployment);
    let cli = maestro::cli::Cli::try_parse_from(&command).unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let maestro::cli::Command::Agent(args) = cli.command else { panic!("{command:?} is not `maestro agent`") };
    assert_eq!(args.consumer, "cluster1");
    assert_eq!(
        args.auth.mqtt_username.as_deref(),
        Some("cluster1"),
        "the broker's ACL expects the consumer as user name"
    );
    assert!(args.kubeconfig.is_none(), "in a pod the agent uses its service account");
    let _ = sim.shutdown().await;
}
