//! The hub's domain: consumers (clusters) and resource bundles (the manifests one consumer
//! should run), independent of how they are stored or served.
//!
//! A single resource of the `/resources` API is a bundle of one manifest ([`resource`]), so
//! both views always agree on what a cluster runs.
//!
//! Plugin policies ([`policy`]) are model too: the store keeps them, the wire carries them to
//! agents and the plugin runtime enforces them.
//!
//! Never imports another Maestro crate: every other crate builds on this one.

pub mod config;
pub mod object;
pub mod policy;
pub mod resource;
pub mod status;
pub mod validate;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The current time at the precision PostgreSQL keeps, so that what a client reads back from
/// either database compares equal to what it was told at write time.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A cluster that receives bundles. `name` is what agents and topics use.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub id: String,
    pub name: String,
    pub labels: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client controls in a bundle; every change to it raises the version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BundleContent {
    pub metadata: Map<String, Value>,
    pub manifests: Vec<Value>,
    pub manifest_configs: Vec<Value>,
    pub delete_option: Option<Value>,
}

impl BundleContent {
    /// Labels live in `metadata.labels`; the store keeps a copy in its own column for search.
    pub fn labels(&self) -> Map<String, Value> {
        match self.metadata.get("labels") {
            Some(Value::Object(labels)) => labels.clone(),
            _ => Map::new(),
        }
    }

    /// Each manifest reduced to its labels (`[{"metadata": {"labels": ...}}]`), the shape
    /// the store indexes so `manifest_labels.<key>` searches do not scan whole manifests.
    pub fn manifest_labels(&self) -> Value {
        let skeletons = self.manifests.iter().map(|manifest| {
            let labels = manifest.pointer("/metadata/labels").cloned().unwrap_or_else(|| Value::Object(Map::new()));
            serde_json::json!({"metadata": {"labels": labels}})
        });
        Value::Array(skeletons.collect())
    }
}

/// A stored bundle. JSON columns stay as the text the database returned: lists of thousands of
/// bundles are served without parsing every manifest into a tree and printing it again.
#[derive(Debug, Clone)]
pub struct StoredBundle {
    pub id: String,
    pub name: String,
    pub consumer_name: String,
    pub version: i64,
    pub metadata: String,
    pub manifests: String,
    pub manifest_count: i64,
    pub manifest_configs: String,
    pub delete_option: Option<String>,
    pub status: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl StoredBundle {
    /// The client-controlled part, parsed, to decide whether an update changes anything.
    pub fn content(&self) -> Result<BundleContent, serde_json::Error> {
        Ok(BundleContent {
            metadata: serde_json::from_str(&self.metadata)?,
            manifests: serde_json::from_str(&self.manifests)?,
            manifest_configs: serde_json::from_str(&self.manifest_configs)?,
            delete_option: match &self.delete_option {
                Some(text) => Some(serde_json::from_str(text)?),
                None => None,
            },
        })
    }

    pub fn is_deleting(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// What a change did to a bundle, as the transport will tell the consumer's agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}
