//! Garbage collection as the API server's collector does it: a dependent whose owners are all
//! gone (or being deleted in the foreground) is deleted, and an owner deleted in the foreground
//! loses its `foregroundDeletion` finalizer once it has no dependents left.
//!
//! It is incremental: an index of objects by uid and of dependents by owner uid follows the
//! store's events, so a write costs a few lookups rather than a scan of the whole cluster (a
//! cluster running hundreds of operator instances has thousands of owned objects).

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::ClusterState;
use super::delete::{Propagation, delete_object};
use super::object::owner_uids;
use super::store::{Change, Entry, EventKind, ObjKey, meta_str};

#[derive(Default)]
pub(crate) struct Collector {
    /// Every object's key by uid.
    keys: HashMap<String, ObjKey>,
    /// Dependents by owner uid.
    dependents: HashMap<String, BTreeSet<ObjKey>>,
    /// Each object's owner uids, to take it out of `dependents` again.
    owners_of: HashMap<ObjKey, Vec<String>>,
    /// Objects whose owners must be looked at.
    check: BTreeSet<ObjKey>,
    /// Owners (uids) that may be done with a foreground deletion.
    release: HashSet<String>,
}

fn foreground_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
        && super::object::finalizers(obj).iter().any(|f| f == "foregroundDeletion")
}

impl Collector {
    /// Indexes every object again and checks them all (at start, or after missed events).
    pub(crate) fn rebuild(&mut self, all: Vec<(ObjKey, Value)>) {
        *self = Collector::default();
        for (key, obj) in all {
            self.note(EventKind::Added, &key, &obj);
            if meta_str(&obj, "deletionTimestamp").is_some()
                && let Some(uid) = meta_str(&obj, "uid")
            {
                self.release.insert(uid.to_owned());
            }
        }
    }

    /// Follows one event of the store.
    pub(crate) fn note(&mut self, kind: EventKind, key: &ObjKey, obj: &Value) {
        let uid = meta_str(obj, "uid").unwrap_or_default().to_owned();
        if kind == EventKind::Deleted {
            self.keys.remove(&uid);
            for owner in self.owners_of.remove(key).unwrap_or_default() {
                if let Some(set) = self.dependents.get_mut(&owner) {
                    set.remove(key);
                }
                self.release.insert(owner);
            }
            self.check.extend(self.dependents.get(&uid).into_iter().flatten().cloned());
            return;
        }
        self.keys.insert(uid.clone(), key.clone());
        let owners = owner_uids(obj);
        for old in self.owners_of.get(key).into_iter().flatten() {
            if !owners.contains(old)
                && let Some(set) = self.dependents.get_mut(old)
            {
                set.remove(key);
            }
        }
        for owner in &owners {
            self.dependents.entry(owner.clone()).or_default().insert(key.clone());
        }
        if owners.is_empty() {
            self.owners_of.remove(key);
        } else {
            self.check.insert(key.clone());
            self.owners_of.insert(key.clone(), owners);
        }
        if meta_str(obj, "deletionTimestamp").is_some() {
            self.check.extend(self.dependents.get(&uid).into_iter().flatten().cloned());
            self.release.insert(uid);
        }
    }

    fn owner_alive(&self, sim: &ClusterState, uid: &str) -> bool {
        let Some(key) = self.keys.get(uid) else { return false };
        sim.store.get(key).is_some_and(|owner| !foreground_deleting(&owner))
    }

    /// Deletes the orphans found since the last pass and releases finished foreground owners.
    pub(crate) fn collect(&mut self, sim: &ClusterState) {
        for key in std::mem::take(&mut self.check) {
            let Some(obj) = sim.store.get(&key) else { continue };
            let owners = owner_uids(&obj);
            if owners.is_empty() || meta_str(&obj, "deletionTimestamp").is_some() {
                continue;
            }
            if owners.iter().any(|uid| self.owner_alive(sim, uid)) {
                continue;
            }
            let def = sim.registry().by_rid(&key.rid).cloned();
            if let Some(def) = def
                && let Err(err) = delete_object(sim, &def, &key, Propagation::Background, &Value::Null, false)
                && err.code != 404
            {
                tracing::warn!(rid = %key.rid, error = %err, "dependent not deleted");
            }
        }
        for uid in std::mem::take(&mut self.release) {
            if self.dependents.get(&uid).is_some_and(|set| !set.is_empty()) {
                continue;
            }
            let Some(key) = self.keys.get(&uid).cloned() else { continue };
            let _ = sim.store.write(&key, false, |cur| {
                let Some(cur) = cur else { return Ok(Change::Keep) };
                if !foreground_deleting(&cur.obj) {
                    return Ok(Change::Keep);
                }
                let mut obj = cur.obj.clone();
                if let Some(fins) = obj.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                    fins.retain(|f| f != "foregroundDeletion");
                }
                Ok(Change::Put(Entry { obj, managers: cur.managers.clone() }))
            });
        }
    }
}
