//! The OpenAPI 3 document, generated from the handlers' annotations and the view types, so it
//! cannot drift from what the hub serves.

use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use super::{bundles, consumers, plugins, resources};

#[derive(OpenApi)]
#[openapi(
    info(title = "Maestro API", description = "Consumers, resource bundles and resources of a Maestro hub. Compatible with open-cluster-management Maestro's REST API, plus writes of bundles and the single-resource API."),
    paths(
        consumers::list, consumers::create, consumers::get, consumers::patch, consumers::delete,
        bundles::list, bundles::get, bundles::create, bundles::replace, bundles::delete,
        resources::list, resources::get, resources::create, resources::replace, resources::delete,
        plugins::list_plugins, plugins::list_policies, plugins::get_policy, plugins::create_policy,
        plugins::replace_policy, plugins::delete_policy,
    ),
    components(schemas(super::error::ErrorBody, super::views::ConsumerView, super::views::BundleView, super::views::ResourceView)),
    modifiers(&BearerAuth),
    security(("Bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("Bearer", SecurityScheme::Http(scheme));
    }
}

pub async fn document() -> Json<Value> {
    Json(served())
}

/// The document as served: utoipa's, with list items that `fields=` may project.
pub fn served() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    projectable_list_items(&mut doc);
    doc
}

/// With `fields=`, a list's items carry only the fields asked for (plus `id` and `kind`), so
/// the item schema of every list response is its view's without `required`: a client reading
/// a projected list still reads a document that matches.
fn projectable_list_items(doc: &mut Value) {
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let views = schemas.clone();
    for (list, schema) in schemas.iter_mut().filter(|(name, _)| name.starts_with("ListView_")) {
        let Some(items) = schema.pointer_mut("/properties/items/items") else { continue };
        // utoipa inlines the view of a generic list; a `$ref` is resolved the same way.
        let referenced = items.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next());
        if let Some(view) = referenced.and_then(|name| views.get(name)) {
            *items = view.clone();
        }
        let view = list.trim_start_matches("ListView_");
        if let Some(object) = items.as_object_mut() {
            object.remove("required");
            let what = format!("A {view}; with `fields`, only the fields asked for, and `id` and `kind`.");
            object.insert("description".into(), Value::String(what));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_may_be_projected_by_fields() {
        let doc = served();
        let schemas = doc.pointer("/components/schemas").and_then(Value::as_object).expect("schemas");
        let lists: Vec<&String> = schemas.keys().filter(|name| name.starts_with("ListView_")).collect();
        assert_eq!(lists.len(), 3, "{lists:?}");
        for list in lists {
            let items = &schemas[list].pointer("/properties/items/items");
            let items = items.unwrap_or_else(|| panic!("{list}: {}", schemas[list]));
            assert!(items.get("required").is_none(), "{list}: {items}");
            assert!(items.get("properties").is_some_and(Value::is_object), "{list}: {items}");
        }
    }
}
