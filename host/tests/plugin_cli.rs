//! `maestro plugin new|check|run` as a plugin author uses them: scaffold in each language,
//! build with that language's real tool chain, then check and run the component with the
//! real binary. The Python and JavaScript tools are the ones `scripts/build-plugins` installs
//! under `target/tools/` (`scripts/test` runs it first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
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
fn a_rust_scaffold_of_every_world_builds_and_its_tests_pass() {
    for world in ["validator", "status-feedback", "codec", "reconcile-hook"] {
        let name = format!("new-{world}");
        let (_tmp, dir) = scaffold(world, &name, "rust");
        let wasm = build_rust(&dir);
        assert!(wasm.exists(), "{} was not built", wasm.display());
    }
}

#[test]
fn a_python_validator_scaffold_builds() {
    let (_tmp, dir) = scaffold("validator", "py-owner", "python");
    assert!(build_python(&dir, "validator", "py-owner").exists());
}

#[test]
fn a_javascript_validator_scaffold_builds() {
    let (_tmp, dir) = scaffold("validator", "js-owner", "js");
    assert!(build_js(&dir, "validator", "js-owner").exists());
}
