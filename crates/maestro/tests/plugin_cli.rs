//! `maestro plugin new|check|run` as a plugin author uses them: scaffold in each language,
//! build with that language's real tool chain, then check and run the component with the
//! real binary. The Python and JavaScript tools are the ones `scripts/build-plugins` installs
//! under `target/tools/` (`scripts/test` runs it first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn maestro(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maestro")).args(args).current_dir(dir).output().expect("maestro runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn run_ok(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|err| panic!("{what}: {err}"));
    assert!(output.status.success(), "{what} failed:\n{}", text(&output));
}

/// A tool installed by `scripts/build-plugins`.
fn tool(relative: &str) -> PathBuf {
    let path = repo().join("target/tools").join(relative);
    assert!(path.exists(), "{} is missing: run scripts/build-plugins first", path.display());
    path
}

fn scaffold(world: &str, name: &str, lang: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = maestro(&["plugin", "new", world, name, "--lang", lang], tmp.path());
    assert!(out.status.success(), "plugin new failed: {}", text(&out));
    let dir = tmp.path().join(name);
    assert!(dir.join("wit/maestro-plugin.wit").exists(), "the scaffold carries the WIT");
    (tmp, dir)
}

/// Builds a Rust scaffold as its README says, with the repository's pinned dependency
/// versions and a shared target directory so that repeated runs reuse compiled crates.
fn build_rust(dir: &Path) -> PathBuf {
    std::fs::copy(repo().join("plugins/Cargo.lock"), dir.join("Cargo.lock")).expect("copy lock");
    let target = repo().join("target/scaffold-test");
    run_ok(Command::new("cargo").arg("test").current_dir(dir).env("CARGO_TARGET_DIR", &target), "cargo test (native)");
    run_ok(
        Command::new("cargo")
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &target),
        "cargo build (wasm32-wasip2)",
    );
    let name = dir.file_name().and_then(|n| n.to_str()).expect("utf-8 name").replace('-', "_");
    target.join(format!("wasm32-wasip2/release/{name}.wasm"))
}

fn build_python(dir: &Path, world: &str, name: &str) -> PathBuf {
    run_ok(
        Command::new(tool("py/bin/componentize-py"))
            .args(["-d", "wit", "-w", world, "componentize", "app", "-o", &format!("{name}.wasm")])
            .current_dir(dir),
        "componentize-py",
    );
    dir.join(format!("{name}.wasm"))
}

fn build_js(dir: &Path, world: &str, name: &str) -> PathBuf {
    run_ok(
        Command::new(tool("js/node_modules/.bin/componentize-js"))
            .args(["app.js", "--wit", "wit", "-n", world, "-d", "http", "fetch-event", "-o", &format!("{name}.wasm")])
            .current_dir(dir),
        "componentize-js",
    );
    dir.join(format!("{name}.wasm"))
}

#[test]
fn plugin_new_refuses_a_bad_name_and_an_existing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let out = maestro(&["plugin", "new", "validator", "Bad_Name"], tmp.path());
    assert!(!out.status.success());
    assert!(text(&out).contains("NAME \"Bad_Name\""), "{}", text(&out));
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/file"), "x").unwrap();
    let out = maestro(&["plugin", "new", "validator", "taken"], tmp.path());
    assert!(text(&out).contains("already exists"), "{}", text(&out));
}

#[test]
fn a_rust_scaffold_of_every_world_builds_passes_its_tests_and_check() {
    for world in ["validator", "status-feedback", "codec", "reconcile-hook"] {
        let name = format!("new-{world}");
        let (_tmp, dir) = scaffold(world, &name, "rust");
        let wasm = build_rust(&dir);
        assert_accepted(&wasm, world);
    }
}

#[test]
fn a_python_validator_scaffold_builds_passes_check_and_denies() {
    let (_tmp, dir) = scaffold("validator", "py-owner", "python");
    let wasm = build_python(&dir, "validator", "py-owner");
    assert_accepted(&wasm, "validator");
    let out = run_plugin(&wasm, UNLABELLED, None, &[]);
    assert!(text(&out).contains("label owner is required"), "{}", text(&out));
}

#[test]
fn a_javascript_validator_scaffold_builds_passes_check_and_denies() {
    let (_tmp, dir) = scaffold("validator", "js-owner", "js");
    let wasm = build_js(&dir, "validator", "js-owner");
    assert_accepted(&wasm, "validator");
    let out = run_plugin(&wasm, UNLABELLED, None, &[]);
    assert!(text(&out).contains("label owner is required"), "{}", text(&out));
}

#[test]
fn python_feedback_codec_and_hook_scaffolds_build_pass_check_and_behave_through_plugin_run() {
    let (_feedback_tmp, dir) = scaffold("status-feedback", "py-ready", "python");
    assert_feedback_template(&build_python(&dir, "status-feedback", "py-ready"));
    let (_codec_tmp, dir) = scaffold("codec", "py-xor", "python");
    assert_codec_template(&build_python(&dir, "codec", "py-xor"));
    let (_hook_tmp, dir) = scaffold("reconcile-hook", "py-pause", "python");
    assert_hook_template(&build_python(&dir, "reconcile-hook", "py-pause"));
}

#[test]
fn javascript_feedback_codec_and_hook_scaffolds_build_pass_check_and_behave_through_plugin_run() {
    let (_feedback_tmp, dir) = scaffold("status-feedback", "js-ready", "js");
    assert_feedback_template(&build_js(&dir, "status-feedback", "js-ready"));
    let (_codec_tmp, dir) = scaffold("codec", "js-xor", "js");
    assert_codec_template(&build_js(&dir, "codec", "js-xor"));
    let (_hook_tmp, dir) = scaffold("reconcile-hook", "js-pause", "js");
    assert_hook_template(&build_js(&dir, "reconcile-hook", "js-pause"));
}

/// The status-feedback template reports the Ready condition as health.
fn assert_feedback_template(wasm: &Path) {
    assert_accepted(wasm, "status-feedback");
    for (status, state) in [("True", "healthy"), ("False", "progressing")] {
        let live = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nstatus: {{conditions: [{{type: Ready, status: \"{status}\"}}]}}\n"
        );
        let out = run_plugin(wasm, &live, None, &[]);
        assert!(out.status.success(), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        assert_eq!(report["health"]["state"], state, "{report}");
        assert_eq!(report["values"]["ready"], status == "True", "{report}");
    }
}

/// The codec template XORs with `key`: the data changes size not at all and round-trips, and a
/// key that is not a byte is refused before any data goes through it.
fn assert_codec_template(wasm: &Path) {
    assert_accepted(wasm, "codec");
    let out = run_plugin(wasm, LABELLED, Some(r#"{"key": 42}"#), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(answer["round_trip"], true, "{answer}");
    assert_eq!(answer["encoded_bytes"], answer["input_bytes"], "{answer}");
    let out = run_plugin(wasm, LABELLED, Some(r#"{"key": 300}"#), &[]);
    assert!(!out.status.success(), "a key of 300 was accepted:\n{}", text(&out));
    assert!(text(&out).contains("key must be an integer from 0 to 255"), "{}", text(&out));
}

/// The hook template holds bundles back on clusters labelled `paused=true` and lets the rest
/// through with their manifests unchanged.
fn assert_hook_template(wasm: &Path) {
    assert_accepted(wasm, "reconcile-hook");
    let out = run_plugin(wasm, LABELLED, None, &[]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(answer["before_apply"]["outcome"], "proceed", "{}", text(&out));
    assert_eq!(answer["before_apply"]["manifests"][0]["metadata"]["labels"]["team"], "a", "{}", text(&out));
    assert_eq!(answer["before_delete"]["outcome"], "proceed", "{}", text(&out));
    let out = run_plugin(wasm, LABELLED, None, &["--label", "paused=true"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(answer["before_apply"], serde_json::json!({"outcome": "requeue", "after_ms": 60_000}), "{}", text(&out));
}

/// Compiled components are cached here across tests and runs, as the hub caches them.
fn cache_dir() -> String {
    repo().join("target/plugin-cli-cache").display().to_string()
}

fn check(wasm: &Path) -> Output {
    let file = wasm.display().to_string();
    maestro(&["plugin", "check", &file, "--cache-dir", &cache_dir()], &repo())
}

fn run_plugin(wasm: &Path, input: &str, settings: Option<&str>, extra: &[&str]) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("input.yaml"), input).unwrap();
    let file = wasm.display().to_string();
    let mut args = vec!["plugin", "run", &file, "--input", "input.yaml", "--cache-dir"];
    let cache = cache_dir();
    args.push(&cache);
    // Generous: the point is the answer, not the speed, on a loaded machine.
    args.extend(["--timeout-ms", "10000"]);
    if let Some(settings) = settings {
        std::fs::write(tmp.path().join("settings.json"), settings).unwrap();
        args.extend(["--settings", "settings.json"]);
    }
    args.extend(extra);
    maestro(&args, tmp.path())
}

fn assert_accepted(wasm: &Path, world: &str) {
    let out = check(wasm);
    let report = text(&out);
    assert!(out.status.success(), "check refused {}:\n{report}", wasm.display());
    assert!(report.contains(&format!("world     {world}")), "{report}");
    assert!(report.contains("version   maestro:plugin@0.1.0"), "{report}");
    assert!(report.contains("accepted  yes"), "{report}");
}

const UNLABELLED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
const LABELLED: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n    team: a\n";

fn built(name: &str) -> PathBuf {
    let path = repo().join("target/plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run scripts/build-plugins first", path.display());
    path
}

#[test]
fn check_refuses_a_file_that_is_not_a_component_and_says_why() {
    let out = check(&repo().join("Cargo.toml"));
    assert!(!out.status.success());
    assert!(text(&out).contains("accepted  no: not a WebAssembly component"), "{}", text(&out));
}

#[test]
fn the_example_validators_in_every_language_deny_and_allow_through_plugin_run() {
    let settings = r#"{"labels": ["team"]}"#;
    for name in ["require-labels", "py-require-labels", "js-require-labels"] {
        let wasm = built(name);
        assert_accepted(&wasm, "validator");
        let out = run_plugin(&wasm, UNLABELLED, Some(settings), &[]);
        assert_eq!(out.status.code(), Some(1), "{name} should deny:\n{}", text(&out));
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        assert_eq!(answer[0]["verdict"], "deny", "{name}: {answer}");
        assert_eq!(answer[0]["violations"][0]["path"], "metadata.labels.team", "{name}: {answer}");
        let out = run_plugin(&wasm, LABELLED, Some(settings), &[]);
        assert!(out.status.success(), "{name} should allow:\n{}", text(&out));
    }
}

#[test]
fn plugin_run_refuses_settings_the_plugin_rejects() {
    let out = run_plugin(&built("require-labels"), LABELLED, Some(r#"{"labels": []}"#), &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("refuses these settings: labels"), "{}", text(&out));
}

#[test]
fn the_example_status_feedback_plugins_in_every_language_report_rollout_health() {
    let rolling = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, generation: 2}\nspec: {replicas: 3}\n\
                   status: {observedGeneration: 2, updatedReplicas: 1, availableReplicas: 1}\n";
    let done = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, generation: 2}\nspec: {replicas: 3}\n\
                status: {observedGeneration: 2, updatedReplicas: 3, availableReplicas: 3}\n";
    for name in ["rollout-health", "py-rollout-health", "js-rollout-health"] {
        let wasm = built(name);
        assert_accepted(&wasm, "status-feedback");
        for (input, state) in [(rolling, "progressing"), (done, "healthy")] {
            let out = run_plugin(&wasm, input, None, &[]);
            assert!(out.status.success(), "{name}:\n{}", text(&out));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
            assert_eq!(report["health"]["state"], state, "{name}: {report}");
            assert_eq!(report["values"]["replicas"], 3, "{name}: {report}");
        }
    }
}

#[test]
fn the_example_codecs_round_trip_and_the_hooks_gate_through_plugin_run() {
    let data = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n";
    let out = run_plugin(&built("gzip-codec"), data, None, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["round_trip"], true);
    assert!(answer["encoded_bytes"].as_u64() < answer["input_bytes"].as_u64(), "{answer}");
    let key = r#"{"key_hex": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}"#;
    let out = run_plugin(&built("hmac-codec"), data, Some(key), &[]);
    assert!(out.status.success(), "{}", text(&out));

    // Saturday 2026-11-21 20:00 UTC, two hours before a 22:00 window.
    let window = r#"{"start": "22:00", "duration_minutes": 60, "max_requeue_ms": 86400000}"#;
    let out = run_plugin(&built("maintenance-window"), UNLABELLED, Some(window), &["--now-unix-ms", "1795291200000"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        answer["before_apply"],
        serde_json::json!({"outcome": "requeue", "after_ms": 7_200_000}),
        "{}",
        text(&out)
    );

    let canary = ["--now-unix-ms", "1000", "--updated-unix-ms", "0", "--label", "maestro.io/canary=true"];
    let out = run_plugin(&built("canary-gate"), UNLABELLED, None, &canary);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(answer["before_apply"]["outcome"], "proceed", "{}", text(&out));
    let out = run_plugin(&built("canary-gate"), UNLABELLED, None, &["--now-unix-ms", "1000", "--updated-unix-ms", "0"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(answer["before_apply"]["outcome"], "requeue", "{}", text(&out));
}
