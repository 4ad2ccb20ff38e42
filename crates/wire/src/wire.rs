//! The wire format shared with open-cluster-management's Maestro and its work agents:
//! CloudEvents (the `cloudevents-sdk` [`Event`] model) in binary mode over MQTT 5.
//!
//! - Every attribute and extension travels as an MQTT 5 user property `ce-<name>`; the data is
//!   the payload, `application/json`, also named in the MQTT 5 content-type property.
//! - Topics: `sources/<source>/consumers/<consumer>/sourceevents` (hub to agent) and
//!   `.../agentevents` (agent to hub).
//! - Types: `io.open-cluster-management.works.v1alpha1.manifestbundles.<spec|status>.<action>`.
//! - A bundle travels as its manifests, manifest configs and delete option ([`ManifestBundle`]);
//!   a single resource is a bundle of one manifest.
//!
//! In binary mode every extension arrives as a string, so readers here accept an integer
//! extension (`resourceversion`) both as a JSON number (structured samples) and as digits.

use std::fmt;

use chrono::{DateTime, Utc};
use cloudevents::event::ExtensionValue;
use cloudevents::message::{BinaryDeserializer, BinarySerializer, MessageAttributeValue};
use cloudevents::{AttributesReader, Data, Event, EventBuilder, EventBuilderV10};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The CloudEvents data type of every event here.
pub const DATA_TYPE: &str = "io.open-cluster-management.works.v1alpha1.manifestbundles";
pub const JSON: &str = "application/json";
/// Prefix of the MQTT 5 user properties that carry CloudEvents attributes in binary mode.
pub const PROPERTY_PREFIX: &str = "ce-";

/// Names of the extensions this protocol uses.
pub mod ext {
    pub const RESOURCE_ID: &str = "resourceid";
    pub const RESOURCE_VERSION: &str = "resourceversion";
    pub const CLUSTER_NAME: &str = "clustername";
    pub const ORIGINAL_SOURCE: &str = "originalsource";
    pub const DELETION_TIMESTAMP: &str = "deletiontimestamp";
    pub const SEQUENCE_ID: &str = "sequenceid";
    pub const STATUS_HASH: &str = "statushash";
    pub const METADATA: &str = "metadata";
    pub const LOG_TRACING: &str = "logtracing";
    /// Maestro's own: the codecs that encoded the data, in order (see `transport::codec`).
    pub const CODEC: &str = "maestrocodec";
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a CloudEvent in binary mode: {0}")]
    Binding(String),
    #[error("event type {0:?} is not a {DATA_TYPE} spec or status request")]
    UnknownType(String),
    #[error("extension {0} is missing")]
    Missing(&'static str),
    #[error("extension {name} is not valid: {value:?}")]
    BadExtension { name: &'static str, value: String },
    #[error("data is not the JSON this event type carries: {0}")]
    Data(String),
    #[error("topic {0:?} is not sources/<source>/consumers/<consumer>/<sourceevents|agentevents>")]
    Topic(String),
}

/// Which side of a work an event is about: what should run (spec) or what runs (status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subresource {
    Spec,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventAction {
    Create,
    Update,
    Delete,
    Resync,
}

/// `<data type>.<spec|status>.<action>_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventType {
    pub subresource: Subresource,
    pub action: EventAction,
}

impl EventType {
    pub const fn new(subresource: Subresource, action: EventAction) -> EventType {
        EventType { subresource, action }
    }

    pub fn parse(text: &str) -> Result<EventType, WireError> {
        let unknown = || WireError::UnknownType(text.to_string());
        let rest = text.strip_prefix(DATA_TYPE).and_then(|r| r.strip_prefix('.')).ok_or_else(unknown)?;
        let (subresource, action) = rest.split_once('.').ok_or_else(unknown)?;
        let subresource = match subresource {
            "spec" => Subresource::Spec,
            "status" => Subresource::Status,
            _ => return Err(unknown()),
        };
        let action = match action {
            "create_request" => EventAction::Create,
            "update_request" => EventAction::Update,
            "delete_request" => EventAction::Delete,
            "resync_request" => EventAction::Resync,
            _ => return Err(unknown()),
        };
        Ok(EventType { subresource, action })
    }

    /// A short, fixed label (`spec.create`, `status.resync`, ...) for metrics.
    pub fn label(self) -> &'static str {
        use EventAction::*;
        use Subresource::*;
        match (self.subresource, self.action) {
            (Spec, Create) => "spec.create",
            (Spec, Update) => "spec.update",
            (Spec, Delete) => "spec.delete",
            (Spec, Resync) => "spec.resync",
            (Status, Create) => "status.create",
            (Status, Update) => "status.update",
            (Status, Delete) => "status.delete",
            (Status, Resync) => "status.resync",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subresource = match self.subresource {
            Subresource::Spec => "spec",
            Subresource::Status => "status",
        };
        let action = match self.action {
            EventAction::Create => "create_request",
            EventAction::Update => "update_request",
            EventAction::Delete => "delete_request",
            EventAction::Resync => "resync_request",
        };
        write!(f, "{DATA_TYPE}.{subresource}.{action}")
    }
}

/// Topic the hub publishes a consumer's spec events to, and its agent subscribes to.
pub fn source_events_topic(source: &str, consumer: &str) -> String {
    format!("sources/{source}/consumers/{consumer}/sourceevents")
}

/// Topic an agent publishes its status events to.
pub fn agent_events_topic(source: &str, consumer: &str) -> String {
    format!("sources/{source}/consumers/{consumer}/agentevents")
}

/// Filter for every consumer's agent events of `source`.
pub fn all_agent_events_filter(source: &str) -> String {
    format!("sources/{source}/consumers/+/agentevents")
}

/// The consumer named by an `agentevents` or `sourceevents` topic of `source`.
pub fn consumer_of_topic<'t>(topic: &'t str, source: &str) -> Result<&'t str, WireError> {
    let bad = || WireError::Topic(topic.to_string());
    let rest = topic.strip_prefix("sources/").and_then(|r| r.strip_prefix(source)).ok_or_else(bad)?;
    let rest = rest.strip_prefix("/consumers/").ok_or_else(bad)?;
    let (consumer, kind) = rest.split_once('/').ok_or_else(bad)?;
    if consumer.is_empty() || !matches!(kind, "agentevents" | "sourceevents") {
        return Err(bad());
    }
    Ok(consumer)
}

/// The payloads of spec and status events and the status hash are model: the hub stores
/// them and the agent builds them.
pub use maestro_model::status::{ManifestBundle, ManifestBundleStatus, status_hash};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceVersion {
    #[serde(rename = "resourceID")]
    pub resource_id: String,
    #[serde(rename = "resourceVersion")]
    pub resource_version: i64,
}

/// Data of `spec.resync_request`: what the agent holds, so the hub re-sends what is newer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceVersionList {
    #[serde(rename = "resourceVersions", default)]
    pub resource_versions: Vec<ResourceVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusHash {
    #[serde(rename = "resourceID")]
    pub resource_id: String,
    #[serde(rename = "statusHash")]
    pub status_hash: String,
}

/// Data of `status.resync_request`: the statuses the hub holds; an agent re-sends each status
/// whose hash differs, and every status when the list is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatusHashList {
    #[serde(rename = "statusHashes", default)]
    pub status_hashes: Vec<StatusHash>,
}

/// A CloudEvent as MQTT 5 carries it in binary mode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MqttMessage {
    /// `ce-<name>` for each attribute and extension, in the event's order.
    pub user_properties: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub payload: Vec<u8>,
}

/// Encodes an event in binary mode.
pub fn encode(event: &Event) -> MqttMessage {
    let mut message = MqttMessage::default();
    for (name, value) in event.iter_attributes() {
        if name == "datacontenttype" {
            message.content_type = Some(value.to_string());
        }
        message.user_properties.push((format!("{PROPERTY_PREFIX}{name}"), value.to_string()));
    }
    for (name, value) in event.iter_extensions() {
        message.user_properties.push((format!("{PROPERTY_PREFIX}{name}"), value.to_string()));
    }
    message.payload = match event.data() {
        Some(Data::Json(json)) => serde_json::to_vec(json).unwrap_or_default(),
        Some(Data::String(text)) => text.clone().into_bytes(),
        Some(Data::Binary(bytes)) => bytes.clone(),
        None => Vec::new(),
    };
    message
}

/// Decodes a binary-mode event; the SDK checks the attributes (id, source, type, specversion).
pub fn decode(message: MqttMessage) -> Result<Event, WireError> {
    message.into_event().map_err(|err| WireError::Binding(err.to_string()))
}

impl BinaryDeserializer for MqttMessage {
    fn deserialize_binary<R: Sized, V: BinarySerializer<R>>(self, mut visitor: V) -> cloudevents::message::Result<R> {
        let prop = |name: &str| {
            self.user_properties.iter().find(|(k, _)| k.strip_prefix(PROPERTY_PREFIX) == Some(name)).map(|(_, v)| v)
        };
        let spec_version =
            prop("specversion").ok_or(cloudevents::message::Error::WrongEncoding {})?.as_str().try_into()?;
        visitor = visitor.set_spec_version(spec_version)?;
        let attributes = cloudevents::event::SpecVersion::V10.attribute_names();
        let mut content_type_set = false;
        for (key, value) in &self.user_properties {
            let Some(name) = key.strip_prefix(PROPERTY_PREFIX) else { continue };
            if name == "specversion" {
                continue;
            }
            let value = MessageAttributeValue::String(value.clone());
            if attributes.contains(&name) {
                content_type_set |= name == "datacontenttype";
                visitor = visitor.set_attribute(name, value)?;
            } else {
                visitor = visitor.set_extension(name, value)?;
            }
        }
        if let (Some(content_type), false) = (&self.content_type, content_type_set) {
            visitor = visitor.set_attribute("datacontenttype", MessageAttributeValue::String(content_type.clone()))?;
        }
        if self.payload.is_empty() { visitor.end() } else { visitor.end_with_data(self.payload) }
    }
}

/// The identity and context every spec and status event carries.
#[derive(Debug, Clone, PartialEq)]
pub struct EventContext {
    pub event_type: EventType,
    pub resource_id: String,
    pub resource_version: i64,
    pub cluster_name: String,
}

/// A spec event as an agent receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecEvent {
    pub context: EventContext,
    /// Set on `delete_request`: the agent removes the bundle's objects and reports `Deleted`.
    pub deletion_timestamp: Option<DateTime<Utc>>,
    pub bundle: ManifestBundle,
    /// The `metadata` extension (the ManifestWork's object meta), as JSON.
    pub metadata: Option<Value>,
}

/// A status event as the hub receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub context: EventContext,
    /// Agent-generated and increasing; statuses with an older one are stale.
    pub sequence_id: Option<u64>,
    pub status_hash: Option<String>,
    pub status: ManifestBundleStatus,
}

/// Any event of this protocol, decoded into its typed form.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkEvent {
    Spec(SpecEvent),
    Status(StatusEvent),
    /// `spec.resync_request` from an agent.
    SpecResync {
        cluster_name: String,
        versions: ResourceVersionList,
    },
    /// `status.resync_request` from a hub.
    StatusResync {
        cluster_name: String,
        hashes: StatusHashList,
    },
}

fn extension_text(event: &Event, name: &'static str) -> Option<String> {
    event.extension(name).map(|value| match value {
        ExtensionValue::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn extension_int(event: &Event, name: &'static str) -> Result<Option<i64>, WireError> {
    match event.extension(name) {
        None => Ok(None),
        Some(ExtensionValue::Integer(i)) => Ok(Some(*i)),
        Some(ExtensionValue::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| WireError::BadExtension { name, value: s.clone() })
        }
        Some(other) => Err(WireError::BadExtension { name, value: other.to_string() }),
    }
}

fn data_as<T: serde::de::DeserializeOwned + Default>(event: &Event) -> Result<T, WireError> {
    let value = match event.data() {
        None => return Ok(T::default()),
        Some(Data::Json(json)) => json.clone(),
        Some(Data::String(text)) => serde_json::from_str(text).map_err(|err| WireError::Data(err.to_string()))?,
        Some(Data::Binary(bytes)) => {
            if bytes.is_empty() {
                return Ok(T::default());
            }
            serde_json::from_slice(bytes).map_err(|err| WireError::Data(err.to_string()))?
        }
    };
    serde_json::from_value(value).map_err(|err| WireError::Data(err.to_string()))
}

fn context_of(event: &Event, event_type: EventType) -> Result<EventContext, WireError> {
    let resource_id = extension_text(event, ext::RESOURCE_ID)
        .filter(|id| !id.is_empty())
        .ok_or(WireError::Missing(ext::RESOURCE_ID))?;
    let resource_version =
        extension_int(event, ext::RESOURCE_VERSION)?.ok_or(WireError::Missing(ext::RESOURCE_VERSION))?;
    let cluster_name = extension_text(event, ext::CLUSTER_NAME).unwrap_or_default();
    Ok(EventContext { event_type, resource_id, resource_version, cluster_name })
}

impl WorkEvent {
    /// Reads the typed content of an event, refusing unknown types and missing identities.
    pub fn from_event(event: &Event) -> Result<WorkEvent, WireError> {
        let event_type = EventType::parse(event.ty())?;
        let cluster_name = extension_text(event, ext::CLUSTER_NAME).unwrap_or_default();
        match (event_type.subresource, event_type.action) {
            (Subresource::Spec, EventAction::Resync) => {
                Ok(WorkEvent::SpecResync { cluster_name, versions: data_as(event)? })
            }
            (Subresource::Status, EventAction::Resync) => {
                Ok(WorkEvent::StatusResync { cluster_name, hashes: data_as(event)? })
            }
            (Subresource::Spec, _) => {
                let deletion_timestamp = match extension_text(event, ext::DELETION_TIMESTAMP) {
                    None => None,
                    Some(text) => Some(
                        DateTime::parse_from_rfc3339(&text)
                            .map(|t| t.with_timezone(&Utc))
                            .map_err(|_| WireError::BadExtension { name: ext::DELETION_TIMESTAMP, value: text })?,
                    ),
                };
                let metadata = extension_text(event, ext::METADATA).and_then(|m| serde_json::from_str(&m).ok());
                Ok(WorkEvent::Spec(SpecEvent {
                    context: context_of(event, event_type)?,
                    deletion_timestamp,
                    bundle: data_as(event)?,
                    metadata,
                }))
            }
            (Subresource::Status, _) => {
                let sequence_id = match extension_text(event, ext::SEQUENCE_ID) {
                    None => None,
                    Some(text) => Some(
                        text.trim()
                            .parse::<u64>()
                            .map_err(|_| WireError::BadExtension { name: ext::SEQUENCE_ID, value: text })?,
                    ),
                };
                Ok(WorkEvent::Status(StatusEvent {
                    context: context_of(event, event_type)?,
                    sequence_id,
                    status_hash: extension_text(event, ext::STATUS_HASH),
                    status: data_as(event)?,
                }))
            }
        }
    }
}

fn builder(source: &str, event_type: EventType, cluster_name: &str) -> EventBuilderV10 {
    EventBuilderV10::new()
        .id(uuid::Uuid::new_v4().to_string())
        .source(source.to_string())
        .ty(event_type.to_string())
        .time(Utc::now())
        .extension(ext::CLUSTER_NAME, cluster_name.to_string())
}

fn build(builder: EventBuilderV10, data: Value) -> Event {
    // Every attribute the builder requires (id, source, type) is set by `builder`, so building
    // cannot fail; an empty event would still be refused by the agent, never silently applied.
    builder.data(JSON, data).build().unwrap_or_default()
}

/// What the hub tells an agent about one bundle.
#[derive(Debug, Clone)]
pub struct SpecRequest<'a> {
    pub action: EventAction,
    pub resource_id: &'a str,
    pub resource_version: i64,
    pub cluster_name: &'a str,
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// The `metadata` extension: the ManifestWork object meta the agent builds.
    pub metadata: Value,
    pub bundle: &'a ManifestBundle,
}

/// A `spec.<action>_request` as a Maestro server publishes it (see
/// `cloudevents.spec.maestro.json`); a delete carries `deletiontimestamp` and empty data.
pub fn spec_event(source: &str, request: &SpecRequest<'_>) -> Event {
    let event_type = EventType::new(Subresource::Spec, request.action);
    let mut builder = builder(source, event_type, request.cluster_name)
        .extension(ext::RESOURCE_ID, request.resource_id.to_string())
        .extension(ext::RESOURCE_VERSION, request.resource_version)
        .extension(ext::ORIGINAL_SOURCE, String::new())
        .extension(ext::LOG_TRACING, "{}".to_string())
        .extension(ext::METADATA, request.metadata.to_string());
    let data = match request.deletion_timestamp {
        Some(at) => {
            builder =
                builder.extension(ext::DELETION_TIMESTAMP, at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
            Value::Object(Default::default())
        }
        None => serde_json::to_value(request.bundle).unwrap_or_default(),
    };
    build(builder, data)
}

/// What an agent reports about one bundle.
#[derive(Debug, Clone)]
pub struct StatusReport<'a> {
    pub resource_id: &'a str,
    pub resource_version: i64,
    pub cluster_name: &'a str,
    /// The source that owns the bundle (`maestro`).
    pub original_source: &'a str,
    pub sequence_id: u64,
    pub status: &'a ManifestBundleStatus,
}

/// A `status.update_request` as a work agent sends it (see `cloudevents.agent.json`).
pub fn status_event(agent_source: &str, report: &StatusReport<'_>) -> Event {
    let event_type = EventType::new(Subresource::Status, EventAction::Update);
    let builder = builder(agent_source, event_type, report.cluster_name)
        .extension(ext::RESOURCE_ID, report.resource_id.to_string())
        .extension(ext::RESOURCE_VERSION, report.resource_version)
        .extension(ext::ORIGINAL_SOURCE, report.original_source.to_string())
        .extension(ext::LOG_TRACING, "{}".to_string())
        .extension(ext::SEQUENCE_ID, report.sequence_id.to_string())
        .extension(ext::STATUS_HASH, status_hash(report.status))
        .extension(ext::METADATA, status_work_metadata(report).to_string());
    build(builder, serde_json::to_value(report.status).unwrap_or_default())
}

/// The `metadata` of a status: the object meta of the ManifestWork the bundle is on the agent,
/// as OCM's work agent sends it back, so that a source can restore the work from a status alone
/// (name and uid the resource id, namespace the cluster, generation the resource version).
fn status_work_metadata(report: &StatusReport<'_>) -> Value {
    serde_json::json!({
        "name": report.resource_id,
        "namespace": report.cluster_name,
        "uid": report.resource_id,
        "generation": report.resource_version,
        "labels": {"cloudevents.open-cluster-management.io/originalsource": report.original_source},
        "annotations": {"cloudevents.open-cluster-management.io/datatype": "io.open-cluster-management.works.v1alpha1.manifestbundles"},
    })
}

/// A `spec.resync_request`: an agent's resource versions, asking for everything newer.
pub fn spec_resync_event(agent_source: &str, cluster_name: &str, versions: &ResourceVersionList) -> Event {
    let event_type = EventType::new(Subresource::Spec, EventAction::Resync);
    build(builder(agent_source, event_type, cluster_name), serde_json::to_value(versions).unwrap_or_default())
}

/// A `status.resync_request`: the hub's status hashes, asking for every status that differs.
pub fn status_resync_event(source: &str, cluster_name: &str, hashes: &StatusHashList) -> Event {
    let event_type = EventType::new(Subresource::Status, EventAction::Resync);
    let builder = builder(source, event_type, cluster_name).extension(ext::ORIGINAL_SOURCE, String::new());
    build(builder, serde_json::to_value(hashes).unwrap_or_default())
}

/// Names of the attributes and extensions an event carries, for comparing shapes.
pub fn attribute_names(event: &Event) -> Vec<String> {
    let mut names: Vec<String> = event.iter().map(|(name, _)| name.to_string()).collect();
    names.sort();
    names
}

/// Splits a list into chunks of at most `max_entries` whose JSON stays under `max_bytes`.
pub fn batches<T: Serialize + Clone>(items: &[T], max_entries: usize, max_bytes: usize) -> Vec<Vec<T>> {
    let mut batches = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut size = 64;
    for item in items {
        let item_size = serde_json::to_vec(item).map(|b| b.len() + 1).unwrap_or(0);
        if !current.is_empty() && (current.len() >= max_entries.max(1) || size + item_size > max_bytes) {
            batches.push(std::mem::take(&mut current));
            size = 64;
        }
        size += item_size;
        current.push(item.clone());
    }
    if !current.is_empty() || batches.is_empty() {
        batches.push(current);
    }
    batches
}

// ---------------------------------------------------------------------------------------------
// Plugin policies (Maestro's own events; OCM agents ignore types they do not know)
// ---------------------------------------------------------------------------------------------

/// Hub to agent, on the consumer's `sourceevents`: the stored policies that apply to it.
pub const POLICIES_UPDATE: &str = "io.maestro.plugins.v1alpha1.policies.update_request";
/// Agent to hub, on `agentevents`: "send me my policies" (on every (re)connect).
pub const POLICIES_RESYNC: &str = "io.maestro.plugins.v1alpha1.policies.resync_request";

/// The data of [`POLICIES_UPDATE`]: the consumer's labels (the plugins' context) and every
/// stored policy whose selector matches it, in name order; empty when none applies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PoliciesUpdate {
    #[serde(default)]
    pub consumer_labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub policies: Vec<maestro_model::policy::PolicySpec>,
}

/// Whether an event is one of the plugin-policy events rather than a work event.
pub fn is_policy_event(event: &Event) -> bool {
    matches!(event.ty(), POLICIES_UPDATE | POLICIES_RESYNC)
}

pub fn policies_update_event(source: &str, cluster_name: &str, update: &PoliciesUpdate) -> Event {
    let builder = EventBuilderV10::new()
        .id(uuid::Uuid::new_v4().to_string())
        .source(source.to_string())
        .ty(POLICIES_UPDATE)
        .time(Utc::now())
        .extension(ext::CLUSTER_NAME, cluster_name.to_string());
    build(builder, serde_json::to_value(update).unwrap_or_default())
}

pub fn policies_resync_event(agent_source: &str, cluster_name: &str) -> Event {
    let builder = EventBuilderV10::new()
        .id(uuid::Uuid::new_v4().to_string())
        .source(agent_source.to_string())
        .ty(POLICIES_RESYNC)
        .time(Utc::now())
        .extension(ext::CLUSTER_NAME, cluster_name.to_string());
    build(builder, Value::Object(Default::default()))
}

/// The data of a [`POLICIES_UPDATE`] event.
pub fn policies_update_of(event: &Event) -> Result<PoliciesUpdate, WireError> {
    if event.ty() != POLICIES_UPDATE {
        return Err(WireError::UnknownType(event.ty().to_string()));
    }
    data_as(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_and_unknown_ones_are_refused() {
        for subresource in [Subresource::Spec, Subresource::Status] {
            for action in [EventAction::Create, EventAction::Update, EventAction::Delete, EventAction::Resync] {
                let t = EventType::new(subresource, action);
                assert_eq!(EventType::parse(&t.to_string()).unwrap(), t);
            }
        }
        assert!(
            EventType::parse("io.open-cluster-management.works.v1alpha1.manifestbundles.spec.patch_request").is_err()
        );
        assert!(
            EventType::parse("io.open-cluster-management.works.v1alpha1.manifestworks.spec.create_request").is_err()
        );
    }

    #[test]
    fn topics_name_source_and_consumer() {
        assert_eq!(source_events_topic("maestro", "c1"), "sources/maestro/consumers/c1/sourceevents");
        assert_eq!(consumer_of_topic("sources/maestro/consumers/c1/agentevents", "maestro").unwrap(), "c1");
        assert!(consumer_of_topic("sources/other/consumers/c1/agentevents", "maestro").is_err());
        assert!(consumer_of_topic("sources/maestro/consumers//agentevents", "maestro").is_err());
    }

    #[test]
    fn batches_respect_entry_and_byte_limits() {
        let items: Vec<u32> = (0..2500).collect();
        let split = batches(&items, 1000, 1 << 20);
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), vec![1000, 1000, 500]);
        let split = batches(&items, 1000, 200);
        assert!(split.iter().all(|b| serde_json::to_vec(b).unwrap().len() < 200));
        assert_eq!(split.iter().map(Vec::len).sum::<usize>(), 2500);
        assert_eq!(batches::<u32>(&[], 10, 100), vec![Vec::<u32>::new()]);
    }

    #[test]
    fn policy_updates_round_trip_in_binary_mode_and_are_not_work_events() {
        let spec: maestro_model::policy::PolicySpec =
            serde_json::from_value(serde_json::json!({"name": "p", "selector": {"labels": {"env": "prod"}}})).unwrap();
        let update = PoliciesUpdate {
            consumer_labels: [("env".to_string(), "prod".to_string())].into_iter().collect(),
            policies: vec![spec],
        };
        let event = decode(encode(&policies_update_event("maestro", "c1", &update))).unwrap();
        assert!(is_policy_event(&event));
        assert_eq!(policies_update_of(&event).unwrap(), update);
        assert!(WorkEvent::from_event(&event).is_err(), "an OCM agent sees an unknown type");
        let resync = decode(encode(&policies_resync_event("c1-work-agent", "c1"))).unwrap();
        assert!(is_policy_event(&resync));
        assert!(policies_update_of(&resync).is_err());
    }
}
