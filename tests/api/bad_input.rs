//! Bad input always gets a clear 4xx in Maestro's error shape, never a 500, never a partial write.

use maestro_tests::{HubSetup, TestHub, deployment, on_both_databases};
use serde_json::json;

use crate::{assert_error, consumer, error_fields};

on_both_databases!(
    malformed_bodies_are_refused_with_the_reason,
    unknown_fields_are_refused_but_read_only_ones_are_ignored,
    unknown_ids_and_routes_answer_in_the_error_shape,
    the_operation_id_links_a_reply_to_the_log,
    nul_characters_are_refused_before_they_reach_the_database,
    over_long_request_lines_and_heads_answer_in_the_error_shape,
);

async fn malformed_bodies_are_refused_with_the_reason(hub: &TestHub) {
    let raw = |body: &'static str| {
        hub.client.post(hub.url("/api/maestro/v1/consumers")).header("content-type", "application/json").body(body)
    };
    let not_json = TestHub::reply(raw("{\"name\": ")).await;
    assert_error(&not_json, 400, 17);
    assert!(not_json.body["reason"].as_str().unwrap_or("").contains("not valid JSON"));

    let not_object = TestHub::reply(raw("[1, 2]")).await;
    assert_error(&not_object, 400, 21);

    let wrong_type = TestHub::reply(raw("{\"name\": 42}")).await;
    assert_error(&wrong_type, 400, 8);
    assert_eq!(error_fields(&wrong_type), vec!["name"]);

    consumer(hub, "c1", json!({})).await;
    let nested = hub
        .post("/api/maestro/v1/resource-bundles", &json!({"consumer_name": "c1", "manifests": {"not": "a list"}}))
        .await;
    assert_error(&nested, 400, 8);
    assert_eq!(error_fields(&nested), vec!["manifests"]);

    let form =
        hub.client.post(hub.url("/api/maestro/v1/consumers")).header("content-type", "text/plain").body("name=x");
    let form = TestHub::reply(form).await;
    assert_error(&form, 415, 17);
    assert!(form.body["reason"].as_str().unwrap_or("").contains("application/json"));
    assert_eq!(hub.get("/api/maestro/v1/consumers").await.body["total"], 1, "only c1 was stored");
}

async fn unknown_fields_are_refused_but_read_only_ones_are_ignored(hub: &TestHub) {
    let typo = hub.post("/api/maestro/v1/consumers", &json!({"name": "c1", "lables": {"a": "b"}})).await;
    assert_error(&typo, 400, 8);
    assert!(typo.body["reason"].as_str().unwrap_or("").contains("lables"), "{}", typo.body);

    let created = consumer(hub, "c1", json!({})).await;
    let echoed = hub
        .post(
            "/api/maestro/v1/resources",
            &json!({"consumer_name": "c1", "manifest": deployment("a"), "kind": "Resource", "href": "x", "status": {}}),
        )
        .await;
    assert_eq!(echoed.status, 201, "fields the server owns may be sent back as read: {}", echoed.body);
    let patch = hub
        .patch(
            &format!("/api/maestro/v1/consumers/{}", created["id"].as_str().expect("id")),
            &json!({"labels": {}, "manifest_config": 1}),
        )
        .await;
    assert_error(&patch, 400, 8);
}

async fn unknown_ids_and_routes_answer_in_the_error_shape(hub: &TestHub) {
    assert_error(&hub.get("/api/maestro/v1/resources/nope").await, 404, 7);
    assert_error(
        &hub.put("/api/maestro/v1/resources/nope", &json!({"version": 1, "manifest": deployment("a")})).await,
        404,
        7,
    );
    assert_error(&hub.delete("/api/maestro/v1/resource-bundles/nope").await, 404, 7);
    assert_error(&hub.get("/api/maestro/v1/clusters").await, 404, 7);
    let wrong_method = hub.send(reqwest::Method::PATCH, "/api/maestro/v1/resource-bundles", Some(&json!({}))).await;
    assert_error(&wrong_method, 405, 21);
}

async fn the_operation_id_links_a_reply_to_the_log(hub: &TestHub) {
    let request = hub.client.get(hub.url("/api/maestro/v1/consumers/missing")).header("X-Operation-ID", "op-1234");
    let reply = TestHub::reply(request).await;
    assert_eq!(reply.body["operation_id"], "op-1234");
    assert_eq!(reply.headers.get("x-operation-id").and_then(|v| v.to_str().ok()), Some("op-1234"));
    let fresh = hub.get("/api/maestro/v1/consumers").await;
    assert!(fresh.headers.get("x-operation-id").is_some(), "every reply carries one");
}

/// PostgreSQL cannot hold a NUL in text or `jsonb`: it would answer 500. Refused as 400, on
/// both databases alike, whether in the path, a query parameter or a body.
async fn nul_characters_are_refused_before_they_reach_the_database(hub: &TestHub) {
    consumer(hub, "c1", json!({"env": "prod"})).await;
    for path in [
        "/api/maestro/v1/consumers/%00",
        "/api/maestro/v1/resource-bundles/a%00b",
        "/api/maestro/v1/consumers?search=name%3D%27c%001%27",
        "/api/maestro/v1/resources?search=%00",
    ] {
        let reply = hub.get(path).await;
        assert_error(&reply, 400, 21);
        assert!(reply.body["reason"].as_str().unwrap_or("").contains("NUL"), "{path}: {}", reply.body);
    }
    let labelled = hub.post("/api/maestro/v1/consumers", &json!({"name": "c2", "labels": {"env": "a\u{0}b"}})).await;
    assert_error(&labelled, 400, 8);
    assert_eq!(error_fields(&labelled), vec!["labels.env"]);
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "d"},
                          "data": {"k": "\u{0}"}});
    let bundle = hub.post("/api/maestro/v1/resources", &json!({"consumer_name": "c1", "manifest": manifest})).await;
    assert_error(&bundle, 400, 8);
    assert_eq!(error_fields(&bundle), vec!["manifest.data.k"]);
    assert_eq!(hub.get("/api/maestro/v1/consumers").await.body["total"], 1, "nothing was stored");
    assert_eq!(hub.get("/api/maestro/v1/resources").await.body["total"], 0);
}

/// hyper refuses these before any handler runs; the answer still reads as a Maestro error.
/// Sent over a raw socket: HTTP clients refuse to build a request line this long.
async fn over_long_request_lines_and_heads_answer_in_the_error_shape(hub: &TestHub) {
    let long_line = format!("GET /api/maestro/v1/consumers/{} HTTP/1.1\r\nhost: hub\r\n\r\n", "x".repeat(70 * 1024));
    let (status, body) = raw_exchange(hub, &long_line).await;
    assert_eq!(status, 414, "{body}");
    assert_eq!((body["kind"].as_str(), body["code"].as_str()), (Some("Error"), Some("maestro-17")), "{body}");
    let huge_head =
        format!("GET /api/maestro/v1/consumers HTTP/1.1\r\nhost: hub\r\nx-padding: {}\r\n\r\n", "y".repeat(512 * 1024));
    let (status, body) = raw_exchange(hub, &huge_head).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["kind"], "Error", "{body}");
    assert_eq!(hub.get("/api/maestro/v1/consumers").await.status, 200, "the hub serves on");
}

/// Writes `request` on a new connection and reads the answer to its end: (status, JSON body).
async fn raw_exchange(hub: &TestHub, request: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(hub.hub.addr).await.expect("connect");
    // The server may answer and close before reading all of it; what it answers is what counts.
    let _ = socket.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closes the connection after answering");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_store_nothing() {
    let mut setup = HubSetup::default();
    setup.limits.max_body_bytes = 16 * 1024;
    let hub = TestHub::start_with(maestro_tests::Backend::Sqlite, setup).await;
    consumer(&hub, "c1", json!({})).await;
    let mut manifest = deployment("big");
    manifest["data"] = json!({"blob": "x".repeat(64 * 1024)});
    let reply = hub.post("/api/maestro/v1/resources", &json!({"consumer_name": "c1", "manifest": manifest})).await;
    assert_error(&reply, 413, 17);
    assert_eq!(hub.get("/api/maestro/v1/resources").await.body["total"], 0);
    hub.stop().await;
}

#[tokio::test]
async fn manifests_over_the_size_limit_are_refused_naming_the_manifest() {
    let mut setup = HubSetup::default();
    setup.limits.manifests.max_manifest_bytes = 2048;
    let hub = TestHub::start_with(maestro_tests::Backend::Sqlite, setup).await;
    consumer(&hub, "c1", json!({})).await;
    let mut manifest = deployment("big");
    manifest["metadata"]["annotations"] = json!({"note": "x".repeat(4096)});
    let reply = hub.post("/api/maestro/v1/resources", &json!({"consumer_name": "c1", "manifest": manifest})).await;
    assert_error(&reply, 400, 8);
    assert!(error_fields(&reply).iter().any(|f| f == "manifest"), "{}", reply.body);
    hub.stop().await;
}
