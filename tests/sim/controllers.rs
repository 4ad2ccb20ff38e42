//! The simulated cluster's controllers: readiness after a delay, Jobs, garbage collection,
//! and many clusters in one process.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use maestro_sim::{SimCluster, SimOptions};
use serde_json::json;

use crate::{Sim, api_error, eventually};

fn available(d: &Deployment) -> bool {
    let status = d.status.clone().unwrap_or_default();
    status.observed_generation == d.metadata.generation
        && status.available_replicas == d.spec.replicas
        && status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
}

#[tokio::test]
async fn a_deployment_is_unavailable_at_first_and_becomes_available_after_the_delay_for_each_generation() {
    let s = Sim::start_with(SimOptions { ready_delay: Duration::from_secs(2), ..SimOptions::default() }).await;
    let api: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    let d: Deployment = crate::json(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    }));
    api.patch("web", &PatchParams::apply("test"), &Patch::Apply(&d)).await.unwrap_or_else(|e| panic!("{e}"));
    let progressing = eventually("status observed", || async {
        let d = api.get("web").await.ok()?;
        d.status.as_ref()?.observed_generation.is_some().then_some(d)
    })
    .await;
    // The status is written at once and readiness only after 2 s; a slow machine may already
    // be past that, so only a not-ready status is checked for its content.
    if !available(&progressing) {
        let status = progressing.status.clone().unwrap_or_default();
        assert_eq!(status.ready_replicas.unwrap_or(0), 0);
        assert_eq!(status.replicas, Some(2));
    }
    let ready = eventually("deployment available", || async { api.get("web").await.ok().filter(available) }).await;
    assert_eq!(ready.status.and_then(|s| s.ready_replicas), Some(2));

    let scaled = api
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!available(&scaled), "a new generation is not available at once");
    eventually("new generation available", || async {
        api.get("web")
            .await
            .ok()
            .filter(available)
            .filter(|d| d.status.as_ref().and_then(|s| s.ready_replicas) == Some(3))
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn a_statefulset_becomes_ready() {
    let s = Sim::start().await;
    let api: Api<StatefulSet> = Api::namespaced(s.client.clone(), "default");
    let sts: StatefulSet = crate::json(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "pg", "image": "postgres"}]}}}
    }));
    api.create(&PostParams::default(), &sts).await.unwrap_or_else(|e| panic!("{e}"));
    eventually("statefulset ready", || async {
        let s = api.get("db").await.ok()?.status?;
        (s.ready_replicas == Some(1) && s.observed_generation == Some(1)).then_some(())
    })
    .await;
    s.stop().await;
}

fn job(name: &str, fail: bool) -> Job {
    let mut job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "run", "image": "busybox"}]}}}
    });
    if fail {
        job["metadata"]["annotations"] = json!({(maestro_sim::FAIL_ANNOTATION): "true"});
    }
    crate::json(job)
}

fn condition(job: &Job, kind: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

#[tokio::test]
async fn a_job_completes_and_an_annotated_job_fails() {
    let s = Sim::start().await;
    let api: Api<Job> = Api::namespaced(s.client.clone(), "default");
    api.create(&PostParams::default(), &job("ok", false)).await.unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &job("bad", true)).await.unwrap_or_else(|e| panic!("{e}"));
    let done =
        eventually("job complete", || async { api.get("ok").await.ok().filter(|j| condition(j, "Complete")) }).await;
    assert_eq!(done.status.and_then(|s| s.succeeded), Some(1));
    let failed =
        eventually("job failed", || async { api.get("bad").await.ok().filter(|j| condition(j, "Failed")) }).await;
    assert!(!condition(&failed, "Complete"));
    assert!(failed.status.and_then(|s| s.failed).unwrap_or(0) > 0);
    s.stop().await;
}

async fn owner_and_dependent(api: &Api<ConfigMap>, owner: &str) -> (ConfigMap, ConfigMap) {
    let parent: ConfigMap = crate::json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": owner}}));
    let parent = api.create(&PostParams::default(), &parent).await.unwrap_or_else(|e| panic!("{e}"));
    let child: ConfigMap = crate::json(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{owner}-child"), "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": parent.uid(), "blockOwnerDeletion": true
        }]}
    }));
    let child = api.create(&PostParams::default(), &child).await.unwrap_or_else(|e| panic!("{e}"));
    (parent, child)
}

#[tokio::test]
async fn deleting_an_owner_collects_dependents_in_background_and_foreground_and_orphan_keeps_them() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");

    owner_and_dependent(&api, "bg").await;
    api.delete("bg", &DeleteParams::background()).await.unwrap_or_else(|e| panic!("{e}"));
    eventually("background dependent collected", || async { api.get("bg-child").await.is_err().then_some(()) }).await;

    owner_and_dependent(&api, "fg").await;
    // A finalizer on the dependent keeps it, and so keeps the owner in foreground deletion.
    api.patch(
        "fg-child",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    api.delete("fg", &DeleteParams::foreground()).await.unwrap_or_else(|e| panic!("{e}"));
    eventually("dependent being deleted", || async {
        api.get("fg-child").await.ok().filter(|c| c.metadata.deletion_timestamp.is_some())
    })
    .await;
    let owner = api.get("fg").await.unwrap_or_else(|e| panic!("owner must wait for its dependent: {e}"));
    assert!(owner.finalizers().iter().any(|f| f == "foregroundDeletion"));
    api.patch("fg-child", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eventually("foreground owner gone", || async { api.get("fg").await.is_err().then_some(()) }).await;

    owner_and_dependent(&api, "or").await;
    let orphan = DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..DeleteParams::default() };
    api.delete("or", &orphan).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(api_error(api.get("or").await).code, 404);
    let child = api.get("or-child").await.unwrap_or_else(|e| panic!("orphaned dependent must stay: {e}"));
    assert!(child.owner_references().is_empty());
    s.stop().await;
}

#[tokio::test]
async fn one_process_serves_many_independent_clusters() {
    let fleet = SimCluster::start_many(5, SimOptions::default()).await.unwrap_or_else(|e| panic!("{e}"));
    for (i, sim) in fleet.iter().enumerate() {
        let api: Api<ConfigMap> = Api::namespaced(sim.client().unwrap_or_else(|e| panic!("{e}")), "default");
        let cm: ConfigMap =
            crate::json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("only-in-{i}")}}));
        api.create(&PostParams::default(), &cm).await.unwrap_or_else(|e| panic!("{e}"));
    }
    for (i, sim) in fleet.iter().enumerate() {
        let api: Api<ConfigMap> = Api::namespaced(sim.client().unwrap_or_else(|e| panic!("{e}")), "default");
        let names: Vec<String> = api
            .list(&Default::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .items
            .iter()
            .map(|c| c.name_any())
            .collect();
        assert_eq!(names, [format!("only-in-{i}")], "cluster {}", sim.name());
    }
    for sim in fleet {
        sim.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    }
}
