//! What our agent puts on the wire has the shape of what OCM's work agent sends
//! (`cloudevents.agent.json`): the same attributes and extensions, and the same status layout.

use std::collections::BTreeSet;
use std::time::Duration;

use cloudevents::AttributesReader;
use maestro_tests::conformance_sample;
use maestro_wire::mqtt::{MqttConfig, MqttLink};
use maestro_wire::wire;
use serde_json::{Value, json};

use crate::fleet::{CONSUMER, Fleet};

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_have_the_attributes_and_layout_of_the_work_agents() {
    let fleet = Fleet::start().await;
    let (tx, mut incoming) = tokio::sync::mpsc::channel(64);
    let topic = wire::agent_events_topic(&fleet.source, CONSUMER);
    let listener = MqttLink::start(&MqttConfig::new(fleet.broker.clone(), "listener"), vec![topic], tx).expect("link");
    listener.connected(Duration::from_secs(30)).await.expect("listener connects");

    let manifest = maestro_tests::deployment("web");
    let id = fleet
        .create_resource(json!({"manifest": manifest, "feedback_rules": [{"type": "WellKnownStatus"},
            {"type": "JSONPaths", "jsonPaths": [{"name": "status", "path": ".status"}]}]}))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    let (event, data) = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let received = tokio::time::timeout(left, incoming.recv()).await.expect("a status event with feedback");
        let received = received.expect("listener open");
        let Ok(event) = wire::decode(received.message) else { continue };
        let data: Value = match event.data() {
            Some(cloudevents::Data::Json(json)) => json.clone(),
            Some(cloudevents::Data::Binary(bytes)) => serde_json::from_slice(bytes).unwrap_or_default(),
            Some(cloudevents::Data::String(text)) => serde_json::from_str(text).unwrap_or_default(),
            None => continue,
        };
        let has_feedback = data.pointer("/resourceStatus/0/statusFeedback/values").is_some();
        if event.ty().ends_with("status.update_request") && has_feedback {
            break (event, data);
        }
    };

    let sample = conformance_sample("cloudevents.agent.json");
    let expected: BTreeSet<String> = keys(&sample).into_iter().filter(|k| k != "data").collect();
    let ours: BTreeSet<String> = wire::attribute_names(&event).into_iter().filter(|k| k != "data").collect();
    assert_eq!(ours, expected);
    assert_eq!(event.source(), &format!("{CONSUMER}-work-agent"));
    assert_eq!(event.extension("resourceid").map(|v| v.to_string()), Some(id.clone()));

    assert_eq!(keys(&data), keys(&sample["data"]));
    let ours_resource = &data["resourceStatus"][0];
    let sample_resource = &sample["data"]["resourceStatus"][0];
    assert_eq!(keys(ours_resource), keys(sample_resource));
    assert_eq!(keys(&ours_resource["resourceMeta"]), keys(&sample_resource["resourceMeta"]));
    assert_eq!(ours_resource["resourceMeta"]["resource"], "deployments");
    let sample_condition = keys(&sample_resource["conditions"][0]);
    for condition in ours_resource["conditions"].as_array().unwrap() {
        assert_eq!(keys(condition), sample_condition, "{condition}");
    }
    for value in ours_resource["statusFeedback"]["values"].as_array().unwrap() {
        let kind = value["fieldValue"]["type"].as_str().unwrap();
        assert!(["Integer", "String", "Boolean", "JsonRaw"].contains(&kind), "{value}");
    }
    let work_condition = &data["conditions"][0];
    assert_eq!(keys(work_condition), keys(&sample["data"]["conditions"][0]));
    listener.close().await;
    fleet.stop().await;
}
