//! Every sample of `shared/conformance/maestro` decodes into our types, survives the MQTT 5
//! binary binding unchanged, and what we encode carries the same attributes and extensions.

use cloudevents::{AttributesReader, Event};
use maestro_tests::conformance_sample;
use maestro_wire::wire::{
    self, EventAction, ManifestBundle, ManifestBundleStatus, ResourceVersionList, SpecRequest, StatusHashList,
    StatusReport, Subresource, WorkEvent,
};
use serde_json::json;

const SAMPLES: [&str; 8] = [
    "cloudevent.json",
    "cloudevent-update.json",
    "cloudevent-delete.json",
    "cloudevent-status-resync.json",
    "cloudevents.agent.json",
    "cloudevents.grpcclient.json",
    "cloudevents.spec.maestro.json",
    "cloudevents.status.maestro.json",
];

fn sample_event(file: &str) -> Event {
    serde_json::from_value(conformance_sample(file)).unwrap_or_else(|err| panic!("{file} is a CloudEvent: {err}"))
}

/// Attribute and extension names with their values as text, as binary mode carries them.
fn as_text(event: &Event) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = event.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    pairs.sort();
    pairs
}

#[test]
fn every_sample_survives_the_mqtt_binary_binding_with_every_attribute_and_extension() {
    for file in SAMPLES {
        let event = sample_event(file);
        let message = wire::encode(&event);
        assert!(message.user_properties.iter().all(|(k, _)| k.starts_with("ce-")), "{file}");
        assert!(message.user_properties.iter().any(|(k, v)| k == "ce-type" && v == event.ty()), "{file}");
        assert_eq!(message.content_type.as_deref(), Some("application/json"), "{file}");
        let back = wire::decode(message.clone()).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(as_text(&back), as_text(&event), "{file}: attributes and extensions");
        let sent: serde_json::Value = serde_json::from_slice(&message.payload).expect("payload is JSON");
        assert_eq!(sent, conformance_sample(file)["data"], "{file}: data");
        // Decoding the typed content gives the same answer before and after the binding.
        assert_eq!(
            WorkEvent::from_event(&back).unwrap_or_else(|err| panic!("{file} typed: {err}")),
            WorkEvent::from_event(&event).unwrap_or_else(|err| panic!("{file} typed: {err}")),
            "{file}"
        );
    }
}

#[test]
fn spec_samples_decode_into_bundles_with_identity_and_version() {
    let WorkEvent::Spec(create) = WorkEvent::from_event(&sample_event("cloudevents.spec.maestro.json")).unwrap() else {
        panic!("a spec event");
    };
    assert_eq!(create.context.event_type.action, EventAction::Create);
    assert_eq!(create.context.resource_id, "55c61e54-a3f6-563d-9fec-b1fe297bdfdb");
    assert_eq!(create.context.resource_version, 1);
    assert_eq!(create.context.cluster_name, "7ff1a8f4-8811-49b4-8c19-9271bc51975e");
    assert_eq!(create.bundle.manifests[0]["kind"], "Deployment");
    assert_eq!(create.bundle.manifest_configs[0]["updateStrategy"]["type"], "ServerSideApply");
    assert_eq!(create.metadata.as_ref().unwrap()["uid"], "55c61e54-a3f6-563d-9fec-b1fe297bdfdb");

    let WorkEvent::Spec(delete) = WorkEvent::from_event(&sample_event("cloudevent-delete.json")).unwrap() else {
        panic!("a spec event");
    };
    assert_eq!(delete.context.event_type.action, EventAction::Delete);
    assert_eq!(delete.deletion_timestamp.unwrap().to_rfc3339(), "2024-10-15T09:54:06.582625606+00:00");

    let WorkEvent::Spec(update) = WorkEvent::from_event(&sample_event("cloudevent-update.json")).unwrap() else {
        panic!("a spec event");
    };
    assert_eq!(update.bundle.manifests[0]["spec"]["replicas"], 2);
    assert_eq!(update.bundle.delete_option, Some(json!({"propagationPolicy": "Foreground"})));
}

#[test]
fn status_samples_decode_with_sequence_hash_conditions_and_feedback() {
    let WorkEvent::Status(agent) = WorkEvent::from_event(&sample_event("cloudevents.agent.json")).unwrap() else {
        panic!("a status event");
    };
    assert_eq!(agent.context.event_type.subresource, Subresource::Status);
    assert_eq!(agent.sequence_id, Some(2000808179721572352));
    assert_eq!(agent.status_hash.as_deref(), Some("6170884280acbd9d5e69ac59a00ef7cf84d50669621643782e7a3f1ab05836cf"));
    assert_eq!(agent.status.conditions[0]["type"], "Applied");
    assert!(!agent.status.is_deleted());

    let WorkEvent::Status(server) = WorkEvent::from_event(&sample_event("cloudevents.status.maestro.json")).unwrap()
    else {
        panic!("a status event");
    };
    assert_eq!(server.status.resource_status[0]["statusFeedback"]["values"][0]["name"], "status");
    assert!(server.status.manifest_bundle.is_some());

    let WorkEvent::StatusResync { hashes, .. } =
        WorkEvent::from_event(&sample_event("cloudevent-status-resync.json")).unwrap()
    else {
        panic!("a status resync");
    };
    assert!(hashes.status_hashes.is_empty());
}

fn names(event: &Event) -> Vec<String> {
    wire::attribute_names(event)
}

#[test]
fn what_we_encode_carries_the_attributes_and_extensions_of_the_samples() {
    let bundle = ManifestBundle { manifests: vec![json!({"kind": "ConfigMap"})], ..Default::default() };
    let metadata = json!({"name": "r1", "namespace": "c1", "uid": "r1", "resourceVersion": "0"});
    let spec = |action, deletion_timestamp| {
        wire::spec_event(
            "maestro",
            &SpecRequest {
                action,
                resource_id: "r1",
                resource_version: 3,
                cluster_name: "c1",
                deletion_timestamp,
                metadata: metadata.clone(),
                bundle: &bundle,
            },
        )
    };
    assert_eq!(names(&spec(EventAction::Create, None)), names(&sample_event("cloudevents.spec.maestro.json")));

    // The delete sample, as the Maestro server sends it, also carries the server's extensions.
    let delete = names(&spec(EventAction::Delete, Some(chrono::Utc::now())));
    for name in names(&sample_event("cloudevent-delete.json")) {
        assert!(delete.contains(&name), "delete lacks {name}");
    }

    let status =
        ManifestBundleStatus { conditions: vec![json!({"type": "Applied", "status": "True"})], ..Default::default() };
    let report = StatusReport {
        resource_id: "r1",
        resource_version: 3,
        cluster_name: "c1",
        original_source: "maestro",
        sequence_id: 7,
        status: &status,
    };
    let ours = wire::status_event("c1-work-agent", &report);
    let sample = sample_event("cloudevents.agent.json");
    assert_eq!(names(&ours), names(&sample));
    let meta = |event: &Event| -> serde_json::Value {
        serde_json::from_str(&event.extension("metadata").map(|v| v.to_string()).unwrap_or_default())
            .unwrap_or_default()
    };
    let (ours_meta, sample_meta) = (meta(&ours), meta(&sample));
    assert_eq!((ours_meta["uid"].as_str(), ours_meta["namespace"].as_str()), (Some("r1"), Some("c1")));
    assert_eq!(ours_meta["generation"], 3);
    assert_eq!(ours_meta["annotations"], sample_meta["annotations"], "the data type the work agent names");
    let label = "cloudevents.open-cluster-management.io/originalsource";
    assert_eq!(ours_meta["labels"][label], sample_meta["labels"][label]);

    let resync = wire::status_resync_event("maestro", "", &StatusHashList::default());
    assert_eq!(names(&resync), names(&sample_event("cloudevent-status-resync.json")));
    let spec_resync = wire::spec_resync_event("c1-work-agent", "c1", &ResourceVersionList::default());
    assert_eq!(spec_resync.ty(), "io.open-cluster-management.works.v1alpha1.manifestbundles.spec.resync_request");
}

#[test]
fn our_events_decode_back_into_what_was_sent() {
    let status = ManifestBundleStatus {
        conditions: vec![json!({"type": "Deleted", "status": "True"})],
        resource_status: vec![json!({"resourceMeta": {"ordinal": 0}})],
        manifest_bundle: None,
    };
    let report = StatusReport {
        resource_id: "r9",
        resource_version: 4,
        cluster_name: "c9",
        original_source: "maestro",
        sequence_id: 99,
        status: &status,
    };
    let decoded = wire::decode(wire::encode(&wire::status_event("c9-work-agent", &report))).unwrap();
    let WorkEvent::Status(back) = WorkEvent::from_event(&decoded).unwrap() else { panic!("status") };
    assert_eq!(back.context.resource_id, "r9");
    assert_eq!(back.context.resource_version, 4);
    assert_eq!(back.sequence_id, Some(99));
    assert_eq!(back.status, status);
    assert!(back.status.is_deleted());
    assert_eq!(back.status_hash.as_deref(), Some(wire::status_hash(&status).as_str()));
}

#[test]
fn events_that_are_not_ours_are_refused_with_a_reason() {
    let mut event = sample_event("cloudevents.agent.json");
    event.remove_extension("resourceid");
    assert!(WorkEvent::from_event(&event).unwrap_err().to_string().contains("resourceid"));

    let mut wrong = sample_event("cloudevents.agent.json");
    cloudevents::AttributesWriter::set_type(&mut wrong, "io.example.something.else");
    assert!(WorkEvent::from_event(&wrong).unwrap_err().to_string().contains("io.example.something.else"));

    let mut not_json = wire::encode(&sample_event("cloudevents.agent.json"));
    not_json.payload = b"{not json".to_vec();
    let decoded = wire::decode(not_json).unwrap();
    assert!(WorkEvent::from_event(&decoded).is_err());

    let no_properties = wire::MqttMessage { payload: b"{}".to_vec(), ..Default::default() };
    assert!(wire::decode(no_properties).is_err());
}
