//! `maestro package` as a package author uses it: scaffold, verify, render, archive, index,
//! with the real binary, on the 14 KUDO packages and on broken ones.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn conformance() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/kudo")
}

fn maestro(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("maestro runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn ok(args: &[&str], dir: &Path) -> String {
    let output = maestro(args, dir);
    assert!(output.status.success(), "maestro {args:?} failed:\n{}", text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_new_package_verifies_renders_and_archives_reproducibly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&["package", "new", "demo"], dir);
    assert!(ok(&["package", "verify", "demo"], dir).contains("demo 0.1.0 is valid (0 warning(s))"));
    // Its test case passes on the simulated cluster, installing the package with maestro.
    let tested = ok(&["test", "tests"], dir);
    assert!(tested.contains("--- PASS: tests/demo-deploy") && tested.contains("maestro operator install"), "{tested}");
    let rendered =
        ok(&["package", "render", "demo", "-p", "REPLICAS=3", "--instance", "web", "--namespace", "shop"], dir);
    assert!(
        rendered.contains("replicas: 3") && rendered.contains("name: web") && rendered.contains("namespace: shop"),
        "{rendered}"
    );

    let archive = ok(&["package", "create", "demo"], dir);
    assert_eq!(archive.trim(), "./demo-1.0.0_0.1.0.tgz");
    let first = std::fs::read(dir.join("demo-1.0.0_0.1.0.tgz")).unwrap();
    let again = maestro(&["package", "create", "demo"], dir);
    assert!(!again.status.success() && text(&again).contains("--overwrite replaces it"));
    ok(&["package", "create", "demo", "--overwrite"], dir);
    assert_eq!(
        std::fs::read(dir.join("demo-1.0.0_0.1.0.tgz")).unwrap(),
        first,
        "the same package makes the same bytes"
    );
    // The archive is a package too.
    assert!(ok(&["package", "verify", "demo-1.0.0_0.1.0.tgz"], dir).contains("is valid"));

    ok(&["package", "index", ".", "--url", "https://repo.example/v1"], dir);
    let index: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("index.yaml")).unwrap()).unwrap();
    let entry = &index["entries"]["demo"][0];
    assert_eq!(entry["urls"][0].as_str(), Some("https://repo.example/v1/demo-1.0.0_0.1.0.tgz"));
    let sha = Command::new("sha256sum").arg(dir.join("demo-1.0.0_0.1.0.tgz")).output().expect("sha256sum");
    let expected = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(entry["digest"].as_str(), Some(expected.as_str()), "the digest is the archive's SHA-256");
}

#[test]
fn the_14_packages_verify_through_the_cli() {
    let root = conformance().join("repository");
    let mut checked = 0;
    for path in ["cassandra/3.11/operator", "flink/docs/demo/financial-fraud/demo-operator"]
        .into_iter()
        .map(String::from)
        .chain(
            [
                "confluent-rest-proxy",
                "confluent-schema-registry",
                "cowsay",
                "elastic",
                "first-operator",
                "flink",
                "kafka",
                "mysql",
                "rabbitmq",
                "redis",
                "spark",
                "zookeeper",
            ]
            .iter()
            .map(|p| format!("{p}/operator")),
        )
    {
        let out = ok(&["package", "verify", &path], &root);
        assert!(out.contains("is valid"), "{path}: {out}");
        checked += 1;
    }
    assert_eq!(checked, 14);
}

#[test]
fn a_broken_package_fails_verify_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    ok(&["package", "new", "demo"], tmp.path());
    let operator = tmp.path().join("demo/operator.yaml");
    let text_of = std::fs::read_to_string(&operator).unwrap();
    std::fs::write(&operator, text_of.replace("  deploy:", "  install:")).unwrap();
    let out = maestro(&["package", "verify", "demo"], tmp.path());
    assert!(!out.status.success());
    assert!(text(&out).contains("error: an operator is required to have 'deploy' plan"), "{}", text(&out));
    let create = maestro(&["package", "create", "demo"], tmp.path());
    assert!(
        !create.status.success() && text(&create).contains("does not verify"),
        "nothing archived: {}",
        text(&create)
    );
    let bad_flag = maestro(&["package", "render", "demo", "-p", "REPLICAS"], tmp.path());
    assert!(text(&bad_flag).contains("-p \"REPLICAS\": a parameter is NAME=VALUE"), "{}", text(&bad_flag));
    let unknown = maestro(&["package", "render", "demo", "-p", "NOPE=1"], tmp.path());
    assert!(text(&unknown).contains("parameter \"NOPE\" is not declared"), "{}", text(&unknown));
}

#[test]
fn render_json_is_the_goldens_shape() {
    let root = conformance();
    let args = [
        "package",
        "render",
        "repository/zookeeper/operator",
        "-o",
        "json",
        "--instance",
        "prod",
        "--namespace",
        "team-a",
        "--plan",
        "update",
        "--phase",
        "app",
        "--step",
        "app",
        "-p",
        "NODE_COUNT=5",
        "-p",
        "CPUS=0.3",
        "-p",
        "MEMORY=512Mi",
    ];
    let rendered: serde_json::Value = serde_json::from_str(&ok(&args, &root)).unwrap();
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("golden/zookeeper.variant.json")).unwrap()).unwrap();
    assert_eq!(rendered["templates"], golden["templates"]);
}

/// A hub on a free port with its SQLite file in a temporary directory.
async fn hub(dir: &Path) -> maestro_hub::RunningHub {
    maestro_hub::start(maestro_hub::HubConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}/m.db", dir.display()),
        db: Default::default(),
        limits: Default::default(),
        auth: Default::default(),
        plugins: None,
    })
    .await
    .expect("hub starts")
}

/// `maestro package <args>` against `server`, off the async runtime's threads.
async fn against(server: &str, args: &[&str], dir: &Path) -> Output {
    let (server, dir) = (server.to_string(), dir.to_path_buf());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_maestro"))
            .args(&args)
            .current_dir(&dir)
            .env("MAESTRO_SERVER", &server)
            .env_remove("MAESTRO_TOKEN")
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("maestro runs")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_push_index_download_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hub = hub(dir).await;
    let server = hub.url();
    ok(&["package", "create", &conformance().join("repository/zookeeper/operator").display().to_string()], dir);
    let file = dir.join("zookeeper-3.6.2_0.3.3.tgz");
    let bytes = std::fs::read(&file).unwrap();

    let pushed = against(&server, &["package", "push", "zookeeper-3.6.2_0.3.3.tgz"], dir).await;
    assert!(pushed.status.success(), "{}", text(&pushed));
    assert!(text(&pushed).contains("pushed zookeeper-3.6.2_0.3.3.tgz"), "{}", text(&pushed));
    let listed = against(&server, &["package", "list"], dir).await;
    assert!(text(&listed).contains("zookeeper") && text(&listed).contains("0.3.3"), "{}", text(&listed));

    maestro_net::install_crypto_provider();
    let http = reqwest::Client::new();
    let index = http.get(format!("{server}/api/maestro/v1/operator-repository/index.yaml")).send().await.unwrap();
    assert_eq!(index.headers()["content-type"], "application/yaml");
    let index: serde_yaml::Value = serde_yaml::from_str(&index.text().await.unwrap()).unwrap();
    let entry = &index["entries"]["zookeeper"][0];
    let sha = Command::new("sha256sum").arg(&file).output().expect("sha256sum");
    let expected = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(entry["digest"].as_str(), Some(expected.as_str()));
    let url = entry["urls"][0].as_str().unwrap();
    assert!(url.starts_with(&server), "an absolute URL on the hub: {url}");
    let downloaded = http.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(downloaded.as_ref(), bytes.as_slice(), "the download is the file pushed");

    // KUDO's resolution: a name in a repository (checked against its digest), or a URL.
    let repo = format!("{server}/api/maestro/v1/operator-repository");
    let by_name = against(&server, &["package", "verify", "zookeeper", "--repo", &repo], dir).await;
    assert!(text(&by_name).contains("zookeeper 0.3.3 is valid"), "{}", text(&by_name));
    let by_url = against(&server, &["package", "list", "params", url], dir).await;
    assert!(text(&by_url).contains("NODE_COUNT"), "{}", text(&by_url));
    let missing =
        against(&server, &["package", "verify", "zookeeper", "--repo", &repo, "--operator-version", "9.9.9"], dir)
            .await;
    assert!(!missing.status.success() && text(&missing).contains("no such version"), "{}", text(&missing));
    let nowhere = against(&server, &["package", "verify", "zookeeper"], dir).await;
    assert!(text(&nowhere).contains("give --repo URL"), "{}", text(&nowhere));

    // Pushing the same archive again is fine; other content for that version is not.
    assert!(against(&server, &["package", "push", "zookeeper-3.6.2_0.3.3.tgz"], dir).await.status.success());
    let mut changed = maestro_package::read_tgz(&bytes, &Default::default()).unwrap();
    changed.files.insert("README.md".into(), b"changed".to_vec());
    std::fs::write(dir.join("changed.tgz"), maestro_package::archive::create(&changed).unwrap()).unwrap();
    let conflict = against(&server, &["package", "push", "changed.tgz"], dir).await;
    assert!(!conflict.status.success() && text(&conflict).contains("a version cannot change"), "{}", text(&conflict));
    hub.shutdown().await.unwrap();
}
