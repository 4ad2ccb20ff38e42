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
    if let Some(field) = nul_field(&value, "") {
        let message = "contains a NUL character (\\u0000), which no stored text may hold".to_string();
        return Err(ApiError::invalid(T::WHAT, vec![maestro_model::validate::Violation { field, message }]));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        ApiError::invalid(T::WHAT, vec![maestro_model::validate::Violation { field, message }])
    })
}

/// The path of the first key or string holding a NUL (PostgreSQL cannot store one in text or
/// `jsonb`; SQLite could, so refusing it here keeps both databases alike).
fn nul_field(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(|| path.to_string()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| nul_field(item, &format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            if key.contains('\0') { Some(here) } else { nul_field(item, &here) }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_anywhere_in_a_body_is_found_with_its_path() {
        assert_eq!(nul_field(&json!({"a": {"b": ["x", "y\u{0}"]}}), ""), Some("a.b[1]".into()));
        assert_eq!(nul_field(&json!({"k\u{0}": 1}), ""), Some("k\u{0}".into()));
        assert_eq!(nul_field(&json!({"a": "\\u0000 is only text"}), ""), None);
    }
}
