//! Writes: create, replace (PUT), patch (JSON, merge, strategic) and server-side apply, on the
//! main resource and the status subresource; a CRD write updates what the server serves.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use crate::ClusterState;
use crate::apply::{self, ApplyRequest};
use crate::discovery::{CRD_RID, Registry};
use crate::status::ApiError;
use crate::store::{Change, Entry, Outcome, meta, meta_str, resource_version};
use crate::target::{Target, present};

use super::admit::{
    check_crd, check_namespace_accepts, check_type, defaults, dry_run, field_manager, new_name, sanitize,
    set_namespace, validate_name,
};
use super::{Request, respond};

pub(super) fn created_or_ok(outcome: &Outcome) -> StatusCode {
    if matches!(outcome, Outcome::Created(_)) { StatusCode::CREATED } else { StatusCode::OK }
}

/// After a CRD write, the registry follows: its resource is served (or updated) at once.
pub(super) fn after_write(sim: &ClusterState, t: &Target, outcome: &Outcome, dry: bool) {
    if dry || t.def.rid() != CRD_RID {
        return;
    }
    if let Outcome::Created(obj) | Outcome::Updated(obj) = outcome
        && let Ok(def) = Registry::parse_crd(obj)
        && let Err(err) = sim.registry_mut().register(def)
    {
        tracing::warn!(error = %err, "CRD not registered");
    }
}

pub(super) fn create(
    sim: &ClusterState,
    t: &Target,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let mut obj = req.body()?;
    check_type(t, &obj)?;
    set_namespace(t, &mut obj)?;
    if sanitize(&mut obj).is_some() {
        return Err(ApiError::invalid(
            "metadata.resourceVersion: Invalid value: resourceVersion should not be set on objects to be created",
        ));
    }
    let name = new_name(t, &mut obj)?;
    validate_name(t, &name)?;
    if t.def.status
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    defaults(&t.def, &mut obj);
    check_namespace_accepts(sim, t)?;
    check_crd(sim, t, &obj)?;
    let manager = field_manager(query, req)?;
    let managers = apply::track_update(None, &[], &obj, &manager, &t.api_version(), t.scope());
    let def = t.def.clone();
    let dry = dry_run(query);
    let outcome = sim.store.write(&t.key(&name), dry, |cur| match cur {
        Some(_) => Err(ApiError::already_exists(&def, &name)),
        None => Ok(Change::Put(Entry { obj, managers })),
    })?;
    after_write(sim, t, &outcome, dry);
    Ok(respond(StatusCode::CREATED, present(&t.def, &t.version, outcome.object().clone())))
}

/// The new object a write proposes, fitted to the request's scope: the main resource keeps the
/// stored status when the type has a status subresource; the status subresource changes only
/// the status.
pub(super) fn fit_scope(t: &Target, cur: &Value, mut proposed: Value) -> Value {
    let status = if t.status { proposed.get("status").cloned() } else { cur.get("status").cloned() };
    if t.status {
        proposed = cur.clone();
    } else if !t.def.status {
        return proposed;
    }
    if let Some(map) = proposed.as_object_mut() {
        match status {
            Some(s) => map.insert("status".into(), s),
            None => map.remove("status"),
        };
    }
    proposed
}

/// An update computed from the stored entry by `change`, with the resourceVersion
/// precondition, scope, validation and field tracking every update shares.
pub(super) fn update_with(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
    change: impl FnOnce(&Entry) -> Result<Value, ApiError>,
) -> Result<Outcome, ApiError> {
    let manager = field_manager(query, req)?;
    let dry = dry_run(query);
    let outcome = sim.store.write(&t.key(name), dry, |cur| {
        let cur = cur.ok_or_else(|| ApiError::not_found(&t.def, name))?;
        let mut proposed = change(cur)?;
        check_type(t, &proposed)?;
        if let Some(rv) = sanitize(&mut proposed)
            && rv != resource_version(&cur.obj).to_string()
        {
            return Err(ApiError::stale(&t.def, name));
        }
        let mut proposed = fit_scope(t, &cur.obj, proposed);
        if !t.status {
            defaults(&t.def, &mut proposed);
        }
        check_crd(sim, t, &proposed)?;
        let managers =
            apply::track_update(Some(&cur.obj), &cur.managers, &proposed, &manager, &t.api_version(), t.scope());
        Ok(Change::Put(Entry { obj: proposed, managers }))
    })?;
    after_write(sim, t, &outcome, dry);
    Ok(outcome)
}

pub(super) fn replace(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let mut obj = req.body()?;
    check_type(t, &obj)?;
    let body_name = meta_str(&obj, "name").unwrap_or("");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    set_namespace(t, &mut obj)?;
    let outcome = update_with(sim, t, name, query, req, |_| Ok(obj))?;
    Ok(respond(StatusCode::OK, present(&t.def, &t.version, outcome.object().clone())))
}

pub(super) fn patch(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let media = req.media_type().to_owned();
    if media == "application/apply-patch+yaml" {
        return server_side_apply(sim, t, name, query, req);
    }
    let patch: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("the body of the request could not be decoded: {e}")))?;
    let version = t.version.clone();
    let def = t.def.clone();
    let outcome = update_with(sim, t, name, query, req, |cur| {
        let mut obj = present(&def, &version, cur.obj.clone());
        match media.as_str() {
            "application/merge-patch+json" => apply::merge_patch(&mut obj, &patch),
            "application/strategic-merge-patch+json" => apply::strategic_merge_patch(&mut obj, &patch),
            "application/json-patch+json" => {
                apply::json_patch(&mut obj, &patch).map_err(|e| ApiError::invalid_object(&def, name, e))?
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        Ok(obj)
    })?;
    Ok(respond(StatusCode::OK, present(&t.def, &t.version, outcome.object().clone())))
}

pub(super) fn server_side_apply(
    sim: &ClusterState,
    t: &Target,
    name: &str,
    query: &HashMap<String, String>,
    req: &Request,
) -> Result<Response, ApiError> {
    let manager = query.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::invalid(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        )
    })?;
    let force = query.get("force").is_some_and(|f| f == "true");
    let mut applied = req.body()?;
    check_type(t, &applied)?;
    let applied_name = meta_str(&applied, "name").unwrap_or("");
    if applied_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({applied_name}) does not match the name on the URL ({name})"
        )));
    }
    set_namespace(t, &mut applied)?;
    let expected_rv = sanitize(&mut applied);
    applied = scoped_config(t, applied);
    let exists = sim.store.exists(&t.key(name));
    if !exists {
        check_namespace_accepts(sim, t)?;
        check_crd(sim, t, &applied)?;
    }
    let request = ApplyRequest { manager, force, api_version: &t.api_version(), scope: t.scope() };
    let dry = dry_run(query);
    let outcome = sim.store.write(&t.key(name), dry, |cur| {
        if let (Some(rv), Some(cur)) = (&expected_rv, cur)
            && *rv != resource_version(&cur.obj).to_string()
        {
            return Err(ApiError::stale(&t.def, name));
        }
        if cur.is_none() && t.status {
            return Err(ApiError::not_found(&t.def, name));
        }
        let (mut obj, managers) = apply::apply(cur.map(|c| (&c.obj, c.managers.as_slice())), &applied, &request)?;
        if !t.status {
            defaults(&t.def, &mut obj);
        }
        if cur.is_some() {
            check_crd(sim, t, &obj)?;
        }
        Ok(Change::Put(Entry { obj, managers }))
    })?;
    after_write(sim, t, &outcome, dry);
    Ok(respond(created_or_ok(&outcome), present(&t.def, &t.version, outcome.object().clone())))
}

/// The part of an applied configuration the request may set (see [`fit_scope`]).
pub(super) fn scoped_config(t: &Target, mut applied: Value) -> Value {
    let Some(map) = applied.as_object_mut() else { return applied };
    if t.status {
        let identity: Map<String, Value> = meta(&Value::Object(map.clone()))
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| matches!(k.as_str(), "name" | "namespace"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "status"));
        map.insert("metadata".into(), Value::Object(identity));
    } else if t.def.status {
        map.remove("status");
    }
    applied
}
