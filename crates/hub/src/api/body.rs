//! Request bodies: JSON only, bounded in size, unknown fields refused, and every failure a
//! Maestro error that names the field, never axum's plain-text rejection.
//!
//! Fields the server owns (`kind`, `href`, timestamps, `status`) are accepted and ignored, so a
//! client can send back what it read; anything else unknown is an error, because a typo such
//! as `manifest_config` silently dropped would be applied as something the user did not mean.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, Code};

/// A request type, with the keys a client may echo back from a read.
pub trait RequestBody: DeserializeOwned {
    const WHAT: &'static str;
    const READ_ONLY: &'static [&'static str] = &["kind", "href", "created_at", "updated_at", "deleted_at", "status"];
}

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: RequestBody> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_content_type(&req)?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::MalformedRequest,
                    format!("request body is too large: {rejection}"),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::MalformedRequest,
                    format!("request body could not be read: {rejection}"),
                )
            }
        })?;
        parse::<T>(&bytes).map(ApiJson)
    }
}

fn check_content_type(req: &Request) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else { return Ok(()) };
    let media = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::MalformedRequest,
        format!("Content-Type must be application/json, found {media:?}"),
    ))
}

/// Parses a body into `T`: syntax errors with line and column, type errors with the path.
pub fn parse<T: RequestBody>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::new(StatusCode::BAD_REQUEST, Code::MalformedRequest, format!("request body is not valid JSON: {err}"))
    })?;
    let Value::Object(object) = &mut value else {
        return Err(ApiError::bad_request(format!("request body must be a JSON object describing a {}", T::WHAT)));
    };
    for key in T::READ_ONLY {
        object.remove(*key);
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        ApiError::invalid(T::WHAT, vec![maestro_model::validate::Violation { field, message }])
    })
}
