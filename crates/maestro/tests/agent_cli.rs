//! `maestro agent` as an operator starts it: bad settings are refused with a message naming
//! the flag, before anything connects.

use std::process::Command;

fn maestro() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maestro"))
}

#[test]
fn a_missing_kubeconfig_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = maestro()
        .args(["agent", "--consumer", "cluster1", "--kubeconfig", "/nonexistent/kubeconfig", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--kubeconfig /nonexistent/kubeconfig"), "{stderr}");
}

/// Runs `maestro agent ARGS` with a kubeconfig (of an API server nobody serves) and a data
/// dir, expects it to refuse to start, and returns what it said.
fn refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, maestro_sim::kubeconfig("sim", "http://127.0.0.1:9")).expect("write kubeconfig");
    let output = maestro()
        .arg("agent")
        .args(args)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_consumer_name_that_cannot_be_a_topic_level_is_refused() {
    let stderr = refused(&["--consumer", "a/b"]);
    assert!(stderr.contains("consumer name \"a/b\""), "{stderr}");
}

#[test]
fn the_agent_is_a_documented_command_with_every_flag() {
    let output = maestro().args(["agent", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--consumer",
        "--kubeconfig",
        "--mqtt-url",
        "--mqtt-username",
        "--mqtt-password-file",
        "--mqtt-ca-file",
        "--mqtt-cert-file",
        "--mqtt-key-file",
        "--source",
        "--data-dir",
        "--plugin-dir",
        "--metrics-listen",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_taken_metrics_address_is_refused_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let stderr = refused(&["--consumer", "cluster1", "--metrics-listen", &addr]);
    assert!(stderr.contains(&format!("--metrics-listen {addr}")), "{stderr}");
}
