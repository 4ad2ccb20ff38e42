//! `maestro operator` as a `kubectl kudo` user runs it, with the real binary against a
//! simulated cluster whose operator engine runs beside it (as `maestro dev` runs it).

use std::path::{Path, PathBuf};
use std::process::Output;

use maestro::cli::operator::run::EngineTask;
use maestro_sim::{SimCluster, SimOptions};

fn package(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/kudo/repository")
        .join(name)
        .join("operator")
}

struct Session {
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Session {
    /// A simulated cluster whose workloads get ready after `ready_ms`, and a session on it.
    async fn simulated(ready_ms: u64) -> (maestro_sim::RunningSim, Session) {
        // reqwest reads the metrics: the process's one rustls provider, as the binary installs it.
        maestro_net::install_crypto_provider();
        let options = SimOptions { ready_delay: std::time::Duration::from_millis(ready_ms), ..SimOptions::default() };
        let sim = SimCluster::start(options).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, sim.kubeconfig()).unwrap();
        (sim, Session { kubeconfig, dir })
    }

    async fn maestro(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
            .arg("operator")
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("RUST_BACKTRACE", "0")
            .output()
            .await
            .expect("maestro runs")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let output = self.maestro(args).await;
        assert!(output.status.success(), "maestro operator {args:?} failed:\n{}", text(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn fails(&self, args: &[&str]) -> String {
        let output = self.maestro(args).await;
        assert!(!output.status.success(), "maestro operator {args:?} should fail:\n{}", text(&output));
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_update_trigger_status_and_uninstall_as_kubectl_kudo_does() {
    let (sim, s) = Session::simulated(100).await;
    let engine = EngineTask::start(sim.client().unwrap(), "test", Default::default());
    let mysql = package("mysql");
    let mysql = mysql.to_str().unwrap();

    let installed = s.ok(&["install", mysql, "--instance", "db", "-n", "shop", "--create-namespace", "--wait"]).await;
    assert!(installed.contains("instance shop/db created"), "{installed}");
    assert!(installed.contains("plan deploy of db is COMPLETE"), "{installed}");

    let tree = s.ok(&["plan", "status", "--instance", "db", "-n", "shop"]).await;
    assert!(tree.contains("└── db (Operator-Version: \"mysql-5.7-0.3.0\")"), "{tree}");
    assert!(tree.contains("Plan deploy (serial strategy) [COMPLETE]"), "{tree}");
    assert!(tree.contains("Plan backup (serial strategy) [NOT ACTIVE]"), "{tree}");

    let updated = s.ok(&["update", "--instance", "db", "-n", "shop", "-p", "BACKUP_FILE=monday.sql", "--wait"]).await;
    assert!(updated.contains("plan backup of db is COMPLETE"), "{updated}");
    let triggered = s.ok(&["plan", "trigger", "--name", "restore", "--instance", "db", "-n", "shop", "--wait"]).await;
    assert!(triggered.contains("plan restore of db is COMPLETE"), "{triggered}");
    let history = s.ok(&["plan", "history", "--instance", "db", "-n", "shop"]).await;
    for plan in ["deploy", "backup", "restore"] {
        assert!(history.contains(plan), "{history}");
    }
    let json = s.ok(&["plan", "status", "--instance", "db", "-n", "shop", "-o", "json"]).await;
    let plans: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(plans["restore"]["status"], "COMPLETE");
    assert!(s.ok(&["get", "instances", "-n", "shop"]).await.contains("db "));

    // Bad input is refused before anything is written, naming what is wrong.
    let unknown = s.fails(&["update", "--instance", "db", "-n", "shop", "-p", "NOPE=1"]).await;
    assert!(unknown.contains("parameter \"NOPE\" is not declared"), "{unknown}");
    let again = s.fails(&["install", mysql, "--instance", "db", "-n", "shop"]).await;
    assert!(again.contains("instance \"db\" already exists"), "{again}");
    let missing = s.fails(&["plan", "status", "--instance", "nobody", "-n", "shop"]).await;
    assert!(missing.contains("instance \"nobody\" does not exist in namespace \"shop\""), "{missing}");
    let nowhere = s.fails(&["install", mysql, "-n", "elsewhere"]).await;
    assert!(nowhere.contains("namespace \"elsewhere\" does not exist"), "{nowhere}");

    let gone = s.ok(&["uninstall", "--instance", "db", "-n", "shop", "--wait"]).await;
    assert!(gone.contains("instance shop/db is gone"), "{gone}");
    engine.shutdown().await;
    sim.shutdown().await.unwrap();
}

/// Starts `maestro` with `args`, and reads from its stderr where it serves its metrics
/// (`metrics on URL`).
async fn with_metrics(args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(args)
        .env("MAESTRO_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap();
        let line = line.unwrap_or_else(|| panic!("maestro {} printed where its metrics are", args[0]));
        if let Some(url) = line.strip_prefix("metrics on ") {
            // Keep reading: a closed or full stderr would stop the child's logging, and it.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, url.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_run_is_the_engine_and_counts_what_it_did_on_metrics() {
    let (sim, s) = Session::simulated(50).await;
    let kubeconfig = s.kubeconfig.to_str().unwrap();
    let (mut engine, metrics) =
        with_metrics(&["operator", "run", "--metrics-listen", "127.0.0.1:0", "--kubeconfig", kubeconfig]).await;
    let first = package("first-operator");
    let installed = s.ok(&["install", first.to_str().unwrap(), "--instance", "web", "--wait"]).await;
    assert!(installed.contains("plan deploy of web is COMPLETE"), "{installed}");
    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    assert!(text.contains("maestro_operator_plans_total{plan=\"deploy\",event=\"started\"} 1"), "{text}");
    assert!(text.contains("maestro_operator_plans_total{plan=\"deploy\",event=\"complete\"} 1"), "{text}");
    assert!(text.contains("maestro_operator_reconciles_total{result=\"ok\"}"), "{text}");
    assert!(!text.contains("web"), "no Instance name in a label");
    engine.kill().await.unwrap();
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_with_operators_serves_the_engines_series_beside_its_own() {
    let (sim, s) = Session::simulated(50).await;
    let consumer = format!("opmetrics{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (kubeconfig, data) = (s.kubeconfig.to_str().unwrap(), s.dir.path().to_str().unwrap());
    let args = ["agent", "--operators", "--metrics-listen", "127.0.0.1:0", "--consumer", &consumer];
    let (mut agent, metrics) =
        with_metrics(&[&args[..], &["--kubeconfig", kubeconfig, "--data-dir", data]].concat()).await;
    let first = package("first-operator");
    let installed = s.ok(&["install", first.to_str().unwrap(), "--instance", "web", "--wait"]).await;
    assert!(installed.contains("plan deploy of web is COMPLETE"), "the agent's engine ran it: {installed}");
    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    assert!(text.contains("maestro_operator_plans_total{plan=\"deploy\",event=\"complete\"} 1"), "{text}");
    assert!(text.contains("maestro_agent_broker_connected"), "the agent's own series stay: {text}");
    assert!(!text.contains("maestro_agent_maestro_operator"), "the engine's series keep their prefix");
    agent.kill().await.unwrap();
    sim.shutdown().await.unwrap();
}
