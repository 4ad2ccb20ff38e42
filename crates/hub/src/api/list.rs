//! List requests and responses: Maestro's `page`/`size`/`search`/`orderBy`/`fields` parameters
//! and its `{kind, page, size, total, items}` envelope.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::ApiState;
use super::error::ApiError;
use maestro_store::{ListRequest, Page};

const PARAMETERS: &[&str] = &["page", "size", "search", "orderBy", "fields"];
pub const DEFAULT_PAGE_SIZE: i64 = 100;

/// Parsed and checked list parameters. A misspelt parameter (`pageSize`) is refused rather
/// than ignored, so a client never mistakes an unfiltered list for a filtered one.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub request: ListRequest,
    pub fields: Option<Vec<String>>,
}

impl FromRequestParts<ApiState> for ListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state).await.unwrap_or(RawQuery(None));
        ListParams::parse(query.as_deref().unwrap_or(""), state.limits.max_page_size)
    }
}

impl ListParams {
    pub fn parse(query: &str, max_page_size: i64) -> Result<ListParams, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|err| ApiError::bad_request(format!("query string is not valid: {err}")))?;
        let mut params: HashMap<String, String> = HashMap::new();
        for (key, value) in pairs {
            if !PARAMETERS.contains(&key.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter '{key}'; allowed: {}",
                    PARAMETERS.join(", ")
                )));
            }
            if params.insert(key.clone(), value).is_some() {
                return Err(ApiError::bad_request(format!("query parameter '{key}' is given more than once")));
            }
        }
        let page = number(&params, "page", 1)?;
        if page < 1 {
            return Err(ApiError::bad_request(format!("page must be 1 or more, found {page}")));
        }
        let size = number(&params, "size", DEFAULT_PAGE_SIZE.min(max_page_size))?;
        if !(0..=max_page_size).contains(&size) {
            return Err(ApiError::bad_request(format!("size must be between 0 and {max_page_size}, found {size}")));
        }
        if page.checked_mul(size.max(1)).is_none() {
            return Err(ApiError::bad_request(format!("page {page} is out of range")));
        }
        let fields = params.get("fields").map(|list| fields_list(list)).transpose()?;
        Ok(ListParams {
            request: ListRequest {
                page,
                size,
                search: params.remove("search").unwrap_or_default(),
                order_by: params.remove("orderBy").unwrap_or_default(),
            },
            fields,
        })
    }
}

fn number(params: &HashMap<String, String>, name: &str, default: i64) -> Result<i64, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("{name} must be a whole number, found {text:?}"))),
    }
}

fn fields_list(list: &str) -> Result<Vec<String>, ApiError> {
    let fields: Vec<String> = list.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect();
    if let Some(bad) = fields.iter().find(|f| !f.chars().all(|c| c.is_ascii_alphanumeric() || "_.*".contains(c))) {
        return Err(ApiError::bad_request(format!("fields: {bad:?} is not a field name")));
    }
    Ok(fields)
}

/// Maestro's list envelope; `size` is the number of items in this page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListView<T> {
    pub kind: &'static str,
    pub page: i64,
    pub size: i64,
    pub total: i64,
    pub items: Vec<T>,
}

impl<T: Serialize> ListView<T> {
    pub fn new(kind: &'static str, page: Page<T>) -> Self {
        ListView { kind, page: page.page, size: page.items.len() as i64, total: page.total, items: page.items }
    }

    /// The response body. Without `fields` the items are written as they are, stored JSON
    /// passed through unparsed; with `fields` each item is projected, keeping `id` and `kind`
    /// so an item can still be told apart and fetched.
    pub fn into_response(self, fields: Option<&[String]>) -> Result<Response, ApiError> {
        let Some(fields) = fields else { return Ok(axum::Json(self).into_response()) };
        let mut value = serde_json::to_value(&self).map_err(|err| ApiError::bad_request(err.to_string()))?;
        if let Some(Value::Array(items)) = value.get_mut("items") {
            for item in items.iter_mut() {
                *item = project(std::mem::take(item), fields);
            }
        }
        Ok(axum::Json(value).into_response())
    }
}

/// Keeps only the named fields of an object; `a.b` reaches into nested objects and `a.*`
/// keeps all of `a`.
pub fn project(item: Value, fields: &[String]) -> Value {
    let Value::Object(object) = item else { return item };
    let mut kept = Map::new();
    for always in ["id", "kind"] {
        if let Some(value) = object.get(always) {
            kept.insert(always.to_string(), value.clone());
        }
    }
    for field in fields {
        let path: Vec<&str> = field.split('.').filter(|p| *p != "*").collect();
        copy_path(&object, &mut kept, &path);
    }
    Value::Object(kept)
}

fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else { return };
    let Some(value) = from.get(*first) else { return };
    match (rest.is_empty(), value) {
        (true, _) => {
            to.insert(first.to_string(), value.clone());
        }
        (false, Value::Object(inner)) => {
            let slot = to.entry(first.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(slot) = slot {
                copy_path(inner, slot, rest);
            }
        }
        (false, _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_first_page_of_one_hundred() {
        let params = ListParams::parse("", 1000).unwrap();
        assert_eq!((params.request.page, params.request.size), (1, 100));
    }

    #[test]
    fn refuses_unknown_and_repeated_parameters_and_bad_numbers() {
        assert!(
            ListParams::parse("pageSize=10", 1000).unwrap_err().reason.contains("unknown query parameter 'pageSize'")
        );
        assert!(ListParams::parse("page=1&page=2", 1000).unwrap_err().reason.contains("more than once"));
        assert!(ListParams::parse("page=0", 1000).unwrap_err().reason.contains("page must be 1 or more"));
        assert!(ListParams::parse("size=1001", 1000).unwrap_err().reason.contains("between 0 and 1000"));
        assert!(ListParams::parse("size=ten", 1000).unwrap_err().reason.contains("whole number"));
    }

    #[test]
    fn projection_keeps_named_and_nested_fields_plus_identity() {
        let item =
            json!({"id": "1", "kind": "Consumer", "name": "a", "labels": {"env": "x", "tier": "y"}, "href": "h"});
        let fields = vec!["name".to_string(), "labels.env".to_string()];
        assert_eq!(project(item, &fields), json!({"id": "1", "kind": "Consumer", "name": "a", "labels": {"env": "x"}}));
    }
}
