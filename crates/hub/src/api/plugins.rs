//! `/plugins` (what the plugin directory holds and in which state) and `/plugin-policies`
//! (CRUD of the policies stored in the database), plus the validator step of bundle and
//! resource writes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ApiState;
use super::body::{ApiJson, RequestBody};
use super::error::ApiError;
use maestro_model::BundleContent;
use maestro_model::validate::Violation;
use maestro_plugins::bindings::maestro::plugin::types::Operation;
use maestro_plugins::policy::PolicySpec;
use maestro_plugins::registry::PluginInfo;
use maestro_plugins::{PluginRuntime, Subject, World};
use maestro_store::StoredPolicy;

impl RequestBody for PolicySpec {
    const WHAT: &'static str = "plugin policy";
    const READ_ONLY: &'static [&'static str] = &["kind", "source", "created_at", "updated_at"];
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginList {
    kind: &'static str,
    total: usize,
    items: Vec<PluginInfo>,
}

/// A policy as the API shows it: its spec, where it comes from, and when it changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    kind: &'static str,
    #[serde(flatten)]
    spec: PolicySpec,
    /// `api` (stored in the database, managed here) or `file` (`policies.toml`, read-only here).
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<DateTime<Utc>>,
}

impl From<StoredPolicy> for PolicyView {
    fn from(stored: StoredPolicy) -> Self {
        PolicyView {
            kind: "PluginPolicy",
            spec: stored.spec,
            source: "api",
            created_at: Some(stored.created_at),
            updated_at: Some(stored.updated_at),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyList {
    kind: &'static str,
    total: usize,
    items: Vec<PolicyView>,
}

#[utoipa::path(get, path = "/api/maestro/v1/plugins", tag = "plugins", responses((status = 200, body = PluginList)))]
pub async fn list_plugins(State(state): State<ApiState>) -> Json<PluginList> {
    let items = state.plugins.as_ref().map(|p| p.plugins()).unwrap_or_default();
    Json(PluginList { kind: "PluginList", total: items.len(), items })
}

#[utoipa::path(get, path = "/api/maestro/v1/plugin-policies", tag = "plugins", responses((status = 200, body = PolicyList)))]
pub async fn list_policies(State(state): State<ApiState>) -> Result<Json<PolicyList>, ApiError> {
    let mut items: Vec<PolicyView> = state.store.list_plugin_policies().await?.into_iter().map(Into::into).collect();
    if let Some(runtime) = &state.plugins {
        items.extend(runtime.file_policies().iter().map(|spec| PolicyView {
            kind: "PluginPolicy",
            spec: spec.clone(),
            source: "file",
            created_at: None,
            updated_at: None,
        }));
    }
    Ok(Json(PolicyList { kind: "PluginPolicyList", total: items.len(), items }))
}

#[utoipa::path(get, path = "/api/maestro/v1/plugin-policies/{name}", tag = "plugins", params(("name" = String, Path)),
    responses((status = 200, body = PolicyView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_policy(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(state.store.get_plugin_policy(&name).await?.into()))
}

#[utoipa::path(post, path = "/api/maestro/v1/plugin-policies", tag = "plugins", request_body = PolicySpec,
    responses((status = 201, body = PolicyView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_policy(
    State(state): State<ApiState>,
    ApiJson(spec): ApiJson<PolicySpec>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    let runtime = checked(&state, &spec).await?;
    let stored = state.store.create_plugin_policy(&spec).await?;
    refresh(&state, &runtime).await?;
    tell_agents(&state, None, Some(&spec)).await;
    tracing::info!(policy = %spec.name, "plugin policy created");
    Ok((StatusCode::CREATED, Json(stored.into())))
}

#[utoipa::path(put, path = "/api/maestro/v1/plugin-policies/{name}", tag = "plugins", params(("name" = String, Path)), request_body = PolicySpec,
    responses((status = 200, body = PolicyView), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn replace_policy(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    ApiJson(spec): ApiJson<PolicySpec>,
) -> Result<Json<PolicyView>, ApiError> {
    if spec.name != name {
        let message = format!("name cannot change from {name:?} to {:?}", spec.name);
        return Err(ApiError::invalid("plugin policy", vec![Violation { field: "name".into(), message }]));
    }
    let runtime = checked(&state, &spec).await?;
    let before = state.store.get_plugin_policy(&name).await.ok().map(|p| p.spec);
    let stored = state.store.replace_plugin_policy(&spec).await?;
    refresh(&state, &runtime).await?;
    tell_agents(&state, before.as_ref(), Some(&spec)).await;
    tracing::info!(policy = %spec.name, "plugin policy replaced");
    Ok(Json(stored.into()))
}

#[utoipa::path(delete, path = "/api/maestro/v1/plugin-policies/{name}", tag = "plugins", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_policy(State(state): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let before = state.store.get_plugin_policy(&name).await?.spec;
    state.store.delete_plugin_policy(&name).await?;
    if let Some(runtime) = &state.plugins {
        refresh(&state, runtime).await?;
    }
    tell_agents(&state, Some(&before), None).await;
    tracing::info!(policy = %name, "plugin policy deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The runtime, once `spec` is known to be storable: plugins present, of the right world,
/// matching their pins, and accepting their settings.
async fn checked(state: &ApiState, spec: &PolicySpec) -> Result<Arc<PluginRuntime>, ApiError> {
    let Some(runtime) = state.plugins.clone() else {
        return Err(ApiError::bad_request("plugins are off on this hub: start it with --plugin-dir"));
    };
    let problems = runtime.check_policy(spec.clone()).await;
    if !problems.is_empty() {
        let details = problems.into_iter().map(|(field, message)| Violation { field, message }).collect();
        return Err(ApiError::invalid("plugin policy", details));
    }
    Ok(runtime)
}

/// Puts the stored policies in force, right after a change.
async fn refresh(state: &ApiState, runtime: &PluginRuntime) -> Result<(), ApiError> {
    let policies = state.store.list_plugin_policies().await?;
    runtime.set_stored_policies(policies.into_iter().map(|p| p.spec).collect());
    Ok(())
}

/// Sends the consumers the policy concerns (before or after the change) their new lists. The
/// policy is stored by now: a failure here is logged and counted, never the request's.
async fn tell_agents(state: &ApiState, before: Option<&PolicySpec>, after: Option<&PolicySpec>) {
    if let Some(push) = &state.policy_push {
        push.policy_changed(before, after).await;
    }
}

/// Runs the consumer's validators over a write's manifests: a denial (or a fail-closed
/// failure) refuses the write with every violation; a mutation replaces the manifests, which
/// are then checked structurally again by the caller.
pub(super) async fn run_validators(
    state: &ApiState,
    consumer_name: &str,
    op: Operation,
    content: &mut BundleContent,
) -> Result<(Vec<Violation>, bool), ApiError> {
    let Some(runtime) = &state.plugins else { return Ok((Vec::new(), false)) };
    if !runtime.has_point(World::Validator) {
        return Ok((Vec::new(), false));
    }
    let subject = match state.store.get_consumer(consumer_name).await {
        Ok(consumer) => Subject::consumer(&consumer.name, &consumer.labels),
        // The store refuses an unknown consumer with its own message right after.
        Err(maestro_store::StoreError::NotFound(_)) => Subject::consumer(consumer_name, &Default::default()),
        Err(err) => return Err(err.into()),
    };
    let outcome = runtime.validate(subject, op, std::mem::take(&mut content.manifests)).await;
    content.manifests = outcome.manifests;
    Ok((outcome.violations, outcome.mutated))
}
