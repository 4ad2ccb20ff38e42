//! Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for
//! (`Accept: application/json;as=Table;...`), with the columns kubectl users expect for the
//! common kinds and `Name`/`Age` for the rest.

use serde_json::{Value, json};

use super::discovery::ResourceDef;
use super::object::meta;

pub(crate) fn wanted(accept: &str) -> bool {
    accept.contains("as=Table")
}

type Column = (&'static str, &'static str);

fn columns(def: &ResourceDef) -> Vec<Column> {
    let s = "string";
    let i = "integer";
    let mut cols: Vec<Column> = vec![("Name", s)];
    cols.extend(match (def.group.as_str(), def.plural.as_str()) {
        ("apps", "deployments") => vec![("Ready", s), ("Up-to-date", i), ("Available", i)],
        ("apps", "statefulsets") => vec![("Ready", s)],
        ("apps", "replicasets") => vec![("Desired", i), ("Current", i), ("Ready", i)],
        ("apps", "daemonsets") => {
            vec![("Desired", i), ("Current", i), ("Ready", i), ("Up-to-date", i), ("Available", i)]
        }
        ("batch", "jobs") => vec![("Status", s), ("Completions", s)],
        ("", "pods") => vec![("Ready", s), ("Status", s)],
        ("", "namespaces" | "persistentvolumeclaims") => vec![("Status", s)],
        ("", "nodes") => vec![("Status", s)],
        ("", "services") => vec![("Type", s), ("Cluster-IP", s), ("Port(s)", s)],
        ("", "configmaps") => vec![("Data", i)],
        ("", "secrets") => vec![("Type", s), ("Data", i)],
        _ => vec![],
    });
    cols.push(("Age", s));
    cols
}

fn int(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn text(obj: &Value, ptr: &str, default: &str) -> String {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or(default).to_owned()
}

fn has_condition(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

/// kubectl's short ages: 45s, 12m, 5h, 3d.
fn age(obj: &Value) -> String {
    let created = meta(obj)
        .and_then(|m| m.get("creationTimestamp"))
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let Some(created) = created else { return "<unknown>".into() };
    let secs = (chrono::Utc::now() - created.with_timezone(&chrono::Utc)).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = text(obj, "/metadata/name", "");
    let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let count = |ptr: &str| obj.pointer(ptr).and_then(Value::as_object).map_or(0, |m| m.len());
    let mut row = vec![json!(name)];
    row.extend(match (def.group.as_str(), def.plural.as_str()) {
        ("apps", "deployments") => vec![
            json!(format!("{}/{replicas}", int(obj, "/status/readyReplicas"))),
            json!(int(obj, "/status/updatedReplicas")),
            json!(int(obj, "/status/availableReplicas")),
        ],
        ("apps", "statefulsets") => vec![json!(format!("{}/{replicas}", int(obj, "/status/readyReplicas")))],
        ("apps", "replicasets") => {
            vec![json!(replicas), json!(int(obj, "/status/replicas")), json!(int(obj, "/status/readyReplicas"))]
        }
        ("apps", "daemonsets") => vec![
            json!(int(obj, "/status/desiredNumberScheduled")),
            json!(int(obj, "/status/currentNumberScheduled")),
            json!(int(obj, "/status/numberReady")),
            json!(int(obj, "/status/updatedNumberScheduled")),
            json!(int(obj, "/status/numberAvailable")),
        ],
        ("batch", "jobs") => {
            let status = if has_condition(obj, "Complete") {
                "Complete"
            } else if has_condition(obj, "Failed") {
                "Failed"
            } else {
                "Running"
            };
            let completions = obj.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1);
            vec![json!(status), json!(format!("{}/{completions}", int(obj, "/status/succeeded")))]
        }
        ("", "pods") => {
            let containers = obj.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
            let ready = if has_condition(obj, "Ready") { containers } else { 0 };
            vec![json!(format!("{ready}/{containers}")), json!(text(obj, "/status/phase", "Pending"))]
        }
        ("", "namespaces" | "persistentvolumeclaims") => vec![json!(text(obj, "/status/phase", ""))],
        ("", "nodes") => vec![json!(if has_condition(obj, "Ready") { "Ready" } else { "NotReady" })],
        ("", "services") => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter().map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))).collect()
                })
                .unwrap_or_default();
            vec![
                json!(text(obj, "/spec/type", "ClusterIP")),
                json!(text(obj, "/spec/clusterIP", "<none>")),
                json!(if ports.is_empty() { "<none>".to_owned() } else { ports.join(",") }),
            ]
        }
        ("", "configmaps") => vec![json!(count("/data") + count("/binaryData"))],
        ("", "secrets") => vec![json!(text(obj, "/type", "Opaque")), json!(count("/data"))],
        _ => vec![],
    });
    row.push(json!(age(obj)));
    row
}

/// The Table of these objects. `full` puts whole objects in the rows (`includeObject=Object`),
/// else their metadata only, as the real server does by default.
pub(crate) fn render(def: &ResourceDef, objects: &[Value], list_meta: Value, full: bool) -> Value {
    let definitions: Vec<Value> = columns(def)
        .into_iter()
        .map(|(name, kind)| {
            let format = if name == "Name" { "name" } else { "" };
            json!({"name": name, "type": kind, "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let object = if full {
                obj.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
            };
            json!({"cells": cells(def, obj), "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": definitions, "rows": rows})
}
