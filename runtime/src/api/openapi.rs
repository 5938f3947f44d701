//! The route list and `GET /openapi.json`. Every route is added here through
//! utoipa-axum's `routes!`, which takes the path, methods and documentation
//! from the handler's `#[utoipa::path]`: the router and the document come from
//! the same list, so a route cannot exist without its documentation.

use axum::Json;
use axum::extract::State;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, RefOr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    AppState, aliases, batches, bulk, events, jobs, kv, metrics, modules, nodes, queues, schedules, secrets,
    status, stream, tenant_keys, tenants, usage, whoami,
};

/// Tag descriptions, and what every document starts with.
#[derive(OpenApi)]
#[openapi(
    info(title = "wasmq", description = "A job server that runs WebAssembly plugins, each job in its own sandbox."),
    tags(
        (name = "modules", description = "Uploaded WebAssembly modules, by blake3 digest."),
        (name = "aliases", description = "Names pointing at modules, with version history and rollback."),
        (name = "jobs", description = "Dispatch, inspect, wait for, cancel and retry jobs."),
        (name = "batches", description = "Many jobs in one request, with one callback when all have ended."),
        (name = "kv", description = "A tenant's key-value stores, as its jobs see them: the tenant's admin and the operator."),
        (name = "queues", description = "Queues as resources: depth, pause and resume, limits across the cluster."),
        (name = "schedules", description = "Recurring dispatches (cron or interval): one job per due time across every node."),
        (name = "tenants", description = "Tenants and their tokens: the operator token only."),
        (name = "usage", description = "Usage per tenant per UTC day: job outcomes, fuel, run time, module storage, callbacks."),
        (name = "server", description = "Status, the cluster's nodes, health, readiness and this document."),
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
        .routes(routes!(modules::download))
        .routes(routes!(aliases::list))
        .routes(routes!(aliases::set, aliases::show, aliases::delete))
        .routes(routes!(aliases::rollback))
        .routes(routes!(aliases::set_limits))
        .routes(routes!(jobs::create, jobs::list))
        .routes(routes!(jobs::show, bulk::delete_job))
        .routes(routes!(bulk::retry))
        .routes(routes!(bulk::cancel))
        .routes(routes!(bulk::delete))
        .routes(routes!(jobs::wait))
        .routes(routes!(events::events))
        .routes(routes!(stream::events))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::dispatch))
        .routes(routes!(batches::create, batches::list))
        .routes(routes!(batches::show, bulk::delete_batch))
        .routes(routes!(status::status))
        .routes(routes!(whoami::whoami))
        .routes(routes!(metrics::metrics))
        .routes(routes!(nodes::list))
        .routes(routes!(queues::list))
        .routes(routes!(queues::pause))
        .routes(routes!(queues::resume))
        .routes(routes!(queues::set_limits))
        .routes(routes!(schedules::list))
        .routes(routes!(schedules::set, schedules::show, schedules::delete))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::resume))
        .routes(routes!(tenants::create, tenants::list))
        .routes(routes!(tenants::show, tenants::update, tenants::delete))
        .routes(routes!(tenants::create_token, tenants::list_tokens))
        .routes(routes!(tenants::revoke_token))
        .routes(routes!(usage::usage))
        .routes(routes!(tenant_keys::create_key, tenant_keys::list_keys))
        .routes(routes!(tenant_keys::revoke_key))
        .routes(routes!(secrets::list))
        .routes(routes!(secrets::set, secrets::delete))
        .routes(routes!(kv::list))
        .routes(routes!(kv::get, kv::set, kv::delete))
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
/// repeat it: the bearer requirement and its 401 on every `/v1` route (and
/// `/metrics`), a
/// description on every error response, and the server's memory ceiling.
fn finish(doc: &mut utoipa::openapi::OpenApi, max_memory_mb: u64) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    // The alternative: a signed request (`api::auth::signed`), both headers together.
    components.add_security_scheme(
        "signing_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Wasmq-Key",
            "The id of a signing key (`default`: the server's WASMQ_SECRET); with X-Wasmq-Signature.",
        ))),
    );
    components.add_security_scheme(
        "signature",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Wasmq-Signature",
            "`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<METHOD>.<path?query>.<body>\")>`, \
             within 5 minutes of the server's clock, each signature accepted once.",
        ))),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let authenticated = path.starts_with("/v1/") || path == "/metrics";
        for op in operations(item) {
            if authenticated {
                op.security = Some(vec![
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::new("signing_key", Vec::<String>::new())
                        .add("signature", Vec::<String>::new()),
                ]);
                op.responses.responses.entry("401".into()).or_insert_with(|| RefOr::T(error_response("401")));
                op.responses.responses.entry("403".into()).or_insert_with(|| RefOr::T(error_response("403")));
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
    merge_flattened(doc);
    callback_headers(doc);
    one_due_time(doc);
    one_kv_value(doc);
    alias_grants(doc);
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
        "401" => {
            "The bearer token is missing or wrong (unknown, revoked or expired), or the signature is \
             (wrong, stale, from the future, replayed, or by an unknown or revoked key; the message says which)."
        }
        "403" => {
            "The token may not do this: its scope is too small (the message names the scope needed), \
             the route is the operator's, or the operator token names no tenant in `X-Wasmq-Tenant`."
        }
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

/// A type flattened into another (`AliasConfig` into `AliasView` and
/// `AliasRequest`) comes out of utoipa as an `allOf` of the part and the
/// rest; a part that forbids unknown properties would then reject the whole's
/// own fields, and the whole cannot forbid anything. Merged into one object,
/// the schema says exactly what serde does: closed where the Rust type is
/// `deny_unknown_fields` (the part is; then so is the whole, a request body),
/// open otherwise.
fn merge_flattened(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{AdditionalProperties, Object, Schema};
    let Some(components) = doc.components.as_mut() else { return };
    let snapshot = components.schemas.clone();
    let part = |r: &RefOr<Schema>| -> Option<Object> {
        match r {
            RefOr::T(Schema::Object(o)) => Some(o.clone()),
            RefOr::Ref(r) => match snapshot.get(r.ref_location.strip_prefix("#/components/schemas/")?) {
                Some(RefOr::T(Schema::Object(o))) => Some(o.clone()),
                _ => None,
            },
            _ => None,
        }
    };
    for (name, schema) in components.schemas.iter_mut() {
        let RefOr::T(Schema::AllOf(all)) = schema else { continue };
        let Some(parts) = all.items.iter().map(part).collect::<Option<Vec<_>>>() else { continue };
        let closed = parts.iter().any(|p| {
            matches!(p.additional_properties.as_deref(), Some(AdditionalProperties::FreeForm(false)))
        }) && name.ends_with("Request");
        let mut merged = Object::new();
        merged.description = all.description.clone();
        for p in parts {
            merged.properties.extend(p.properties);
            merged.required.extend(p.required);
        }
        if closed {
            merged.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
        *schema = RefOr::T(Schema::Object(merged));
    }
}

/// The rules `callbacks::target` checks on `callback.headers`, as schema:
/// at most [`MAX_HEADERS`](crate::callbacks::target::MAX_HEADERS), names
/// that are HTTP tokens, values without control characters. (The reserved
/// names and the per-header size are named in the description.)
fn callback_headers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, Schema, Type};
    let Some(RefOr::T(Schema::Object(callback))) =
        doc.components.as_mut().and_then(|c| c.schemas.get_mut("Callback"))
    else {
        return;
    };
    let Some(RefOr::T(Schema::Object(headers))) = callback.properties.get_mut("headers") else { return };
    headers.max_properties = Some(crate::callbacks::target::MAX_HEADERS);
    headers.property_names = Some(Box::new(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"))
            .build(),
    )));
    let value: Object =
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^[^\x00-\x08\x0a-\x1f\x7f]*$")).build();
    headers.additional_properties =
        Some(Box::new(AdditionalProperties::RefOr(RefOr::T(Schema::Object(value)))));
}

/// A job takes `delay_ms` or `run_at`, not both: `not: {required: [...]}`.
/// utoipa's schema model has no `not`; its extension map is written out
/// as-is, so the keyword goes there (it is plain JSON Schema, not an `x-`).
fn one_due_time(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Schema;
    let Some(RefOr::T(Schema::Object(job))) =
        doc.components.as_mut().and_then(|c| c.schemas.get_mut("JobRequest"))
    else {
        return;
    };
    job.extensions
        .get_or_insert_with(Default::default)
        .insert("not".into(), serde_json::json!({"required": ["delay_ms", "run_at"]}));
}

/// `KvRequest` takes exactly one member: its `max_properties = 1` is derived,
/// but utoipa-gen 5.5 emits a `min_properties` attribute as `maxProperties`
/// too, so the lower bound is set here.
fn one_kv_value(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::Schema;
    if let Some(RefOr::T(Schema::Object(kv))) =
        doc.components.as_mut().and_then(|c| c.schemas.get_mut("KvRequest"))
    {
        kv.min_properties = Some(1);
    }
}

/// One DNS label (1..=63 letters, digits and inner hyphens).
const LABEL: &str = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";

/// What utoipa cannot derive for an alias's grants: the key rules of its
/// `config` and `env` maps (`propertyNames`, `maxProperties`), the form of an
/// `env` source, and the forms of an `allowed_hosts` entry. Each pattern
/// describes a subset of what the server accepts (host names of at most
/// three labels, ports below 10000), so a value the document allows is never
/// refused.
fn alias_grants(doc: &mut utoipa::openapi::OpenApi) {
    use crate::domain::capabilities::{MAX_CONFIG_ENTRIES, MAX_ENV_ENTRIES};
    use utoipa::openapi::schema::{ArrayItems, Object, Schema, Type};
    let string = |pattern: String| Object::builder().schema_type(Type::String).pattern(Some(pattern)).build();
    let name = format!("{LABEL}(\\.{LABEL}){{0,2}}");
    let host = format!("^({name}|\\*\\.{LABEL}(\\.{LABEL}){{1,2}}|https?://{name}(:[1-9][0-9]{{0,3}})?)$");
    let Some(components) = doc.components.as_mut() else { return };
    for schema in ["AliasRequest", "AliasConfig"] {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else { continue };
        let maps = [
            ("config", "^[A-Za-z0-9_.-]{1,128}$", None, MAX_CONFIG_ENTRIES),
            (
                "env",
                "^[A-Za-z_][A-Za-z0-9_]{0,127}$",
                Some("^(config|secret):[A-Za-z0-9_.-]{1,128}$"),
                MAX_ENV_ENTRIES,
            ),
        ];
        for (field, keys, values, max) in maps {
            if let Some(RefOr::T(Schema::Object(map))) = object.properties.get_mut(field) {
                map.property_names = Some(Box::new(Schema::Object(string(keys.into()))));
                map.max_properties = Some(max);
                if let Some(values) = values {
                    map.additional_properties =
                        Some(Box::new(utoipa::openapi::schema::AdditionalProperties::RefOr(RefOr::T(
                            Schema::Object(string(values.into())),
                        ))));
                }
            }
        }
        if let Some(RefOr::T(Schema::Array(hosts))) = object.properties.get_mut("allowed_hosts") {
            hosts.items = ArrayItems::RefOrSchema(Box::new(RefOr::T(Schema::Object(string(host.clone())))));
        }
    }
}

/// The OpenAPI 3.1 document of this server.
#[utoipa::path(get, path = "/openapi.json", tag = "server", operation_id = "getOpenApi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this server.", body = Object)))]
pub(super) async fn document(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(build(&state))
}
