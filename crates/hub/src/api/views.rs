//! What the API sends and accepts: Maestro's object shapes (`kind`, `id`, `href`, snake_case
//! fields, RFC 3339 times). Stored JSON is passed through as raw text where it is not changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::BASE_PATH;
use super::body::RequestBody;
use super::error::ApiError;
use maestro_model::{Consumer, StoredBundle, resource};

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerView {
    pub id: String,
    pub kind: &'static str,
    pub href: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Consumer> for ConsumerView {
    fn from(c: Consumer) -> Self {
        ConsumerView {
            href: format!("{BASE_PATH}/consumers/{}", c.id),
            id: c.id,
            kind: "Consumer",
            name: c.name,
            labels: c.labels,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleView {
    pub id: String,
    pub kind: &'static str,
    pub href: String,
    pub name: String,
    pub consumer_name: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub metadata: Box<RawValue>,
    #[schema(value_type = Vec<Object>)]
    pub manifests: Box<RawValue>,
    #[schema(value_type = Vec<super::schemas::ManifestConfig>)]
    pub manifest_configs: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::DeleteOption>)]
    pub delete_option: Option<Box<RawValue>>,
    #[schema(value_type = super::schemas::BundleStatus)]
    pub status: Box<RawValue>,
}

impl TryFrom<StoredBundle> for BundleView {
    type Error = ApiError;
    fn try_from(b: StoredBundle) -> Result<Self, ApiError> {
        Ok(BundleView {
            href: format!("{BASE_PATH}/resource-bundles/{}", b.id),
            id: b.id,
            kind: "ResourceBundle",
            name: b.name,
            consumer_name: b.consumer_name,
            version: b.version,
            created_at: b.created_at,
            updated_at: b.updated_at,
            deleted_at: b.deleted_at,
            metadata: raw(b.metadata)?,
            manifests: raw(b.manifests)?,
            manifest_configs: raw(b.manifest_configs)?,
            delete_option: b.delete_option.map(raw).transpose()?,
            status: raw(b.status.unwrap_or_else(|| "{}".to_string()))?,
        })
    }
}

fn raw(text: String) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(text).map_err(|err| ApiError::from(maestro_store::StoreError::Corrupt(err)))
}

/// A bundle of one manifest seen as a single resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    pub id: String,
    pub kind: &'static str,
    pub href: String,
    pub name: String,
    pub consumer_name: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub manifest: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::UpdateStrategy>)]
    pub update_strategy: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<super::schemas::FeedbackRule>>)]
    pub feedback_rules: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::schemas::DeleteOption>)]
    pub delete_option: Option<Value>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// `{ContentStatus, ReconcileStatus}` once the agent has reported, `{}` before.
    #[schema(value_type = Object)]
    pub status: Value,
}

impl ResourceView {
    /// `None` when the bundle has more than one manifest: it has no single-resource view.
    pub fn from_bundle(b: StoredBundle) -> Result<Option<Self>, ApiError> {
        if b.manifest_count != 1 {
            return Ok(None);
        }
        let content = b.content().map_err(|err| ApiError::from(maestro_store::StoreError::Corrupt(err)))?;
        let status: Option<Value> = b.status.as_deref().and_then(|s| serde_json::from_str(s).ok());
        let config = content.manifest_configs.first();
        Ok(Some(ResourceView {
            href: format!("{BASE_PATH}/resources/{}", b.id),
            id: b.id,
            kind: "Resource",
            name: b.name,
            consumer_name: b.consumer_name,
            version: b.version,
            created_at: b.created_at,
            updated_at: b.updated_at,
            deleted_at: b.deleted_at,
            manifest: content.manifests.into_iter().next().unwrap_or(Value::Null),
            update_strategy: config.and_then(|c| c.get("updateStrategy")).cloned(),
            feedback_rules: config.and_then(|c| c.get("feedbackRules")).cloned(),
            delete_option: content.delete_option,
            metadata: Value::Object(content.metadata),
            status: resource::status_view(status.as_ref()),
        }))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerCreate {
    /// Assigned by the hub when absent.
    pub id: Option<String>,
    /// Defaults to the id. Agents and topics use it, so it must be a DNS-1123 subdomain.
    #[schema(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length = 253)]
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub labels: Option<Map<String, Value>>,
}

impl RequestBody for ConsumerCreate {
    const WHAT: &'static str = "consumer";
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerPatch {
    /// Replaces all labels.
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
}

impl RequestBody for ConsumerPatch {
    const WHAT: &'static str = "consumer patch";
    const READ_ONLY: &'static [&'static str] = &["kind", "href", "id", "name", "created_at", "updated_at"];
}

/// A bundle as a client sends it, to create (POST) or replace (PUT).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleWrite {
    /// A UUID; assigned by the hub when absent. On PUT it must match the path.
    pub id: Option<String>,
    /// Unique within the consumer; defaults to the id. Cannot change.
    #[schema(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length = 253)]
    pub name: Option<String>,
    /// Required on POST; cannot change.
    pub consumer_name: Option<String>,
    /// Required on PUT: the version the client read. Ignored on POST.
    pub version: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[schema(value_type = Vec<Object>)]
    pub manifests: Vec<Value>,
    #[schema(value_type = Option<Vec<super::schemas::ManifestConfig>>)]
    pub manifest_configs: Option<Vec<Value>>,
    #[schema(value_type = Option<super::schemas::DeleteOption>)]
    pub delete_option: Option<Value>,
}

impl RequestBody for BundleWrite {
    const WHAT: &'static str = "resource bundle";
}

/// A single resource as a client sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceWrite {
    pub id: Option<String>,
    #[schema(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length = 253)]
    pub name: Option<String>,
    pub consumer_name: Option<String>,
    pub version: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[schema(value_type = Object)]
    pub manifest: Value,
    #[schema(value_type = Option<super::schemas::UpdateStrategy>)]
    pub update_strategy: Option<Value>,
    #[schema(value_type = Option<Vec<super::schemas::FeedbackRule>>)]
    pub feedback_rules: Option<Vec<Value>>,
    #[schema(value_type = Option<super::schemas::DeleteOption>)]
    pub delete_option: Option<Value>,
}

impl RequestBody for ResourceWrite {
    const WHAT: &'static str = "resource";
}
