//! `maestro sim-cluster` as a person runs it: the real binary serving simulated clusters, each
//! with a kubeconfig that `kube` loads and uses.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn client_from(path: &Path) -> anyhow::Result<kube::Client> {
    maestro_net::install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_cluster_serves_several_clusters_each_with_a_kubeconfig_kube_can_use() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["sim-cluster", "--clusters", "2", "--ready-delay", "0s", "--kubeconfig-dir"])
        .arg(dir.path().join("kube"))
        .env("MAESTRO_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut clusters = Vec::new();
    while clusters.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("sim-cluster exited before printing its clusters"))?;
        let cells: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        assert_eq!(cells.len(), 3, "expected `<name> <url> <kubeconfig>`, got {line:?}");
        clusters.push(cells);
    }
    assert_eq!([clusters[0][0].as_str(), clusters[1][0].as_str()], ["sim-1", "sim-2"]);
    assert_ne!(clusters[0][1], clusters[1][1], "each cluster has its own address");

    for (i, cells) in clusters.iter().enumerate() {
        let client = client_from(Path::new(&cells[2])).await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let names: Vec<String> =
            namespaces.list(&Default::default()).await?.items.iter().map(|n| n.name_any()).collect();
        assert!(names.contains(&"default".to_owned()), "{names:?}");
        // The kubeconfig's namespace is `default`, so a default-namespaced Api works.
        let cms: Api<ConfigMap> = Api::default_namespaced(client);
        let cm: ConfigMap = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}}),
        )?;
        cms.create(&PostParams::default(), &cm).await?;
        let listed: Vec<String> = cms.list(&Default::default()).await?.items.iter().map(|c| c.name_any()).collect();
        assert_eq!(listed, [format!("c{i}")], "clusters must not share objects");
    }
    child.start_kill()?;
    child.wait().await?;
    Ok(())
}

#[tokio::test]
async fn sim_cluster_refuses_a_zero_cluster_count() -> anyhow::Result<()> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["sim-cluster", "--clusters", "0"])
        .stdin(Stdio::null())
        .output()
        .await?;
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr)?;
    assert!(stderr.contains("--clusters"), "{stderr}");
    Ok(())
}
