//! Deleting objects as the API server does: preconditions, propagation (background, foreground
//! with the `foregroundDeletion` finalizer, orphan), finalizers holding an object in
//! `deletionTimestamp`, namespaces terminating. Shared by the handlers (a DELETE) and the
//! controllers (garbage collection, namespace cleanup).

use serde_json::{Value, json};

use super::ClusterState;
use super::apply::{self, Scope};
use super::discovery::ResourceDef;
use super::object::{finalizers, meta_mut, meta_str, owner_uids, timestamp};
use super::status::ApiError;
use super::store::{Change, Entry, ObjKey, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

pub(crate) fn check_preconditions(def: &ResourceDef, name: &str, obj: &Value, pre: &Value) -> Result<(), ApiError> {
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        if let Some(want) = pre.get(field).and_then(Value::as_str) {
            let have = meta_str(obj, field).unwrap_or("");
            if want != have {
                let mut err = ApiError::stale(def, name);
                err.message =
                    format!("Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}");
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Deletes one object as the API does: at once when nothing holds it, else by setting
/// `deletionTimestamp` and waiting for its finalizers (with Foreground propagation, for the
/// `foregroundDeletion` finalizer the garbage collector removes once dependents are gone).
/// Orphan propagation first removes this owner from its dependents' ownerReferences.
pub(crate) fn delete_object(
    sim: &ClusterState,
    def: &ResourceDef,
    key: &ObjKey,
    propagation: Propagation,
    preconditions: &Value,
    dry: bool,
) -> Result<Outcome, ApiError> {
    if propagation == Propagation::Orphan && !dry {
        let current = sim.store.get(key).ok_or_else(|| ApiError::not_found(def, &key.name))?;
        check_preconditions(def, &key.name, &current, preconditions)?;
        if let Some(uid) = meta_str(&current, "uid") {
            orphan_dependents(sim, uid);
        }
    }
    let is_namespace = def.rid() == "/namespaces";
    sim.store.write(key, dry, |cur| {
        let cur = cur.ok_or_else(|| ApiError::not_found(def, &key.name))?;
        check_preconditions(def, &key.name, &cur.obj, preconditions)?;
        if meta_str(&cur.obj, "deletionTimestamp").is_some() {
            return Ok(Change::Keep);
        }
        let mut held = finalizers(&cur.obj);
        if propagation == Propagation::Foreground && !held.iter().any(|f| f == "foregroundDeletion") {
            held.push("foregroundDeletion".into());
        }
        if held.is_empty() && !is_namespace {
            return Ok(Change::Remove);
        }
        let mut obj = cur.obj.clone();
        let meta = meta_mut(&mut obj);
        meta.insert("deletionTimestamp".into(), json!(timestamp()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        if !held.is_empty() {
            meta.insert("finalizers".into(), json!(held));
        }
        if is_namespace {
            if obj.pointer("/spec/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            obj["status"] = json!({"phase": "Terminating"});
        }
        Ok(Change::Put(Entry { obj, managers: cur.managers.clone() }))
    })
}

/// Takes the owner with this uid out of every dependent's ownerReferences (Orphan).
pub(crate) fn orphan_dependents(sim: &ClusterState, owner_uid: &str) {
    for (key, _) in sim.store.select(|_, o| owner_uids(o).iter().any(|u| u == owner_uid)) {
        let _ = sim.store.write(&key, false, |cur| {
            let Some(cur) = cur else { return Ok(Change::Keep) };
            let mut obj = cur.obj.clone();
            if let Some(refs) = obj.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
                if refs.is_empty()
                    && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    m.remove("ownerReferences");
                }
            }
            let api_version = cur.obj.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
            let scope = Scope::Main { status_separate: true };
            let managers =
                apply::track_update(Some(&cur.obj), &cur.managers, &obj, "garbage-collector", api_version, scope);
            Ok(Change::Put(Entry { obj, managers }))
        });
    }
}
