//! Server status and health.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::{ApiResult, AppState};

/// Worker slots of this node.
#[derive(Serialize, ToSchema)]
pub struct Workers {
    /// Slots.
    pub max: usize,
    /// Running jobs.
    pub busy: usize,
    /// Free slots.
    pub free: usize,
}

/// Job counts and workers.
#[derive(Serialize, ToSchema)]
pub struct StatusView {
    /// Jobs per status.
    pub jobs: BTreeMap<String, u64>,
    /// Jobs per queue and status.
    pub queues: BTreeMap<String, BTreeMap<String, u64>>,
    /// This node's worker pool.
    pub workers: Workers,
}

/// Counts per status and per queue, and this node's workers.
#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = StatusView)))]
pub(super) async fn status(State(state): State<AppState>) -> ApiResult<Json<StatusView>> {
    let counts = state.store.status_counts(&state.tenant).await?;
    let (max, busy) = (state.queue.workers(), state.queue.busy());
    Ok(Json(StatusView {
        jobs: counts.by_status,
        queues: counts.by_queue,
        workers: Workers { max, busy, free: max.saturating_sub(busy) },
    }))
}

/// Liveness: answers while the process serves requests.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = String)))]
pub(super) async fn healthz() -> &'static str {
    "ok"
}
