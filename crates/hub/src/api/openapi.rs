//! The OpenAPI 3 document, generated from the handlers' annotations and the view types, so it
//! cannot drift from what the hub serves.

use axum::Json;
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

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
