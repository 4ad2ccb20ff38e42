//! The `/scale` subresource of workloads.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::ClusterState;
use crate::apply::{self};
use crate::status::ApiError;
use crate::store::{meta, meta_mut};
use crate::target::{Target, present};

use super::write::update_with;
use super::{Request, respond};

/// The `autoscaling/v1` Scale of a workload.
pub(super) fn scale_view(obj: &Value) -> Value {
    let metadata: Map<String, Value> = meta(obj)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    matches!(k.as_str(), "name" | "namespace" | "uid" | "resourceVersion" | "creationTimestamp")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let selector: Vec<String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|labels| labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector.join(","),
        },
    })
}

/// The `/scale` subresource: reads and writes `spec.replicas` through a Scale object.
pub(super) fn scale(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    if req.method == Method::GET {
        let obj = sim.store.get(&t.key(name)).ok_or_else(|| ApiError::not_found(&t.def, name))?;
        return Ok(respond(StatusCode::OK, scale_view(&obj)));
    }
    if req.method != Method::PUT && req.method != Method::PATCH {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let media = req.media_type().to_owned();
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded: {e}")))?;
    let put = req.method == Method::PUT;
    let (def, version) = (t.def.clone(), t.version.clone());
    let outcome = update_with(sim, t, name, query, req, |cur| {
        let mut view = scale_view(&cur.obj);
        match (put, media.as_str()) {
            (true, _) => view = body,
            (false, "application/merge-patch+json") => apply::merge_patch(&mut view, &body),
            (false, "application/strategic-merge-patch+json") => apply::strategic_merge_patch(&mut view, &body),
            (false, "application/json-patch+json") => {
                apply::json_patch(&mut view, &body).map_err(|e| ApiError::invalid_object(&def, name, e))?
            }
            (false, other) => return Err(ApiError::unsupported_media_type(other)),
        }
        let replicas = view.pointer("/spec/replicas").and_then(Value::as_i64).filter(|r| *r >= 0).ok_or_else(|| {
            ApiError::invalid_object(&def, name, "spec.replicas: Invalid value: must be a non-negative integer")
        })?;
        let mut obj = present(&def, &version, cur.obj.clone());
        obj["spec"]["replicas"] = json!(replicas);
        if let Some(rv) = view.pointer("/metadata/resourceVersion").cloned() {
            meta_mut(&mut obj).insert("resourceVersion".into(), rv);
        }
        Ok(obj)
    })?;
    Ok(respond(StatusCode::OK, scale_view(outcome.object())))
}
