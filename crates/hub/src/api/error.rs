//! Errors as Maestro's API reports them: `{kind: "Error", id, href, code, reason, operation_id}`,
//! with the numeric codes of Maestro's error catalogue, so existing clients parse ours.
//! Validation errors add `details` (one entry per field) and conflicts `current_version`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use maestro_model::validate::Violation;
use maestro_store::StoreError;

use crate::service::ServiceError;

/// Maestro's error codes (its `ServiceErrorCode`), which clients switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Forbidden = 4,
    Conflict = 6,
    NotFound = 7,
    Validation = 8,
    General = 9,
    NotImplemented = 10,
    Unauthenticated = 15,
    MalformedRequest = 17,
    BadRequest = 21,
    FailedToParseSearch = 23,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub reason: String,
    pub details: Vec<Violation>,
    pub current_version: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, reason: impl Into<String>) -> Self {
        ApiError { status, code, reason: reason.into(), details: Vec::new(), current_version: None }
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::BadRequest, reason)
    }

    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, reason)
    }

    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Code::Conflict, reason)
    }

    pub fn unauthenticated(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, Code::Unauthenticated, reason)
    }

    /// A 400 listing every violation; the reason names the first so a person sees it at once.
    pub fn invalid(what: &str, details: Vec<Violation>) -> Self {
        let reason = match details.as_slice() {
            [] => format!("invalid {what}"),
            [only] => format!("invalid {what}: {}: {}", only.field, only.message),
            [first, rest @ ..] => {
                format!("invalid {what}: {}: {} (and {} more in details)", first.field, first.message, rest.len())
            }
        };
        ApiError { details, ..Self::new(StatusCode::BAD_REQUEST, Code::Validation, reason) }
    }

    /// The body as sent, once the operation id of the request is known.
    pub fn body(&self, operation_id: &str) -> ErrorBody<'_> {
        let id = (self.code as u32).to_string();
        ErrorBody {
            kind: "Error",
            href: format!("/api/maestro/v1/errors/{id}"),
            code: format!("maestro-{id}"),
            id,
            reason: &self.reason,
            operation_id: operation_id.to_string(),
            details: &self.details,
            current_version: self.current_version,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    pub kind: &'static str,
    pub id: String,
    pub href: String,
    pub code: String,
    pub reason: &'a str,
    pub operation_id: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub details: &'a [Violation],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

impl IntoResponse for ApiError {
    /// The operation id is added by the `operation` middleware, which finds the error in the
    /// response extensions; rendered here without one for responses that bypass it.
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body("")).unwrap_or_default();
        let mut response =
            (self.status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict { message, current_version } => {
                ApiError { current_version, ..ApiError::conflict(message) }
            }
            StoreError::Invalid { field, message } => ApiError::invalid("request", vec![Violation { field, message }]),
            StoreError::Query { parameter, source } => {
                ApiError::new(StatusCode::BAD_REQUEST, Code::FailedToParseSearch, format!("{parameter} {source}"))
            }
            StoreError::Timeout(limit) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::General,
                format!("the database did not answer within {limit:?}; try again"),
            ),
            other => {
                // The detail goes to the log, not to the client: it may name tables or hosts.
                tracing::error!(error = %other, "store failure");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::General, "internal error; see the hub's log")
            }
        }
    }
}

impl ApiError {
    /// A service's refusal as this API reports it: `what` names the object in the reason
    /// ("resource bundle", "resource", ...), and `rename` turns the model's field paths into
    /// the ones the client sent.
    pub fn from_service(err: ServiceError, what: &str, rename: &Rename) -> Self {
        match err {
            ServiceError::Invalid(violations) => ApiError::invalid(what, rename.apply(violations)),
            ServiceError::NotFound(reason) => ApiError::not_found(reason),
            ServiceError::PluginsOff => ApiError::bad_request(err.to_string()),
            ServiceError::Store(err) => err.into(),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        ApiError::from_service(err, "request", &Rename::none())
    }
}

/// Field names of the bundle model as another API calls them, so a violation names the field
/// the client actually sent (`manifest` rather than `manifests[0]`).
pub struct Rename(pub &'static [(&'static str, &'static str)]);

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
