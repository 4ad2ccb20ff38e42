//! Plugins on the agent, end to end with the example components of `plugins/` (built by
//! `scripts/build-plugins`): policies are created over the hub's REST API and reach the running
//! agent over MQTT; the same files sit in the hub's and the agent's plugin directories.

use chrono::{Duration as Span, Utc};
use serde_json::{Value, json};

use crate::fleet::{CONSUMER, Fleet, condition, config_map, data_key, eventually, manifest_status};

const POLICIES: &str = "/api/maestro/v1/plugin-policies";

async fn create_policy(fleet: &Fleet, body: Value) {
    let reply = fleet.hub.post(POLICIES, &body).await;
    assert_eq!(reply.status, 201, "creating policy: {}", reply.body);
}

async fn replace_policy(fleet: &Fleet, body: Value) {
    let name = body["name"].as_str().expect("policy name").to_owned();
    let reply = fleet.hub.put(&format!("{POLICIES}/{name}"), &body).await;
    assert_eq!(reply.status, 200, "replacing policy: {}", reply.body);
}

async fn delete_policy(fleet: &Fleet, name: &str) {
    let reply = fleet.hub.delete(&format!("{POLICIES}/{name}")).await;
    assert_eq!(reply.status, 204, "deleting policy: {}", reply.body);
}

fn feedback_policy(plugin: &str, failure_mode: &str) -> Value {
    json!({"name": "feedback", "selector": {"consumers": [CONSUMER]}, "limits": {"timeout_ms": 5000},
           "status-feedback": {"failure_mode": failure_mode, "plugins": [{"plugin": plugin}]}})
}

fn hook_policy(plugin: &str, settings: Value) -> Value {
    json!({"name": "hook", "selector": {"consumers": [CONSUMER]}, "limits": {"timeout_ms": 5000},
           "reconcile-hook": {"plugins": [{"plugin": plugin, "settings": settings}]}})
}

fn deployment(name: &str, annotations: Value) -> Value {
    let mut manifest = maestro_tests::deployment(name);
    manifest["metadata"]["annotations"] = annotations;
    manifest
}

/// The plugin-set feedback value `name` of the manifest `manifest`, if reported.
fn value<'v>(status: &'v Value, manifest: &str, name: &str) -> Option<&'v Value> {
    manifest_status(status, manifest)?["statusFeedback"]["values"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == name)
        .map(|v| &v["fieldValue"])
}

fn manifest_condition<'v>(status: &'v Value, manifest: &str, kind: &str) -> Option<&'v Value> {
    condition(&manifest_status(status, manifest)?["conditions"], kind)
}

fn held_reason(status: &Value) -> Option<&str> {
    condition(&status["conditions"], "Held").and_then(|c| c["reason"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_plugins_follow_the_policies_the_hub_sends_and_their_failure_mode() {
    let fleet = Fleet::start_with_plugins(&["rollout-health", "feedback-basic"]).await;
    let id = fleet.create_bundle("web", json!({"manifests": [deployment("web", json!({}))]})).await;
    let status = fleet
        .bundle_status(&id, "web available", |s| {
            manifest_condition(s, "web", "Available").is_some_and(|c| c["status"] == "True")
        })
        .await;
    assert!(value(&status, "web", "availableReplicas").is_none(), "no policy yet: {status}");

    // A policy created over REST reaches the running agent: the example's values and health.
    create_policy(&fleet, feedback_policy("rollout-health", "fail-open")).await;
    let status = fleet
        .bundle_status(&id, "rollout-health's values", |s| {
            value(s, "web", "availableReplicas") == Some(&json!({"type": "Integer", "integer": 1}))
        })
        .await;
    assert_eq!(value(&status, "web", "replicas"), Some(&json!({"type": "Integer", "integer": 1})), "{status}");
    let available = manifest_condition(&status, "web", "Available").expect("Available");
    assert_eq!((available["status"].as_str(), available["reason"].as_str()), (Some("True"), Some("PluginHealthy")));
    assert_eq!(available["message"], "1 of 1 replicas available");
    assert_eq!(manifest_condition(&status, "web", "StatusFeedbackSynced").expect("synced")["status"], "True");

    // Replaced to select another consumer: this agent was matched before, so it hears of it.
    let mut elsewhere = feedback_policy("rollout-health", "fail-open");
    elsewhere["selector"] = json!({"consumers": ["elsewhere"]});
    replace_policy(&fleet, elsewhere).await;
    fleet.bundle_status(&id, "the values gone", |s| value(s, "web", "availableReplicas").is_none()).await;
    replace_policy(&fleet, feedback_policy("rollout-health", "fail-open")).await;
    fleet.bundle_status(&id, "the values back", |s| value(s, "web", "availableReplicas").is_some()).await;

    // Deleted over REST: the values stop.
    delete_policy(&fleet, "feedback").await;
    fleet
        .bundle_status(&id, "the values gone", |s| {
            value(s, "web", "availableReplicas").is_none()
                && manifest_condition(s, "web", "Available").is_some_and(|c| c["reason"] == "ResourceAvailable")
        })
        .await;

    // A plugin that traps on one object: fail-closed unsyncs that object's feedback only...
    let trap =
        fleet.create_bundle("trap", json!({"manifests": [deployment("trapping", json!({"test/trap": "yes"}))]})).await;
    create_policy(&fleet, feedback_policy("feedback-basic", "fail-closed")).await;
    let status = fleet
        .bundle_status(&trap, "the trap reported", |s| {
            manifest_condition(s, "trapping", "StatusFeedbackSynced").is_some_and(|c| c["status"] == "False")
        })
        .await;
    let synced = manifest_condition(&status, "trapping", "StatusFeedbackSynced").expect("synced");
    assert_eq!(synced["reason"], "StatusFeedbackSyncFailed");
    assert!(synced["message"].as_str().unwrap_or("").contains("feedback-basic"), "{synced}");
    fleet
        .bundle_status(&id, "feedback-basic's values on the healthy one", |s| {
            value(s, "web", "readyReplicas") == Some(&json!({"type": "Integer", "integer": 1}))
        })
        .await;

    // ...and fail-open ignores the failure.
    replace_policy(&fleet, feedback_policy("feedback-basic", "fail-open")).await;
    let status = fleet
        .bundle_status(&trap, "the failure ignored", |s| {
            manifest_condition(s, "trapping", "StatusFeedbackSynced").is_some_and(|c| c["status"] == "True")
        })
        .await;
    assert!(value(&status, "trapping", "readyReplicas").is_none(), "{status}");
    fleet.stop().await;
}

/// The same rollout-health check written in Python (componentize-py) and JavaScript
/// (componentize-js), each the only feedback plugin of a policy in turn: the agent runs
/// components of any language that meet the WIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_feedback_examples_report_through_the_agent() {
    let fleet = Fleet::start_with_plugins(&["py-rollout-health", "js-rollout-health"]).await;
    let id = fleet.create_bundle("api", json!({"manifests": [deployment("api", json!({}))]})).await;
    for plugin in ["py-rollout-health", "js-rollout-health"] {
        create_policy(&fleet, feedback_policy(plugin, "fail-closed")).await;
        let status = fleet
            .bundle_status(&id, &format!("{plugin}'s values"), |s| {
                value(s, "api", "updatedReplicas") == Some(&json!({"type": "Integer", "integer": 1}))
                    && manifest_condition(s, "api", "Available").is_some_and(|c| c["reason"] == "PluginHealthy")
            })
            .await;
        assert_eq!(value(&status, "api", "availableReplicas"), Some(&json!({"type": "Integer", "integer": 1})));
        let available = manifest_condition(&status, "api", "Available").expect("Available");
        assert_eq!(available["message"], "1 of 1 replicas available", "{plugin}: {status}");
        delete_policy(&fleet, "feedback").await;
        fleet.bundle_status(&id, "the values gone", |s| value(s, "api", "updatedReplicas").is_none()).await;
    }
    fleet.stop().await;
}

/// A cert-manager `Certificate` as a manifest, its status included: the simulated CRD has no
/// status subresource, so the status sent is the status stored (no cert-manager runs here).
fn certificate(name: &str, ready: Value) -> Value {
    json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": name, "namespace": "default"},
           "spec": {"secretName": name, "dnsNames": ["example.com"]},
           "status": {"conditions": [ready], "notAfter": "2099-01-01T00:00:00Z"}})
}

/// A status-feedback plugin gives health to a kind the agent knows nothing about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_example_decides_the_health_of_a_custom_kind() {
    let fleet = Fleet::start_with_plugins(&["certificate-ready"]).await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "certificates.cert-manager.io"},
        "spec": {"group": "cert-manager.io", "scope": "Namespaced",
                 "names": {"plural": "certificates", "singular": "certificate", "kind": "Certificate"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    create_policy(&fleet, feedback_policy("certificate-ready", "fail-closed")).await;
    let good = certificate("good", json!({"type": "Ready", "status": "True", "message": "up to date"}));
    let bad =
        certificate("bad", json!({"type": "Ready", "status": "False", "reason": "Failed", "message": "ACME refused"}));
    let id = fleet.create_bundle("certs", json!({"manifests": [crd, good, bad]})).await;
    let status = fleet
        .bundle_status(&id, "both certificates judged", |s| {
            value(s, "good", "ready").is_some() && value(s, "bad", "ready").is_some()
        })
        .await;
    let good = manifest_condition(&status, "good", "Available").expect("Available");
    assert_eq!((good["status"].as_str(), good["message"].as_str()), (Some("True"), Some("up to date")), "{status}");
    assert_eq!(value(&status, "good", "ready"), Some(&json!({"type": "Boolean", "boolean": true})));
    assert_eq!(value(&status, "good", "notAfter"), Some(&json!({"type": "String", "string": "2099-01-01T00:00:00Z"})));
    let bad = manifest_condition(&status, "bad", "Available").expect("Available");
    assert_eq!(
        (bad["status"].as_str(), bad["message"].as_str()),
        (Some("False"), Some("Failed: ACME refused")),
        "{status}"
    );
    fleet.stop().await;
}

/// A daily window of `minutes` starting `offset` from now (UTC, minute precision).
fn window(offset: Span, minutes: i64) -> Value {
    let start = (Utc::now() + offset).format("%H:%M").to_string();
    json!({"start": start, "duration_minutes": minutes, "max_requeue_ms": 1000})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maintenance_window_holds_applies_and_deletes_until_it_opens() {
    let fleet = Fleet::start_with_plugins(&["maintenance-window"]).await;
    let closed = window(Span::hours(3), 60);
    let open = window(Span::hours(-1), 180);
    create_policy(&fleet, hook_policy("maintenance-window", closed.clone())).await;

    let id = fleet.create_bundle("cm", json!({"manifests": [config_map("windowed", "1")]})).await;
    let status = fleet.bundle_status(&id, "held by the hook", |s| held_reason(s) == Some("RequeuedByHook")).await;
    let applied = manifest_condition(&status, "windowed", "Applied").expect("Applied");
    assert_eq!((applied["status"].as_str(), applied["reason"].as_str()), (Some("False"), Some("RequeuedByHook")));
    assert!(fleet.config_maps().get_opt("windowed").await.expect("cluster answers").is_none());

    // A restarted agent restores the held version through the same hook (it kept the policies):
    // by the time a later bundle is reported held, the restore is done and wrote nothing.
    let mut fleet = fleet;
    fleet.stop_agent().await;
    fleet.start_agent().await;
    let later = fleet.create_bundle("later", json!({"manifests": [config_map("later", "1")]})).await;
    fleet.bundle_status(&later, "held by the hook", |s| held_reason(s) == Some("RequeuedByHook")).await;
    assert_eq!(fleet.agent().applies(), 0, "nothing was written outside the window");

    // The window opens (a policy change the agent receives): the requeued version applies.
    replace_policy(&fleet, hook_policy("maintenance-window", open)).await;
    fleet.object(&fleet.config_maps(), "windowed", "applied once open", |o| o.is_some()).await;
    fleet.object(&fleet.config_maps(), "later", "applied once open", |o| o.is_some()).await;
    fleet.bundle_status(&id, "no longer held", |s| held_reason(s).is_none()).await;

    // Deletes are gated too: the object stays until the window opens again.
    replace_policy(&fleet, hook_policy("maintenance-window", closed)).await;
    fleet.delete_bundle(&id).await;
    fleet.bundle_status(&id, "delete held", |s| held_reason(s) == Some("DeleteRequeuedByHook")).await;
    assert!(fleet.config_maps().get_opt("windowed").await.expect("cluster answers").is_some());
    replace_policy(&fleet, hook_policy("maintenance-window", window(Span::hours(-1), 180))).await;
    fleet.bundle_purged(&id).await;
    fleet.object(&fleet.config_maps(), "windowed", "deleted once open", |o| o.is_none()).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_gate_lets_a_canary_labelled_cluster_apply_first() {
    let fleet = Fleet::start_with_plugins(&["canary-gate"]).await;
    let canary = fleet.extra_cluster("canary1", json!({"maestro.io/canary": "true"})).await;
    let mut policy = hook_policy("canary-gate", json!({"bake_minutes": 30}));
    policy["selector"] = json!({});
    create_policy(&fleet, policy).await;

    // The canary applies the fresh version at once; the other cluster lets it bake 30 minutes.
    let reply = fleet
        .hub
        .post(
            "/api/maestro/v1/resource-bundles",
            &json!({"consumer_name": "canary1", "manifests": [config_map("rollout", "1")]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = fleet.create_bundle("cm", json!({"manifests": [config_map("rollout", "1")]})).await;
    fleet.object(&canary.config_maps(), "rollout", "applied on the canary", |o| o.is_some()).await;
    fleet.bundle_status(&id, "held until baked", |s| held_reason(s) == Some("RequeuedByHook")).await;
    assert!(fleet.config_maps().get_opt("rollout").await.expect("cluster answers").is_none());

    // Labelled a canary over REST: the labels reach its agent and it applies too.
    let path = format!("/api/maestro/v1/consumers/{CONSUMER}");
    let reply = fleet.hub.patch(&path, &json!({"labels": {"maestro.io/canary": "true"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    fleet.object(&fleet.config_maps(), "rollout", "applied as a canary", |o| o.is_some()).await;
    fleet.bundle_status(&id, "applied", |s| held_reason(s).is_none()).await;

    // A version held back is released when the policy goes.
    let reply = fleet.hub.patch(&path, &json!({"labels": {}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    fleet.replace_bundle(&id, 1, json!({"manifests": [config_map("rollout", "2")]})).await;
    fleet
        .bundle_status(&id, "version 2 held", |s| {
            held_reason(s) == Some("RequeuedByHook") && s["conditions"][0]["observedGeneration"] == 2
        })
        .await;
    delete_policy(&fleet, "hook").await;
    fleet.object(&fleet.config_maps(), "rollout", "version 2 applied", |o| data_key(o) == Some("2")).await;
    fleet.bundle_status(&id, "no longer held", |s| held_reason(s).is_none()).await;
    canary.stop().await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_before_apply_hook_changes_what_is_applied_and_a_failing_before_delete_keeps_the_objects() {
    let fleet = Fleet::start_with_plugins(&["hooks-basic"]).await;
    create_policy(&fleet, hook_policy("hooks-basic", json!({}))).await;
    let mut protected = config_map("kept", "1");
    protected["metadata"]["annotations"] = json!({"maestro.io/protect": "yes"});
    let id = fleet.create_bundle("cm", json!({"manifests": [protected]})).await;

    // Applied as the hook changed it, and not seen as drift afterwards.
    let hooked = |o: Option<&Value>| o.is_some_and(|o| o["metadata"]["labels"]["maestro.io/hooked"] == "true");
    fleet.object(&fleet.config_maps(), "kept", "the hook's label", hooked).await;
    let status = fleet
        .bundle_status(&id, "applied", |s| {
            condition(&s["conditions"], "Applied").is_some_and(|c| c["status"] == "True")
        })
        .await;
    assert!(manifest_condition(&status, "kept", "Drifted").is_none(), "{status}");

    // The delete hook fails for a protected manifest: reported, and the object stays...
    fleet.delete_bundle(&id).await;
    let status = fleet.bundle_status(&id, "delete refused", |s| held_reason(s) == Some("DeleteFailedByHook")).await;
    let held = condition(&status["conditions"], "Held").expect("Held");
    assert_eq!(held["message"], "bundle is protected", "the hook's own reason");
    assert!(fleet.config_maps().get_opt("kept").await.expect("cluster answers").is_some());

    // ...until the policy goes: then the delete goes through.
    delete_policy(&fleet, "hook").await;
    fleet.bundle_purged(&id).await;
    fleet.object(&fleet.config_maps(), "kept", "deleted", |o| o.is_none()).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_plugins_ignores_policy_updates_and_keeps_serving() {
    let fleet = Fleet::start().await;
    // A label change queues a policy update for the consumer, which the dispatcher sends after
    // the REST answer (the bundle's spec event then follows it on the same topic).
    let path = format!("/api/maestro/v1/consumers/{CONSUMER}");
    let reply = fleet.hub.patch(&path, &json!({"labels": {"env": "prod"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = "maestro_transport_policy_updates_total{outcome=\"sent\"}";
    eventually("the policy update sent", || async { (fleet.hub.metric(sent).await == 1.0).then_some(()) }).await;
    let id = fleet.create_bundle("cm", json!({"manifests": [config_map("plain", "1")]})).await;
    fleet.object(&fleet.config_maps(), "plain", "applied", |o| o.is_some()).await;
    fleet.bundle_status(&id, "reported", |s| condition(&s["conditions"], "Applied").is_some()).await;
    assert_eq!(fleet.agent().malformed_events(), 0, "a policy event is not a malformed spec event");
    assert_eq!(fleet.agent().policy_updates(), 0);
    fleet.stop().await;
}
