//! `pods/exec` with `kubectl exec` as the client: refused with the reason where no container
//! runtime runs (the simulator's default), answered over the WebSocket exec protocol when a
//! test scripts what the command prints.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use maestro_sim::{ExecReply, ExecScript, SimOptions};

use crate::{Sim, eventually, json};

async fn running_pod(s: &Sim) {
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let pod = json(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}, {"name": "side", "image": "busybox"}]},
    }));
    pods.create(&PostParams::default(), &pod).await.unwrap_or_else(|e| panic!("create pod: {e}"));
    eventually("the pod runs", || async {
        let pod = pods.get("p").await.ok()?;
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
}

/// Runs `kubectl exec` (blocking, so off the runtime) and returns (exit code, stdout, stderr).
async fn kubectl_exec(s: &Sim, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, s.sim.kubeconfig()).unwrap_or_else(|e| panic!("{e}"));
    let mut command = std::process::Command::new("kubectl");
    command.arg("--cache-dir").arg(dir.join("cache")).arg("--request-timeout=20s").arg("exec").args(args);
    command.env("KUBECONFIG", &kubeconfig);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("kubectl: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_is_refused_with_the_reason_where_no_runtime_runs() {
    let s = Sim::start_with(SimOptions { ready_delay: Duration::from_millis(50), ..SimOptions::default() }).await;
    running_pod(&s).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (code, _, stderr) = kubectl_exec(&s, dir.path(), &["p", "-c", "app", "--", "cat", "/etc/hostname"]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("needs a container runtime"), "{stderr}");
    let (code, _, stderr) = kubectl_exec(&s, dir.path(), &["nothere", "--", "true"]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("not found"), "{stderr}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_commands_answer_kubectl_exec_with_output_and_exit_code() {
    let script = ExecScript::default()
        .on(&["cat", "/etc/hostname"], ExecReply { stdout: b"p\n".to_vec(), stderr: Vec::new(), exit_code: 0 })
        .on(&["false"], ExecReply { stdout: Vec::new(), stderr: b"nope\n".to_vec(), exit_code: 3 });
    let options = SimOptions { ready_delay: Duration::from_millis(50), exec: script, ..SimOptions::default() };
    let s = Sim::start_with(options).await;
    running_pod(&s).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (code, stdout, stderr) = kubectl_exec(&s, dir.path(), &["p", "-c", "app", "--", "cat", "/etc/hostname"]).await;
    assert_eq!((code, stdout.as_str()), (0, "p\n"), "{stderr}");
    let (code, _, stderr) = kubectl_exec(&s, dir.path(), &["p", "-c", "app", "--", "false"]).await;
    assert_eq!(code, 3, "the command's exit code: {stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    let (code, _, stderr) = kubectl_exec(&s, dir.path(), &["p", "-c", "nosuch", "--", "false"]).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("container nosuch is not valid for pod p"), "{stderr}");
    s.stop().await;
}
