//! `/consumers`: the clusters resources are sent to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ApiState;
use super::body::ApiJson;
use super::error::{ApiError, Rename};
use super::flags::Cascade;
use super::list::{ListParams, ListView};
use super::views::{ConsumerCreate, ConsumerPatch, ConsumerView};
use crate::service::NewConsumer;

#[utoipa::path(get, operation_id = "listConsumers", path = "/api/maestro/v1/consumers", tag = "consumers",
    params(("page" = Option<i64>, Query, minimum = 1, description = "from 1"), ("size" = Option<i64>, Query, minimum = 0, description = "0 to the hub's --max-page-size (default 1000); 0 returns only total"), ("search" = Option<String>, Query),
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

#[utoipa::path(post, operation_id = "createConsumer", path = "/api/maestro/v1/consumers", tag = "consumers", request_body = ConsumerCreate,
    responses((status = 201, body = ConsumerView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<ConsumerCreate>,
) -> Result<(StatusCode, Json<ConsumerView>), ApiError> {
    let new = NewConsumer { id: body.id, name: body.name, labels: body.labels.unwrap_or_default() };
    let consumer = state
        .services
        .consumers
        .create(new)
        .await
        .map_err(|e| ApiError::from_service(e, "consumer", &Rename::none()))?;
    Ok((StatusCode::CREATED, Json(consumer.into())))
}

#[utoipa::path(get, operation_id = "getConsumer", path = "/api/maestro/v1/consumers/{id}", tag = "consumers", params(("id" = String, Path, description = "id or name")),
    responses((status = 200, body = ConsumerView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<ConsumerView>, ApiError> {
    Ok(Json(state.store.get_consumer(&id).await?.into()))
}

#[utoipa::path(patch, operation_id = "patchConsumer", path = "/api/maestro/v1/consumers/{id}", tag = "consumers", params(("id" = String, Path, description = "id or name")),
    request_body = ConsumerPatch,
    responses((status = 200, body = ConsumerView), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn patch(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConsumerPatch>,
) -> Result<Json<ConsumerView>, ApiError> {
    let consumer = state
        .services
        .consumers
        .set_labels(&id, body.labels)
        .await
        .map_err(|e| ApiError::from_service(e, "consumer patch", &Rename::none()))?;
    Ok(Json(consumer.into()))
}

#[utoipa::path(delete, operation_id = "deleteConsumer", path = "/api/maestro/v1/consumers/{id}", tag = "consumers",
    params(("id" = String, Path, description = "id or name"),
           ("cascade" = Option<bool>, Query, description = "force-delete the consumer's resource bundles first (they are purged without waiting for the agent); without it a consumer with bundles answers 409")),
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 409, body = super::error::ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Cascade(cascade): Cascade,
) -> Result<StatusCode, ApiError> {
    state.services.delete_consumer(&id, cascade).await?;
    Ok(StatusCode::NO_CONTENT)
}
