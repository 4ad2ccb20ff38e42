//! Validators on REST writes: deny with every violation, mutate, allow; policies chosen by
//! consumer name and by label; policies refused when they cannot run; failure modes.

use maestro_tests::{Backend, TestHub};
use serde_json::json;

use crate::{consumer, deployment, hub_with, metric, policy, post_bundle, violations};

async fn on_both(test: impl AsyncFn(&TestHub)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (hub, _dir) = hub_with(backend, &["image-policy", "add-labels", "hostile", "codec-basic"]).await;
        test(&hub).await;
        hub.stop().await;
    }
}

fn image_policy(name: &str, selector: serde_json::Value) -> serde_json::Value {
    json!({
        "name": name,
        "selector": selector,
        "validate": {"plugins": [{"plugin": "image-policy", "settings": {"forbidden_tags": ["latest"], "require_team_label": true}}]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denying_validator_refuses_the_write_listing_every_violation_with_plugin_and_field() {
    on_both(async |hub| {
        consumer(hub, "c1", json!({})).await;
        policy(hub, image_policy("images", json!({"consumers": ["c1"]}))).await;

        let reply = post_bundle(hub, "c1", deployment("web", &["nginx:latest", "redis"])).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        let found = violations(&reply);
        let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "manifests[0].spec.template.spec.containers[0].image",
                "manifests[0].spec.template.spec.containers[1].image",
                "manifests[0].metadata.labels.team",
            ]
        );
        assert!(found.iter().all(|(_, m)| m.starts_with("plugin 'image-policy': ")), "{found:?}");
        assert!(found[0].1.contains("\"latest\""), "{found:?}");
        let listed = hub.get("/api/maestro/v1/resource-bundles").await;
        assert_eq!(listed.body["total"], 0, "nothing is stored when a validator denies");

        // The single-resource API names the field as its clients send it.
        let reply = hub
            .post(
                "/api/maestro/v1/resources",
                &json!({"consumer_name": "c1", "manifest": deployment("api", &["nginx"])}),
            )
            .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(violations(&reply).iter().any(|(f, _)| f == "manifest.spec.template.spec.containers[0].image"));

        let mut good = deployment("web", &["nginx:1.27"]);
        good["metadata"]["labels"]["team"] = json!("payments");
        let reply = post_bundle(hub, "c1", good.clone()).await;
        assert_eq!(reply.status, 201, "a manifest the validator allows is stored: {}", reply.body);

        // Updates are validated too.
        let id = reply.body["id"].as_str().expect("id").to_string();
        let bad = json!({"version": 1, "manifests": [deployment("web", &["nginx:latest"])]});
        let reply = hub.put(&format!("/api/maestro/v1/resource-bundles/{id}"), &bad).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(
            metric(hub, "maestro_plugin_calls_total", &["plugin=\"image-policy\"", "outcome=\"deny\""]).await
                >= Some(1.0)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutating_validator_changes_what_is_stored() {
    let (hub, _dir) = hub_with(Backend::Sqlite, &["add-labels"]).await;
    consumer(&hub, "c1", json!({})).await;
    policy(
        &hub,
        json!({"name": "labels", "selector": {"consumers": ["c1"]},
               "validate": {"plugins": [{"plugin": "add-labels", "settings": {"labels": {"managed-by": "maestro"}}}]}}),
    )
    .await;
    let reply = post_bundle(&hub, "c1", deployment("web", &["nginx:1"])).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("id");
    let read = hub.get(&format!("/api/maestro/v1/resource-bundles/{id}")).await;
    assert_eq!(read.body["manifests"][0]["metadata"]["labels"], json!({"app": "web", "managed-by": "maestro"}));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_select_consumers_by_name_and_by_label() {
    let (hub, _dir) = hub_with(Backend::Sqlite, &["hostile"]).await;
    consumer(&hub, "prod-1", json!({"env": "prod"})).await;
    consumer(&hub, "dev-1", json!({"env": "dev"})).await;
    consumer(&hub, "named", json!({})).await;
    let deny = json!({"plugins": [{"plugin": "hostile", "settings": {"mode": "deny"}}]});
    policy(&hub, json!({"name": "prod", "selector": {"labels": {"env": "prod"}}, "validate": deny})).await;
    policy(&hub, json!({"name": "by-name", "selector": {"consumers": ["named"]}, "validate": deny})).await;

    assert_eq!(post_bundle(&hub, "prod-1", deployment("a", &["x:1"])).await.status, 400);
    assert_eq!(post_bundle(&hub, "named", deployment("a", &["x:1"])).await.status, 400);
    assert_eq!(post_bundle(&hub, "dev-1", deployment("a", &["x:1"])).await.status, 201);

    // Labels are read at each write: relabelling a consumer moves it under the policy.
    let reply = hub.patch("/api/maestro/v1/consumers/dev-1", &json!({"labels": {"env": "prod"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(post_bundle(&hub, "dev-1", deployment("b", &["x:1"])).await.status, 400);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_cannot_run_is_refused_when_stored() {
    on_both(async |hub| {
        let post = |body| async move { hub.post("/api/maestro/v1/plugin-policies", &body).await };
        let missing = post(json!({"name": "p", "validate": {"plugins": [{"plugin": "nope"}]}})).await;
        assert_eq!(missing.status, 400);
        assert_eq!(violations(&missing)[0].0, "validate.plugins[0].plugin");
        assert!(violations(&missing)[0].1.contains("no plugin named 'nope'"));

        let settings = post(json!({"name": "p", "validate": {"plugins": [{"plugin": "image-policy", "settings": {"forbidden_tags": 5}}]}})).await;
        assert_eq!(settings.status, 400);
        assert_eq!(violations(&settings)[0].0, "validate.plugins[0].settings");
        assert!(violations(&settings)[0].1.contains("forbidden_tags must be a list of strings"), "{}", settings.body);

        let world = post(json!({"name": "p", "validate": {"plugins": [{"plugin": "codec-basic", "settings": {"key": 1}}]}})).await;
        assert_eq!(world.status, 400);
        assert!(violations(&world)[0].1.contains("is a codec plugin"), "{}", world.body);

        let pin = post(json!({"name": "p", "validate": {"plugins": [{"plugin": "hostile", "settings": {"mode": "allow"}, "sha256": "0".repeat(64)}]}})).await;
        assert_eq!(pin.status, 400);
        assert_eq!(violations(&pin)[0].0, "validate.plugins[0].sha256");

        let unknown = post(json!({"name": "p", "validate": {"plugins": []}, "extra": 1})).await;
        assert_eq!(unknown.status, 400, "unknown fields are refused: {}", unknown.body);

        assert_eq!(hub.get("/api/maestro/v1/plugin-policies").await.body["total"], 0, "nothing refused was stored");

        // A good one goes through the whole life cycle.
        let digest = crate::plugin_entry(hub, "hostile").await["digest"].as_str().expect("digest").to_string();
        let good = json!({"name": "p", "validate": {"plugins": [{"plugin": "hostile", "settings": {"mode": "allow"}, "sha256": digest}]}});
        assert_eq!(post(good.clone()).await.status, 201);
        assert_eq!(post(good.clone()).await.status, 409, "names are unique");
        let mut changed = good.clone();
        changed["validate"]["plugins"][0]["settings"]["mode"] = json!("deny");
        let reply = hub.put("/api/maestro/v1/plugin-policies/p", &changed).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["validate"]["plugins"][0]["settings"]["mode"], "deny");
        let mut bad = changed.clone();
        bad["validate"]["plugins"][0]["settings"]["mode"] = json!("explode");
        assert_eq!(hub.put("/api/maestro/v1/plugin-policies/p", &bad).await.status, 400);
        assert_eq!(hub.get("/api/maestro/v1/plugin-policies/p").await.body["validate"]["plugins"][0]["settings"]["mode"], "deny");
        assert_eq!(hub.delete("/api/maestro/v1/plugin-policies/p").await.status, 204);
        assert_eq!(hub.get("/api/maestro/v1/plugin-policies/p").await.status, 404);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_mode_decides_what_a_failing_or_denying_validator_does() {
    let (hub, _dir) = hub_with(Backend::Sqlite, &["hostile"]).await;
    for (name, mode, settings) in [
        ("closed", "fail-closed", "trap"),
        ("open", "fail-open", "trap"),
        ("monitored", "monitor", "deny"),
        ("monitored-trap", "monitor", "trap"),
        ("open-deny", "fail-open", "deny"),
    ] {
        consumer(&hub, name, json!({})).await;
        policy(
            &hub,
            json!({"name": name, "selector": {"consumers": [name]},
                   "validate": {"failure_mode": mode, "plugins": [{"plugin": "hostile", "settings": {"mode": settings}}]}}),
        )
        .await;
    }
    let closed = post_bundle(&hub, "closed", deployment("a", &["x:1"])).await;
    assert_eq!(closed.status, 400, "fail-closed refuses when the plugin traps: {}", closed.body);
    let message = &violations(&closed)[0].1;
    assert!(message.contains("plugin 'hostile' trapped") && message.contains("fail-closed"), "{message}");

    assert_eq!(post_bundle(&hub, "open", deployment("a", &["x:1"])).await.status, 201, "fail-open lets it through");
    assert_eq!(post_bundle(&hub, "monitored", deployment("a", &["x:1"])).await.status, 201, "monitor never refuses");
    assert_eq!(post_bundle(&hub, "monitored-trap", deployment("a", &["x:1"])).await.status, 201);
    assert_eq!(
        post_bundle(&hub, "open-deny", deployment("a", &["x:1"])).await.status,
        400,
        "fail-open is about failures: a denial still refuses"
    );
    assert!(metric(&hub, "maestro_plugin_calls_total", &["outcome=\"monitor_deny\""]).await >= Some(1.0));
    assert!(metric(&hub, "maestro_plugin_calls_total", &["outcome=\"trap\""]).await >= Some(3.0));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_also_read_from_the_plugin_directory_and_a_bad_policy_file_keeps_the_last_good_one() {
    let (hub, dir) = hub_with(Backend::Sqlite, &["hostile"]).await;
    consumer(&hub, "c1", json!({})).await;
    let file = r#"
        [[policy]]
        name = "from-file"
        selector = { consumers = ["c1"] }
        [policy.validate]
        plugins = [{ plugin = "hostile", settings = { mode = "deny" } }]
    "#;
    crate::drop_file(dir.path(), "policies.toml", file.as_bytes());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed = hub.get("/api/maestro/v1/plugin-policies").await;
        if listed.body["items"][0]["name"] == "from-file" {
            assert_eq!(listed.body["items"][0]["source"], "file");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the policy file was never read: {}", listed.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let reply = post_bundle(&hub, "c1", deployment("a", &["x:1"])).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(violations(&reply)[0].1.contains("hostile says no"));

    // A file that does not parse is refused: the policies read before stay in force.
    crate::drop_file(dir.path(), "policies.toml", b"[[policy]]\nname = 42\n");
    while metric(&hub, "maestro_plugin_loads_total", &["plugin=\"policies\"", "result=\"rejected\""]).await.is_none() {
        assert!(std::time::Instant::now() < deadline, "the bad policy file was never seen");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(post_bundle(&hub, "c1", deployment("b", &["x:1"])).await.status, 400);

    // Removing the file removes its policies.
    std::fs::remove_file(dir.path().join("policies.toml")).expect("remove");
    loop {
        if post_bundle(&hub, "c1", deployment("c", &["x:1"])).await.status == 201 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the removed policy file still applies");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    hub.stop().await;
}

/// The REST API is one caller of the hub's write service among several (the gRPC API and the
/// operator engines are next): a writer that never touches HTTP is checked all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_denies_a_manifest_written_through_the_service_without_http() {
    use maestro_hub::service::{ServiceError, WriteKeys};
    use maestro_model::BundleContent;

    on_both(async |hub| {
        consumer(hub, "c1", json!({})).await;
        policy(hub, image_policy("images", json!({"consumers": ["c1"]}))).await;
        let bundles = &hub.hub.services.bundles;
        let keys = || WriteKeys { consumer_name: Some("c1".into()), ..WriteKeys::default() };
        let content = |manifest| BundleContent { manifests: vec![manifest], ..BundleContent::default() };

        let refused = bundles.create(keys(), content(deployment("web", &["nginx:latest"]))).await;
        let Err(ServiceError::Invalid(found)) = refused else { panic!("the validator must refuse: {refused:?}") };
        let fields: Vec<&str> = found.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["manifests[0].spec.template.spec.containers[0].image", "manifests[0].metadata.labels.team"]
        );
        assert!(found.iter().all(|v| v.message.starts_with("plugin 'image-policy': ")), "{found:?}");
        assert_eq!(hub.get("/api/maestro/v1/resource-bundles").await.body["total"], 0, "nothing stored");

        let mut good = deployment("web", &["nginx:1.27"]);
        good["metadata"]["labels"]["team"] = json!("payments");
        let stored = bundles.create(keys(), content(good)).await.expect("an allowed manifest is stored");
        let replaced = bundles
            .replace(
                &stored.id,
                WriteKeys { version: Some(stored.version), ..WriteKeys::default() },
                content(deployment("web", &["nginx:latest"])),
                |_| Ok(()),
            )
            .await;
        assert!(matches!(replaced, Err(ServiceError::Invalid(_))), "updates are validated too: {replaced:?}");
    })
    .await;
}
