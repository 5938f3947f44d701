//! `GET /openapi.json`: generated from the handlers' annotations and their own
//! request and response types, so it cannot drift from the code.

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "wasmq", description = "A job server that runs WebAssembly plugins, each job in its own sandbox."),
    paths(
        super::modules::upload, super::modules::list, super::modules::show, super::modules::delete,
        super::aliases::set, super::aliases::list, super::aliases::show, super::aliases::rollback,
        super::aliases::delete,
        super::jobs::create, super::jobs::dispatch, super::jobs::list, super::jobs::show, super::jobs::wait,
        super::jobs::cancel, super::jobs::retry, super::events::events,
        super::batches::create, super::batches::show,
        super::status::status, super::status::healthz, super::status::readyz,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI 3.1 document of this server.
pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
