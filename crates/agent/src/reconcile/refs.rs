//! Object references: what the local store records of an applied object, and the kube
//! target, key and watch id it stands for.

use super::*;

pub(super) fn applied_ref(target: &Target) -> AppliedRef {
    AppliedRef {
        api_version: target.resource.api_version.clone(),
        kind: target.resource.kind.clone(),
        plural: target.resource.plural.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
    }
}

pub(super) fn target_of(applied: &AppliedRef) -> Target {
    let (group, version) = match applied.api_version.split_once('/') {
        Some((group, version)) => (group.to_owned(), version.to_owned()),
        None => (String::new(), applied.api_version.clone()),
    };
    Target {
        resource: ApiResource {
            group,
            version,
            api_version: applied.api_version.clone(),
            kind: applied.kind.clone(),
            plural: applied.plural.clone(),
        },
        namespace: applied.namespace.clone(),
        name: applied.name.clone(),
    }
}

pub(super) fn key_of(applied: &AppliedRef) -> ObjectKey {
    let target = target_of(applied);
    ObjectKey {
        group: target.resource.group,
        version: target.resource.version,
        kind: applied.kind.clone(),
        namespace: applied.namespace.clone(),
        name: applied.name.clone(),
    }
}

/// Whether a recorded object is the one a manifest describes (a manifest without namespace of
/// a namespaced kind lands in `default`).
pub(super) fn same_object(applied: &AppliedRef, key: &ObjectKey) -> bool {
    let group = applied.api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
    let namespace_matches = match (&applied.namespace, &key.namespace) {
        (Some(a), Some(k)) => a == k,
        (Some(a), None) => a == "default",
        (None, _) => true,
    };
    group == key.group && applied.kind == key.kind && applied.name == key.name && namespace_matches
}

pub(super) fn describe_ref(applied: &AppliedRef) -> String {
    match &applied.namespace {
        Some(namespace) => format!("{} {namespace}/{}", applied.kind, applied.name),
        None => format!("{} {}", applied.kind, applied.name),
    }
}

pub(super) fn obj_id(scope: &Scope, object: &Value) -> Option<ObjId> {
    let metadata = object.get("metadata")?;
    let name = metadata.get("name")?.as_str()?.to_owned();
    let namespace = metadata.get("namespace").and_then(Value::as_str).map(str::to_owned);
    Some(ObjId::in_scope(scope, namespace, name))
}

pub(super) fn resource_version_of(object: &Value) -> Option<String> {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_owned)
}

pub(super) fn resource_version(live: &Live) -> Option<String> {
    match live {
        Live::Present(object) => resource_version_of(object),
        _ => None,
    }
}

/// An event older than our own last write (resourceVersions are etcd revisions in practice;
/// when they are not numbers nothing is considered stale).
pub(super) fn is_stale(object: &Value, applied_rv: Option<&str>) -> bool {
    let event = resource_version_of(object).and_then(|rv| rv.parse::<u64>().ok());
    let ours = applied_rv.and_then(|rv| rv.parse::<u64>().ok());
    matches!((event, ours), (Some(event), Some(ours)) if event < ours)
}
