//! Hot reload: adding, replacing and removing a plugin file, and dropping a bad one, take
//! effect without a restart while writes keep flowing, and no write fails during a swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use maestro_tests::{Backend, TestHub};
use serde_json::json;

use crate::{
    component, consumer, deployment, drop_file, hub_with, plugin_entry, post_bundle, violations, wait_for_plugin,
};

/// A copy of a component with a different digest: the same code plus a custom section.
fn with_custom_section(mut bytes: Vec<u8>, tag: &str) -> Vec<u8> {
    let name = b"maestro-test";
    let payload_len = 1 + name.len() + tag.len();
    assert!(payload_len < 128, "one-byte LEB128 sizes only");
    bytes.push(0); // custom section id
    bytes.push(payload_len as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(tag.as_bytes());
    bytes
}

/// Writes to consumer `c1` until `stop`, counting the writes that were not accepted.
async fn steady_writes(hub: &TestHub, stop: &AtomicBool, failures: &AtomicU32, done: &AtomicU32) {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let reply = post_bundle(hub, "c1", deployment(&format!("w-{i}"), &["x:1"])).await;
        if reply.status != 201 {
            failures.fetch_add(1, Ordering::Relaxed);
            eprintln!("write failed during reload: {} {}", reply.status, reply.body);
        }
        done.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_are_added_replaced_and_removed_without_a_restart_and_without_a_failed_request() {
    let (hub, dir) = hub_with(Backend::Sqlite, &[]).await;
    let hub = Arc::new(hub);
    consumer(&hub, "c1", json!({})).await;
    let gate = json!({"name": "gate", "validate": {"plugins": [{"plugin": "gate", "settings": {"mode": "allow"}}]}});
    let reply = hub.post("/api/maestro/v1/plugin-policies", &gate).await;
    assert_eq!(reply.status, 400, "no plugin named gate yet: {}", reply.body);

    // Add.
    drop_file(dir.path(), "gate.wasm", &component("hostile"));
    let v1 = wait_for_plugin(&hub, "gate", "ready", |p| p["state"] == "ready").await;
    assert_eq!(v1["world"], "validator");
    let reply = hub.post("/api/maestro/v1/plugin-policies", &gate).await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let writer = {
        let (hub, stop, failures, done) = (hub.clone(), stop.clone(), failures.clone(), done.clone());
        tokio::spawn(async move { steady_writes(&hub, &stop, &failures, &done).await })
    };
    let progressed = |after: u32| {
        let done = done.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while done.load(Ordering::Relaxed) < after + 3 {
                assert!(std::time::Instant::now() < deadline, "writes stalled");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    progressed(0).await;

    // Replace with a new version (new digest, version from the sidecar).
    std::fs::write(dir.path().join("gate.toml"), "version = \"2.0.0\"\ndescription = \"the gate, again\"\n")
        .expect("sidecar");
    drop_file(dir.path(), "gate.wasm", &with_custom_section(component("hostile"), "v2"));
    let v2 =
        wait_for_plugin(&hub, "gate", "version 2", |p| p["version"] == "2.0.0" && p["digest"] != v1["digest"]).await;
    assert_eq!(v2["state"], "ready");
    assert_eq!(v2["description"], "the gate, again");
    progressed(done.load(Ordering::Relaxed)).await;

    // A replacement whose settings check fails for the policy in force is refused; v2 serves on.
    drop_file(dir.path(), "gate.wasm", &component("image-policy"));
    let stale = wait_for_plugin(&hub, "gate", "stale", |p| p["state"] == "stale").await;
    assert_eq!(stale["digest"], v2["digest"], "the previous version keeps serving");
    assert!(stale["last_error"].as_str().unwrap_or("").contains("policy 'gate'"), "{stale}");
    progressed(done.load(Ordering::Relaxed)).await;

    // A file that is not a component is refused; v2 serves on.
    drop_file(dir.path(), "gate.wasm", b"not wasm at all");
    let bad = wait_for_plugin(&hub, "gate", "rejected file", |p| {
        p["last_error"].as_str().unwrap_or("").contains("not a WebAssembly component")
    })
    .await;
    assert_eq!(bad["state"], "stale");
    assert_eq!(bad["digest"], v2["digest"]);
    progressed(done.load(Ordering::Relaxed)).await;

    // The good file again: ready.
    drop_file(dir.path(), "gate.wasm", &with_custom_section(component("hostile"), "v3"));
    wait_for_plugin(&hub, "gate", "ready again", |p| p["state"] == "ready" && p["digest"] != v2["digest"]).await;
    progressed(done.load(Ordering::Relaxed)).await;

    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no write failed while plugins were swapped");

    // Remove: the plugin is gone, and the fail-closed policy now refuses writes, saying why.
    std::fs::remove_file(dir.path().join("gate.wasm")).expect("remove");
    wait_for_plugin(&hub, "gate", "removed", |p| p.is_null()).await;
    let reply = post_bundle(&hub, "c1", deployment("after", &["x:1"])).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(violations(&reply)[0].1.contains("plugin 'gate' is not loaded"), "{}", reply.body);
    assert!(plugin_entry(&hub, "gate").await.is_null());
    match Arc::try_unwrap(hub) {
        Ok(hub) => hub.stop().await,
        Err(_) => panic!("the writer still holds the hub"),
    }
}
