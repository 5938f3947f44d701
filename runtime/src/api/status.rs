//! Server status and health. `StatusView` is also what `wasmq status` reads.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

use super::auth::{Read, Tenant};
use super::{ApiError, ApiResult, AppState};

/// Worker slots of this node.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Workers {
    /// Slots.
    pub max: usize,
    /// Running jobs.
    pub busy: usize,
    /// Free slots.
    pub free: usize,
}

/// Requests watching jobs on this node (`wait` and event streams).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Watchers {
    /// `wait` requests open.
    pub waits: usize,
    /// Event streams open.
    pub event_streams: usize,
    /// Jobs watched by at least one of them.
    pub jobs: usize,
    /// Registrations over all jobs (0 when nothing is watched: none is left
    /// behind by a request that ended).
    pub registered: usize,
}

/// Job counts and workers.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    /// Jobs per status.
    pub jobs: BTreeMap<String, u64>,
    /// Jobs per queue and status.
    pub queues: BTreeMap<String, BTreeMap<String, u64>>,
    /// This node's worker pool.
    pub workers: Workers,
    /// This node's module compiler.
    pub compiler: crate::sandbox::CompileStats,
    /// Requests watching jobs on this node.
    pub watchers: Watchers,
    /// The quotas that apply to the caller's tenant now (absent: unlimited).
    #[serde(default)]
    pub quotas: crate::domain::TenantQuotas,
}

/// Counts per status and per queue, and this node's workers.
#[utoipa::path(get, path = "/v1/status", tag = "server", operation_id = "getStatus",
    responses((status = 200, description = "Counts and this node's workers, compiler and watchers.", body = StatusView)))]
pub(super) async fn status(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
) -> ApiResult<Json<StatusView>> {
    let counts = state.store.status_counts(&tenant).await?;
    let quotas = state.quotas.of(state.store.as_ref(), &tenant).await?;
    let (max, busy) = (state.queue.workers(), state.queue.busy());
    Ok(Json(StatusView {
        jobs: counts.by_status,
        queues: counts.by_queue,
        workers: Workers { max, busy, free: max.saturating_sub(busy) },
        compiler: state.engine.compile_stats(),
        watchers: watchers(&state),
        quotas: (*quotas).clone(),
    }))
}

fn watchers(state: &AppState) -> Watchers {
    let (waits, event_streams) = state.watch_caps.in_use();
    let counts = state.queue.events().counts();
    Watchers { waits, event_streams, jobs: counts.jobs, registered: counts.watchers }
}

/// Liveness: answers while the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "server", operation_id = "getHealth",
    responses((status = 200, description = "`ok`: the process serves requests.", body = String, content_type = "text/plain")))]
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// How long the readiness probe waits for the database.
const READY_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Readiness: 200 `ready` while this node can do its work: the database
/// answers (a cheap query, within 2 s) and the queue's background tasks
/// (producer, runners, completer, maintenance) are alive. Otherwise 503 with
/// an error naming what is not ready. Unauthenticated, like `/healthz`.
#[utoipa::path(get, path = "/readyz", tag = "server", operation_id = "getReady",
    responses((status = 200, description = "`ready`: this node can do its work.", body = String, content_type = "text/plain"),
              (status = 503, body = super::error::ErrorBody)))]
pub(super) async fn readyz(State(state): State<AppState>) -> ApiResult<&'static str> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::unavailable("not ready: shutting down"));
    }
    if let Some(task) = state.queue.stopped_task() {
        return Err(ApiError::unavailable(format!("not ready: the queue's {task} task has stopped")));
    }
    match tokio::time::timeout(READY_STORE_TIMEOUT, state.store.store_ping()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Err(ApiError::unavailable(format!("not ready: the database does not answer: {e}")))
        }
        Err(_) => Err(ApiError::unavailable(format!(
            "not ready: the database did not answer within {}",
            humantime::format_duration(READY_STORE_TIMEOUT)
        ))),
    }
}
