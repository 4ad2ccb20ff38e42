//! The REST API under `/api/maestro/v1`: where data enters the hub.
//!
//! Handlers validate, then call the [`Store`](maestro_store::Store); they never talk to the
//! transport. What reaches agents is decided by the outbox rows the store writes with each
//! change, so a request that failed can never have been published.

pub mod auth;
pub mod body;
mod bundles;
mod consumers;
pub mod error;
mod flags;
pub mod list;
mod listener;
mod openapi;
mod ops;
mod packages;
mod plugins;
mod resources;
mod schemas;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use error::{ApiError, Code};
use maestro_model::validate;
use maestro_store::Store;

pub const BASE_PATH: &str = "/api/maestro/v1";

/// Bounds on what one request may ask of the hub.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_page_size: i64,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub manifests: validate::Limits,
    /// A delete no agent confirmed for this long is forced (`--stale-delete-after`); never
    /// when `None`.
    pub stale_delete_after: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_page_size: 1000,
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            manifests: validate::Limits::default(),
            stale_delete_after: None,
        }
    }
}

#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<auth::Auth>,
    /// The plugin runtime, when the hub runs with `--plugin-dir` (read here; writes go through
    /// the services).
    pub plugins: Option<Arc<maestro_plugins::PluginRuntime>>,
    /// Every write goes through these; handlers keep only extraction and views.
    pub services: crate::service::Services,
}

pub use listener::ShapedErrors;

pub fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/consumers", get(consumers::list).post(consumers::create))
        .route("/consumers/{id}", get(consumers::get).patch(consumers::patch).delete(consumers::delete))
        .route("/resource-bundles", get(bundles::list).post(bundles::create))
        .route("/resource-bundles/{id}", get(bundles::get).put(bundles::replace).delete(bundles::delete))
        .route("/resources", get(resources::list).post(resources::create))
        .route("/resources/{id}", get(resources::get).put(resources::replace).delete(resources::delete))
        .route("/plugins", get(plugins::list_plugins))
        .route("/plugin-policies", get(plugins::list_policies).post(plugins::create_policy))
        .route(
            "/plugin-policies/{name}",
            get(plugins::get_policy).put(plugins::replace_policy).delete(plugins::delete_policy),
        )
        .route(
            "/operator-packages",
            // The handler bounds the archive itself (refusing from the announced length).
            get(packages::list).post(packages::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/operator-packages/{name}/versions/{version}", get(packages::get).delete(packages::delete))
        .route("/operator-packages/{name}/versions/{version}/archive", get(packages::archive))
        .route("/operator-repository/index.yaml", get(packages::repository_index))
        .route("/operator-repository/{file}", get(packages::repository_archive))
        .route("/openapi", get(openapi::document))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require));
    Router::new()
        .nest(BASE_PATH, api)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(refuse_nul))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::track_http))
        .layer(middleware::from_fn_with_state(state.clone(), operation))
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .with_state(state)
}

/// Gives every request an operation id (the client's `X-Operation-ID`, or a new one), bounds
/// its time, and stamps the id into the response header and into error bodies, so a report
/// from a user can be matched with the hub's log.
async fn operation(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let operation_id = request
        .headers()
        .get("x-operation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", operation_id = %operation_id, method = %request.method(), path = %request.uri().path());
    let limit = state.limits.request_timeout;
    let run = tracing::Instrument::instrument(next.run(request), span);
    let mut response = match tokio::time::timeout(limit, run).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::General,
            format!("the request did not finish within {limit:?}"),
        )
        .into_response(),
    };
    if let Some(error) = response.extensions().get::<ApiError>().cloned() {
        let body = serde_json::to_vec(&error.body(&operation_id)).unwrap_or_default();
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        response = (status, body).into_response();
        *response.headers_mut() = headers;
        response.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
    }
    if let Ok(value) = HeaderValue::from_str(&operation_id) {
        response.headers_mut().insert("x-operation-id", value);
    }
    response
}

/// Refuses a NUL (`%00`) in the path or the query before any handler: no id, name or search
/// can hold one, and PostgreSQL would answer it with an error rather than "not found".
async fn refuse_nul(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let where_ = if uri.path().contains("%00") {
        Some("path")
    } else if uri.query().is_some_and(|q| q.contains("%00")) {
        Some("query")
    } else {
        None
    };
    match where_ {
        Some(part) => ApiError::bad_request(format!(
            "the request's {part} holds a NUL character (%00), which no id, name or search may contain"
        ))
        .into_response(),
        None => next.run(request).await,
    }
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {} {}", request.method(), request.uri().path()))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::BadRequest,
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
}
