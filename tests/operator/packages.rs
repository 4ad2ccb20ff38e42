//! KUDO's own packages (kudobuilder/operators) run on the simulator: each plan reaches the
//! status a KUDO user would see on a cluster.

use std::time::Duration;

use serde_json::json;

use crate::{Cluster, package_dir, tree};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_operator_deploys_its_deployment_and_completes() {
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install(&package_dir("first-operator/operator"), "default", Some(("first", &[]))).await;
    let plan = cluster.wait_plan("default", "first", "deploy", "COMPLETE").await;
    assert_eq!(tree(&plan), ["main=COMPLETE", "main.everything=COMPLETE"]);
    let deployment = cluster.object("apps/v1", "Deployment", "default", "nginx-deployment").await;
    let deployment = deployment.expect("the plan's Deployment exists");
    assert_eq!(deployment["metadata"]["labels"]["kudo.dev/instance"], "first");
    assert_eq!(deployment["metadata"]["ownerReferences"][0]["kind"], "Instance");
    let instance = cluster.instance("default", "first").await;
    assert!(instance.spec.plan_execution.plan_name.is_empty(), "a finished plan is no longer scheduled");
    let reasons: Vec<String> =
        cluster.events_once("default", "first", "PlanFinished").await.into_iter().map(|(r, _)| r).collect();
    assert_eq!(reasons, ["PlanStarted", "PlanFinished"]);
    let ready = instance.status.unwrap().conditions.into_iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("True"), Some("ResourcesReady")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_deploys_validates_and_a_parameter_change_runs_deploy_again() {
    let cluster = Cluster::start(Duration::from_millis(200)).await;
    cluster.install(&package_dir("zookeeper/operator"), "zk-ns", Some(("zk", &[("NODE_COUNT", "3")]))).await;
    let first = cluster.wait_plan("zk-ns", "zk", "deploy", "COMPLETE").await;
    assert!(tree(&first).iter().all(|s| s.ends_with("=COMPLETE")), "{:?}", tree(&first));
    let sts = cluster.object("apps/v1", "StatefulSet", "zk-ns", "zk-zookeeper").await.expect("the StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["template"]["metadata"]["annotations"]["kudo.dev/operator-version"], "0.3.3");
    let hash = sts["spec"]["template"]["metadata"]["annotations"]["kudo.dev/dependencies-hash"].clone();
    assert!(hash.is_string(), "the pod template carries the hash of its ConfigMaps: {sts}");

    // zookeeper has no update plan: a parameter without a trigger runs deploy again.
    cluster.patch_spec("zk-ns", "zk", json!({"parameters": {"NODE_COUNT": "5"}})).await;
    let again = crate::eventually("deploy runs again", || async {
        let instance = cluster.instance("zk-ns", "zk").await;
        let deploy = instance.status?.plan_status.get("deploy").cloned()?;
        (deploy.uid != first.uid && deploy.status == "COMPLETE").then_some(deploy)
    })
    .await;
    assert_ne!(again.uid, first.uid, "a new execution");
    let sts = cluster.object("apps/v1", "StatefulSet", "zk-ns", "zk-zookeeper").await.unwrap();
    assert_eq!(sts["spec"]["replicas"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_deploys() {
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install(&package_dir("redis/operator"), "redis", Some(("redis", &[]))).await;
    let plan = cluster.wait_plan("redis", "redis", "deploy", "COMPLETE").await;
    assert!(tree(&plan).iter().all(|s| s.ends_with("=COMPLETE")), "{:?}", tree(&plan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_deploys_and_a_changed_backup_file_runs_its_backup_plan() {
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install(&package_dir("mysql/operator"), "db", Some(("mysql", &[]))).await;
    let deploy = cluster.wait_plan("db", "mysql", "deploy", "COMPLETE").await;
    assert_eq!(
        tree(&deploy),
        ["deploy=COMPLETE", "deploy.deploy=COMPLETE", "deploy.init=COMPLETE", "deploy.cleanup=COMPLETE"]
    );
    assert!(cluster.object("batch/v1", "Job", "db", "deploy-job").await.is_none(), "the init Job was cleaned up");

    cluster.patch_spec("db", "mysql", json!({"parameters": {"BACKUP_FILE": "monday.sql"}})).await;
    let backup = cluster.wait_plan("db", "mysql", "backup", "COMPLETE").await;
    assert_eq!(
        tree(&backup),
        ["backup=COMPLETE", "backup.pv=COMPLETE", "backup.backup=COMPLETE", "backup.cleanup=COMPLETE"]
    );
    let instance = cluster.instance("db", "mysql").await;
    assert_eq!(instance.status.unwrap().plan_status["deploy"].uid, deploy.uid, "deploy did not run again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_on_zookeeper_stops_at_its_pipe_task_with_the_reason() {
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install(&package_dir("zookeeper/operator"), "kafka", Some(("zk", &[("NODE_COUNT", "1")]))).await;
    cluster.wait_plan("kafka", "zk", "deploy", "COMPLETE").await;
    let uri = [("ZOOKEEPER_URI", "zk-zookeeper-0.zk-hs:2181"), ("BROKER_COUNT", "1")];
    cluster.install(&package_dir("kafka/operator"), "kafka", Some(("kafka", &uri))).await;
    let plan = cluster.wait_plan("kafka", "kafka", "deploy", "FATAL_ERROR").await;
    let step = &plan.phases[0].steps[0];
    assert_eq!((step.name.as_str(), step.status.as_str()), ("generate-tls-certificates", "FATAL_ERROR"));
    assert!(step.message.contains("PipeTaskError") && step.message.contains("pods/exec"), "{}", step.message);
    assert!(step.message.contains("container runtime"), "the simulator's reason: {}", step.message);
    let events = cluster.events_once("kafka", "kafka", "FailedTerminalState").await;
    assert!(events.iter().any(|(reason, _)| reason == "FailedTerminalState"), "{events:?}");
    let instance = cluster.instance("kafka", "kafka").await;
    let ready = instance.status.unwrap().conditions.into_iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["reason"], "PlanInFatalError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_instances_deployments_and_pods_after_the_plan() {
    let cluster = Cluster::start(Duration::from_millis(100)).await;
    cluster.install(&package_dir("first-operator/operator"), "default", Some(("first", &[]))).await;
    cluster.wait_plan("default", "first", "deploy", "COMPLETE").await;
    wait_ready(&cluster, "True", "ResourcesReady", "").await;

    // Someone scales the Deployment: until the new generation is ready, the Instance is not.
    let scale = json!({"metadata": {"annotations": {"sim.maestro.io/ready-delay": "1s"}}, "spec": {"replicas": 2}});
    cluster.patch_object("apps/v1", "Deployment", "default", "nginx-deployment", scale).await;
    wait_ready(&cluster, "False", "ResourceNotReady", "nginx-deployment").await;
    wait_ready(&cluster, "True", "ResourcesReady", "").await;

    // A pod of the Instance (KUDO's labels) that is not running yet makes it unready too.
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "first-extra",
            "labels": {"heritage": "kudo", "kudo.dev/instance": "first"},
            "annotations": {"sim.maestro.io/ready-delay": "1s"},
        },
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    });
    cluster.patch_object("v1", "Pod", "default", "first-extra", pod).await;
    wait_ready(&cluster, "False", "ResourceNotReady", "first-extra").await;
    wait_ready(&cluster, "True", "ResourcesReady", "").await;
}

/// Waits until first's `Ready` condition has this status and reason and its message names `naming`.
async fn wait_ready(cluster: &Cluster, status: &str, reason: &str, naming: &str) {
    crate::eventually(&format!("Ready={status} ({reason}) naming {naming:?}"), || async {
        let instance = cluster.instance("default", "first").await;
        let ready = instance.status?.conditions.into_iter().find(|c| c["type"] == "Ready")?;
        let message = ready["message"].as_str().unwrap_or_default();
        (ready["status"] == status && ready["reason"] == reason && message.contains(naming)).then_some(())
    })
    .await;
}
