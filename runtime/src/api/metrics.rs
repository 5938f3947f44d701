//! `GET /metrics`: this node's metrics for Prometheus (see [`crate::metrics`]),
//! for whoever runs the cluster; and the counting of every HTTP request by
//! its route (the path pattern, so label values stay bounded) and status.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

use super::auth::ClusterReader;
use super::error::ErrorBody;
use super::{ApiResult, AppState};

/// The OpenMetrics text format, which Prometheus reads.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// This node's metrics: job attempts by tenant, alias and status, run time
/// and fuel histograms per alias, module compile time, callback deliveries
/// by outcome, HTTP requests by route and status, worker slots busy, and the
/// unfinished jobs of every queue by status (read from the database, along
/// its indexes of unfinished jobs). The operator token (or, on a server
/// without one, the `default` tenant's admin token).
#[utoipa::path(get, path = "/metrics", tag = "server", operation_id = "getMetrics",
    responses((status = 200, description = "The metrics, in the OpenMetrics text format.", content_type = "application/openmetrics-text", body = String),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn metrics(State(state): State<AppState>, _: ClusterReader) -> ApiResult<Response> {
    state.metrics.gauge_workers(state.queue.busy(), state.queue.workers());
    state.metrics.gauge_queues(&state.store.queue_depths(None).await?);
    Ok(([(CONTENT_TYPE, OPENMETRICS)], state.metrics.encode()).into_response())
}

/// The route that answered a request, left on its response for [`count`].
#[derive(Clone)]
struct Route(String);

/// Around each route's handler: notes the route on the response.
pub(super) async fn note_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| Route(p.as_str().to_string()));
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Around every request: counts it by method, route (`unmatched` when no
/// route took it) and status.
pub(super) async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    let route = response.extensions().get::<Route>().map_or("unmatched", |r| r.0.as_str());
    state.metrics.http_request(method.as_str(), route, response.status().as_u16(), started.elapsed());
    response
}
