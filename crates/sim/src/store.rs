//! The simulated etcd: every object of one cluster, one resourceVersion counter, and the event
//! history that watches resume from.
//!
//! All writes go through [`Store::write`], which holds the lock while the caller computes the new
//! object from the current one, so a read-modify-write is atomic and two writers can never both
//! win. The commit step, not the caller, owns the server-set metadata (uid, resourceVersion,
//! generation, creationTimestamp, deletionTimestamp, managedFields) so no request can forge it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::apply::{Manager, render_managed_fields};
pub(crate) use super::object::{finalizers, meta, meta_mut, meta_str, resource_version, timestamp};
use super::status::ApiError;

/// Where an object lives: resource (`group/plural`, core group empty), namespace ("" for
/// cluster-scoped) and name. Objects are stored once per resource whatever the version served.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjKey {
    pub rid: String,
    pub namespace: String,
    pub name: String,
}

/// One stored object with its field managers (rendered into `metadata.managedFields`).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub obj: Value,
    pub managers: Vec<Manager>,
}

/// What a writer wants done with the object it was shown.
pub(crate) enum Change {
    Put(Entry),
    Remove,
    Keep,
}

/// What a write did; each carries the object as it now is (or was, when removed).
#[derive(Debug)]
pub(crate) enum Outcome {
    Created(Value),
    Updated(Value),
    Unchanged(Value),
    Removed(Value),
}

impl Outcome {
    pub fn object(&self) -> &Value {
        match self {
            Outcome::Created(v) | Outcome::Updated(v) | Outcome::Unchanged(v) | Outcome::Removed(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// One change, as watches and controllers see it. `old` lets a filtered watch turn a change
/// that leaves its selector into DELETED, like the real watch cache does.
#[derive(Debug)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: EventKind,
    pub key: ObjKey,
    pub old: Option<Arc<Value>>,
    pub object: Arc<Value>,
}

/// The start of a watch: either the current objects (as synthetic ADDED events) or the events
/// since the requested resourceVersion, then the live channel, taken under one lock so no event
/// falls between them.
pub(crate) struct WatchStart {
    pub initial: Vec<Arc<Value>>,
    pub backlog: Vec<Arc<Event>>,
    pub rv: u64,
    pub rx: broadcast::Receiver<Arc<Event>>,
}

/// The resourceVersion asked for is older than the retained history.
#[derive(Debug)]
pub(crate) struct Expired {
    pub requested: u64,
    pub oldest: u64,
}

struct Inner {
    objects: BTreeMap<ObjKey, Entry>,
    uids: HashMap<String, ObjKey>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    /// The highest resourceVersion dropped from `history`: watches from below it get 410.
    compacted: u64,
}

pub(crate) struct Store {
    inner: Mutex<Inner>,
    history_cap: usize,
    tx: broadcast::Sender<Arc<Event>>,
}

/// The object without what the server rewrites on every write: equal means "nothing changed".
fn comparable(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(map) = obj.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let meta = meta_mut(&mut obj);
    for field in ["resourceVersion", "managedFields", "generation"] {
        meta.remove(field);
    }
    obj
}

/// The part whose change bumps `metadata.generation`: everything but metadata and status.
fn generational(obj: &Value) -> Value {
    let mut obj = comparable(obj);
    if let Some(map) = obj.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    obj
}

fn managers_equal(a: &[Manager], b: &[Manager]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_ownership(y))
}

/// A namespace waits for its contents through `spec.finalizers`, not `metadata.finalizers`.
fn namespace_held(key: &ObjKey, obj: &Value) -> bool {
    key.rid == "/namespaces" && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

impl Store {
    pub fn new(history_cap: usize) -> Store {
        let (tx, _) = broadcast::channel(4096);
        Store {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                uids: HashMap::new(),
                rv: 0,
                history: VecDeque::new(),
                compacted: 0,
            }),
            history_cap: history_cap.max(1),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (commits are the last step), so
        // a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &ObjKey) -> Option<Value> {
        self.lock().objects.get(key).map(|e| e.obj.clone())
    }

    pub fn exists(&self, key: &ObjKey) -> bool {
        self.lock().objects.contains_key(key)
    }

    /// The objects of one resource, in one namespace or all, ordered by namespace and name, and
    /// the resourceVersion they are current at.
    pub fn list(&self, rid: &str, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let start = ObjKey { rid: rid.to_owned(), namespace: namespace.unwrap_or("").to_owned(), name: String::new() };
        let items = inner
            .objects
            .range(start..)
            .take_while(|(k, _)| k.rid == rid && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, e)| e.obj.clone())
            .collect();
        (items, inner.rv)
    }

    /// Every object matching `filter`, with its key: for controllers' sweeps.
    pub fn select(&self, filter: impl Fn(&ObjKey, &Value) -> bool) -> Vec<(ObjKey, Value)> {
        let inner = self.lock();
        inner.objects.iter().filter(|(k, e)| filter(k, &e.obj)).map(|(k, e)| (k.clone(), e.obj.clone())).collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Starts a watch of the objects `filter` accepts: from the current state when `from` is
    /// `None`, else from the events after resourceVersion `from`.
    pub fn watch(&self, from: Option<u64>, filter: impl Fn(&ObjKey) -> bool) -> Result<WatchStart, Expired> {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let mut start = WatchStart { initial: Vec::new(), backlog: Vec::new(), rv: inner.rv, rx };
        match from {
            None => {
                start.initial =
                    inner.objects.iter().filter(|(k, _)| filter(k)).map(|(_, e)| Arc::new(e.obj.clone())).collect();
            }
            Some(rv) if rv < inner.compacted => {
                return Err(Expired { requested: rv, oldest: inner.compacted });
            }
            Some(rv) => {
                start.backlog = inner.history.iter().filter(|e| e.rv > rv && filter(&e.key)).cloned().collect();
                start.rv = start.rv.max(rv);
            }
        }
        Ok(start)
    }

    /// Reads the current entry, lets `decide` compute the change, and commits it, all under the
    /// lock. With `dry_run` the outcome is computed and reported but nothing is stored.
    pub fn write(
        &self,
        key: &ObjKey,
        dry_run: bool,
        decide: impl FnOnce(Option<&Entry>) -> Result<Change, ApiError>,
    ) -> Result<Outcome, ApiError> {
        let mut inner = self.lock();
        let current = inner.objects.get(key);
        let change = decide(current)?;
        let current = current.cloned();
        let rv = inner.rv + 1;
        let (outcome, kind, old, stored) = match (current, change) {
            (Some(cur), Change::Keep) => return Ok(Outcome::Unchanged(cur.obj)),
            (None, Change::Keep | Change::Remove) => {
                return Err(ApiError::internal("write asked to keep or remove a missing object"));
            }
            (Some(cur), Change::Remove) => {
                let mut obj = cur.obj.clone();
                meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
                (Outcome::Removed(obj.clone()), EventKind::Deleted, Some(cur.obj), Entry { obj, managers: Vec::new() })
            }
            (None, Change::Put(entry)) => {
                let entry = created(entry, rv);
                (Outcome::Created(entry.obj.clone()), EventKind::Added, None, entry)
            }
            (Some(cur), Change::Put(entry)) => match updated(key, &cur, entry, rv)? {
                None => return Ok(Outcome::Unchanged(cur.obj)),
                Some((entry, false)) => {
                    (Outcome::Updated(entry.obj.clone()), EventKind::Modified, Some(cur.obj), entry)
                }
                Some((entry, true)) => (Outcome::Removed(entry.obj.clone()), EventKind::Deleted, Some(cur.obj), entry),
            },
        };
        if dry_run {
            return Ok(outcome);
        }
        inner.rv = rv;
        let uid = meta_str(&stored.obj, "uid").unwrap_or_default().to_owned();
        let object = Arc::new(stored.obj.clone());
        if kind == EventKind::Deleted {
            inner.objects.remove(key);
            inner.uids.remove(&uid);
        } else {
            inner.uids.insert(uid, key.clone());
            inner.objects.insert(key.clone(), stored);
        }
        let event = Arc::new(Event { rv, kind, key: key.clone(), old: old.map(Arc::new), object });
        self.record(&mut inner, event);
        Ok(outcome)
    }

    fn record(&self, inner: &mut Inner, event: Arc<Event>) {
        inner.history.push_back(event.clone());
        while inner.history.len() > self.history_cap {
            if let Some(dropped) = inner.history.pop_front() {
                inner.compacted = dropped.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(event);
    }

    /// Removes every object of a resource (a deleted CRD's custom resources), with events.
    pub fn purge_resource(&self, rid: &str) -> usize {
        let keys: Vec<ObjKey> = self.select(|k, _| k.rid == rid).into_iter().map(|(k, _)| k).collect();
        keys.iter()
            .filter(|key| self.write(key, false, |cur| Ok(cur.map_or(Change::Keep, |_| Change::Remove))).is_ok())
            .count()
    }
}

fn finish(mut obj: Value, managers: &[Manager], rv: u64, generation: i64) -> Value {
    let meta = meta_mut(&mut obj);
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    meta.insert("generation".into(), json!(generation));
    let rendered = render_managed_fields(managers);
    if rendered.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(rendered));
    }
    obj
}

fn created(entry: Entry, rv: u64) -> Entry {
    let mut obj = entry.obj;
    let meta = meta_mut(&mut obj);
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(timestamp()));
    let obj = finish(obj, &entry.managers, rv, 1);
    Entry { obj, managers: entry.managers }
}

/// Applies the server's rules to an update: identity and deletion state come from the stored
/// object, no finalizer may be added while deleting, generation follows the spec, and an
/// update that changes nothing is not a write at all. The flag says the update removed the last
/// finalizer of an object being deleted, which deletes it.
fn updated(key: &ObjKey, cur: &Entry, entry: Entry, rv: u64) -> Result<Option<(Entry, bool)>, ApiError> {
    let mut obj = entry.obj;
    let deleting_before = meta(&cur.obj).and_then(|m| m.get("deletionTimestamp")).cloned();
    {
        let stored_meta = meta(&cur.obj).cloned().unwrap_or_default();
        let m = meta_mut(&mut obj);
        for field in ["name", "namespace", "uid", "creationTimestamp", "generateName"] {
            match stored_meta.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        if let Some(ts) = &deleting_before {
            m.insert("deletionTimestamp".into(), ts.clone());
        }
        if m.get("finalizers").and_then(Value::as_array).is_some_and(Vec::is_empty) {
            m.remove("finalizers");
        }
    }
    if deleting_before.is_some() {
        let before = finalizers(&cur.obj);
        if let Some(added) = finalizers(&obj).into_iter().find(|f| !before.contains(f)) {
            return Err(ApiError::invalid(format!(
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [\"{added}\"]"
            )));
        }
    }
    if comparable(&cur.obj) == comparable(&obj) && managers_equal(&cur.managers, &entry.managers) {
        return Ok(None);
    }
    let generation = meta(&cur.obj).and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(1);
    let deletion_started = deleting_before.is_none() && meta_str(&obj, "deletionTimestamp").is_some();
    let generation =
        if deletion_started || generational(&cur.obj) != generational(&obj) { generation + 1 } else { generation };
    let obj = finish(obj, &entry.managers, rv, generation);
    let finalized =
        meta_str(&obj, "deletionTimestamp").is_some() && finalizers(&obj).is_empty() && !namespace_held(key, &obj);
    Ok(Some((Entry { obj, managers: entry.managers }, finalized)))
}
