//! The route list and `GET /openapi.json`. Every route is added here through
//! utoipa-axum's `routes!`, which takes the path, methods and documentation
//! from the handler's `#[utoipa::path]`: the router and the document come from
//! the same list, so a route cannot exist without its documentation.

use axum::Json;
use axum::extract::State;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, RefOr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, aliases, batches, events, jobs, modules, status};

/// Tag descriptions, and what every document starts with.
#[derive(OpenApi)]
#[openapi(
    info(title = "wasmq", description = "A job server that runs WebAssembly plugins, each job in its own sandbox."),
    tags(
        (name = "modules", description = "Uploaded WebAssembly modules, by blake3 digest."),
        (name = "aliases", description = "Names pointing at modules, with version history and rollback."),
        (name = "jobs", description = "Dispatch, inspect, wait for, cancel and retry jobs."),
        (name = "batches", description = "Many jobs in one request, with one callback when all have ended."),
        (name = "server", description = "Status, health, readiness and this document."),
    )
)]
struct ApiDoc;

/// `/v1/modules`: the only routes whose body may be a whole module, so the
/// caller gives them the module size limit instead of the JSON one.
pub(super) fn module_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(modules::upload, modules::list))
}

/// The other routes under `/v1`; like [`module_routes`], behind the bearer token.
pub(super) fn v1_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(modules::show, modules::delete))
        .routes(routes!(aliases::list))
        .routes(routes!(aliases::set, aliases::show, aliases::delete))
        .routes(routes!(aliases::rollback))
        .routes(routes!(jobs::create, jobs::list))
        .routes(routes!(jobs::show))
        .routes(routes!(jobs::wait))
        .routes(routes!(events::events))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::dispatch))
        .routes(routes!(batches::create))
        .routes(routes!(batches::show))
        .routes(routes!(status::status))
}

/// Routes without a token: probes and this document.
pub(super) fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status::healthz))
        .routes(routes!(status::readyz))
        .routes(routes!(document))
}

/// The document of a server with these settings (the memory ceiling is one).
pub(super) fn build(state: &AppState) -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(module_routes())
        .merge(v1_routes())
        .merge(public_routes())
        .into_openapi();
    finish(&mut doc, state.engine.settings().max_memory_bytes >> 20);
    doc
}

/// What applies to many operations at once, so the annotations need not
/// repeat it: the bearer requirement and its 401 on every `/v1` route, a
/// description on every error response, and the server's memory ceiling.
fn finish(doc: &mut utoipa::openapi::OpenApi, max_memory_mb: u64) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let authenticated = path.starts_with("/v1/");
        for op in operations(item) {
            if authenticated {
                op.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
                op.responses.responses.entry("401".into()).or_insert_with(|| RefOr::T(error_response("401")));
            }
            for (status, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = error_description(status).to_string();
                }
            }
        }
    }
    memory_ceiling(doc, max_memory_mb);
    open_flattened_parts(doc);
}

/// A type flattened into another (`AliasConfig` into `AliasView` and
/// `AliasRequest`) is an `allOf` part of it; a part that forbids unknown
/// properties would reject the whole's own fields, so such parts stay open
/// (the whole is still checked by the server: unknown fields are refused).
fn open_flattened_parts(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Schema;
    let Some(components) = doc.components.as_mut() else { return };
    let parts: Vec<String> = components
        .schemas
        .values()
        .filter_map(|s| match s {
            RefOr::T(Schema::AllOf(all)) => Some(all.items.iter()),
            _ => None,
        })
        .flatten()
        .filter_map(|item| match item {
            RefOr::Ref(r) => r.ref_location.strip_prefix("#/components/schemas/").map(str::to_string),
            _ => None,
        })
        .collect();
    for name in parts {
        if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(&name) {
            o.additional_properties = None;
        }
    }
}

/// Every operation of a path item.
fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// An error response: the API's error body.
fn error_response(status: &str) -> Response {
    ResponseBuilder::new()
        .description(error_description(status))
        .content(
            "application/json",
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))),
        )
        .build()
}

/// What each error status means in this API (the body's `code` and `message`
/// say which rule, field or limit).
fn error_description(status: &str) -> &'static str {
    match status {
        "400" => "A field, parameter or body breaks its rule; the message names it.",
        "401" => "The bearer token is missing or wrong.",
        "404" => "The resource named in the path does not exist.",
        "408" => "The request body did not arrive within the body timeout.",
        "409" => "The request conflicts with the resource's state; the message says how.",
        "413" => "The body is larger than its limit; the message names the limit.",
        "415" => "The body's Content-Type is not one this operation takes.",
        "429" => "Too many jobs are waiting; retry after `Retry-After` seconds.",
        "503" => {
            "A server-wide capacity is reached or the server is not ready; retry after `Retry-After` seconds."
        }
        _ => "See the error body.",
    }
}

/// `memory_mb` may be at most the engine's memory ceiling (a setting): the
/// document says the number this server enforces.
fn memory_ceiling(doc: &mut utoipa::openapi::OpenApi, max_mb: u64) {
    use utoipa::openapi::schema::Schema;
    let set = |schema: &mut RefOr<Schema>| {
        if let RefOr::T(Schema::Object(o)) = schema {
            o.maximum = Some(max_mb.into());
        }
    };
    if let Some(components) = doc.components.as_mut() {
        for schema in components.schemas.values_mut() {
            if let RefOr::T(Schema::Object(o)) = schema
                && let Some(m) = o.properties.get_mut("memory_mb")
            {
                set(m);
            }
        }
    }
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            for p in op.parameters.iter_mut().flatten() {
                if p.name == "memory_mb"
                    && let Some(s) = p.schema.as_mut()
                {
                    set(s);
                }
            }
        }
    }
}

/// The OpenAPI 3.1 document of this server.
#[utoipa::path(get, path = "/openapi.json", tag = "server", operation_id = "getOpenApi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this server.", body = Object)))]
pub(super) async fn document(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(build(&state))
}
