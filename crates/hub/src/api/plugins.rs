//! `/plugins` (what the plugin directory holds and in which state) and `/plugin-policies`
//! (CRUD of the policies stored in the database, through the policy service).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ApiState;
use super::body::{ApiJson, RequestBody};
use super::error::{ApiError, Rename};
use crate::service::ServiceError;
use maestro_model::policy::PolicySpec;
use maestro_plugins::registry::PluginInfo;
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

#[utoipa::path(get, operation_id = "listPlugins", path = "/api/maestro/v1/plugins", tag = "plugins", responses((status = 200, body = PluginList)))]
pub async fn list_plugins(State(state): State<ApiState>) -> Json<PluginList> {
    let items = state.plugins.as_ref().map(|p| p.plugins()).unwrap_or_default();
    Json(PluginList { kind: "PluginList", total: items.len(), items })
}

#[utoipa::path(get, operation_id = "listPluginPolicies", path = "/api/maestro/v1/plugin-policies", tag = "plugins", responses((status = 200, body = PolicyList)))]
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

#[utoipa::path(get, operation_id = "getPluginPolicy", path = "/api/maestro/v1/plugin-policies/{name}", tag = "plugins", params(("name" = String, Path)),
    responses((status = 200, body = PolicyView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get_policy(State(state): State<ApiState>, Path(name): Path<String>) -> Result<Json<PolicyView>, ApiError> {
    Ok(Json(state.store.get_plugin_policy(&name).await?.into()))
}

#[utoipa::path(post, operation_id = "createPluginPolicy", path = "/api/maestro/v1/plugin-policies", tag = "plugins", request_body = PolicySpec,
    responses((status = 201, body = PolicyView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create_policy(
    State(state): State<ApiState>,
    ApiJson(spec): ApiJson<PolicySpec>,
) -> Result<(StatusCode, Json<PolicyView>), ApiError> {
    let stored = state.services.policies.create(&spec).await.map_err(refused)?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

#[utoipa::path(put, operation_id = "replacePluginPolicy", path = "/api/maestro/v1/plugin-policies/{name}", tag = "plugins", params(("name" = String, Path)), request_body = PolicySpec,
    responses((status = 200, body = PolicyView), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn replace_policy(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    ApiJson(spec): ApiJson<PolicySpec>,
) -> Result<Json<PolicyView>, ApiError> {
    let stored = state.services.policies.replace(&name, &spec).await.map_err(refused)?;
    Ok(Json(stored.into()))
}

#[utoipa::path(delete, operation_id = "deletePluginPolicy", path = "/api/maestro/v1/plugin-policies/{name}", tag = "plugins", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete_policy(State(state): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.services.policies.delete(&name).await.map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A refusal of the policy service, as this API words it.
fn refused(err: ServiceError) -> ApiError {
    ApiError::from_service(err, "plugin policy", &Rename::none())
}
