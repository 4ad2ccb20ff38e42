//! `maestro test` as a package author runs it: KUDO's own suite file from kudobuilder/operators
//! on the built-in simulated cluster with `--kudo-compat`, and a suite against a separately
//! started `maestro sim-cluster` through `--kubeconfig` (the path a real cluster takes).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kudo")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

async fn maestro(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(args)
        .current_dir(dir)
        .env("MAESTRO_LOG", "warn")
        .env_remove("MAESTRO_OPERATOR_REPO")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kudos_own_suite_passes_zookeeper_and_stops_kafka_at_its_pipe_task_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("kudo");
    copy_dir(&shared(), &suite);
    // The flink demo's pinned dependencies, which KUDO fetched from its community repository.
    let history = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/kuttl/history");
    for package in ["zookeeper-0.3.1", "kafka-1.3.1"] {
        copy_dir(&history.join(package), &suite.join("repository").join(package));
    }
    let out = dir.path().join("out");
    let args = ["test", "--config", "kuttl-test.yaml", "--kudo-compat", "--report", "junit", "--artifacts-dir"];
    let output = maestro(&suite, &[&args[..], &[out.to_str().unwrap()]].concat()).await;
    let text = text(&output);
    assert!(!output.status.success(), "kafka cannot pass on the simulator: {text}");
    assert!(text.contains("a simulated cluster stands in for it"), "startKIND said: {text}");
    assert!(text.contains("kubectl-kudo init --unsafe-self-signed-webhook-ca --wait: skipped"), "{text}");
    assert!(text.contains("./bin/kubectl-kudo install --skip-instance ./repository/zookeeper/operator/ ->"), "{text}");
    assert!(text.contains("--- PASS: ./repository/zookeeper/tests/zookeeper-upgrade-test"), "{text}");
    assert!(text.contains("--- FAIL: ./repository/kafka/tests/kafka-upgrade-test"), "{text}");
    let kafka = &text[text.find("--- FAIL: ./repository/kafka").unwrap()..];
    assert!(kafka.contains("step 00-install ok"), "zookeeper 0.3.1 for kafka deploys: {kafka}");
    assert!(kafka.contains("plan deploy of Instance kafka ended in FATAL_ERROR"), "{kafka}");
    assert!(kafka.contains("PipeTaskError") && kafka.contains("pods/exec"), "{kafka}");
    assert!(!kafka.contains("not met within"), "the reason, not a timeout: {kafka}");
    let junit = std::fs::read_to_string(out.join("kuttl-report.xml")).expect("the JUnit report");
    assert!(junit.contains("name=\"zookeeper-upgrade-test\""), "{junit}");
    assert!(junit.contains("<failure message=\"step 01-install: plan deploy of Instance kafka"), "{junit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_runs_against_a_separately_started_sim_cluster_through_its_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["sim-cluster", "--ready-delay", "100ms", "--kubeconfig-dir"])
        .arg(dir.path().join("kube"))
        .env("MAESTRO_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cluster.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
    let kubeconfig = line.split_whitespace().nth(2).expect("`<name> <url> <kubeconfig>`").to_string();

    let case = dir.path().join("tests/web");
    std::fs::create_dir_all(&case).unwrap();
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n";
    std::fs::write(case.join("00-install.yaml"), deployment).unwrap();
    std::fs::write(
        case.join("00-assert.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nstatus:\n  readyReplicas: 1\n",
    )
    .unwrap();
    let output = maestro(dir.path(), &["test", "tests", "--kubeconfig", &kubeconfig, "--report", "json"]).await;
    let text = text(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("--- PASS: tests/web") && text.contains("PASS: 1 passed, 0 failed"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("kuttl-report.json")).unwrap()).unwrap();
    assert_eq!(json["cases"][0]["name"], "web");
    assert_eq!(json["cases"][0]["steps"][0]["failure"], serde_json::Value::Null);
    cluster.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_flag_or_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("suite.yaml"), "apiVersion: v1\nkind: ConfigMap\n").unwrap();
    let output = maestro(dir.path(), &["test", "--config", "suite.yaml"]).await;
    assert!(!output.status.success());
    assert!(text(&output).contains("--config suite.yaml: not a TestSuite"), "{}", text(&output));
    let output = maestro(dir.path(), &["test"]).await;
    assert!(text(&output).contains("no test folder"), "{}", text(&output));
    std::fs::create_dir_all(dir.path().join("tests/a")).unwrap();
    std::fs::write(dir.path().join("tests/a/00-install.yaml"), "kind: ConfigMap\n").unwrap();
    let output = maestro(dir.path(), &["test", "tests"]).await;
    assert!(
        text(&output).contains("00-install.yaml, document 1: an object needs apiVersion and kind"),
        "{}",
        text(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_file_names_its_folders_and_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let suite = "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\ntestDirs: [./cases]\nreportFormat: XML\nreportName: nightly\nartifactsDir: ./artifacts\ntimeout: 20\n";
    std::fs::create_dir_all(dir.path().join("suite/cases/one")).unwrap();
    std::fs::write(dir.path().join("suite/kuttl-test.yaml"), suite).unwrap();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata: {a: b}\n";
    std::fs::write(dir.path().join("suite/cases/one/00-install.yaml"), cm).unwrap();
    std::fs::write(dir.path().join("suite/cases/one/00-assert.yaml"), cm).unwrap();
    // Run from elsewhere: the suite's paths start at its own folder.
    let output = maestro(dir.path(), &["test", "--config", "suite/kuttl-test.yaml"]).await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("--- PASS: ./cases/one"), "{}", text(&output));
    let junit = std::fs::read_to_string(dir.path().join("suite/artifacts/nightly.xml")).expect("the suite's report");
    assert!(junit.contains("<testcase classname=\"./cases\" name=\"one\""), "{junit}");
}
