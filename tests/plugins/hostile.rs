//! Hostile plugins: each misbehaviour ends within its deadline (plus a tick, asserted only
//! against a generous bound), is reported with its reason, is decided by the failure mode,
//! and leaves the hub serving every other request. Files that are not plugins are rejected.

use std::time::{Duration, Instant};

use maestro_tests::Backend;
use serde_json::json;

use crate::{
    consumer, deployment, drop_file, hub_with, metric, plugin_entry, policy, post_bundle, violations, wait_for_plugin,
};

/// (consumer and hostile mode, limits, what the refusal says)
const CASES: [(&str, u64, u64, &str); 5] = [
    ("loop", 20, 64, "timed out after 20ms"),
    ("alloc", 2000, 32, "exceeded its memory limit of 32 MiB"),
    ("trap", 2000, 64, "trapped"),
    // Enough memory for the guest to build 100 MB: the host's result cap refuses it.
    ("huge", 5000, 400, "more than the 4194304 allowed"),
    ("bad-json", 2000, 64, "a mutation that is not JSON"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_validators_end_within_their_deadline_with_the_reason_and_the_hub_keeps_serving() {
    let (hub, _dir) = hub_with(Backend::Sqlite, &["hostile"]).await;
    consumer(&hub, "healthy", json!({})).await;
    for (mode, timeout_ms, memory_mb, _) in CASES {
        consumer(&hub, mode, json!({})).await;
        policy(
            &hub,
            json!({"name": mode, "selector": {"consumers": [mode]}, "limits": {"timeout_ms": timeout_ms, "memory_mb": memory_mb},
                   "validate": {"plugins": [{"plugin": "hostile", "settings": {"mode": mode}}]}}),
        )
        .await;
    }
    // Every hostile call runs beside a stream of ordinary writes.
    let healthy = async {
        for i in 0..20 {
            let reply = post_bundle(&hub, "healthy", deployment(&format!("ok-{i}"), &["x:1"])).await;
            assert_eq!(reply.status, 201, "an ordinary write failed beside the hostile ones: {}", reply.body);
        }
    };
    let hostile = async {
        for round in 0..2 {
            for (mode, timeout_ms, _, reason) in CASES {
                let started = Instant::now();
                let reply = post_bundle(&hub, mode, deployment(&format!("h-{round}"), &["x:1"])).await;
                let took = started.elapsed();
                assert_eq!(reply.status, 400, "{mode}: {}", reply.body);
                let message = &violations(&reply)[0].1;
                assert!(message.contains(reason), "{mode}: expected {reason:?} in {message:?}");
                assert!(took < Duration::from_millis(timeout_ms) + Duration::from_secs(10), "{mode} took {took:?}");
            }
        }
    };
    tokio::join!(healthy, hostile);
    for outcome in ["timeout", "memory", "trap", "too_large", "bad_result"] {
        assert!(
            metric(&hub, "maestro_plugin_calls_total", &[&format!("outcome=\"{outcome}\"")]).await >= Some(2.0),
            "each failure is counted: {outcome}"
        );
    }
    assert!(
        metric(&hub, "maestro_plugin_memory_high_water_bytes", &["plugin=\"hostile\"", "point=\"validate\""]).await
            > Some(32e6)
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_flooding_the_log_is_rate_limited_and_its_call_still_completes() {
    let (hub, _dir) = hub_with(Backend::Sqlite, &["hostile"]).await;
    consumer(&hub, "c1", json!({})).await;
    policy(
        &hub,
        json!({"name": "flood", "limits": {"timeout_ms": 10000},
               "validate": {"plugins": [{"plugin": "hostile", "settings": {"mode": "log-flood"}}]}}),
    )
    .await;
    let reply = post_bundle(&hub, "c1", deployment("a", &["x:1"])).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_are_not_plugins_for_this_host_are_rejected_with_the_reason() {
    let (hub, dir) = hub_with(Backend::Sqlite, &["future-major"]).await;
    drop_file(dir.path(), "notes.wasm", b"these are not the bytes you are looking for");
    drop_file(dir.path(), "core.wasm", b"\0asm\x01\x00\x00\x00");
    drop_file(dir.path(), "notes.txt", b"ignored: not a .wasm file");

    let future = plugin_entry(&hub, "future-major").await;
    assert_eq!(future["state"], "rejected", "{future}");
    let reason = future["last_error"].as_str().unwrap_or("");
    assert!(reason.contains("maestro:plugin@1.0.0") && reason.contains("supports maestro:plugin@0.1"), "{reason}");

    let garbage = wait_for_plugin(&hub, "notes", "rejected", |p| p["state"] == "rejected").await;
    assert!(garbage["last_error"].as_str().unwrap_or("").contains("not a WebAssembly component"), "{garbage}");
    let core = wait_for_plugin(&hub, "core", "rejected", |p| p["state"] == "rejected").await;
    assert!(core["last_error"].as_str().unwrap_or("").contains("core WebAssembly module"), "{core}");

    let reply = hub
        .post("/api/maestro/v1/plugin-policies", &json!({"name": "p", "validate": {"plugins": [{"plugin": "core"}]}}))
        .await;
    assert_eq!(reply.status, 400, "a rejected plugin cannot be named by a policy: {}", reply.body);
    assert!(metric(&hub, "maestro_plugin_loads_total", &["plugin=\"core\"", "result=\"rejected\""]).await >= Some(1.0));
    hub.stop().await;
}
