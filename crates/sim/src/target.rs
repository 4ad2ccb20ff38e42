//! What a request addresses: a resource type at a version, a namespace, a name, and the status
//! or scale subresource; and an object as served at that version. Shared by the handlers and
//! the watch streams.

use serde_json::{Value, json};

use super::apply::Scope;
use super::discovery::ResourceDef;
use super::store::ObjKey;

/// The resource a request addresses.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub def: ResourceDef,
    pub version: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub status: bool,
    pub scale: bool,
}

impl Target {
    pub(crate) fn key(&self, name: &str) -> ObjKey {
        ObjKey { rid: self.def.rid(), namespace: self.namespace.clone().unwrap_or_default(), name: name.to_owned() }
    }

    pub(crate) fn scope(&self) -> Scope {
        if self.status { Scope::Status } else { Scope::Main { status_separate: self.def.status } }
    }

    pub(crate) fn api_version(&self) -> String {
        self.def.api_version(&self.version)
    }
}

/// The object as served at `version`: objects are stored once per resource, so `apiVersion`
/// and `kind` are set on the way out (no conversion between versions happens).
pub(crate) fn present(def: &ResourceDef, version: &str, mut obj: Value) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(def.api_version(version)));
        map.insert("kind".into(), json!(def.kind));
    }
    obj
}
