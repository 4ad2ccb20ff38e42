//! The hub's REST API, end to end over HTTP, on SQLite and on PostgreSQL.
//! Each module reads as the specification of one part of the API.

mod auth;
mod bad_input;
mod bundles;
mod consumers;
mod deletes;
mod lists;
mod ops;
mod packages;
mod resources;

use maestro_tests::TestHub;
use serde_json::{Value, json};

/// Creates a consumer and returns its JSON.
pub async fn consumer(hub: &TestHub, name: &str, labels: Value) -> Value {
    let reply = hub.post("/api/maestro/v1/consumers", &json!({"name": name, "labels": labels})).await;
    assert_eq!(reply.status, 201, "creating consumer {name}: {}", reply.body);
    reply.body
}

/// Creates a bundle and returns its JSON.
pub async fn bundle(hub: &TestHub, body: Value) -> Value {
    let reply = hub.post("/api/maestro/v1/resource-bundles", &body).await;
    assert_eq!(reply.status, 201, "creating bundle: {}", reply.body);
    reply.body
}

/// Asserts a Maestro error object with the given HTTP status and error code number.
pub fn assert_error(reply: &maestro_tests::Reply, status: u16, code: u32) {
    assert_eq!(reply.status.as_u16(), status, "unexpected status, body: {}", reply.body);
    assert_eq!(reply.body["kind"], "Error", "{}", reply.body);
    assert_eq!(reply.body["code"], format!("maestro-{code}"), "{}", reply.body);
    assert_eq!(reply.body["id"], code.to_string());
    assert_eq!(reply.body["href"], format!("/api/maestro/v1/errors/{code}"));
    assert!(reply.body["operation_id"].as_str().is_some_and(|id| !id.is_empty()), "{}", reply.body);
    assert!(reply.body["reason"].as_str().is_some_and(|r| !r.is_empty()), "{}", reply.body);
}

/// The field paths named in an error's details.
pub fn error_fields(reply: &maestro_tests::Reply) -> Vec<String> {
    reply.body["details"]
        .as_array()
        .map(|details| details.iter().filter_map(|d| d["field"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}
