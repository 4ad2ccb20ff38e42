//! The controllers that make the simulator behave like a cluster rather than a key-value
//! store. One task per cluster follows the store's events and:
//! - reports Deployments, StatefulSets, DaemonSets, ReplicaSets and Pods ready once each
//!   generation has existed for the ready delay (`SimOptions::ready_delay`, or the
//!   `sim.maestro.io/ready-delay` annotation, e.g. `"5s"`);
//! - completes Jobs after the same delay, or fails them when annotated
//!   `sim.maestro.io/fail: "true"`;
//! - binds PersistentVolumeClaims, marks CRDs Established, and creates each namespace's
//!   `default` ServiceAccount;
//! - empties a namespace being deleted, then removes it;
//! - collects garbage: deletes dependents whose owners are all gone (or being deleted in the
//!   foreground), and lifts `foregroundDeletion` once an owner has no dependents left;
//! - unregisters a deleted CRD and removes its custom resources.
//!
//! No Pods or ReplicaSets are created for workloads: only their status moves.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ClusterState;
use super::apply::{self, Scope};
use super::delete::{Propagation, delete_object};
use super::discovery::{CRD_RID, Registry};
use super::gc::Collector;
use super::store::{Change, Entry, EventKind, ObjKey, meta, meta_str, timestamp};

/// The field manager of every write the controllers make.
const MANAGER: &str = "maestro-sim-controller";
pub const READY_DELAY_ANNOTATION: &str = "sim.maestro.io/ready-delay";
pub const FAIL_ANNOTATION: &str = "sim.maestro.io/fail";

const WORKLOADS: [&str; 7] = [
    "apps/deployments",
    "apps/statefulsets",
    "apps/daemonsets",
    "apps/replicasets",
    "batch/jobs",
    "/pods",
    "/persistentvolumeclaims",
];

/// When each workload generation was first seen, so readiness comes a delay after it.
#[derive(Default)]
struct Clock {
    seen: HashMap<ObjKey, (String, i64, Instant)>,
    due: BTreeMap<ObjKey, Instant>,
}

pub(crate) async fn run(sim: Arc<ClusterState>) {
    let mut events = sim.store.subscribe();
    let mut stop = sim.stop.clone();
    let mut clock = Clock::default();
    // Objects seeded before the subscription get one pass.
    let seeded = sim.store.select(|_, _| true);
    let mut dirty: BTreeSet<ObjKey> = seeded.iter().map(|(k, _)| k.clone()).collect();
    let mut collector = Collector::default();
    collector.rebuild(seeded);
    loop {
        reconcile(&sim, &mut clock, std::mem::take(&mut dirty), &mut collector);
        let next_due = clock.due.values().min().copied();
        let wait = next_due.map_or(Duration::from_secs(3600), |d| d.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(wait) => {}
            received = events.recv() => match received {
                Ok(event) => {
                    note(&event.key, event.kind, &event.object, &mut dirty, &mut collector);
                    // Take whatever else is queued, so a burst of writes is one pass.
                    while let Ok(event) = events.try_recv() {
                        note(&event.key, event.kind, &event.object, &mut dirty, &mut collector);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let all = sim.store.select(|_, _| true);
                    dirty.extend(all.iter().map(|(k, _)| k.clone()));
                    collector.rebuild(all);
                }
                Err(RecvError::Closed) => return,
            },
        }
        let now = Instant::now();
        let due: Vec<ObjKey> = clock.due.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
        for key in due {
            clock.due.remove(&key);
            dirty.insert(key);
        }
    }
}

fn note(key: &ObjKey, kind: EventKind, obj: &Value, dirty: &mut BTreeSet<ObjKey>, collector: &mut Collector) {
    dirty.insert(key.clone());
    collector.note(kind, key, obj);
    let deleting = meta_str(obj, "deletionTimestamp").is_some();
    if !key.namespace.is_empty() && (kind == EventKind::Deleted || deleting) {
        dirty.insert(ObjKey { rid: "/namespaces".into(), namespace: String::new(), name: key.namespace.clone() });
    }
}

fn reconcile(sim: &ClusterState, clock: &mut Clock, dirty: BTreeSet<ObjKey>, collector: &mut Collector) {
    for key in dirty {
        let obj = sim.store.get(&key);
        match (key.rid.as_str(), obj) {
            (CRD_RID, None) => crd_deleted(sim, &key),
            (CRD_RID, Some(obj)) => crd_established(sim, &key, &obj),
            ("/namespaces", Some(obj)) => namespace(sim, &key, &obj),
            (rid, Some(obj)) if WORKLOADS.contains(&rid) => workload(sim, clock, &key, &obj),
            (_, None) => {
                clock.seen.remove(&key);
                clock.due.remove(&key);
            }
            _ => {}
        }
    }
    collector.collect(sim);
}

/// Writes the status `compute` derives from the stored object, as the controller's field
/// manager on the status subresource. Nothing is written when the status is already right.
fn write_status(sim: &ClusterState, key: &ObjKey, compute: impl FnOnce(&Value) -> Option<Value>) {
    let result = sim.store.write(key, false, |cur| {
        let Some(cur) = cur else { return Ok(Change::Keep) };
        let Some(status) = compute(&cur.obj) else { return Ok(Change::Keep) };
        if cur.obj.get("status") == Some(&status) {
            return Ok(Change::Keep);
        }
        let mut obj = cur.obj.clone();
        obj["status"] = status;
        let api_version = cur.obj.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
        let managers = apply::track_update(Some(&cur.obj), &cur.managers, &obj, MANAGER, api_version, Scope::Status);
        Ok(Change::Put(Entry { obj, managers }))
    });
    if let Err(err) = result {
        tracing::debug!(rid = %key.rid, error = %err, "status not written");
    }
}

fn crd_established(sim: &ClusterState, key: &ObjKey, obj: &Value) {
    if meta_str(obj, "deletionTimestamp").is_some() {
        return;
    }
    match Registry::parse_crd(obj) {
        Ok(def) => {
            if let Err(err) = sim.registry_mut().register(def) {
                tracing::warn!(error = %err, "CRD not registered");
                return;
            }
        }
        Err(_) => return,
    }
    write_status(sim, key, |obj| {
        let spec = obj.get("spec")?;
        let stored: Vec<Value> = spec
            .get("versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage") == Some(&json!(true)))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        let since = condition_time(obj, "Established", "True");
        Some(json!({
            "acceptedNames": spec.get("names").cloned().unwrap_or(json!({})),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": since},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": since},
            ],
            "storedVersions": stored,
        }))
    });
}

fn crd_deleted(sim: &ClusterState, key: &ObjKey) {
    let Some((group, plural)) = key.name.split_once('.').map(|(p, g)| (g.to_owned(), p.to_owned())) else { return };
    let rid = format!("{group}/{plural}");
    let removed = sim.registry_mut().unregister(&rid);
    if removed.is_some() {
        let purged = sim.store.purge_resource(&rid);
        tracing::debug!(%rid, purged, "CRD deleted: resource unregistered");
    }
}

fn namespace(sim: &ClusterState, key: &ObjKey, obj: &Value) {
    let name = key.name.clone();
    if meta_str(obj, "deletionTimestamp").is_none() {
        ensure_default_service_account(sim, &name);
        return;
    }
    let contents = sim.store.select(|k, _| k.namespace == name);
    if contents.is_empty() {
        // Lifting the `kubernetes` finalizer of a namespace being deleted removes it.
        let result = sim.store.write(key, false, |cur| {
            let Some(cur) = cur else { return Ok(Change::Keep) };
            let mut obj = cur.obj.clone();
            obj["spec"]["finalizers"] = json!([]);
            Ok(Change::Put(Entry { obj, managers: cur.managers.clone() }))
        });
        if let Err(err) = result {
            tracing::warn!(namespace = %name, error = %err, "namespace not finalized");
        }
        return;
    }
    for (k, o) in contents {
        if meta_str(&o, "deletionTimestamp").is_some() {
            continue;
        }
        let def = sim.registry().by_rid(&k.rid).cloned();
        if let Some(def) = def
            && let Err(err) = delete_object(sim, &def, &k, Propagation::Background, &Value::Null, false)
            && err.code != 404
        {
            tracing::warn!(namespace = %name, error = %err, "namespace content not deleted");
        }
    }
}

fn ensure_default_service_account(sim: &ClusterState, namespace: &str) {
    let key = ObjKey { rid: "/serviceaccounts".into(), namespace: namespace.to_owned(), name: "default".into() };
    if sim.store.exists(&key) {
        return;
    }
    let obj =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}});
    let _ = sim.store.write(&key, false, |cur| match cur {
        Some(_) => Ok(Change::Keep),
        None => Ok(Change::Put(Entry { obj, managers: Vec::new() })),
    });
}

/// How long this object takes to become ready.
fn ready_delay(sim: &ClusterState, obj: &Value) -> Duration {
    meta(obj)
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(READY_DELAY_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|d| humantime::parse_duration(d).ok())
        .unwrap_or(sim.options.ready_delay)
}

fn workload(sim: &ClusterState, clock: &mut Clock, key: &ObjKey, obj: &Value) {
    if meta_str(obj, "deletionTimestamp").is_some() {
        return;
    }
    if key.rid == "/persistentvolumeclaims" {
        write_status(sim, key, |o| {
            let mut status = o.get("status").cloned().unwrap_or(json!({}));
            status["phase"] = json!("Bound");
            Some(status)
        });
        return;
    }
    let uid = meta_str(obj, "uid").unwrap_or("").to_owned();
    let generation = meta(obj).and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(1);
    let now = Instant::now();
    let since = match clock.seen.get(key) {
        Some((u, g, at)) if *u == uid && *g == generation => *at,
        _ => {
            clock.seen.insert(key.clone(), (uid, generation, now));
            now
        }
    };
    let ready_at = since + ready_delay(sim, obj);
    let ready = now >= ready_at;
    if !ready {
        clock.due.insert(key.clone(), ready_at);
    }
    let nodes = sim.options.nodes;
    write_status(sim, key, |o| match key.rid.as_str() {
        "apps/deployments" => Some(deployment_status(o, generation, ready)),
        "apps/statefulsets" => Some(statefulset_status(o, generation, ready)),
        "apps/daemonsets" => Some(daemonset_status(generation, ready, nodes)),
        "apps/replicasets" => Some(replicaset_status(o, generation, ready)),
        "batch/jobs" => job_status(o, ready),
        "/pods" => Some(pod_status(o, ready)),
        _ => None,
    });
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

/// The transition time of a condition that already has this status, so rewriting the same
/// condition does not count as a change.
fn condition_time(obj: &Value, kind: &str, status: &str) -> String {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter().find(|c| c.get("type") == Some(&json!(kind)) && c.get("status") == Some(&json!(status)))
        })
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .map_or_else(timestamp, str::to_owned)
}

fn condition(obj: &Value, kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let since = condition_time(obj, kind, status);
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since, "lastUpdateTime": since})
}

/// Sets the counters that are not zero: the real server omits zero counters.
fn counters(status: &mut Value, fields: &[(&str, i64)]) {
    for (field, value) in fields {
        if *value != 0 {
            status[*field] = json!(value);
        }
    }
}

fn deployment_status(obj: &Value, generation: i64, ready: bool) -> Value {
    let n = replicas(obj);
    let name = meta_str(obj, "name").unwrap_or("");
    let ready_n = if ready { n } else { 0 };
    let mut status = json!({"observedGeneration": generation});
    counters(
        &mut status,
        &[
            ("replicas", n),
            ("updatedReplicas", n),
            ("readyReplicas", ready_n),
            ("availableReplicas", ready_n),
            ("unavailableReplicas", n - ready_n),
        ],
    );
    status["conditions"] = if ready {
        json!([
            condition(obj, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
            condition(
                obj,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{name}-sim\" has successfully progressed.")
            ),
        ])
    } else {
        json!([
            condition(
                obj,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability."
            ),
            condition(
                obj,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{name}-sim\" is progressing.")
            ),
        ])
    };
    status
}

fn statefulset_status(obj: &Value, generation: i64, ready: bool) -> Value {
    let n = replicas(obj);
    let ready_n = if ready { n } else { 0 };
    let revision = format!("{}-sim{generation}", meta_str(obj, "name").unwrap_or(""));
    let mut status = json!({"observedGeneration": generation, "replicas": n, "currentRevision": revision, "updateRevision": revision, "collisionCount": 0});
    counters(
        &mut status,
        &[("readyReplicas", ready_n), ("currentReplicas", n), ("updatedReplicas", n), ("availableReplicas", ready_n)],
    );
    status
}

fn replicaset_status(obj: &Value, generation: i64, ready: bool) -> Value {
    let n = replicas(obj);
    let ready_n = if ready { n } else { 0 };
    let mut status = json!({"observedGeneration": generation, "replicas": n});
    counters(&mut status, &[("fullyLabeledReplicas", n), ("readyReplicas", ready_n), ("availableReplicas", ready_n)]);
    status
}

fn daemonset_status(generation: i64, ready: bool, nodes: u32) -> Value {
    let n = i64::from(nodes);
    let ready_n = if ready { n } else { 0 };
    let mut status = json!({
        "observedGeneration": generation,
        "desiredNumberScheduled": n,
        "currentNumberScheduled": n,
        "numberMisscheduled": 0,
        "numberReady": ready_n,
    });
    counters(
        &mut status,
        &[("updatedNumberScheduled", n), ("numberAvailable", ready_n), ("numberUnavailable", n - ready_n)],
    );
    status
}

/// A Job runs for the delay, then completes, or fails when annotated to. A finished Job
/// keeps its status.
fn job_status(obj: &Value, done: bool) -> Option<Value> {
    let status = obj.get("status").cloned().unwrap_or(json!({}));
    let finished = status.get("conditions").and_then(Value::as_array).is_some_and(|cs| {
        cs.iter().any(|c| matches!(c.get("type").and_then(Value::as_str), Some("Complete" | "Failed")))
    });
    if finished {
        return None;
    }
    let start = status.get("startTime").and_then(Value::as_str).map_or_else(timestamp, str::to_owned);
    if !done {
        return Some(json!({"startTime": start, "active": 1, "ready": 0}));
    }
    let fail = meta(obj)
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(FAIL_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|v| v == "true");
    let now = timestamp();
    if fail {
        let message = "Job has reached the specified backoff limit";
        let backoff = obj.pointer("/spec/backoffLimit").and_then(Value::as_i64).unwrap_or(6);
        return Some(json!({
            "startTime": start,
            "failed": backoff + 1,
            "ready": 0,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": message, "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": message, "lastProbeTime": now, "lastTransitionTime": now},
            ],
        }));
    }
    let completions = obj.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
    Some(json!({
        "startTime": start,
        "completionTime": now,
        "succeeded": completions,
        "ready": 0,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
        ],
    }))
}

fn pod_status(obj: &Value, ready: bool) -> Value {
    if !ready {
        return json!({"phase": "Pending", "conditions": [condition(obj, "PodScheduled", "True", "", "")]});
    }
    let start = obj.pointer("/status/startTime").and_then(Value::as_str).map_or_else(timestamp, str::to_owned);
    json!({
        "phase": "Running",
        "podIP": "10.244.0.10",
        "hostIP": "10.0.0.1",
        "startTime": start,
        "conditions": [
            condition(obj, "PodScheduled", "True", "", ""),
            condition(obj, "Initialized", "True", "", ""),
            condition(obj, "ContainersReady", "True", "", ""),
            condition(obj, "Ready", "True", "", ""),
        ],
    })
}
