//! The example plugins of `plugins/examples` (Rust, Python, JavaScript) through the hub's REST
//! API with real policies: what the plugin guide promises a new author.

use maestro_tests::Backend;
use serde_json::json;

use crate::{consumer, deployment, hub_with, policy, post_bundle, violations};

/// Generous deadlines: these tests are about answers, and Python guests on a loaded machine
/// are slower than the 100 ms default.
fn step(plugin: &str, settings: serde_json::Value) -> serde_json::Value {
    json!({"plugin": plugin, "settings": settings})
}

fn labels_policy(name: &str, consumer: &str, plugin: &str, failure_mode: Option<&str>) -> serde_json::Value {
    let mut step = step(plugin, json!({"labels": ["team"]}));
    if let Some(mode) = failure_mode {
        step["failure_mode"] = json!(mode);
    }
    json!({
        "name": name,
        "selector": {"consumers": [consumer]},
        "limits": {"timeout_ms": 5000},
        "validate": {"plugins": [step]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_require_labels_example_in_every_language_makes_the_rest_api_deny_a_manifest() {
    let plugins = ["require-labels", "py-require-labels", "js-require-labels"];
    let (hub, _dir) = hub_with(Backend::Sqlite, &plugins).await;
    for plugin in plugins {
        let cluster = format!("c-{plugin}");
        consumer(&hub, &cluster, json!({})).await;
        policy(&hub, labels_policy(&format!("labels-{plugin}"), &cluster, plugin, None)).await;

        let reply = post_bundle(&hub, &cluster, deployment("web", &["nginx:1.27"])).await;
        assert_eq!(reply.status, 400, "{plugin}: {}", reply.body);
        let found = violations(&reply);
        assert_eq!(found.len(), 1, "{plugin}: {found:?}");
        assert_eq!(found[0].0, "manifests[0].metadata.labels.team", "{plugin}");
        assert!(found[0].1.starts_with(&format!("plugin '{plugin}': ")), "{plugin}: {found:?}");

        let mut labelled = deployment("web", &["nginx:1.27"]);
        labelled["metadata"]["labels"]["team"] = json!("payments");
        let reply = post_bundle(&hub, &cluster, labelled).await;
        assert_eq!(reply.status, 201, "{plugin} allows a labelled manifest: {}", reply.body);
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_in_monitor_mode_lets_writes_through_then_enforces_when_the_policy_changes() {
    let (hub, _dir) = hub_with(Backend::Sqlite, &["require-labels"]).await;
    consumer(&hub, "c1", json!({})).await;
    policy(&hub, labels_policy("labels", "c1", "require-labels", Some("monitor"))).await;
    let reply = post_bundle(&hub, "c1", deployment("web", &["nginx:1.27"])).await;
    assert_eq!(reply.status, 201, "monitor never refuses: {}", reply.body);

    let enforced = labels_policy("labels", "c1", "require-labels", None);
    let reply = hub.put("/api/maestro/v1/plugin-policies/labels", &enforced).await;
    assert!(reply.status == 200 || reply.status == 201, "replacing the policy: {}", reply.body);
    let reply = post_bundle(&hub, "c1", deployment("api", &["nginx:1.27"])).await;
    assert_eq!(reply.status, 400, "enforced: {}", reply.body);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_example_validators_deny_privileged_host_path_and_unpinned_images_and_add_labels() {
    let plugins = ["deny-privileged", "deny-host-path", "allowed-images", "require-limits", "default-labels"];
    let (hub, _dir) = hub_with(Backend::Sqlite, &plugins).await;
    consumer(&hub, "c1", json!({})).await;
    policy(
        &hub,
        json!({
            "name": "baseline",
            "selector": {"consumers": ["c1"]},
            "limits": {"timeout_ms": 5000},
            "validate": {"plugins": [
                step("deny-privileged", json!({})),
                step("deny-host-path", json!({})),
                step("allowed-images", json!({"allowed_registries": ["ghcr.io/acme"]})),
                step("require-limits", json!({})),
                step("default-labels", json!({"labels": {"managed-by": "maestro"}})),
            ]}
        }),
    )
    .await;

    let mut bad = deployment("web", &["nginx:1.27"]);
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    bad["spec"]["template"]["spec"]["volumes"] = json!([{"name": "root", "hostPath": {"path": "/"}}]);
    let reply = post_bundle(&hub, "c1", bad).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let fields: Vec<String> = violations(&reply).into_iter().map(|(field, _)| field).collect();
    for expected in [
        "manifests[0].spec.template.spec.containers[0].securityContext.privileged",
        "manifests[0].spec.template.spec.volumes[0].hostPath",
        "manifests[0].spec.template.spec.containers[0].image",
        "manifests[0].spec.template.spec.containers[0].resources.limits.memory",
    ] {
        assert!(fields.iter().any(|f| f == expected), "{expected} missing from {fields:?}");
    }

    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut good = deployment("web", &[&format!("ghcr.io/acme/web@{digest}")]);
    good["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
    let reply = post_bundle(&hub, "c1", good).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let stored = &reply.body["manifests"][0];
    assert_eq!(stored["metadata"]["labels"]["managed-by"], "maestro", "the mutator's label is stored: {stored}");
    assert_eq!(stored["spec"]["template"]["metadata"]["labels"]["managed-by"], "maestro", "{stored}");
    hub.stop().await;
}
