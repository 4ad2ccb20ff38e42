//! What an operator sees of a running agent: `/metrics`, `/healthz`, `/readyz`, scraped over
//! HTTP while the agent applies bundles, meets a bad event, and loses its API server.

use serde_json::json;

use crate::fleet::{Fleet, condition, condition_is, config_map, eventually, manifest_status, sample};

/// Polls the agent's `/metrics` until `series` satisfies `check`; returns its value.
async fn metric_until(fleet: &Fleet, series: &str, check: impl Fn(f64) -> bool) -> f64 {
    eventually(&format!("{series} as expected"), || async {
        let value = sample(&fleet.agent_metrics().await, series).unwrap_or(0.0);
        check(value).then_some(value)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_metrics_count_what_it_received_applied_sent_and_dropped() {
    let fleet = Fleet::start().await;
    assert_eq!(fleet.agent_probe("/healthz").await, 200);
    eventually("the agent ready", || async { (fleet.agent_probe("/readyz").await == 200).then_some(()) }).await;
    let before = fleet.agent_metrics().await;
    assert_eq!(sample(&before, "maestro_agent_applies_total"), Some(0.0), "{before}");
    assert_eq!(sample(&before, "maestro_agent_broker_connected"), Some(1.0), "{before}");

    let id = fleet.create_bundle("scraped", json!({"manifests": [config_map("scraped", "1")]})).await;
    fleet.bundle_status(&id, "applied", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    let text = fleet.agent_metrics().await;
    assert_eq!(sample(&text, "maestro_agent_applies_total"), Some(1.0), "{text}");
    // At least once: the answer to the agent's first resync may carry the bundle again.
    let received = sample(&text, r#"maestro_agent_events_received_total{type="spec.create"}"#);
    assert!(received.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(sample(&text, "maestro_agent_watched_objects"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "maestro_agent_kube_api_reachable"), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"maestro_agent_bundles{phase="applied"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"maestro_agent_bundles{phase="retrying"}"#), Some(0.0), "{text}");
    // The hub holds the status, so the broker acknowledged it: counted, and no longer pending.
    assert!(sample(&text, "maestro_agent_statuses_sent_total").is_some_and(|n| n >= 1.0), "{text}");
    metric_until(&fleet, "maestro_agent_pending_statuses", |n| n == 0.0).await;

    // A kind the API server does not serve: refused by reason, with a label from the fixed set.
    let widget =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}});
    let refused = fleet.create_bundle("unknown-kind", json!({"manifests": [widget]})).await;
    fleet.bundle_status(&refused, "refused", |s| condition_is(&s["conditions"], "Applied", "False")).await;
    metric_until(&fleet, r#"maestro_agent_apply_errors_total{reason="UnknownKind"}"#, |n| n >= 1.0).await;

    fleet.publish_malformed_spec().await;
    metric_until(&fleet, "maestro_agent_malformed_events_dropped_total", |n| n == 1.0).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_api_server_is_down_the_agent_reports_it_and_applies_once_it_returns() {
    let mut fleet = Fleet::start().await;
    let before = fleet.create_bundle("before", json!({"manifests": [config_map("before", "1")]})).await;
    fleet.bundle_status(&before, "applied", |s| condition_is(&s["conditions"], "Applied", "True")).await;

    fleet.stop_cluster().await;
    let during = fleet.create_bundle("during", json!({"manifests": [config_map("during", "1")]})).await;
    let status = fleet
        .bundle_status(&during, "Applied=False (ApiServerUnreachable) while the API server is down", |s| {
            manifest_status(s, "during")
                .and_then(|m| condition(&m["conditions"], "Applied"))
                .is_some_and(|c| c["status"] == "False" && c["reason"] == "ApiServerUnreachable")
        })
        .await;
    assert!(condition_is(&status["conditions"], "Applied", "False"), "{status}");
    eventually("/readyz failing", || async { (fleet.agent_probe("/readyz").await == 503).then_some(()) }).await;
    assert_eq!(fleet.agent_probe("/healthz").await, 200, "the agent is alive while the API server is down");
    let text = fleet.agent_metrics().await;
    assert_eq!(sample(&text, "maestro_agent_kube_api_reachable"), Some(0.0), "{text}");
    // The bundle written during the outage waits for its retry, and says so.
    metric_until(&fleet, r#"maestro_agent_bundles{phase="retrying"}"#, |n| n >= 1.0).await;

    fleet.restart_cluster().await;
    fleet.object(&fleet.config_maps(), "during", "the bundle created during the outage", |o| o.is_some()).await;
    fleet.bundle_status(&during, "its status", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    let kept = fleet.object(&fleet.config_maps(), "before", "the earlier object", |o| o.is_some()).await;
    assert_eq!(crate::fleet::data_key(kept.as_ref()), Some("1"));
    fleet.bundle_status(&before, "still applied", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    eventually("/readyz ready again", || async { (fleet.agent_probe("/readyz").await == 200).then_some(()) }).await;
    metric_until(&fleet, r#"maestro_agent_bundles{phase="retrying"}"#, |n| n == 0.0).await;
    metric_until(&fleet, r#"maestro_agent_bundles{phase="applied"}"#, |n| n == 2.0).await;

    // Retries backed off rather than spun: a handful of failed attempts, not thousands.
    let text = fleet.agent_metrics().await;
    let failures = sample(&text, r#"maestro_agent_apply_errors_total{reason="ApiServerUnreachable"}"#).unwrap_or(0.0);
    assert!((1.0..=20.0).contains(&failures), "{failures} failed attempts during the outage:\n{text}");
    fleet.stop().await;
}
