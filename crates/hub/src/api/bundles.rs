//! `/resource-bundles`: Maestro's list and get, and the writes (through the bundle service).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::ApiState;
use super::body::ApiJson;
use super::error::{ApiError, Rename};
use super::flags::Force;
use super::list::{ListParams, ListView};
use super::views::{BundleView, BundleWrite};
use crate::service::{ForceTrigger, ServiceError, WriteKeys};
use maestro_model::BundleContent;
use maestro_store::{BundleScope, Page};

#[utoipa::path(get, operation_id = "listResourceBundles", path = "/api/maestro/v1/resource-bundles", tag = "resource-bundles",
    params(("page" = Option<i64>, Query, minimum = 1, description = "from 1"), ("size" = Option<i64>, Query, minimum = 0, description = "0 to the hub's --max-page-size (default 1000); 0 returns only total"), ("search" = Option<String>, Query),
           ("orderBy" = Option<String>, Query), ("fields" = Option<String>, Query)),
    responses((status = 200, body = ListView<BundleView>), (status = 400, body = super::error::ErrorBody)))]
pub async fn list(State(state): State<ApiState>, params: ListParams) -> Result<axum::response::Response, ApiError> {
    let page = state.store.list_bundles(&params.request, BundleScope::All).await?;
    let items = page.items.into_iter().map(BundleView::try_from).collect::<Result<Vec<_>, _>>()?;
    ListView::new("ResourceBundleList", Page { page: page.page, total: page.total, items })
        .into_response(params.fields.as_deref())
}

#[utoipa::path(get, operation_id = "getResourceBundle", path = "/api/maestro/v1/resource-bundles/{id}", tag = "resource-bundles", params(("id" = String, Path)),
    responses((status = 200, body = BundleView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<BundleView>, ApiError> {
    Ok(Json(state.store.get_bundle(&id).await?.try_into()?))
}

#[utoipa::path(post, operation_id = "createResourceBundle", path = "/api/maestro/v1/resource-bundles", tag = "resource-bundles", request_body = BundleWrite,
    responses((status = 201, body = BundleView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<BundleWrite>,
) -> Result<(StatusCode, Json<BundleView>), ApiError> {
    let keys = WriteKeys { id: body.id, name: body.name, consumer_name: body.consumer_name, version: body.version };
    let content = content_of(body.metadata, body.manifests, body.manifest_configs, body.delete_option);
    let stored = state.services.bundles.create(keys, content).await.map_err(refused)?;
    Ok((StatusCode::CREATED, Json(stored.try_into()?)))
}

#[utoipa::path(put, operation_id = "replaceResourceBundle", path = "/api/maestro/v1/resource-bundles/{id}", tag = "resource-bundles", params(("id" = String, Path)),
    request_body = BundleWrite,
    responses((status = 200, body = BundleView), (status = 400, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn replace(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BundleWrite>,
) -> Result<Json<BundleView>, ApiError> {
    let keys = WriteKeys { id: body.id, name: body.name, consumer_name: body.consumer_name, version: body.version };
    let content = content_of(body.metadata, body.manifests, body.manifest_configs, body.delete_option);
    let stored = state.services.bundles.replace(&id, keys, content, |_| Ok(())).await.map_err(refused)?;
    Ok(Json(stored.try_into()?))
}

#[utoipa::path(delete, operation_id = "deleteResourceBundle", path = "/api/maestro/v1/resource-bundles/{id}", tag = "resource-bundles",
    params(("id" = String, Path), ("force" = Option<bool>, Query, description = "purge now without waiting for the agent (a delete event is still sent); for a delete whose agent is gone")),
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Force(force): Force,
) -> Result<StatusCode, ApiError> {
    // Straight to the store: every bundle is visible here, so no read before the write.
    let bundles = &state.services.bundles;
    if force {
        bundles.force_delete(&id, ForceTrigger::Api).await.map_err(refused)?;
    } else {
        bundles.delete(&id).await.map_err(refused)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A refusal of the bundle service, as this API words it.
fn refused(err: ServiceError) -> ApiError {
    ApiError::from_service(err, "resource bundle", &Rename::none())
}

/// A write's content as the bundle model holds it (absent parts empty).
pub(super) fn content_of(
    metadata: Option<serde_json::Map<String, Value>>,
    manifests: Vec<Value>,
    manifest_configs: Option<Vec<Value>>,
    delete_option: Option<Value>,
) -> BundleContent {
    BundleContent {
        metadata: metadata.unwrap_or_default(),
        manifests,
        manifest_configs: manifest_configs.unwrap_or_default(),
        delete_option,
    }
}
