//! `/operator-packages`: the hub's operator package repository (upload a verified `.tgz`,
//! list, show, download, delete), and `/operator-repository`: the same versions in KUDO's
//! repository layout (`index.yaml` and the archives), for `kubectl kudo repo add`.
//!
//! A version is named in paths as its archive name says it: `<appVersion>_<operatorVersion>`,
//! or `<operatorVersion>` for a package without an app version.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maestro_package::index::{Entry, IndexFile};
use maestro_store::packages::StoredPackage;
use serde::Serialize;
use serde_json::Value;

use super::error::{ApiError, Code, Rename};
use super::{ApiState, BASE_PATH};
use crate::service::ServiceError;

/// Media types an archive may be sent as.
const ARCHIVE_TYPES: &[&str] =
    &["application/gzip", "application/x-gzip", "application/octet-stream", "application/x-tar"];

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PackageView {
    kind: &'static str,
    name: String,
    /// `<appVersion>_<operatorVersion>` (or `<operatorVersion>`): how paths name this version.
    version: String,
    app_version: String,
    operator_version: String,
    description: String,
    archive_name: String,
    /// Hex SHA-256 of the archive.
    digest: String,
    size: i64,
    created_at: DateTime<Utc>,
    href: String,
    archive_href: String,
    /// Parameters, plans, maintainers and verify's warnings.
    #[schema(value_type = Object)]
    summary: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PackageList {
    kind: &'static str,
    total: usize,
    items: Vec<PackageView>,
}

/// A package archive's bytes (the schema of request and download bodies).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ArchiveBytes(#[allow(dead_code)] Vec<u8>);

/// KUDO's `index.yaml`, as served (the schema of the document; the hub writes it from
/// `maestro_package::index::IndexFile`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryIndex {
    api_version: String,
    /// Per operator name, its versions newest first.
    #[schema(value_type = Object)]
    entries: Value,
    generated: String,
}

fn version_of(app: &str, operator: &str) -> String {
    if app.is_empty() { operator.to_string() } else { format!("{app}_{operator}") }
}

/// `(app version, operator version)` of a path's version.
fn split_version(version: &str) -> (&str, &str) {
    version.rsplit_once('_').unwrap_or(("", version))
}

impl From<StoredPackage> for PackageView {
    fn from(p: StoredPackage) -> Self {
        let version = version_of(&p.app_version, &p.operator_version);
        let href = format!("{BASE_PATH}/operator-packages/{}/versions/{version}", p.name);
        PackageView {
            kind: "OperatorPackage",
            archive_href: format!("{href}/archive"),
            href,
            version,
            name: p.name,
            app_version: p.app_version,
            operator_version: p.operator_version,
            description: p.description,
            archive_name: p.archive_name,
            digest: p.digest,
            size: p.size,
            created_at: p.created_at,
            summary: p.summary,
        }
    }
}

fn refused(err: ServiceError) -> ApiError {
    ApiError::from_service(err, "operator package", &Rename::none())
}

#[utoipa::path(post, operation_id = "uploadOperatorPackage", path = "/api/maestro/v1/operator-packages", tag = "operator-packages",
    request_body(content = ArchiveBytes, content_type = "application/octet-stream", description = "A package archive (`maestro package create`), sent as application/octet-stream or application/gzip"),
    responses((status = 201, body = PackageView), (status = 400, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn upload(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<PackageView>), ApiError> {
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if !ARCHIVE_TYPES.contains(&media.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::MalformedRequest,
            format!("an operator package is a .tgz sent as application/gzip, not {media:?}"),
        ));
    }
    let body = read_archive(&headers, body, state.services.packages.max_archive_bytes()).await?;
    let stored = state.services.packages.upload(body.to_vec()).await.map_err(refused)?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

#[utoipa::path(get, operation_id = "listOperatorPackages", path = "/api/maestro/v1/operator-packages", tag = "operator-packages",
    responses((status = 200, body = PackageList)))]
pub async fn list(State(state): State<ApiState>) -> Result<Json<PackageList>, ApiError> {
    let items: Vec<PackageView> = state.store.list_packages().await?.into_iter().map(PackageView::from).collect();
    Ok(Json(PackageList { kind: "OperatorPackageList", total: items.len(), items }))
}

#[utoipa::path(get, operation_id = "getOperatorPackage", path = "/api/maestro/v1/operator-packages/{name}/versions/{version}", tag = "operator-packages",
    params(("name" = String, Path), ("version" = String, Path, description = "`<appVersion>_<operatorVersion>` or `<operatorVersion>`")),
    responses((status = 200, body = PackageView), (status = 404, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<PackageView>, ApiError> {
    let (app, operator) = split_version(&version);
    Ok(Json(state.store.get_package(&name, app, operator).await?.into()))
}

#[utoipa::path(get, operation_id = "downloadOperatorPackage", path = "/api/maestro/v1/operator-packages/{name}/versions/{version}/archive", tag = "operator-packages",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, content_type = "application/gzip", body = ArchiveBytes), (status = 404, body = super::error::ErrorBody)))]
pub async fn archive(
    State(state): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (app, operator) = split_version(&version);
    let stored = state.store.get_package(&name, app, operator).await?;
    let bytes = state.store.package_archive(&stored.archive_name).await?;
    Ok(archive_response(&stored.archive_name, bytes))
}

/// The body, refused as 413 from its announced length before any of it is read, or once it
/// passes `limit`.
async fn read_archive(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::MalformedRequest,
            format!("an operator package archive is at most {limit} bytes"),
        )
    };
    let announced =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|_| too_large())
}

fn archive_response(file: &str, bytes: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{file}\"");
    ([(header::CONTENT_TYPE, "application/gzip".to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response()
}

#[utoipa::path(delete, operation_id = "deleteOperatorPackage", path = "/api/maestro/v1/operator-packages/{name}/versions/{version}", tag = "operator-packages",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)))]
pub async fn delete(
    State(state): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (app, operator) = split_version(&version);
    state.services.packages.delete(&name, app, operator).await.map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, operation_id = "operatorRepositoryIndex", path = "/api/maestro/v1/operator-repository/index.yaml", tag = "operator-packages",
    responses((status = 200, content_type = "application/yaml", body = RepositoryIndex)))]
pub async fn repository_index(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let base = format!("{}{BASE_PATH}/operator-repository", origin(&headers));
    let stored = state.store.list_packages().await?;
    let mut index = IndexFile::new(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    for p in stored {
        let maintainers = serde_json::from_value(p.summary["maintainers"].clone()).unwrap_or_default();
        let entry = Entry {
            urls: vec![format!("{base}/{}", p.archive_name)],
            name: p.name,
            operator_version: p.operator_version,
            app_version: p.app_version,
            description: p.description,
            maintainers,
            digest: p.digest,
            removed: false,
        };
        index.add(entry, true);
    }
    Ok(([(header::CONTENT_TYPE, "application/yaml")], index.to_yaml()).into_response())
}

#[utoipa::path(get, operation_id = "operatorRepositoryArchive", path = "/api/maestro/v1/operator-repository/{file}", tag = "operator-packages",
    params(("file" = String, Path, description = "An archive name from index.yaml")),
    responses((status = 200, content_type = "application/gzip", body = ArchiveBytes), (status = 404, body = super::error::ErrorBody)))]
pub async fn repository_archive(State(state): State<ApiState>, Path(file): Path<String>) -> Result<Response, ApiError> {
    let bytes = state.store.package_archive(&file).await?;
    Ok(archive_response(&file, bytes))
}

/// `scheme://host` as the client reached the hub (behind a proxy: `X-Forwarded-Proto`), so
/// index URLs work for whoever read the index.
fn origin(headers: &HeaderMap) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    let host = text("host").unwrap_or("localhost");
    let scheme = text("x-forwarded-proto").filter(|p| matches!(*p, "http" | "https")).unwrap_or("http");
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_paths_split_at_the_last_underscore() {
        assert_eq!(split_version("3.6.2_0.3.3"), ("3.6.2", "0.3.3"));
        assert_eq!(split_version("0.1.0"), ("", "0.1.0"));
        assert_eq!(version_of("3.6.2", "0.3.3"), "3.6.2_0.3.3");
    }
}
