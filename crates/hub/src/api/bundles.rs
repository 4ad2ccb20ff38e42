//! `/resource-bundles`: Maestro's list and get, plus the writes Maestro answers with 501.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::ApiState;
use super::body::ApiJson;
use super::error::ApiError;
use super::list::{ListParams, ListView};
use super::views::{BundleView, BundleWrite};
use maestro_model::validate::{Violation, validate_bundle, validate_labels, validate_name};
use maestro_model::{BundleContent, StoredBundle};
use maestro_plugins::bindings::maestro::plugin::types::Operation;
use maestro_store::{BundleScope, NewBundle, Page};

#[utoipa::path(get, path = "/api/maestro/v1/resource-bundles", tag = "resource-bundles",
    params(("page" = Option<i64>, Query), ("size" = Option<i64>, Query), ("search" = Option<String>, Query),
           ("orderBy" = Option<String>, Query), ("fields" = Option<String>, Query)),
    responses((status = 200, body = ListView<BundleView>), (status = 400, body = super::error::ErrorBody)))]
pub async fn list(State(state): State<ApiState>, params: ListParams) -> Result<axum::response::Response, ApiError> {
    let page = state.store.list_bundles(&params.request, BundleScope::All).await?;
    let items = page.items.into_iter().map(BundleView::try_from).collect::<Result<Vec<_>, _>>()?;
    ListView::new("ResourceBundleList", Page { page: page.page, total: page.total, items })
        .into_response(params.fields.as_deref())
}

#[utoipa::path(get, path = "/api/maestro/v1/resource-bundles/{id}", tag = "resource-bundles", params(("id" = String, Path)),
    responses((status = 200, body = BundleView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<BundleView>, ApiError> {
    Ok(Json(state.store.get_bundle(&id).await?.try_into()?))
}

#[utoipa::path(post, path = "/api/maestro/v1/resource-bundles", tag = "resource-bundles", request_body = BundleWrite,
    responses((status = 201, body = BundleView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<BundleWrite>,
) -> Result<(StatusCode, Json<BundleView>), ApiError> {
    let write = Write { id: body.id, name: body.name, consumer_name: body.consumer_name, version: body.version };
    let content = content_of(body.metadata, body.manifests, body.manifest_configs, body.delete_option);
    let stored = create_checked(&state, write, content, &Rename::none(), "resource bundle").await?;
    Ok((StatusCode::CREATED, Json(stored.try_into()?)))
}

#[utoipa::path(put, path = "/api/maestro/v1/resource-bundles/{id}", tag = "resource-bundles", params(("id" = String, Path)),
    request_body = BundleWrite,
    responses((status = 200, body = BundleView), (status = 400, body = super::error::ErrorBody),
              (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn replace(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BundleWrite>,
) -> Result<Json<BundleView>, ApiError> {
    let write = Write { id: body.id, name: body.name, consumer_name: body.consumer_name, version: body.version };
    let content = content_of(body.metadata, body.manifests, body.manifest_configs, body.delete_option);
    let stored = replace_checked(&state, &id, write, content, &Rename::none(), "resource bundle", |_| Ok(())).await?;
    Ok(Json(stored.try_into()?))
}

#[utoipa::path(delete, path = "/api/maestro/v1/resource-bundles/{id}", tag = "resource-bundles", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(State(state): State<ApiState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let bundle = state.store.mark_bundle_deleting(&id).await?;
    tracing::info!(consumer = %bundle.consumer_name, resource_id = %bundle.id, "resource bundle marked deleting");
    Ok(StatusCode::NO_CONTENT)
}

/// The identifying part of a write, shared by the bundle and resource APIs.
pub(super) struct Write {
    pub id: Option<String>,
    pub name: Option<String>,
    pub consumer_name: Option<String>,
    pub version: Option<i64>,
}

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

/// Field names of the bundle model as another API calls them, so a violation names the field
/// the client actually sent (`manifest` rather than `manifests[0]`).
pub(super) struct Rename(pub &'static [(&'static str, &'static str)]);

impl Rename {
    pub const fn none() -> Self {
        Rename(&[])
    }

    fn apply(&self, violations: Vec<Violation>) -> Vec<Violation> {
        violations
            .into_iter()
            .map(|mut v| {
                if let Some((from, to)) = self.0.iter().find(|(from, _)| v.field.starts_with(from)) {
                    v.field = format!("{to}{}", &v.field[from.len()..]);
                }
                v
            })
            .collect()
    }
}

fn check_content(state: &ApiState, content: &BundleContent, violations: &mut Vec<Violation>) {
    if let Some(labels) = content.metadata.get("labels") {
        validate_labels(labels, "metadata.labels", violations);
    }
    violations.extend(validate_bundle(
        &content.manifests,
        &content.manifest_configs,
        content.delete_option.as_ref(),
        &state.limits.manifests,
    ));
}

pub(super) async fn create_checked(
    state: &ApiState,
    write: Write,
    content: BundleContent,
    rename: &Rename,
    what: &str,
) -> Result<StoredBundle, ApiError> {
    let mut violations = Vec::new();
    let id = match write.id {
        Some(id) => match uuid::Uuid::parse_str(&id) {
            Ok(uuid) => uuid.hyphenated().to_string(),
            Err(_) => {
                violations.push(Violation { field: "id".into(), message: format!("id must be a UUID, found {id:?}") });
                id
            }
        },
        None => uuid::Uuid::new_v4().to_string(),
    };
    let name = write.name.unwrap_or_else(|| id.clone());
    validate_name(&name, "name", &mut violations);
    let consumer_name = write.consumer_name.unwrap_or_default();
    if consumer_name.is_empty() {
        violations.push(Violation { field: "consumer_name".into(), message: "consumer_name is required".into() });
    }
    check_content(state, &content, &mut violations);
    if !violations.is_empty() {
        return Err(ApiError::invalid(what, rename.apply(violations)));
    }
    let content = with_plugins(state, &consumer_name, Operation::Create, content, rename, what).await?;
    let new = NewBundle { id, name, consumer_name, content };
    let stored = state.store.create_bundle(&new).await?;
    tracing::info!(consumer = %stored.consumer_name, resource_id = %stored.id, "{what} created");
    Ok(stored)
}

pub(super) async fn replace_checked(
    state: &ApiState,
    id: &str,
    write: Write,
    content: BundleContent,
    rename: &Rename,
    what: &str,
    // Refuses a stored bundle this API cannot show (the resource API: several manifests).
    viewable: fn(&StoredBundle) -> Result<(), ApiError>,
) -> Result<StoredBundle, ApiError> {
    let mut violations = Vec::new();
    let Some(version) = write.version else {
        violations.push(Violation {
            field: "version".into(),
            message: "version is required: send the version you read, so a concurrent change is not overwritten".into(),
        });
        return Err(ApiError::invalid(what, violations));
    };
    let current = state.store.get_bundle(id).await?;
    viewable(&current)?;
    immutable("id", write.id.as_deref(), &current.id, &mut violations);
    immutable("name", write.name.as_deref(), &current.name, &mut violations);
    immutable("consumer_name", write.consumer_name.as_deref(), &current.consumer_name, &mut violations);
    check_content(state, &content, &mut violations);
    if !violations.is_empty() {
        return Err(ApiError::invalid(what, rename.apply(violations)));
    }
    let content = with_plugins(state, &current.consumer_name, Operation::Update, content, rename, what).await?;
    let stored = state.store.replace_bundle(&current, version, &content).await?;
    tracing::info!(consumer = %stored.consumer_name, resource_id = %stored.id, version = stored.version, "{what} replaced");
    Ok(stored)
}

/// The consumer's validator plugins, after the structural checks; a mutated manifest is
/// checked structurally again, like one a client sent.
async fn with_plugins(
    state: &ApiState,
    consumer_name: &str,
    op: Operation,
    mut content: BundleContent,
    rename: &Rename,
    what: &str,
) -> Result<BundleContent, ApiError> {
    let (mut violations, mutated) = super::plugins::run_validators(state, consumer_name, op, &mut content).await?;
    if violations.is_empty() && mutated {
        check_content(state, &content, &mut violations);
    }
    if !violations.is_empty() {
        return Err(ApiError::invalid(what, rename.apply(violations)));
    }
    Ok(content)
}

fn immutable(field: &str, sent: Option<&str>, stored: &str, violations: &mut Vec<Violation>) {
    if let Some(sent) = sent.filter(|sent| *sent != stored) {
        violations.push(Violation {
            field: field.into(),
            message: format!("{field} cannot change from {stored:?} to {sent:?}"),
        });
    }
}
