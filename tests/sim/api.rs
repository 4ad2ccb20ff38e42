//! Writes as a client makes them: create, replace, patch, server-side apply, status, finalizers
//! and the errors a real API server answers with.

use k8s_openapi::api::apps::v1::Deployment;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use maestro_sim::SimOptions;

use crate::{Sim, api_error, eventually};

fn deployment(name: &str, replicas: i32, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
}

fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.unwrap_or_default()
}

#[tokio::test]
async fn server_side_apply_creates_then_reapplying_the_same_config_changes_nothing() {
    // A long ready delay: the controller writes the not-ready status once and then stays quiet.
    let s = Sim::start_with(SimOptions { ready_delay: Duration::from_secs(3600), ..Default::default() }).await;
    let api: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    let pp = PatchParams::apply("maestro-agent");
    let first =
        api.patch("web", &pp, &Patch::Apply(deployment("web", 2, "nginx:1"))).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(generation(&first), 1);
    let managers = first.metadata.managed_fields.clone().unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some("maestro-agent") && m.operation.as_deref() == Some("Apply"))
    );
    let settled = eventually("status observed", || async {
        let d = api.get("web").await.ok()?;
        d.status.as_ref()?.observed_generation.is_some().then_some(d)
    })
    .await;

    let again =
        api.patch("web", &pp, &Patch::Apply(deployment("web", 2, "nginx:1"))).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.resource_version(), settled.resource_version(), "a no-op apply must not write");

    let mut relabelled = deployment("web", 2, "nginx:1");
    relabelled["metadata"]["labels"]["tier"] = json!("front");
    let relabelled = api.patch("web", &pp, &Patch::Apply(relabelled)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(relabelled.resource_version(), settled.resource_version());
    assert_eq!(relabelled.labels().get("tier").map(String::as_str), Some("front"));
    assert_eq!(generation(&relabelled), 1, "a metadata change keeps the generation");

    let scaled =
        api.patch("web", &pp, &Patch::Apply(deployment("web", 3, "nginx:1"))).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(generation(&scaled), 2, "a spec change bumps the generation");
    assert_eq!(scaled.labels().get("tier"), None, "a label dropped from the applied config is removed");
    s.stop().await;
}

#[tokio::test]
async fn an_apply_conflicting_with_another_manager_is_refused_without_force_and_wins_with_force() {
    let s = Sim::start().await;
    let api: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    api.patch("web", &PatchParams::apply("maestro-agent"), &Patch::Apply(deployment("web", 2, "nginx:1")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Drift: someone else scales it with an ordinary update.
    let drift = PatchParams { field_manager: Some("kubectl-edit".into()), ..PatchParams::default() };
    api.patch("web", &drift, &Patch::Merge(json!({"spec": {"replicas": 5}}))).await.unwrap_or_else(|e| panic!("{e}"));

    let status = api_error(
        api.patch("web", &PatchParams::apply("maestro-agent"), &Patch::Apply(deployment("web", 2, "nginx:1"))).await,
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(status.message.contains("kubectl-edit") && status.message.contains(".spec.replicas"), "{}", status.message);

    // The same value as the other manager is shared ownership, not a conflict.
    api.patch("web", &PatchParams::apply("maestro-agent"), &Patch::Apply(deployment("web", 5, "nginx:1")))
        .await
        .unwrap_or_else(|e| panic!("same value must not conflict: {e}"));

    let forced = api
        .patch("web", &PatchParams::apply("other-agent").force(), &Patch::Apply(deployment("web", 7, "nginx:1")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(forced.spec.replicas, Some(7));
    s.stop().await;
}

#[tokio::test]
async fn the_status_subresource_writes_only_status_and_the_main_resource_never_does() {
    // Services have a status subresource and no simulated controller touching it.
    let s = Sim::start().await;
    let api: Api<Service> = Api::namespaced(s.client.clone(), "default");
    let svc: Service = crate::json(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}]}
    }));
    api.create(&PostParams::default(), &svc).await.unwrap_or_else(|e| panic!("{e}"));
    let ingress = |ip: &str| json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
    let lb_ip = |svc: &Service| {
        let ingress = svc.status.as_ref()?.load_balancer.as_ref()?.ingress.clone()?;
        ingress.first()?.ip.clone()
    };
    let pp = PatchParams::default();
    let patched = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"spec": {"ports": [{"port": 81}]}, "status": ingress("10.0.0.1")})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lb_ip(&patched).as_deref(), Some("10.0.0.1"));
    let port = |svc: &Service| svc.spec.as_ref().and_then(|s| s.ports.clone()).and_then(|p| p.first().map(|p| p.port));
    assert_eq!(port(&patched), Some(80), "a status write changed the spec");

    let patched = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"ports": [{"port": 82}]}, "status": ingress("10.9.9.9")})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(port(&patched), Some(82));
    assert_eq!(lb_ip(&patched).as_deref(), Some("10.0.0.1"), "a main write changed status");
    s.stop().await;
}

#[tokio::test]
async fn writes_into_a_missing_namespace_answer_404_and_duplicates_409() {
    let s = Sim::start().await;
    let missing: Api<ConfigMap> = Api::namespaced(s.client.clone(), "nowhere");
    let cm: ConfigMap = crate::json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    let status = api_error(missing.create(&PostParams::default(), &cm).await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert!(status.message.contains("namespaces \"nowhere\" not found"), "{}", status.message);

    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    api.create(&PostParams::default(), &cm).await.unwrap_or_else(|e| panic!("{e}"));
    let status = api_error(api.create(&PostParams::default(), &cm).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "AlreadyExists"));

    let nameless: ConfigMap = crate::json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}));
    let status = api_error(api.create(&PostParams::default(), &nameless).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));

    let status = api_error(api.get("absent").await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    s.stop().await;
}

#[tokio::test]
async fn a_replace_with_a_stale_resource_version_is_a_conflict() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let cm: ConfigMap =
        crate::json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}}));
    let mut first = api.create(&PostParams::default(), &cm).await.unwrap_or_else(|e| panic!("{e}"));
    let mut second = first.clone();
    second.data = Some([("k".to_owned(), "2".to_owned())].into());
    api.replace("c", &PostParams::default(), &second).await.unwrap_or_else(|e| panic!("{e}"));
    first.data = Some([("k".to_owned(), "3".to_owned())].into());
    let status = api_error(api.replace("c", &PostParams::default(), &first).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    s.stop().await;
}

#[tokio::test]
async fn finalizers_hold_a_deletion_until_the_last_one_is_removed() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let cm: ConfigMap = crate::json(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["example.com/a", "example.com/b"]}
    }));
    api.create(&PostParams::default(), &cm).await.unwrap_or_else(|e| panic!("{e}"));
    let deleted = api.delete("held", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let pending = deleted.left().unwrap_or_else(|| panic!("a held object is returned, not a Status"));
    assert!(pending.meta().deletion_timestamp.is_some());

    let status = api_error(
        api.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/a", "example.com/b", "example.com/c"]}})),
        )
        .await,
    );
    assert_eq!(status.code, 422, "no finalizer may be added while deleting");

    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/b"]}})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(api.get("held").await.is_ok(), "one finalizer left still holds it");
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "remove", "path": "/metadata/finalizers"}]))
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(api_error(api.get("held").await).code, 404);
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents_then_the_namespace() {
    let s = Sim::start().await;
    let namespaces: Api<Namespace> = Api::all(s.client.clone());
    let ns: Namespace = crate::json(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}));
    namespaces.create(&PostParams::default(), &ns).await.unwrap_or_else(|e| panic!("{e}"));
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), "team");
    let cm: ConfigMap = crate::json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    cms.create(&PostParams::default(), &cm).await.unwrap_or_else(|e| panic!("{e}"));

    namespaces.delete("team", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let status = api_error(
        cms.create(
            &PostParams::default(),
            &crate::json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})),
        )
        .await,
    );
    // Either still terminating (403) or already gone (404): both refuse new content.
    assert!(status.code == 403 || status.code == 404, "{status:?}");
    eventually("namespace gone", || async { namespaces.get("team").await.is_err().then_some(()) }).await;
    assert_eq!(api_error(cms.get("c").await).code, 404);
    s.stop().await;
}

#[tokio::test]
async fn the_scale_subresource_reads_and_writes_spec_replicas() {
    let s = Sim::start().await;
    let api: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    api.create(&PostParams::default(), &crate::json(deployment("web", 2, "nginx:1")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let scale = api.get_scale("web").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(2));
    assert_eq!(scale.status.map(|s| s.selector.unwrap_or_default()).as_deref(), Some("app=web"));
    let scaled = api
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 4}})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(4));
    let d = api.get("web").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((d.spec.replicas, generation(&d)), (Some(4), 2));
    s.stop().await;
}

fn labelled(name: &str, team: &str) -> ConfigMap {
    crate::json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"team": team}}}))
}

#[tokio::test]
async fn lists_page_with_limit_and_continue_and_select_by_label() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    for (name, team) in [("a", "red"), ("b", "blue"), ("c", "red"), ("d", "red"), ("e", "blue")] {
        api.create(&PostParams::default(), &labelled(name, team)).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().labels("team=red").limit(2);
    loop {
        let page = api.list(&params).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(page.items.len() <= 2);
        names.extend(page.items.iter().map(|c| c.name_any()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(names, ["a", "c", "d"]);
    let status = api_error(api.list(&ListParams::default().labels("team in (red")).await);
    assert_eq!(status.code, 400);
    s.stop().await;
}

#[tokio::test]
async fn generate_name_dry_run_json_patch_and_delete_collection_behave_like_a_cluster() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let generated: ConfigMap = crate::json(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-", "labels": {"team": "red"}}}),
    );
    let created = api.create(&PostParams::default(), &generated).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        created.name_any().starts_with("gen-") && created.name_any().len() == "gen-".len() + 5,
        "{}",
        created.name_any()
    );

    let dry = PostParams { dry_run: true, ..PostParams::default() };
    api.create(&dry, &labelled("dry", "red")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(api_error(api.get("dry").await).code, 404, "a dry run must not store anything");

    api.create(&PostParams::default(), &labelled("p", "blue")).await.unwrap_or_else(|e| panic!("{e}"));
    let ops = json!([{"op": "add", "path": "/data", "value": {"k": "v"}}, {"op": "replace", "path": "/metadata/labels/team", "value": "red"}]);
    let patched = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(ops).unwrap_or_else(|e| panic!("{e}"))),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(patched.data.unwrap_or_default().get("k").map(String::as_str), Some("v"));
    let failed_test = json!([{"op": "test", "path": "/data/k", "value": "other"}]);
    let status = api_error(
        api.patch(
            "p",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(failed_test).unwrap_or_else(|e| panic!("{e}"))),
        )
        .await,
    );
    assert_eq!(status.code, 422);

    api.create(&PostParams::default(), &labelled("keep", "blue")).await.unwrap_or_else(|e| panic!("{e}"));
    api.delete_collection(&DeleteParams::default(), &ListParams::default().labels("team=red"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(left, ["keep"]);

    // Deleted at once, a built-in object is confirmed with a Success Status.
    let gone = api.delete("keep", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let status = gone.right().unwrap_or_else(|| panic!("expected a Status"));
    assert!(status.is_success());
    s.stop().await;
}

#[tokio::test]
async fn a_service_gets_a_cluster_ip_that_stays_and_ports_get_their_protocol() {
    let s = Sim::start().await;
    let api: Api<Service> = Api::namespaced(s.client.clone(), "default");
    let service: Service = crate::json(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}
    }));
    let created = api.create(&Default::default(), &service).await.unwrap();
    let spec = created.spec.unwrap();
    let ip = spec.cluster_ip.clone().expect("a cluster IP is allocated");
    assert!(ip.starts_with("10."), "{ip}");
    assert_eq!(spec.cluster_ips, Some(vec![ip.clone()]));
    assert_eq!(spec.ports.unwrap()[0].protocol.as_deref(), Some("TCP"));
    let applied = serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 8080}], "selector": {"app": "web"}}
    });
    let params = kube::api::PatchParams::apply("other").force();
    let after = api.patch("web", &params, &kube::api::Patch::Apply(&applied)).await.unwrap();
    assert_eq!(after.spec.unwrap().cluster_ip, Some(ip), "an update keeps the address");
    let headless: Service = crate::json(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "hs"}, "spec": {"clusterIP": "None"}
    }));
    let headless = api.create(&Default::default(), &headless).await.unwrap();
    assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    s.stop().await;
}

#[tokio::test]
async fn quantities_read_back_canonical_and_applying_the_same_again_changes_nothing() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let s = Sim::start().await;
    let api: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    let mut manifest = deployment("q", 1, "nginx");
    manifest["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": 0.3, "memory": "1024Mi"}, "limits": {"cpu": "1000m", "memory": "1.5Gi"}});
    let params = PatchParams::apply("test").force();
    let first = api.patch("q", &params, &Patch::Apply(&manifest)).await.unwrap();
    let value = serde_json::to_value(&first).unwrap();
    let resources = &value["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(resources["requests"], json!({"cpu": "300m", "memory": "1Gi"}));
    assert_eq!(resources["limits"], json!({"cpu": "1", "memory": "1536Mi"}));

    // No controller writes a quota's status here, so its resourceVersion shows any change.
    let quotas: Api<ResourceQuota> = Api::namespaced(s.client.clone(), "default");
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                       "spec": {"hard": {"cpu": 0.5, "memory": "2048Mi", "pods": "10"}}});
    let first = quotas.patch("q", &params, &Patch::Apply(&quota)).await.unwrap();
    let hard = serde_json::to_value(&first.spec).unwrap()["hard"].clone();
    assert_eq!(hard, json!({"cpu": "500m", "memory": "2Gi", "pods": "10"}));
    let again = quotas.patch("q", &params, &Patch::Apply(&quota)).await.unwrap();
    assert_eq!(again.resource_version(), first.resource_version(), "the same apply again is no change");
    s.stop().await;
}
