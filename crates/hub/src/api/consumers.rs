//! `/consumers`: the clusters resources are sent to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::ApiState;
use super::body::ApiJson;
use super::error::ApiError;
use super::list::{ListParams, ListView};
use super::views::{ConsumerCreate, ConsumerPatch, ConsumerView};
use maestro_model::validate::{Violation, validate_labels, validate_name};

#[utoipa::path(get, path = "/api/maestro/v1/consumers", tag = "consumers",
    params(("page" = Option<i64>, Query), ("size" = Option<i64>, Query), ("search" = Option<String>, Query),
           ("orderBy" = Option<String>, Query), ("fields" = Option<String>, Query)),
    responses((status = 200, body = ListView<ConsumerView>), (status = 400, body = super::error::ErrorBody)))]
pub async fn list(State(state): State<ApiState>, params: ListParams) -> Result<axum::response::Response, ApiError> {
    let page = state.store.list_consumers(&params.request).await?;
    let page = maestro_store::Page {
        page: page.page,
        total: page.total,
        items: page.items.into_iter().map(ConsumerView::from).collect(),
    };
    ListView::new("ConsumerList", page).into_response(params.fields.as_deref())
}

#[utoipa::path(post, path = "/api/maestro/v1/consumers", tag = "consumers", request_body = ConsumerCreate,
    responses((status = 201, body = ConsumerView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<ConsumerCreate>,
) -> Result<(StatusCode, Json<ConsumerView>), ApiError> {
    let id = body.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let name = body.name.unwrap_or_else(|| id.clone());
    let labels = body.labels.unwrap_or_default();
    let mut violations = Vec::new();
    check_id(&id, &mut violations);
    validate_name(&name, "name", &mut violations);
    validate_labels(&Value::Object(labels.clone()), "labels", &mut violations);
    if !violations.is_empty() {
        return Err(ApiError::invalid("consumer", violations));
    }
    let consumer = state.store.create_consumer(&id, &name, &labels).await?;
    tracing::info!(consumer = %consumer.name, id = %consumer.id, "consumer created");
    Ok((StatusCode::CREATED, Json(consumer.into())))
}

/// Consumer ids appear in URLs and logs: keep them to a safe alphabet.
fn check_id(id: &str, violations: &mut Vec<Violation>) {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        violations.push(Violation {
            field: "id".into(),
            message: format!("id must be 1 to 64 letters, digits, '-' or '_', found {id:?}"),
        });
    }
}

#[utoipa::path(get, path = "/api/maestro/v1/consumers/{id}", tag = "consumers", params(("id" = String, Path, description = "id or name")),
    responses((status = 200, body = ConsumerView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<ConsumerView>, ApiError> {
    Ok(Json(state.store.get_consumer(&id).await?.into()))
}

#[utoipa::path(patch, path = "/api/maestro/v1/consumers/{id}", tag = "consumers", params(("id" = String, Path, description = "id or name")),
    request_body = ConsumerPatch,
    responses((status = 200, body = ConsumerView), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn patch(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConsumerPatch>,
) -> Result<Json<ConsumerView>, ApiError> {
    let mut violations = Vec::new();
    validate_labels(&Value::Object(body.labels.clone()), "labels", &mut violations);
    if !violations.is_empty() {
        return Err(ApiError::invalid("consumer patch", violations));
    }
    let before = match &state.policy_push {
        Some(_) => Some(state.store.get_consumer(&id).await?.labels),
        None => None,
    };
    let consumer = state.store.set_consumer_labels(&id, &body.labels).await?;
    if let (Some(push), Some(before)) = (&state.policy_push, before) {
        push.labels_changed(&before, &consumer).await;
    }
    Ok(Json(consumer.into()))
}

#[utoipa::path(delete, path = "/api/maestro/v1/consumers/{id}", tag = "consumers", params(("id" = String, Path, description = "id or name")),
    responses((status = 204), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn delete(State(state): State<ApiState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.store.delete_consumer(&id).await?;
    tracing::info!(consumer = %id, "consumer deleted");
    Ok(StatusCode::NO_CONTENT)
}
