//! `deploy/`: every manifest parses into its `k8s-openapi` type; the agent's manifests apply
//! to a simulated cluster, run, and start `maestro agent` with flags the binary accepts; the
//! broker's apply and run with the very mosquitto.conf and ACL the transport tests use, and the
//! hub and agents point at its Service.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, Patch, PatchParams};
use maestro_sim::{SimCluster, SimOptions};
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
        "ConfigMap" => drop(parse::<ConfigMap>(file, doc)),
        "Secret" => drop(parse::<Secret>(file, doc)),
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
    maestro_net::install_crypto_provider();
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
            "Service" => drop(apply!(Service, Api::namespaced(client.clone(), &ns()))),
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
    let container = &pod.containers[0];
    let metrics = args.metrics_listen.expect("the agent serves metrics and probes in a pod");
    assert!(metrics.ip().is_unspecified(), "the kubelet probes the pod's address, not loopback");
    assert_eq!(i32::from(metrics.port()), port_named(container, "metrics"));
    assert_eq!(probe_path(container.liveness_probe.as_ref()), "/healthz");
    assert_eq!(probe_path(container.readiness_probe.as_ref()), "/readyz");
    let broker = reqwest::Url::parse(&args.mqtt_url).expect("--mqtt-url");
    let service = broker_service();
    let namespace = service.metadata.namespace.as_deref().unwrap();
    let name = service.metadata.name.as_deref().unwrap();
    assert_eq!(
        broker.host_str(),
        Some(format!("{name}.{namespace}.svc").as_str()),
        "the agent names the broker's Service"
    );
    assert_eq!(broker.port().map(i32::from), Some(service_port(&service)));
    let _ = sim.shutdown().await;
}

fn port_named(container: &Container, name: &str) -> i32 {
    let ports = container.ports.as_ref().expect("container ports");
    ports.iter().find(|p| p.name.as_deref() == Some(name)).unwrap_or_else(|| panic!("no port {name}")).container_port
}

fn probe_path(probe: Option<&Probe>) -> String {
    probe.and_then(|p| p.http_get.as_ref()).and_then(|g| g.path.clone()).expect("an HTTP probe")
}

fn mosquitto_dir() -> PathBuf {
    deploy_dir().join("mosquitto")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn broker_docs() -> Vec<(PathBuf, Value)> {
    let file = mosquitto_dir().join("broker.yaml");
    documents(&mosquitto_dir()).into_iter().filter(|(f, _)| *f == file).collect()
}

fn broker_service() -> Service {
    let (file, doc) = broker_docs().into_iter().find(|(_, d)| d["kind"] == "Service").expect("the broker's Service");
    parse(&file, &doc)
}

fn service_port(service: &Service) -> i32 {
    service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port
}

/// The ConfigMap kustomize generates from `configMapGenerator` (files of deploy/mosquitto).
fn generated_config_map() -> ConfigMap {
    let kustomization: Value = serde_yaml::from_str(&read(&mosquitto_dir().join("kustomization.yaml"))).unwrap();
    let generator = &kustomization["configMapGenerator"][0];
    assert_eq!(kustomization["generatorOptions"]["disableNameSuffixHash"], true, "broker.yaml names it as is");
    let data = generator["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().unwrap())
        .map(|f| (f.to_owned(), read(&mosquitto_dir().join(f))))
        .collect();
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(generator["name"].as_str().unwrap().to_owned()),
            namespace: kustomization["namespace"].as_str().map(str::to_owned),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// `directive value` of mosquitto.conf.
fn conf_value(conf: &str, directive: &str) -> String {
    conf.lines()
        .find_map(|l| l.strip_prefix(directive)?.strip_prefix(' ').map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("mosquitto.conf has no {directive}"))
}

/// Where the broker's container sees each file: mount path joined with the volume's item paths.
fn mounted_files(deployment: &Deployment) -> Vec<String> {
    let pod = deployment.spec.template.spec.as_ref().unwrap();
    let volumes = pod.volumes.as_ref().unwrap();
    let config_map = generated_config_map();
    let mut files = Vec::new();
    for mount in pod.containers[0].volume_mounts.as_ref().unwrap() {
        let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
        let mut names = Vec::new();
        if let Some(secret) = &volume.secret {
            names.extend(secret.items.iter().flatten().map(|i| i.path.clone()));
        }
        for source in volume.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(cm) = &source.config_map {
                assert_eq!(Some(&cm.name), config_map.metadata.name.as_ref(), "the generated ConfigMap is mounted");
                names.extend(config_map.data.iter().flat_map(|d| d.keys().cloned()));
            }
            if let Some(secret) = &source.secret {
                names.extend(secret.items.iter().flatten().map(|i| i.path.clone()));
            }
        }
        files.extend(names.into_iter().map(|n| format!("{}/{n}", mount.mount_path)));
    }
    files
}

#[test]
fn the_brokers_config_map_is_the_acl_and_config_the_tests_run_mosquitto_with() {
    let config_map = generated_config_map();
    let data = config_map.data.as_ref().unwrap();
    assert_eq!(data.get("acl"), Some(&read(&mosquitto_dir().join("acl"))));
    assert_eq!(data.get("mosquitto.conf"), Some(&read(&mosquitto_dir().join("mosquitto.conf"))));
    // What `kubectl apply -k deploy/hub` really sends, where kubectl (with kustomize) is installed.
    let Ok(output) = std::process::Command::new("kubectl").arg("kustomize").arg(deploy_dir().join("hub")).output()
    else {
        eprintln!("kubectl not installed: the rendered kustomization is not checked");
        return;
    };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rendered: Vec<Value> = serde_yaml::Deserializer::from_slice(&output.stdout)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("kustomize output"))
        .collect();
    let generated = rendered
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "maestro-mqtt-config")
        .expect("deploy/hub renders the broker's ConfigMap");
    assert_eq!(generated["data"]["acl"].as_str(), Some(read(&mosquitto_dir().join("acl")).as_str()));
    assert!(rendered.iter().any(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "maestro-mqtt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_manifests_apply_run_and_are_what_the_hub_connects_to() {
    maestro_net::install_crypto_provider();
    let sim =
        SimCluster::start(SimOptions { ready_delay: Duration::from_millis(100), ..Default::default() }).await.unwrap();
    let client = sim.client().unwrap();
    let params = PatchParams::apply("deploy-test").force();
    let hub_namespace = documents(&deploy_dir().join("hub"))
        .into_iter()
        .find(|(_, d)| d["kind"] == "Namespace")
        .map(|(f, d)| parse::<Namespace>(&f, &d))
        .expect("deploy/hub has the namespace");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.patch("maestro", &params, &Patch::Apply(&hub_namespace)).await.expect("namespace");
    let config_map = generated_config_map();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "maestro");
    config_maps.patch("maestro-mqtt-config", &params, &Patch::Apply(&config_map)).await.expect("ConfigMap");
    let mut deployment = None;
    for (file, doc) in broker_docs() {
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        assert_eq!(doc["metadata"]["namespace"], "maestro", "{}", file.display());
        match doc["kind"].as_str().unwrap() {
            "Service" => {
                let api: Api<Service> = Api::namespaced(client.clone(), "maestro");
                api.patch(&name, &params, &Patch::Apply(parse::<Service>(&file, &doc))).await.expect("Service");
            }
            "Deployment" => {
                let api: Api<Deployment> = Api::namespaced(client.clone(), "maestro");
                let typed = parse::<Deployment>(&file, &doc);
                deployment = Some(api.patch(&name, &params, &Patch::Apply(&typed)).await.expect("Deployment"));
            }
            other => panic!("unexpected kind {other} in deploy/mosquitto/broker.yaml"),
        }
    }
    let deployment = deployment.expect("the broker's Deployment");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "maestro");
    eventually("the broker Deployment ready", || async {
        (api.get("maestro-mqtt").await.ok()?.status?.ready_replicas? == 1).then_some(())
    })
    .await;

    // Every file mosquitto.conf names is mounted where it says.
    let conf = read(&mosquitto_dir().join("mosquitto.conf"));
    let files = mounted_files(&deployment);
    for directive in ["acl_file", "password_file", "cafile", "certfile", "keyfile"] {
        let path = conf_value(&conf, directive);
        assert!(files.contains(&path), "{directive} {path} is not mounted; mounted: {files:?}");
    }
    let container = &deployment.spec.template.spec.as_ref().unwrap().containers[0];
    assert!(container.command.as_ref().unwrap().contains(&"/mosquitto/config/mosquitto.conf".to_owned()));
    let service = broker_service();
    let listener: i32 = conf_value(&conf, "listener").parse().unwrap();
    assert_eq!(port_named(container, "mqtts"), listener);
    assert_eq!(service_port(&service), listener);

    // The hub connects to that Service as the user the ACL grants every consumer's topics.
    let (file, doc) = documents(&deploy_dir().join("hub"))
        .into_iter()
        .find(|(_, d)| d["kind"] == "Deployment" && d["metadata"]["name"] == "maestro-hub")
        .expect("the hub's Deployment");
    let hub = parse::<Deployment>(&file, &doc);
    let hub_container = &hub.spec.template.spec.as_ref().unwrap().containers[0];
    let env = |name: &str| {
        let vars = hub_container.env.as_ref().unwrap();
        vars.iter().find(|e| e.name == name).and_then(|e| e.value.clone()).unwrap_or_else(|| panic!("{name}"))
    };
    let url = reqwest::Url::parse(&env("MAESTRO_MQTT_URL")).expect("MAESTRO_MQTT_URL");
    assert_eq!(url.scheme(), "mqtts");
    assert_eq!(url.host_str(), service.metadata.name.as_deref());
    assert_eq!(url.port().map(i32::from), Some(listener));
    let acl = read(&mosquitto_dir().join("acl"));
    assert!(acl.lines().any(|l| l == format!("user {}", env("MAESTRO_MQTT_USERNAME"))), "the ACL knows the hub's user");
    // The shared-subscription group comes from the hub's Secret, never the well-known default.
    let group_file = env("MAESTRO_MQTT_SHARE_GROUP_FILE");
    let password_file = env("MAESTRO_MQTT_PASSWORD_FILE");
    assert_eq!(Path::new(&group_file).parent(), Path::new(&password_file).parent(), "mounted from the same Secret");
    let readme = read(&deploy_dir().join("README.md"));
    assert!(readme.contains("--from-file=share-group="), "deploy/README.md makes the secret group");
    let _ = sim.shutdown().await;
}
