//! `Pipe` tasks (KUDO's cowsay package): the pipe pod, the file copied out through pods/exec,
//! the artifact later steps mount. The simulator runs no containers, so by default exec is
//! refused and the task must say so; with exec's answers scripted (as a container would print
//! them), the whole task runs over the real WebSocket exec protocol.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maestro_sim::{ExecReply, ExecScript, SimOptions};

use super::{Cluster, package_dir, tree};

const POD: &str = "moo.deploy.main.genfiles.genwww.pipepod";
const ARTIFACT: &str = "moo.deploy.main.genfiles.genwww.indexhtml";
const CAT: [&str; 2] = ["cat", "/tmp/index.html"];

async fn cowsay(exec: ExecScript) -> Cluster {
    let options = SimOptions { ready_delay: Duration::from_millis(100), exec, ..SimOptions::default() };
    let cluster = Cluster::start_with(options).await;
    cluster.install(&package_dir("cowsay/operator"), "cow", Some(("moo", &[]))).await;
    cluster
}

fn printed(stdout: &[u8], stderr: &[u8], exit_code: i32) -> ExecReply {
    ExecReply { stdout: stdout.to_vec(), stderr: stderr.to_vec(), exit_code }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copied_file_becomes_the_config_map_the_next_step_mounts() {
    let page = b"<pre> moo </pre>\n";
    let cluster = cowsay(ExecScript::default().on(&CAT, printed(page, b"", 0))).await;
    let plan = cluster.wait_plan("cow", "moo", "deploy", "COMPLETE").await;
    assert_eq!(tree(&plan), ["main=COMPLETE", "main.genfiles=COMPLETE", "main.app=COMPLETE"]);

    let artifact = cluster.object("v1", "ConfigMap", "cow", ARTIFACT).await.expect("the pipe's ConfigMap");
    assert_eq!(artifact["binaryData"]["index.html"], STANDARD.encode(page), "the file, byte for byte");
    assert_eq!(artifact["metadata"]["ownerReferences"][0]["kind"], "Instance", "collected with the Instance");
    assert_eq!(artifact["metadata"]["labels"]["kudo.dev/instance"], "moo");
    let deployment = cluster.object("apps/v1", "Deployment", "cow", "moo-deployment").await.expect("the app step ran");
    assert_eq!(deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"], ARTIFACT, ".Pipes.indexHtml");
    super::eventually("the pipe pod deleted once copied", || async {
        cluster.object("v1", "Pod", "cow", POD).await.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_container_runtime_the_task_fails_with_the_servers_reason() {
    let cluster = cowsay(ExecScript::default()).await;
    let plan = cluster.wait_plan("cow", "moo", "deploy", "FATAL_ERROR").await;
    assert_eq!(tree(&plan), ["main=FATAL_ERROR", "main.genfiles=FATAL_ERROR", "main.app=PENDING"]);
    let message = &plan.phases[0].steps[0].message;
    assert!(message.contains("PipeTaskError") && message.contains(POD), "{message}");
    assert!(message.contains("/tmp/index.html") && message.contains("container runtime"), "{message}");
    assert!(cluster.object("apps/v1", "Deployment", "cow", "moo-deployment").await.is_none());

    // The pipe pod is KUDO's: marked, a waiter sharing the init container's volume, owned by
    // the Instance; it stays for inspection as the plan failed before copying.
    let pod = cluster.object("v1", "Pod", "cow", POD).await.expect("the pipe pod was applied");
    assert_eq!(pod["metadata"]["annotations"]["kudo.dev/pipepod"], "true");
    assert_eq!(pod["status"]["phase"], "Running", "exec was tried only once the pod ran");
    let waiter = &pod["spec"]["containers"][0];
    assert_eq!((waiter["name"].as_str(), waiter["image"].as_str()), (Some("waiter"), Some("busybox")));
    assert_eq!(waiter["volumeMounts"][0]["mountPath"], "/tmp");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Instance");
    assert!(cluster.object("v1", "ConfigMap", "cow", ARTIFACT).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_copy_or_an_oversized_file_ends_the_plan_naming_it() {
    let missing = printed(b"", b"cat: can't open '/tmp/index.html': No such file or directory\n", 1);
    let cluster = cowsay(ExecScript::default().on(&CAT, missing)).await;
    let plan = cluster.wait_plan("cow", "moo", "deploy", "FATAL_ERROR").await;
    let message = &plan.phases[0].steps[0].message;
    assert!(message.contains("exit status 1") && message.contains("No such file or directory"), "{message}");
    assert!(cluster.object("v1", "ConfigMap", "cow", ARTIFACT).await.is_none());

    let huge = vec![b'x'; 1024 * 1024 + 1];
    let cluster = cowsay(ExecScript::default().on(&CAT, printed(&huge, b"", 0))).await;
    let plan = cluster.wait_plan("cow", "moo", "deploy", "FATAL_ERROR").await;
    let message = &plan.phases[0].steps[0].message;
    assert!(message.contains("/tmp/index.html is larger than the limit of 1048576 bytes"), "{message}");
    assert!(cluster.object("v1", "ConfigMap", "cow", ARTIFACT).await.is_none());
}
