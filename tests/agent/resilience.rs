//! The agent restarts, the broker goes away, bad events arrive: nothing applied or reported is
//! lost, and the agent keeps serving.

use maestro_tests::PrivateMosquitto;
use serde_json::json;

use crate::fleet::{Fleet, condition_is, config_map, data_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_the_agent_is_down_are_applied_when_it_returns() {
    let mut fleet = Fleet::start().await;
    let kept = fleet.create_bundle("kept", json!({"manifests": [config_map("kept", "1")]})).await;
    let changed = fleet.create_bundle("changed", json!({"manifests": [config_map("changed", "1")]})).await;
    let removed = fleet.create_bundle("removed", json!({"manifests": [config_map("removed", "1")]})).await;
    for id in [&kept, &changed, &removed] {
        fleet.bundle_status(id, "applied", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    }

    fleet.stop_agent().await;
    let added = fleet.create_bundle("added", json!({"manifests": [config_map("added", "1")]})).await;
    fleet.replace_bundle(&changed, 1, json!({"manifests": [config_map("changed", "2")]})).await;
    fleet.delete_bundle(&removed).await;
    // Someone deletes an applied object while nobody watches.
    fleet.config_maps().delete("kept", &Default::default()).await.expect("delete");

    fleet.start_agent().await;
    fleet.object(&fleet.config_maps(), "added", "the bundle created while down", |o| o.is_some()).await;
    fleet.object(&fleet.config_maps(), "changed", "the update made while down", |o| data_key(o) == Some("2")).await;
    fleet.object(&fleet.config_maps(), "removed", "the delete made while down", |o| o.is_none()).await;
    fleet.object(&fleet.config_maps(), "kept", "the object deleted while down, restored", |o| o.is_some()).await;
    fleet.bundle_purged(&removed).await;
    fleet.bundle_status(&added, "the new bundle's status", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    fleet.bundle_status(&changed, "version 2's status", |s| s["ObservedVersion"] == 2).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_neither_specs_nor_statuses() {
    let mut broker = PrivateMosquitto::start_open().await;
    let fleet = Fleet::start_on(&broker.url()).await;
    let id = fleet.create_bundle("before", json!({"manifests": [config_map("before", "1")]})).await;
    fleet.bundle_status(&id, "applied", |s| condition_is(&s["conditions"], "Applied", "True")).await;

    broker.kill();
    // While the broker is away: a status change on the agent's side (the object is deleted and
    // restored, so Drifted appears) and a new bundle on the hub's side.
    fleet.config_maps().delete("before", &Default::default()).await.expect("delete");
    fleet.object(&fleet.config_maps(), "before", "the object restored", |o| o.is_some()).await;
    let during = fleet.create_bundle("during", json!({"manifests": [config_map("during", "1")]})).await;
    broker.restart().await;

    fleet.object(&fleet.config_maps(), "during", "the bundle created during the outage", |o| o.is_some()).await;
    fleet.bundle_status(&during, "its status", |s| condition_is(&s["conditions"], "Applied", "True")).await;
    fleet
        .bundle_status(&id, "the status queued during the outage", |s| {
            crate::fleet::manifest_condition_is(s, "before", "Drifted", "False")
        })
        .await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_spec_event_is_dropped_and_counted_and_the_agent_keeps_serving() {
    let fleet = Fleet::start().await;
    fleet.publish_malformed_spec().await;
    crate::fleet::eventually("the malformed event counted", || async {
        (fleet.agent().malformed_events() == 1).then_some(())
    })
    .await;

    let id = fleet.create_bundle("after", json!({"manifests": [config_map("after", "1")]})).await;
    fleet
        .bundle_status(&id, "applied after the bad event", |s| condition_is(&s["conditions"], "Applied", "True"))
        .await;
    fleet.stop().await;
}
