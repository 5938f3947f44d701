//! Transport layer: the HTTP API under `/v1`, JSON in and out, bearer-token auth
//! resolving each request to a tenant and scope ([`auth`]),
//! and the OpenAPI document generated from the handlers' own types.

mod alias_cache;
mod aliases;
pub mod auth;
mod backpressure;
mod batches;
mod bulk;
mod dashboard;
mod error;
mod events;
mod extract;
mod guard;
mod idempotency;
mod jobs;
mod kv;
mod metrics;
mod modules;
mod nodes;
mod openapi;
mod queues;
mod quota;
mod rate;
pub mod scheduler;
mod schedules;
mod secrets;
pub mod server;
mod status;
mod stream;
mod submit;
mod tenant_keys;
mod tenant_views;
mod tenants;
mod unique;
mod usage;
mod views;
mod watch_caps;
mod whoami;

pub use alias_cache::AliasCache;
pub use aliases::{AliasLimitsView, AliasRequest};
pub use backpressure::Backpressure;
pub use batches::BatchCreated;
pub use bulk::{BULK_STEP, BatchDeleted, BulkDone, JobFilterRequest};
pub use error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
pub use guard::guard;
pub use jobs::JobRequest;
pub use kv::{KvEntry, KvKeysPage, KvRequest};
pub use nodes::{NodeList, NodeStatus, NodeView};
pub use queues::{QueueDepths, QueueList, QueueView};
pub use quota::Quotas;
pub use schedules::{SchedulePage, ScheduleRequest, ScheduleView};
pub use secrets::{SecretRequest, SecretView};
pub use server::HttpSettings;
pub use status::{StatusView, Watchers, Workers};
pub use tenant_keys::{KeyCreated, KeyRequest, KeyView};
pub use tenant_views::{TenantPatch, TenantRequest, TenantView, TokenCreated, TokenRequest, TokenView};
pub use unique::UniqueRequest;
pub use usage::{UsageDay, UsageReport};
pub use views::*;
pub use watch_caps::WatchCaps;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

use crate::domain::Limits;
use crate::queue::{Inserter, Queue};
use crate::sandbox::Engine;
use crate::store::Store;

/// What every request handler shares, behind one `Arc`: axum clones the
/// state for each extractor and middleware of every request, so a clone must
/// cost one reference count, not a copy of every setting (limits, policies,
/// keys) it holds.
#[derive(Clone)]
pub struct AppState(Arc<AppContext>);

impl AppState {
    /// Wraps what the handlers share.
    pub fn new(shared: AppContext) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppContext;
    fn deref(&self) -> &AppContext {
        &self.0
    }
}

/// The handlers' shared parts (see [`AppState`]).
pub struct AppContext {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Sandbox (validates uploads).
    pub engine: Engine,
    /// Worker pool (wakes on dispatch, cancels running jobs).
    pub queue: Queue,
    /// Defaults for jobs that set no limit of their own.
    pub default_limits: Limits,
    /// Ceilings (and defaults) of aliases' outbound HTTP limits.
    pub http_ceilings: crate::domain::HttpCeilings,
    /// Attempts for jobs and aliases that set none.
    pub default_max_attempts: u32,
    /// Resolves each request's caller (tokens, operator, tenant tokens).
    pub auth: Arc<auth::Authenticator>,
    /// Largest JSON body (jobs, batches).
    pub max_body_bytes: usize,
    /// Refuses dispatches while too many jobs wait (per tenant and in all).
    pub backpressure: Arc<Backpressure>,
    /// Each tenant's quotas as they apply now (cached), and its dispatch rate.
    pub quotas: Arc<Quotas>,
    /// Group-commits dispatches.
    pub inserter: Inserter,
    /// Recently resolved aliases (shared with the jobs' capabilities).
    pub aliases: Arc<AliasCache>,
    /// What aliases grant their jobs; seals alias secrets.
    pub grants: Arc<crate::capabilities::Grants>,
    /// Key-value limits.
    pub kv: crate::domain::KvLimits,
    /// Which addresses callbacks may target (checked at dispatch).
    pub callback_policy: crate::domain::NetPolicy,
    /// Seals callback secrets before they are stored.
    pub callback_secrets: crate::callbacks::SecretBox,
    /// Versions kept per alias.
    pub alias_history: u32,
    /// Caps on concurrent waits and event streams.
    pub watch_caps: Arc<WatchCaps>,
    /// Cancelled when shutdown starts: long-polls answer and event streams end,
    /// so draining connections does not wait for them.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Limits of client connections (the body deadline is applied here).
    pub http: HttpSettings,
    /// This node's metrics (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// `/docs`: an interactive reference of the API (Swagger UI, its assets
/// built into the binary by `utoipa-swagger-ui`'s vendored copy: no CDN),
/// reading `/openapi.json`; its Authorize button sets the bearer token (or
/// signed-request headers) for the requests it sends, kept across reloads.
fn reference_page() -> Router<AppState> {
    use utoipa_swagger_ui::{Config, SwaggerUi};
    // No validator badge: it would send the document to an outside service.
    let config = Config::new(["/openapi.json"])
        .persist_authorization(true)
        .try_it_out_enabled(true)
        .validator_url("none");
    SwaggerUi::new("/docs").config(config).into()
}

/// The API router: the routes listed in [`openapi`], each with its documentation.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    let body_timeout = state.http.body_timeout;
    let max_module = state.engine.settings().max_module_bytes as usize;
    let (modules, _) = openapi::module_routes().split_for_parts();
    let (v1, _) = openapi::v1_routes().split_for_parts();
    let v1 = v1
        .layer(DefaultBodyLimit::max(max_body))
        .merge(modules.layer(DefaultBodyLimit::max(max_module)))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate));
    let (public, _) = openapi::public_routes().split_for_parts();
    guard(v1.merge(public).merge(reference_page()).merge(dashboard::routes()), body_timeout)
        .route_layer(axum::middleware::from_fn(metrics::note_route))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::extract::Request| {
                    // The path only: query strings carry secrets (`callback_secret`,
                    // callback URLs with their own tokens) that must not reach the logs.
                    tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
                })
                // One debug line per answered request, inside that span (`-v`).
                .on_request(())
                .on_response(
                    |res: &axum::response::Response, latency: std::time::Duration, _: &tracing::Span| {
                        tracing::debug!(
                            status = res.status().as_u16(),
                            latency_us = latency.as_micros() as u64,
                            "answered"
                        );
                    },
                ),
        )
        .with_state(state)
}
