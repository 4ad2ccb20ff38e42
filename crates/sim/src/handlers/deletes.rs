//! DELETE of one object and of a collection, with DeleteOptions from body and query.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::ClusterState;
use crate::delete::{Propagation, delete_object};
use crate::discovery::ResourceDef;
use crate::status::ApiError;
use crate::store::{ObjKey, Outcome, meta_str};
use crate::target::{Target, present};

use super::admit::dry_run;
use super::read::selected;
use super::{Request, respond};

/// DeleteOptions from the body and the query (the query wins, as in `kubectl delete`).
pub(super) fn delete_options(query: &HashMap<String, String>, req: &Request) -> Result<(Propagation, Value), ApiError> {
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&req.body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let mut policy = body.get("propagationPolicy").and_then(Value::as_str).map(str::to_owned);
    if body.get("orphanDependents") == Some(&json!(true)) {
        policy = Some("Orphan".into());
    }
    if let Some(p) = query.get("propagationPolicy") {
        policy = Some(p.clone());
    }
    let propagation = match policy.as_deref() {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    };
    Ok((propagation, body.get("preconditions").cloned().unwrap_or(Value::Null)))
}

pub(super) fn delete(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let (propagation, preconditions) = delete_options(query, req)?;
    let outcome = delete_object(sim, &t.def, &t.key(name), propagation, &preconditions, dry_run(query))?;
    let obj = present(&t.def, &t.version, outcome.object().clone());
    Ok(match outcome {
        // Gone at once: built-in types answer with a Status (what `kube` reads as "deleted"),
        // custom resources with the deleted object, as the real server does.
        Outcome::Removed(_) if !t.def.custom => respond(StatusCode::OK, deleted_status(&t.def, &obj)),
        Outcome::Removed(_) => respond(StatusCode::OK, obj),
        _ if propagation == Propagation::Foreground => respond(StatusCode::ACCEPTED, obj),
        _ => respond(StatusCode::OK, obj),
    })
}

pub(super) fn deleted_status(def: &ResourceDef, obj: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": meta_str(obj, "name").unwrap_or(""),
            "group": def.group,
            "kind": def.plural,
            "uid": meta_str(obj, "uid").unwrap_or(""),
        },
    })
}

pub(super) fn delete_collection(
    sim: &ClusterState,
    t: &Target,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let (propagation, _) = delete_options(query, req)?;
    let matches = selected(t, query)?;
    let (items, rv) = sim.store.list(&t.def.rid(), t.namespace.as_deref());
    let mut deleted = Vec::new();
    for obj in items.iter().filter(|o| matches(o)) {
        let key = ObjKey {
            rid: t.def.rid(),
            namespace: meta_str(obj, "namespace").unwrap_or("").to_owned(),
            name: meta_str(obj, "name").unwrap_or("").to_owned(),
        };
        match delete_object(sim, &t.def, &key, propagation, &Value::Null, dry_run(query)) {
            Ok(outcome) => deleted.push(present(&t.def, &t.version, outcome.object().clone())),
            Err(err) if err.code == 404 => {}
            Err(err) => return Err(err),
        }
    }
    Ok(respond(
        StatusCode::OK,
        json!({"kind": format!("{}List", t.def.kind), "apiVersion": t.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}
