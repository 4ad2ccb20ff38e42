//! Reads: one object (as JSON or as a Table), and lists with selectors and paging.

use std::collections::HashMap;

use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::ClusterState;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::meta_str;
use crate::table;
use crate::target::{Target, present};

use super::{Request, respond};

pub(super) fn get_one(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let obj =
        present(&t.def, &t.version, sim.store.get(&t.key(name)).ok_or_else(|| ApiError::not_found(&t.def, name))?);
    if table::wanted(req.header(header::ACCEPT)) {
        let list_meta = json!({"resourceVersion": meta_str(&obj, "resourceVersion").unwrap_or("")});
        return Ok(respond(StatusCode::OK, table::render(&t.def, &[obj], list_meta, full_rows(query))));
    }
    Ok(respond(StatusCode::OK, obj))
}

pub(super) fn full_rows(query: &HashMap<String, String>) -> bool {
    query.get("includeObject").is_some_and(|i| i == "Object")
}

pub(super) fn selected(t: &Target, query: &HashMap<String, String>) -> Result<impl Fn(&Value) -> bool, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
    let _ = t;
    Ok(move |obj: &Value| labels.matches(obj) && fields.matches(obj))
}

/// A continue token: where the previous page ended and the resourceVersion of the first page.
pub(super) fn continue_token(rv: u64, namespace: &str, name: &str) -> String {
    hex::encode(json!({"rv": rv, "ns": namespace, "name": name}).to_string())
}

pub(super) fn parse_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid: the token was not issued by this server");
    let bytes = hex::decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let text = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_owned).ok_or_else(bad);
    Ok((v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?, text("ns")?, text("name")?))
}

pub(super) fn list(
    sim: &ClusterState,
    t: &Target,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let matches = selected(t, query)?;
    let (items, current_rv) = sim.store.list(&t.def.rid(), t.namespace.as_deref());
    let mut items: Vec<Value> = items.into_iter().filter(|o| matches(o)).collect();
    let mut rv = current_rv;
    if let Some(token) = query.get("continue").filter(|c| !c.is_empty()) {
        let (first_rv, ns, name) = parse_continue(token)?;
        rv = first_rv;
        let after = |o: &Value| {
            (meta_str(o, "namespace").unwrap_or(""), meta_str(o, "name").unwrap_or("")) > (ns.as_str(), name.as_str())
        };
        items.retain(after);
    }
    let limit = match query.get("limit") {
        Some(l) => l.parse::<usize>().map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 0,
    };
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = items.last().cloned().unwrap_or_default();
        metadata["continue"] = json!(continue_token(
            rv,
            meta_str(&last, "namespace").unwrap_or(""),
            meta_str(&last, "name").unwrap_or("")
        ));
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = items.into_iter().map(|o| present(&t.def, &t.version, o)).collect();
    if table::wanted(req.header(header::ACCEPT)) {
        return Ok(respond(StatusCode::OK, table::render(&t.def, &items, metadata, full_rows(query))));
    }
    Ok(respond(
        StatusCode::OK,
        json!({"kind": format!("{}List", t.def.kind), "apiVersion": t.api_version(), "metadata": metadata, "items": items}),
    ))
}
