//! The universal operator in a fleet: a KUDO package's Operator, OperatorVersion and Instance
//! shipped from the hub as one bundle; the cluster's engine (as `maestro agent --operators`
//! runs it) runs the plan; the hub reads the plan's status as feedback on the Instance.

use std::path::Path;

use maestro::cli::operator::run::EngineTask;
use maestro_package::{Limits, read_path};
use serde_json::json;

use crate::fleet::{Fleet, manifest_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_shipped_in_a_bundle_runs_its_plan_and_the_hub_reads_its_status() {
    let fleet = Fleet::start().await;
    let engine = EngineTask::start(fleet.cluster_client(), "cluster", Default::default());
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/kudo/repository/first-operator/operator");
    let (operator, version) = read_path(&dir, &Limits::default()).unwrap().resources("default");
    let instance = json!({
        "apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
        "metadata": {"name": "first", "namespace": "default", "labels": {"kudo.dev/operator": "first-operator"}},
        "spec": {"operatorVersion": {"name": version.metadata.name}},
    });
    let feedback = json!({
        "resourceIdentifier": {"group": "kudo.dev", "resource": "instances", "name": "first", "namespace": "default"},
        "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "deploy", "path": ".status.planStatus.deploy.status"}]}],
    });
    let bundle = json!({
        "manifests": [serde_json::to_value(&operator).unwrap(), serde_json::to_value(&version).unwrap(), instance],
        "manifest_configs": [feedback],
    });
    let id = fleet.create_bundle("first-operator", bundle).await;
    let status = fleet
        .bundle_status(&id, "the deploy plan COMPLETE as feedback", |s| {
            manifest_status(s, "first").is_some_and(|r| {
                r["statusFeedback"]["values"][0]["fieldValue"] == json!({"type": "String", "string": "COMPLETE"})
            })
        })
        .await;
    assert!(manifest_status(&status, "first").is_some());
    let deployment = fleet.deployments().get_opt("nginx-deployment").await.unwrap();
    assert!(deployment.is_some(), "the plan's Deployment is in the cluster");
    engine.shutdown().await;
    fleet.stop().await;
}
