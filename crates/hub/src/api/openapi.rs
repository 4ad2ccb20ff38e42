//! The OpenAPI 3 document, generated from the handlers' annotations and the view types, so it
//! cannot drift from what the hub serves.

use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use super::{bundles, consumers, packages, plugins, resources};

#[derive(OpenApi)]
#[openapi(
    info(title = "Maestro API", description = "Consumers, resource bundles and resources of a Maestro hub. Compatible with open-cluster-management Maestro's REST API, plus writes of bundles and the single-resource API."),
    paths(
        consumers::list, consumers::create, consumers::get, consumers::patch, consumers::delete,
        bundles::list, bundles::get, bundles::create, bundles::replace, bundles::delete,
        resources::list, resources::get, resources::create, resources::replace, resources::delete,
        plugins::list_plugins, plugins::list_policies, plugins::get_policy, plugins::create_policy,
        plugins::replace_policy, plugins::delete_policy,
        packages::upload, packages::list, packages::get, packages::archive, packages::delete,
        packages::repository_index, packages::repository_archive,
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
    common_answers(&mut doc);
    version_required_on_put(&mut doc);
    doc
}

/// The answers any operation can give besides the ones its annotation names, each in the
/// error shape: 400 (a parameter or body refused), 401 (authentication on, no valid token), 503
/// (the request deadline); writes 413 (body over the limit), 415 (not JSON) and 409; and 404
/// on a path that names an object.
fn common_answers(doc: &mut Value) {
    const ANSWERS: &[(&str, &str)] = &[
        ("400", "Refused: the reason and details name the parameter or field"),
        ("401", "Authentication is on and the request carries no valid token"),
        ("404", "No such object"),
        ("409", "Conflicts with what is stored (version, name, a delete in progress, bundles left)"),
        ("413", "The body is larger than the hub accepts (--max-body-bytes)"),
        ("415", "The body is not application/json"),
        ("503", "The request did not finish within the hub's deadline (--request-timeout)"),
    ];
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, operations) in paths.iter_mut() {
        let names_object = path.contains('{');
        for (method, operation) in operations.as_object_mut().into_iter().flatten() {
            let writes = matches!(method.as_str(), "post" | "put" | "patch" | "delete");
            let has_body = matches!(method.as_str(), "post" | "put" | "patch");
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            for (code, description) in ANSWERS {
                let applies = match *code {
                    "404" => names_object,
                    "409" => writes,
                    "413" | "415" => has_body,
                    _ => true,
                };
                if applies && !responses.contains_key(*code) {
                    responses.insert((*code).to_string(), error_answer(description));
                }
            }
        }
    }
}

/// A PUT must carry the `version` it read (a POST's is ignored), though both send the same
/// write type: the PUT's body schema says so.
fn version_required_on_put(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    let versioned = ["/api/maestro/v1/resource-bundles/{id}", "/api/maestro/v1/resources/{id}"];
    for (path, operations) in paths.iter_mut().filter(|(path, _)| versioned.contains(&path.as_str())) {
        tracing::trace!(path, "version required on PUT");
        let Some(schema) = operations.pointer_mut("/put/requestBody/content/application~1json/schema") else {
            continue;
        };
        let written = schema.clone();
        *schema = serde_json::json!({"allOf": [written, {"required": ["version"]}]});
    }
}

fn error_answer(description: &str) -> Value {
    serde_json::json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
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

    #[test]
    fn every_operation_documents_the_errors_it_can_answer() {
        let doc = served();
        for (path, operations) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in operations.as_object().expect("operations") {
                let responses = &operation["responses"];
                for code in ["400", "401", "503"] {
                    assert!(responses.get(code).is_some(), "{method} {path} lacks {code}");
                }
                if method == "post" || method == "put" || method == "patch" {
                    assert!(responses.get("413").is_some() && responses.get("415").is_some(), "{method} {path}");
                }
                if path.contains('{') {
                    assert!(responses.get("404").is_some(), "{method} {path} lacks 404");
                }
            }
        }
        let put = &doc["paths"]["/api/maestro/v1/resources/{id}"]["put"]["requestBody"]["content"]["application/json"];
        assert_eq!(put["schema"]["allOf"][1]["required"][0], "version", "{put}");
        let configs = &doc["components"]["schemas"]["ManifestConfig"];
        assert!(configs["properties"]["resourceIdentifier"].is_object(), "{configs}");
    }
}
