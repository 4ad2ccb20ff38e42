//! Boolean query flags of deletes: `?force=true` on bundles and resources, `?cascade=true` on
//! consumers. Like list parameters, an unknown parameter or a value other than `true`/`false`
//! is refused, so a misspelt `?forse=true` never deletes the slow way while the caller waits
//! for the fast one.

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;

use super::error::ApiError;

/// Reads the one flag `name` from a query string; absent means false.
fn flag(query: Option<&str>, name: &str) -> Result<bool, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|err| ApiError::bad_request(format!("query string is not valid: {err}")))?;
    let mut found = None;
    for (key, value) in pairs {
        if key != name {
            return Err(ApiError::bad_request(format!("unknown query parameter '{key}'; allowed: {name}")));
        }
        let value = match value.as_str() {
            "true" => true,
            "false" => false,
            other => return Err(ApiError::bad_request(format!("{name} must be true or false, found {other:?}"))),
        };
        if found.replace(value).is_some() {
            return Err(ApiError::bad_request(format!("query parameter '{name}' is given more than once")));
        }
    }
    Ok(found.unwrap_or(false))
}

async fn raw_query<S: Send + Sync>(parts: &mut Parts, state: &S) -> Option<String> {
    RawQuery::from_request_parts(parts, state).await.ok().and_then(|RawQuery(query)| query)
}

/// `?force=true`: purge without waiting for the agent.
pub struct Force(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Force {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        flag(raw_query(parts, state).await.as_deref(), "force").map(Force)
    }
}

/// `?cascade=true`: force-delete the consumer's bundles with it.
pub struct Cascade(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Cascade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        flag(raw_query(parts, state).await.as_deref(), "cascade").map(Cascade)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_flag_with_true_or_false_is_accepted() {
        assert!(!flag(None, "force").is_ok_and(|f| f));
        assert!(flag(Some("force=true"), "force").is_ok_and(|f| f));
        assert!(flag(Some("force=false"), "force").is_ok_and(|f| !f));
        assert!(flag(Some("force=yes"), "force").is_err());
        assert!(flag(Some("forse=true"), "force").is_err());
        assert!(flag(Some("force=true&force=false"), "force").is_err());
    }
}
