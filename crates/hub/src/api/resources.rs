//! `/resources`: the single-manifest API of the original Maestro README, stored as bundles of
//! one manifest so that `/resource-bundles` shows the same objects.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::ApiState;
use super::body::ApiJson;
use super::error::{ApiError, Rename};
use super::flags::Force;
use super::list::{ListParams, ListView};
use super::views::{ResourceView, ResourceWrite};
use maestro_model::StoredBundle;
use maestro_model::resource::ResourceSpec;
use maestro_store::{BundleScope, Page};

use crate::service::{ServiceError, WriteKeys};

/// Bundle-model field paths as this API names them.
const RENAME: Rename = Rename(&[
    ("manifests[0]", "manifest"),
    ("manifests", "manifest"),
    ("manifest_configs[0].updateStrategy", "update_strategy"),
    ("manifest_configs[0].feedbackRules", "feedback_rules"),
]);

#[utoipa::path(get, operation_id = "listResources", path = "/api/maestro/v1/resources", tag = "resources",
    params(("page" = Option<i64>, Query, minimum = 1, description = "from 1"), ("size" = Option<i64>, Query, minimum = 0, description = "0 to the hub's --max-page-size (default 1000); 0 returns only total"), ("search" = Option<String>, Query),
           ("orderBy" = Option<String>, Query), ("fields" = Option<String>, Query)),
    responses((status = 200, body = ListView<ResourceView>), (status = 400, body = super::error::ErrorBody)))]
pub async fn list(State(state): State<ApiState>, params: ListParams) -> Result<axum::response::Response, ApiError> {
    let page = state.store.list_bundles(&params.request, BundleScope::SingleManifest).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for bundle in page.items {
        items.extend(ResourceView::from_bundle(bundle)?);
    }
    ListView::new("ResourceList", Page { page: page.page, total: page.total, items })
        .into_response(params.fields.as_deref())
}

#[utoipa::path(get, operation_id = "getResource", path = "/api/maestro/v1/resources/{id}", tag = "resources", params(("id" = String, Path)),
    responses((status = 200, body = ResourceView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<ResourceView>, ApiError> {
    Ok(Json(view(state.store.get_bundle(&id).await?)?))
}

#[utoipa::path(post, operation_id = "createResource", path = "/api/maestro/v1/resources", tag = "resources", request_body = ResourceWrite,
    responses((status = 201, body = ResourceView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<ResourceWrite>,
) -> Result<(StatusCode, Json<ResourceView>), ApiError> {
    let (keys, spec) = split(body);
    let stored = state.services.bundles.create(keys, spec.into_content()).await.map_err(refused)?;
    Ok((StatusCode::CREATED, Json(view(stored)?)))
}

#[utoipa::path(put, operation_id = "replaceResource", path = "/api/maestro/v1/resources/{id}", tag = "resources", params(("id" = String, Path)), request_body = ResourceWrite,
    responses((status = 200, body = ResourceView), (status = 400, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn replace(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResourceWrite>,
) -> Result<Json<ResourceView>, ApiError> {
    let (keys, spec) = split(body);
    let stored =
        state.services.bundles.replace(&id, keys, spec.into_content(), single_manifest).await.map_err(refused)?;
    Ok(Json(view(stored)?))
}

#[utoipa::path(delete, operation_id = "deleteResource", path = "/api/maestro/v1/resources/{id}", tag = "resources",
    params(("id" = String, Path), ("force" = Option<bool>, Query, description = "purge now without waiting for the agent (a delete event is still sent); for a delete whose agent is gone")),
    responses((status = 204), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Force(force): Force,
) -> Result<StatusCode, ApiError> {
    state.services.bundles.delete_visible(&id, force, single_manifest).await.map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A refusal of the bundle service, as this API words it.
fn refused(err: ServiceError) -> ApiError {
    ApiError::from_service(err, "resource", &RENAME)
}

fn split(body: ResourceWrite) -> (WriteKeys, ResourceSpec) {
    let keys = WriteKeys { id: body.id, name: body.name, consumer_name: body.consumer_name, version: body.version };
    let spec = ResourceSpec {
        manifest: body.manifest,
        update_strategy: body.update_strategy,
        feedback_rules: body.feedback_rules,
        delete_option: body.delete_option,
        metadata: body.metadata.unwrap_or_default(),
    };
    (keys, spec)
}

/// A bundle of several manifests has no single-resource view: say where to find it.
fn single_manifest(bundle: &StoredBundle) -> Result<(), ServiceError> {
    if bundle.manifest_count == 1 {
        return Ok(());
    }
    Err(ServiceError::NotFound(format!(
        "resource '{}' not found: it is a bundle of {} manifests; use /api/maestro/v1/resource-bundles/{}",
        bundle.id, bundle.manifest_count, bundle.id
    )))
}

fn view(bundle: StoredBundle) -> Result<ResourceView, ApiError> {
    single_manifest(&bundle)?;
    ResourceView::from_bundle(bundle)?.ok_or_else(|| ApiError::not_found("resource not found"))
}
