//! KUDO's kinds on a cluster: Maestro's CRDs for Operator, OperatorVersion and Instance load
//! into the API server, and kubectl sees the objects a package becomes, and an Instance as
//! KUDO's users write it.

use std::path::Path;

use maestro_package::{Limits, crd, read_path};

use crate::{Sim, eventually};

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    let (kubeconfig, args): (std::path::PathBuf, Vec<String>) =
        (kubeconfig.to_path_buf(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("kubectl")
            .arg("--cache-dir")
            .arg(kubeconfig.with_file_name("kube-cache"))
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("kubectl (Debian package kubectl) runs")
    })
    .await
    .unwrap()
}

fn text(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_kudo_objects_through_maestros_crds() {
    let s = Sim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, s.sim.kubeconfig()).unwrap();
    for (n, manifest) in crd::CRDS.iter().enumerate() {
        let file = dir.path().join(format!("crd-{n}.yaml"));
        std::fs::write(&file, manifest).unwrap();
        let applied = kubectl(&kubeconfig, &["apply", "--validate=false", "-f", file.to_str().unwrap()]).await;
        assert!(applied.status.success(), "{}", text(&applied));
    }

    let zookeeper =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/kudo/repository/zookeeper/operator");
    let (operator, version) = read_path(&zookeeper, &Limits::default()).unwrap().resources("default");
    let instance = serde_json::json!({
        "apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
        "metadata": {"name": "zk", "namespace": "default", "labels": {"kudo.dev/operator": "zookeeper"}},
        "spec": {"operatorVersion": {"name": version.metadata.name}, "parameters": {"NODE_COUNT": "3"}}
    });
    let objects = [serde_json::to_value(&operator).unwrap(), serde_json::to_value(&version).unwrap(), instance];
    let file = dir.path().join("objects.json");
    std::fs::write(
        &file,
        serde_json::to_string(&serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects})).unwrap(),
    )
    .unwrap();
    let applied = eventually("the kinds served", || async {
        let out = kubectl(&kubeconfig, &["apply", "--validate=false", "-f", file.to_str().unwrap()]).await;
        out.status.success().then_some(out)
    })
    .await;
    assert!(text(&applied).contains("instance.kudo.dev/zk"), "{}", text(&applied));

    let listed = kubectl(&kubeconfig, &["get", "instances", "-o", "json"]).await;
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let read: crd::Instance =
        serde_json::from_value(listed["items"][0].clone()).expect("an Instance as the engine reads it");
    assert_eq!(read.spec.operator_version.name, "zookeeper-3.6.2-0.3.3");
    assert_eq!(read.spec.parameters["NODE_COUNT"], "3");
    let versions = kubectl(&kubeconfig, &["get", "operatorversions"]).await;
    assert!(text(&versions).contains("zookeeper-3.6.2-0.3.3"), "{}", text(&versions));
    s.stop().await;
}
