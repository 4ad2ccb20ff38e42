//! `maestro dev` as the README's first hour uses it: one command, then an operator package
//! installed on one of its simulated clusters with the kubeconfig it printed, its plan run by
//! the engine `maestro dev` runs beside each agent.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

async fn maestro(dir: &Path, args: &[&str]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .expect("maestro runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "maestro {args:?} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maestro_dev_runs_an_operator_package_on_its_simulated_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["dev", "--bind", "127.0.0.1:0", "--clusters", "1"])
        .env("MAESTRO_DATA_DIR", dir.path().join("data"))
        .env("MAESTRO_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(dev.stderr.take().unwrap()).lines();
    let kubeconfig = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap();
        let line = line.expect("maestro dev printed its clusters' kubeconfigs before exiting");
        if let Some(path) = line.trim().strip_prefix("kubeconfig ") {
            break PathBuf::from(path);
        }
    };
    assert_eq!(kubeconfig, dir.path().join("data/dev-clusters/cluster1.kubeconfig"));
    let kubeconfig = kubeconfig.to_str().unwrap();

    maestro(dir.path(), &["package", "new", "demo"]).await;
    let installed = maestro(dir.path(), &["operator", "install", "demo", "--kubeconfig", kubeconfig, "--wait"]).await;
    assert!(installed.contains("plan deploy of demo-instance is COMPLETE"), "{installed}");
    let status =
        maestro(dir.path(), &["operator", "plan", "status", "--instance", "demo-instance", "--kubeconfig", kubeconfig])
            .await;
    assert!(status.contains("Plan deploy (serial strategy) [COMPLETE]"), "{status}");
    dev.kill().await.unwrap();
}
