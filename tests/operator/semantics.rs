//! KUDO's plan semantics on a small package of our own that exercises what the real packages
//! do not: cleanup on uninstall, immutable parameters, upgrades, plans triggered by hand,
//! render errors, a missing OperatorVersion, and an engine killed in the middle of a plan.

use std::path::Path;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject};
use serde_json::json;

use crate::{Cluster, eventually, tree};

const PARAMS: &str = r#"apiVersion: kudo.dev/v1beta1
parameters:
  - name: SIZE
    default: "1"
    immutable: true
  - name: GREETING
    default: "hello"
"#;

fn operator_yaml(version: &str, upgrade: bool) -> String {
    let upgrade_plan = if upgrade {
        "  upgrade:\n    strategy: serial\n    phases:\n      - name: up\n        strategy: serial\n        steps:\n          - name: mark\n            tasks: [upgraded]\n"
    } else {
        ""
    };
    format!(
        r#"apiVersion: kudo.dev/v1beta1
name: probe
operatorVersion: "{version}"
tasks:
  - name: config
    kind: Apply
    spec: {{resources: [config.yaml]}}
  - name: job
    kind: Apply
    spec: {{resources: [job.yaml]}}
  - name: marker
    kind: Apply
    spec: {{resources: [marker.yaml]}}
  - name: upgraded
    kind: Apply
    spec: {{resources: [upgraded.yaml]}}
  - name: broken
    kind: Apply
    spec: {{resources: [broken.yaml]}}
  - name: failing
    kind: Apply
    spec: {{resources: [failing.yaml]}}
  - name: waits
    kind: Dummy
    spec: {{done: false}}
plans:
  stuck:
    strategy: serial
    phases:
      - name: p
        strategy: serial
        steps:
          - name: first
            tasks: [config]
          - name: forever
            tasks: [waits]
          - name: after
            tasks: [upgraded]
  deploy:
    strategy: serial
    phases:
      - name: main
        strategy: serial
        steps:
          - name: config
            tasks: [config]
          - name: job
            tasks: [job]
  cleanup:
    strategy: serial
    phases:
      - name: cleanup
        strategy: serial
        steps:
          - name: marker
            tasks: [marker]
  broken:
    strategy: serial
    phases:
      - name: p
        strategy: serial
        steps:
          - name: s
            tasks: [broken]
  failing:
    strategy: serial
    phases:
      - name: p
        strategy: serial
        steps:
          - name: job
            tasks: [failing]
          - name: never
            tasks: [config]
{upgrade_plan}"#
    )
}

const TEMPLATES: [(&str, &str); 6] = [
    (
        "config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-config\ndata:\n  greeting: {{ .Params.GREETING }}\n",
    ),
    (
        "job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Name }}-job\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: c\n          image: busybox\n",
    ),
    (
        "marker.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {{ .Name }}-cleaned\nrules: []\n",
    ),
    ("upgraded.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-upgraded\n"),
    ("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Params.NOPE }}\n"),
    (
        "failing.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Name }}-failing\n  annotations:\n    sim.maestro.io/fail: \"true\"\nspec:\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: c\n          image: busybox\n",
    ),
];

/// Writes the probe package (version `version`, with an upgrade plan or not) under `root`.
fn probe(root: &Path, version: &str, upgrade: bool) -> std::path::PathBuf {
    let dir = root.join(format!("probe-{version}"));
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("operator.yaml"), operator_yaml(version, upgrade)).unwrap();
    std::fs::write(dir.join("params.yaml"), PARAMS).unwrap();
    for (name, text) in TEMPLATES {
        std::fs::write(dir.join("templates").join(name), text).unwrap();
    }
    dir
}

fn condition(instance: &maestro_package::crd::Instance, kind: &str) -> Option<serde_json::Value> {
    instance.status.as_ref()?.conditions.iter().find(|c| c["type"] == kind).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_engine_resumes_mid_plan_without_running_completed_steps_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(Duration::from_millis(1500)).await;
    cluster.install(&probe(dir.path(), "1.0.0", false), "default", Some(("p", &[]))).await;
    let started = cluster.wait_plan("default", "p", "deploy", "IN_PROGRESS").await;
    let plan = eventually("the config step done and the job step running", || async {
        let plan = cluster.instance("default", "p").await.status?.plan_status.get("deploy").cloned()?;
        (tree(&plan) == ["main=IN_PROGRESS", "main.config=COMPLETE", "main.job=IN_PROGRESS"]).then_some(plan)
    })
    .await;
    let waiting = &plan.phases[0].steps[1].message;
    assert_eq!(waiting, "waiting: job default/p-job still running or failed", "a running step says what it waits for");
    let running = plan.uid;
    assert_eq!(running, started.uid);
    cluster.kill_engine().await;

    // While the engine is down, the ConfigMap of the completed step disappears: were the step
    // run again, it would come back.
    let config_maps: Api<DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        "default",
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    config_maps.delete("p-config", &DeleteParams::default()).await.unwrap();
    cluster.start_engine();
    let done = cluster.wait_plan("default", "p", "deploy", "COMPLETE").await;
    assert_eq!(done.uid, running, "the same execution went on");
    assert!(cluster.object("v1", "ConfigMap", "default", "p-config").await.is_none(), "config did not run again");
    assert!(cluster.object("batch/v1", "Job", "default", "p-job").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_runs_cleanup_through_the_finalizer_and_removes_what_the_plans_applied() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(Duration::from_millis(50)).await;
    cluster.install(&probe(dir.path(), "1.0.0", false), "default", Some(("p", &[]))).await;
    cluster.wait_plan("default", "p", "deploy", "COMPLETE").await;
    let instance = cluster.instances("default").get("p").await.unwrap();
    assert_eq!(instance.metadata.finalizers, Some(vec!["kudo.dev.instance.cleanup".to_string()]));

    cluster.instances("default").delete("p", &DeleteParams::default()).await.unwrap();
    eventually("the instance gone", || async {
        cluster.instances("default").get_opt("p").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        cluster.object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "p-cleaned").await.is_some(),
        "cleanup ran"
    );
    eventually("owned objects collected", || async {
        cluster.object("v1", "ConfigMap", "default", "p-config").await.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_parameter_change_is_refused_visibly_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(Duration::from_millis(50)).await;
    cluster.install(&probe(dir.path(), "1.0.0", false), "default", Some(("p", &[]))).await;
    let deploy = cluster.wait_plan("default", "p", "deploy", "COMPLETE").await;
    cluster.patch_spec("default", "p", json!({"parameters": {"SIZE": "2"}})).await;
    let refused = eventually("the refusal", || async {
        let instance = cluster.instance("default", "p").await;
        condition(&instance, "SpecAccepted").filter(|c| c["status"] == "False")
    })
    .await;
    assert_eq!(refused["message"], "parameter \"SIZE\" is immutable");
    assert_eq!(refused["reason"], "ChangeRefused");
    let events = cluster.events_once("default", "p", "ChangeRefused").await;
    assert!(events.contains(&("ChangeRefused".into(), "parameter \"SIZE\" is immutable".into())), "{events:?}");
    let instance = cluster.instance("default", "p").await;
    assert_eq!(instance.status.as_ref().unwrap().plan_status["deploy"].uid, deploy.uid, "no plan ran");

    cluster.patch_spec("default", "p", json!({"parameters": {"SIZE": "1", "GREETING": "hi"}})).await;
    let again = eventually("deploy for the greeting", || async {
        let plan = cluster.instance("default", "p").await.status?.plan_status.get("deploy").cloned()?;
        (plan.uid != deploy.uid && plan.status == "COMPLETE").then_some(plan)
    })
    .await;
    assert_eq!(again.status, "COMPLETE");
    let accepted = condition(&cluster.instance("default", "p").await, "SpecAccepted").unwrap();
    assert_eq!(accepted["status"], "True");
    let config = cluster.object("v1", "ConfigMap", "default", "p-config").await.unwrap();
    assert_eq!(config["data"]["greeting"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_runs_the_new_versions_upgrade_plan() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(Duration::from_millis(50)).await;
    cluster.install(&probe(dir.path(), "1.0.0", false), "default", Some(("p", &[]))).await;
    cluster.wait_plan("default", "p", "deploy", "COMPLETE").await;
    cluster.install(&probe(dir.path(), "2.0.0", true), "default", None).await;
    cluster.patch_spec("default", "p", json!({"operatorVersion": {"name": "probe-2.0.0"}})).await;
    let upgrade = cluster.wait_plan("default", "p", "upgrade", "COMPLETE").await;
    assert_eq!(tree(&upgrade), ["up=COMPLETE", "up.mark=COMPLETE"]);
    let marker = cluster.object("v1", "ConfigMap", "default", "p-upgraded").await.unwrap();
    assert_eq!(marker["metadata"]["annotations"]["kudo.dev/plan"], "upgrade");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_triggered_by_hand_runs_and_a_render_error_ends_it_naming_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(Duration::from_millis(50)).await;
    cluster.install(&probe(dir.path(), "1.0.0", false), "default", Some(("p", &[]))).await;
    cluster.wait_plan("default", "p", "deploy", "COMPLETE").await;
    cluster.patch_spec("default", "p", json!({"planExecution": {"planName": "broken", "uid": "by-hand-1"}})).await;
    let broken = cluster.wait_plan("default", "p", "broken", "FATAL_ERROR").await;
    assert_eq!(broken.uid, "by-hand-1", "the uid the user gave");
    let message = &broken.phases[0].steps[0].message;
    assert!(message.starts_with("TaskRenderingError: task broken.p.s.broken:"), "{message}");
    assert!(message.contains("broken.yaml") && message.contains("NOPE"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_of_a_missing_version_says_so_and_deploys_once_the_version_exists() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(Duration::from_millis(50)).await;
    cluster.namespace("team").await;
    let instance = json!({
        "apiVersion": "kudo.dev/v1beta1", "kind": "Instance",
        "metadata": {"name": "early", "namespace": "team"},
        "spec": {"operatorVersion": {"name": "probe-1.0.0"}},
    });
    let api = cluster.instances("team");
    eventually("the instance created", || async {
        let object: DynamicObject = serde_json::from_value(instance.clone()).unwrap();
        api.create(&Default::default(), &object).await.ok()
    })
    .await;
    let missing = eventually("the missing version reported", || async {
        condition(&cluster.instance("team", "early").await, "SpecAccepted").filter(|c| c["status"] == "False")
    })
    .await;
    assert_eq!(missing["reason"], "InvalidOperatorVersion");
    assert!(missing["message"].as_str().unwrap().contains("probe-1.0.0"), "{missing}");
    cluster.install(&probe(dir.path(), "1.0.0", false), "team", None).await;
    cluster.wait_plan("team", "early", "deploy", "COMPLETE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_for_good_ends_its_plan_and_later_steps_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(Duration::from_millis(50)).await;
    cluster.install(&probe(dir.path(), "1.0.0", false), "default", Some(("p", &[]))).await;
    cluster.wait_plan("default", "p", "deploy", "COMPLETE").await;
    cluster.patch_spec("default", "p", json!({"planExecution": {"planName": "failing", "uid": "by-hand-2"}})).await;
    let failed = cluster.wait_plan("default", "p", "failing", "FATAL_ERROR").await;
    assert_eq!(tree(&failed), ["p=FATAL_ERROR", "p.job=FATAL_ERROR", "p.never=PENDING"]);
    let message = &failed.phases[0].steps[0].message;
    assert!(message.contains("p-failing") && message.contains("backoff limit"), "{message}");
    let events = cluster.events_once("default", "p", "FailedTerminalState").await;
    assert!(events.iter().any(|(reason, m)| reason == "FailedTerminalState" && m.contains("failing")), "{events:?}");
    let ready = condition(&cluster.instance("default", "p").await, "Ready").unwrap();
    assert_eq!(ready["reason"], "PlanInFatalError");
}

/// The probe package deployed as Instance `p`, and how the CLI reaches its cluster.
async fn deployed_probe(dir: &Path) -> (Cluster, maestro::cli::operator::cluster::ClusterArgs) {
    let cluster = Cluster::start(Duration::from_millis(50)).await;
    cluster.install(&probe(dir, "1.0.0", false), "default", Some(("p", &[]))).await;
    cluster.wait_plan("default", "p", "deploy", "COMPLETE").await;
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.sim.kubeconfig()).unwrap();
    let on = maestro::cli::operator::cluster::ClusterArgs { kubeconfig: Some(kubeconfig), namespace: "default".into() };
    (cluster, on)
}

/// Waits until execution `uid` of the `stuck` plan runs its step that never finishes.
async fn stuck_at_forever(cluster: &Cluster, uid: &str) {
    eventually("the stuck step running", || async {
        let plan = cluster.instance("default", "p").await.status?.plan_status.get("stuck").cloned()?;
        let running = ["p=IN_PROGRESS", "p.first=COMPLETE", "p.forever=IN_PROGRESS", "p.after=PENDING"];
        (plan.uid == uid && tree(&plan) == running).then_some(())
    })
    .await
}

/// Waits until no plan is scheduled on `p`; returns it then.
async fn idle(cluster: &Cluster) -> maestro_package::crd::Instance {
    eventually("planExecution cleared", || async {
        let instance = cluster.instance("default", "p").await;
        instance.spec.plan_execution.plan_name.is_empty().then_some(instance)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoning_a_stuck_plan_ends_it_where_it_stands_and_frees_the_instance() {
    use maestro::cli::operator::install::{InstanceArgs, WaitArgs, abandon};
    let dir = tempfile::tempdir().unwrap();
    let (cluster, on) = deployed_probe(dir.path()).await;
    let args = InstanceArgs { instance: "p".into(), wait: WaitArgs { wait: true, wait_time: 60 }, cluster: on };
    let idle_error = abandon(&args).await.unwrap_err().to_string();
    assert!(idle_error.contains("no plan is running on default/p"), "{idle_error}");

    cluster.patch_spec("default", "p", json!({"planExecution": {"planName": "stuck", "uid": "u-stuck"}})).await;
    stuck_at_forever(&cluster, "u-stuck").await;
    abandon(&args).await.unwrap();
    let plan = cluster.instance("default", "p").await.status.unwrap().plan_status["stuck"].clone();
    assert_eq!(tree(&plan), ["p=FATAL_ERROR", "p.first=COMPLETE", "p.forever=FATAL_ERROR", "p.after=PENDING"]);
    assert!(plan.phases[0].steps[1].message.starts_with("abandoned"), "{}", plan.phases[0].steps[1].message);
    assert!(cluster.object("v1", "ConfigMap", "default", "p-upgraded").await.is_none(), "later steps never ran");
    let events = cluster.events_once("default", "p", "PlanAbandoned").await;
    assert!(events.iter().any(|(reason, _)| reason == "FailedTerminalState"), "{events:?}");
    let freed = idle(&cluster).await;
    assert!(freed.spec.plan_execution.status.is_empty());

    // The Instance takes plans again.
    cluster.patch_spec("default", "p", json!({"planExecution": {"planName": "deploy", "uid": "u-again"}})).await;
    let again = cluster.wait_plan("default", "p", "deploy", "COMPLETE").await;
    assert_eq!(again.uid, "u-again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_plan_is_retried_from_its_first_unfinished_step_or_from_the_start() {
    use maestro::cli::operator::install::{InstanceArgs, RetryArgs, WaitArgs, abandon, retry};
    let dir = tempfile::tempdir().unwrap();
    let (cluster, on) = deployed_probe(dir.path()).await;
    let no_wait = || WaitArgs { wait: false, wait_time: 60 };
    let retry_args = |from_start| RetryArgs { instance: "p".into(), from_start, wait: no_wait(), cluster: on.clone() };
    let abandon_args =
        || InstanceArgs { instance: "p".into(), wait: WaitArgs { wait: true, wait_time: 60 }, cluster: on.clone() };
    let complete = retry(&retry_args(false)).await.unwrap_err().to_string();
    assert!(complete.contains("deploy, is COMPLETE: only a plan that ended in FATAL_ERROR is retried"), "{complete}");

    cluster.patch_spec("default", "p", json!({"planExecution": {"planName": "stuck", "uid": "u-1"}})).await;
    stuck_at_forever(&cluster, "u-1").await;
    let running = retry(&retry_args(false)).await.unwrap_err().to_string();
    assert!(running.contains("plan stuck is running on default/p: abandon it first"), "{running}");
    abandon(&abandon_args()).await.unwrap();
    idle(&cluster).await;

    // Resumed where it stopped: the completed first step does not run again.
    let config_maps: Api<DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        "default",
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    config_maps.delete("p-config", &DeleteParams::default()).await.unwrap();
    retry(&retry_args(false)).await.unwrap();
    stuck_at_forever(&cluster, "u-1").await;
    let events = cluster.events_once("default", "p", "PlanRetried").await;
    assert!(events.iter().any(|(_, m)| m.contains("plan stuck runs again")), "{events:?}");
    assert!(cluster.object("v1", "ConfigMap", "default", "p-config").await.is_none(), "first did not run again");
    let instance = cluster.instance("default", "p").await;
    assert!(!instance.metadata.annotations.contains_key("maestro.io/retry"), "the request is consumed");

    // From the start: a new execution, the first step runs again.
    abandon(&abandon_args()).await.unwrap();
    idle(&cluster).await;
    retry(&retry_args(true)).await.unwrap();
    eventually("a new execution past its first step", || async {
        let plan = cluster.instance("default", "p").await.status?.plan_status.get("stuck").cloned()?;
        (plan.uid != "u-1" && plan.phases[0].steps[0].status == "COMPLETE").then_some(())
    })
    .await;
    assert!(cluster.object("v1", "ConfigMap", "default", "p-config").await.is_some(), "first ran again");
}
