//! Update strategies, delete options and drift, as OCM's ManifestWork defines them.

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::fleet::{
    Fleet, condition_is, config_map, config_map_config, data_key, manifest_condition_is, manifest_status,
};

async fn put_config_map(fleet: &Fleet, name: &str, value: &str) {
    let object = serde_json::from_value(config_map(name, value)).unwrap();
    fleet.config_maps().create(&PostParams::default(), &object).await.expect("create in the cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_update_strategy_writes_as_ocm_does() {
    let fleet = Fleet::start().await;
    put_config_map(&fleet, "create-only", "theirs").await;
    put_config_map(&fleet, "read-only", "theirs").await;
    let strategy = |name: &str, kind: &str| config_map_config(name, json!({"updateStrategy": {"type": kind}}));
    let bundle = |value: &str| {
        json!({
            "manifests": [config_map("ssa", value), config_map("update", value), config_map("create-only", value), config_map("read-only", value)],
            "manifest_configs": [
                strategy("ssa", "ServerSideApply"), strategy("update", "Update"), strategy("create-only", "CreateOnly"),
                config_map_config("read-only", json!({"updateStrategy": {"type": "ReadOnly"},
                    "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "key", "path": ".data.key"}]}]})),
            ]
        })
    };
    let id = fleet.create_bundle("strategies", bundle("one")).await;
    let status =
        fleet.bundle_status(&id, "all four handled", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    let read_only = manifest_status(&status, "read-only").unwrap();
    assert_eq!(read_only["statusFeedback"]["values"][0]["fieldValue"], json!({"type": "String", "string": "theirs"}));

    fleet.replace_bundle(&id, 1, bundle("two")).await;
    fleet.bundle_status(&id, "version 2 handled", |s| s["ObservedVersion"] == 2).await;
    fleet.object(&fleet.config_maps(), "ssa", "ssa updated", |o| data_key(o) == Some("two")).await;
    fleet.object(&fleet.config_maps(), "update", "update updated", |o| data_key(o) == Some("two")).await;
    let create_only = fleet.config_maps().get("create-only").await.unwrap();
    assert_eq!(create_only.data["data"]["key"], "theirs", "CreateOnly never touches an existing object");
    let read_only = fleet.config_maps().get("read-only").await.unwrap();
    assert_eq!(read_only.data["data"]["key"], "theirs", "ReadOnly never writes");

    // Deleting the bundle leaves the ReadOnly object alone.
    fleet.delete_bundle(&id).await;
    fleet.bundle_purged(&id).await;
    for name in ["ssa", "update", "create-only"] {
        fleet.object(&fleet.config_maps(), name, "deleted", |o| o.is_none()).await;
    }
    assert!(fleet.config_maps().get_opt("read-only").await.unwrap().is_some());
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_options_foreground_orphan_and_selectively_orphan() {
    let fleet = Fleet::start().await;
    let foreground = fleet.create_bundle("fg", json!({"manifests": [config_map("fg", "1")]})).await;
    let orphan = fleet
        .create_bundle(
            "orphan",
            json!({"manifests": [config_map("orphan", "1")], "delete_option": {"propagationPolicy": "Orphan"}}),
        )
        .await;
    let selective = fleet
        .create_bundle("selective", json!({
            "manifests": [config_map("keep-me", "1"), config_map("drop-me", "1")],
            "delete_option": {"propagationPolicy": "SelectivelyOrphan",
                              "selectivelyOrphans": {"orphaningRules": [{"group": "", "resource": "configmaps", "namespace": "default", "name": "keep-me"}]}}
        }))
        .await;
    for id in [&foreground, &orphan, &selective] {
        fleet.bundle_status(id, "applied", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    }
    for id in [&foreground, &orphan, &selective] {
        fleet.delete_bundle(id).await;
    }
    for id in [&foreground, &orphan, &selective] {
        fleet.bundle_purged(id).await;
    }
    fleet.object(&fleet.config_maps(), "fg", "fg deleted", |o| o.is_none()).await;
    fleet.object(&fleet.config_maps(), "drop-me", "drop-me deleted", |o| o.is_none()).await;
    assert!(fleet.config_maps().get_opt("orphan").await.unwrap().is_some(), "Orphan keeps the object");
    assert!(fleet.config_maps().get_opt("keep-me").await.unwrap().is_some(), "the orphaning rule keeps keep-me");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_corrected_or_only_reported_as_configured() {
    let fleet = Fleet::start().await;
    let id = fleet
        .create_bundle("drift", json!({
            "manifests": [config_map("guarded", "mine"), config_map("watched", "mine")],
            "manifest_configs": [
                config_map_config("guarded", json!({"updateStrategy": {"type": "ServerSideApply"}})),
                config_map_config("watched", json!({"updateStrategy": {"type": "ServerSideApply"}, "driftPolicy": "ReportOnly"})),
            ]
        }))
        .await;
    fleet.bundle_status(&id, "applied", |s| condition_is(&s["conditions"], "Applied", "True")).await;

    // Someone edits both objects.
    let edit = json!({"data": {"key": "edited"}});
    for name in ["guarded", "watched"] {
        fleet.config_maps().patch(name, &PatchParams::default(), &Patch::Merge(&edit)).await.expect("edit");
    }
    fleet.object(&fleet.config_maps(), "guarded", "guarded restored", |o| data_key(o) == Some("mine")).await;
    let status = fleet
        .bundle_status(&id, "the drift reported", |s| {
            manifest_condition_is(s, "watched", "Drifted", "True")
                && manifest_condition_is(s, "guarded", "Drifted", "False")
        })
        .await;
    let guarded =
        crate::fleet::condition(&manifest_status(&status, "guarded").unwrap()["conditions"], "Drifted").unwrap();
    assert_eq!(guarded["reason"], "DriftCorrected");
    assert_eq!(
        data_key(fleet.object(&fleet.config_maps(), "watched", "watched", |o| o.is_some()).await.as_ref()),
        Some("edited")
    );

    // Someone deletes the guarded one: it comes back.
    fleet.config_maps().delete("guarded", &DeleteParams::default()).await.expect("delete");
    fleet.object(&fleet.config_maps(), "guarded", "guarded recreated", |o| data_key(o) == Some("mine")).await;
    assert!(fleet.agent().drift_corrections() >= 2, "{}", fleet.agent().drift_corrections());
    fleet.stop().await;
}
