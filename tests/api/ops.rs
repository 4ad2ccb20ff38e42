//! Probes, metrics and the OpenAPI document.

use maestro_tests::{TestHub, on_both_databases};
use serde_json::json;

use crate::consumer;

on_both_databases!(
    probes_answer_and_metrics_count_by_route,
    the_openapi_document_describes_the_api,
    the_openapi_document_is_valid_openapi,
    the_api_answers_as_its_openapi_document_says_under_schemathesis,
);

async fn probes_answer_and_metrics_count_by_route(hub: &TestHub) {
    assert_eq!(hub.get("/healthz").await.status, 200);
    let ready = hub.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["database"], "ok");

    let created = consumer(hub, "c1", json!({})).await;
    let id = created["id"].as_str().expect("id");
    hub.get(&format!("/api/maestro/v1/consumers/{id}")).await;
    hub.get("/api/maestro/v1/consumers/unknown").await;

    let metrics = hub.client.get(hub.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line =
        |needle: &str| metrics.lines().any(|l| l.starts_with("maestro_http_requests_total") && l.contains(needle));
    assert!(line("route=\"/api/maestro/v1/consumers/{id}\"") && line("status=\"200\""), "{metrics}");
    assert!(line("status=\"404\""), "{metrics}");
    assert!(!metrics.contains(id), "object ids never become label values");
    assert!(metrics.contains("maestro_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("maestro_db_pool_connections{state=\"max\"} 8"), "{metrics}");
}

async fn the_openapi_document_describes_the_api(hub: &TestHub) {
    let doc = hub.get("/api/maestro/v1/openapi").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap_or("").starts_with("3."));
    for path in [
        "/api/maestro/v1/consumers",
        "/api/maestro/v1/consumers/{id}",
        "/api/maestro/v1/resource-bundles/{id}",
        "/api/maestro/v1/resources",
    ] {
        assert!(doc.body["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc.body["paths"]["/api/maestro/v1/resource-bundles/{id}"]["put"].is_object());
    assert!(doc.body["components"]["schemas"]["BundleView"].is_object());
}

/// The served document passes openapi-spec-validator (installed by `scripts/test-tools`):
/// clients and generators read it, so it must be valid OpenAPI, operation ids unique.
async fn the_openapi_document_is_valid_openapi(hub: &TestHub) {
    let doc = hub.get("/api/maestro/v1/openapi").await;
    let mut ids = std::collections::BTreeMap::new();
    for (path, operations) in doc.body["paths"].as_object().into_iter().flatten() {
        for (method, operation) in operations.as_object().into_iter().flatten() {
            if let Some(id) = operation["operationId"].as_str() {
                let first = ids.insert(id.to_string(), format!("{method} {path}"));
                assert!(first.is_none(), "operationId {id} of {method} {path} is also {first:?}");
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.body.to_string()).expect("document written");
    let validator =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/test-py/bin/openapi-spec-validator");
    let output = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .unwrap_or_else(|err| panic!("{}: {err}; run scripts/test-tools (scripts/test does)", validator.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "openapi-spec-validator refused the document:\n{text}");
}

/// Schemathesis (installed by `scripts/test-tools`) sends thousands of requests generated from
/// the served document, its stateful phase chaining creates into reads, replaces and deletes.
/// Every answer must be a documented status, of the documented content type and schema, and
/// none a server error.
async fn the_api_answers_as_its_openapi_document_says_under_schemathesis(hub: &TestHub) {
    let tool = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/test-py/bin/schemathesis");
    let base = hub.url("");
    // Its own working directory: schemathesis keeps examples and reports in the current one,
    // and two runs side by side (SQLite and PostgreSQL) must not share them.
    let workdir = tempfile::tempdir().expect("temp dir");
    let run = tokio::process::Command::new(&tool)
        .current_dir(workdir.path())
        .args(["run", &hub.url("/api/maestro/v1/openapi"), "--url", &base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "coverage,fuzzing,stateful", "--max-examples", "80", "--seed", "20261206"])
        .args(["--no-color", "--workers", "1"])
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(600), run)
        .await
        .expect("schemathesis finishes within 10 minutes")
        .unwrap_or_else(|err| panic!("{}: {err}; run scripts/test-tools (scripts/test does)", tool.display()));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = text
        .lines()
        .find_map(|line| line.trim().split_once(" generated").and_then(|(n, _)| n.trim().parse::<u64>().ok()))
        .unwrap_or(0);
    assert!(generated >= 3000, "only {generated} cases generated:\n{text}");
}
