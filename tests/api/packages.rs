//! `/operator-packages`: the hub's package repository. An upload is verified before it is
//! stored, and a refused one says every reason and stores nothing; versions are immutable;
//! `/operator-repository` serves KUDO's layout.

use maestro_package::{Limits, Package, archive, read_path};
use maestro_tests::{Reply, TestHub, on_both_databases};
use reqwest::Method;

use super::assert_error;

const PACKAGES: &str = "/api/maestro/v1/operator-packages";

fn conformance(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/kudo").join(path)
}

fn package(path: &str) -> Package {
    read_path(&conformance(path), &Limits::default()).expect("package reads")
}

async fn upload(hub: &TestHub, bytes: Vec<u8>, media: &str) -> Reply {
    let request = hub.client.request(Method::POST, hub.url(PACKAGES)).header("content-type", media).body(bytes);
    TestHub::reply(request).await
}

/// The status of an upload that announces `length` bytes and sends none: the hub must refuse
/// it from the header alone (a client sending 100 MB would otherwise see its connection cut).
async fn announced_upload(hub: &TestHub, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = hub.url("").trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST {PACKAGES} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/gzip\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut answer = vec![0u8; 1024];
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer)).await.expect("an answer");
    let answer = String::from_utf8_lossy(&answer[..read.expect("read")]).into_owned();
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

async fn uploads_are_stored_listed_downloaded_and_deleted(hub: &TestHub) {
    let bytes = archive::create(&package("repository/first-operator/operator")).unwrap();
    let stored = upload(hub, bytes.clone(), "application/gzip").await;
    assert_eq!(stored.status, 201, "{}", stored.body);
    assert_eq!(stored.body["name"], "first-operator");
    assert_eq!(stored.body["digest"].as_str(), Some(maestro_package::index::digest(&bytes).as_str()));
    assert_eq!(stored.body["summary"]["plans"]["deploy"]["strategy"], "serial");

    let listed = hub.get(PACKAGES).await;
    assert_eq!(listed.body["total"], 1, "{}", listed.body);
    let href = stored.body["href"].as_str().unwrap().to_string();
    assert_eq!(hub.get(&href).await.body["archive_name"], stored.body["archive_name"]);
    let download = hub.client.get(hub.url(stored.body["archive_href"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(download.headers()["content-type"], "application/gzip");
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());

    assert_eq!(upload(hub, bytes.clone(), "application/gzip").await.status, 201, "the same archive again is fine");
    assert_eq!(hub.delete(&href).await.status, 204);
    assert_error(&hub.get(&href).await, 404, 7);
    assert_eq!(hub.get(PACKAGES).await.body["total"], 0);
}

async fn refused_uploads_say_why_and_store_nothing(hub: &TestHub) {
    let not_gzip = upload(hub, b"not an archive".to_vec(), "application/gzip").await;
    assert_error(&not_gzip, 400, 8);
    assert_eq!(not_gzip.body["details"][0]["field"], "archive", "{}", not_gzip.body);

    let mut broken = package("repository/first-operator/operator");
    broken
        .files
        .insert("operator.yaml".into(), b"name: broken\noperatorVersion: 0.1.0\ntasks: []\nplans: {}\n".to_vec());
    let refused = upload(hub, archive::create(&broken).unwrap(), "application/gzip").await;
    assert_error(&refused, 400, 8);
    let messages: Vec<&str> =
        refused.body["details"].as_array().unwrap().iter().filter_map(|d| d["message"].as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("required to have 'deploy' plan")), "{messages:?}");

    let json = upload(hub, b"{}".to_vec(), "application/json").await;
    assert_error(&json, 415, 17);
    assert_eq!(announced_upload(hub, 100 << 20).await, 413, "a 100 MB upload is refused from its length");

    let first = archive::create(&package("repository/first-operator/operator")).unwrap();
    assert_eq!(upload(hub, first.clone(), "application/gzip").await.status, 201);
    let mut changed = maestro_package::read_tgz(&first, &Limits::default()).unwrap();
    changed.files.insert("README.md".into(), b"other content".to_vec());
    assert_error(&upload(hub, archive::create(&changed).unwrap(), "application/gzip").await, 409, 6);
    assert_eq!(hub.get(PACKAGES).await.body["total"], 1, "nothing refused was stored");
}

async fn the_repository_layout_serves_kudo_clients(hub: &TestHub) {
    for path in ["repository/zookeeper/operator", "repository/first-operator/operator"] {
        assert_eq!(upload(hub, archive::create(&package(path)).unwrap(), "application/octet-stream").await.status, 201);
    }
    let index = hub.client.get(hub.url("/api/maestro/v1/operator-repository/index.yaml")).send().await.unwrap();
    let index: serde_yaml::Value = serde_yaml::from_str(&index.text().await.unwrap()).unwrap();
    assert_eq!(index["apiVersion"].as_str(), Some("v1"));
    let zookeeper = &index["entries"]["zookeeper"][0];
    let url = zookeeper["urls"][0].as_str().unwrap();
    assert!(url.ends_with("/api/maestro/v1/operator-repository/zookeeper-3.6.2_0.3.3.tgz"), "{url}");
    let bytes = hub.client.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(zookeeper["digest"].as_str(), Some(maestro_package::index::digest(&bytes).as_str()));
    assert_error(&hub.get("/api/maestro/v1/operator-repository/nope-1.0.0.tgz").await, 404, 7);
}

on_both_databases!(
    uploads_are_stored_listed_downloaded_and_deleted,
    refused_uploads_say_why_and_store_nothing,
    the_repository_layout_serves_kudo_clients,
);
