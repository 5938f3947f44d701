//! `/v1/queues`: queues as resources. Every caller sees the queues its jobs
//! wait or run in, with their depth; whoever runs the cluster (see
//! [`ClusterReader`]) pauses, resumes and limits them for every node and
//! every tenant.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::auth::{Caller, ClusterReader};
use super::error::ErrorBody;
use super::extract::ApiJson;
use super::{ApiError, ApiResult, AppState};
use crate::domain::{QueueLimits, QueueName, TenantId, time::now_ms, time::rfc3339};
use crate::store::{QueueChange, QueueDepth, QueueRecord, QueueUpdate};

/// A queue's jobs that have not finished, by status.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct QueueDepths {
    /// Waiting for a worker.
    pub queued: u64,
    /// Delayed until their `run_at`.
    pub scheduled: u64,
    /// Failed, waiting to retry.
    pub retrying: u64,
    /// Running (held by a node).
    pub running: u64,
}

/// One queue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    /// Its name.
    pub name: String,
    /// Paused: its jobs are accepted and none starts.
    pub paused: bool,
    /// Its limits across the cluster (absent fields: none).
    pub limits: QueueLimits,
    /// The caller's jobs in it that have not finished (the operator's view:
    /// every tenant's).
    pub depth: QueueDepths,
    /// When its controls last changed (RFC 3339); absent: never set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// Queues, by name.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    /// Every queue with unfinished jobs of the caller's, or with controls set.
    pub queues: Vec<QueueView>,
}

impl QueueView {
    fn new(name: String, record: Option<&QueueRecord>, depth: QueueDepths) -> Self {
        Self {
            name,
            paused: record.is_some_and(|r| r.paused),
            limits: record.map(|r| r.limits).unwrap_or_default(),
            depth,
            updated_at: record.map(|r| rfc3339(r.updated_at)),
        }
    }
}

fn add(depth: &mut QueueDepths, d: &QueueDepth) {
    match d.status.as_str() {
        "queued" => depth.queued += d.count,
        "scheduled" => depth.scheduled += d.count,
        "failed" => depth.retrying += d.count,
        "running" => depth.running += d.count,
        _ => {}
    }
}

/// The tenant whose jobs a caller counts (`None`: every tenant's, for the
/// operator acting for none).
fn counted(caller: &Caller) -> Option<TenantId> {
    match caller {
        Caller::Tenant { tenant, .. } => Some(tenant.clone()),
        Caller::Operator { acting_as } => acting_as.clone(),
    }
}

/// The queues: those with the caller's unfinished jobs and those with
/// controls set, each with its depth, pause and limits.
#[utoipa::path(get, path = "/v1/queues", tag = "queues", operation_id = "listQueues",
    responses((status = 200, description = "Queues by name.", body = QueueList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> ApiResult<Json<QueueList>> {
    let tenant = counted(&caller);
    let (records, depths) =
        tokio::try_join!(state.store.queue_list(), state.store.queue_depths(tenant.as_ref()))?;
    // Aliases' limits share the table; they show on their alias.
    let records: Vec<QueueRecord> =
        records.into_iter().filter(|r| crate::store::alias_of_limits_name(&r.name).is_none()).collect();
    let mut by_name: BTreeMap<String, QueueDepths> = BTreeMap::new();
    for r in &records {
        by_name.entry(r.name.clone()).or_default();
    }
    for d in &depths {
        add(by_name.entry(d.queue.clone()).or_default(), d);
    }
    let queues = by_name
        .into_iter()
        .map(|(name, depth)| {
            let record = records.iter().find(|r| r.name == name);
            QueueView::new(name, record, depth)
        })
        .collect();
    Ok(Json(QueueList { queues }))
}

/// Stores a change to the controls row `name` (a queue's, or an alias's
/// limits) and makes every node obey it: this node at once, the others by
/// the database's notice (PostgreSQL).
pub(super) async fn update_controls(
    state: &AppState,
    name: String,
    change: QueueChange,
) -> ApiResult<QueueRecord> {
    let record = state.store.queue_update(QueueUpdate { name, change, now: now_ms() }).await?;
    state.queue.queues_changed().await;
    Ok(record)
}

async fn change(state: &AppState, name: &str, change: QueueChange) -> ApiResult<Json<QueueView>> {
    let name = QueueName::parse(name).map_err(|e| ApiError::invalid(e.to_string()))?;
    let record = update_controls(state, name.as_str().to_string(), change).await?;
    let depths = state.store.queue_depths(None).await?;
    let mut depth = QueueDepths::default();
    for d in depths.iter().filter(|d| d.queue == record.name) {
        add(&mut depth, d);
    }
    Ok(Json(QueueView::new(record.name.clone(), Some(&record), depth)))
}

/// Pauses a queue on every node: its jobs are still accepted, and none
/// starts from the next claim on (jobs already running finish).
#[utoipa::path(post, path = "/v1/queues/{name}/pause", tag = "queues", operation_id = "pauseQueue",
    params(("name" = String, Path, description = "The queue.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "The queue, paused.", body = QueueView),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn pause(
    State(state): State<AppState>,
    _: ClusterReader,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueView>> {
    change(&state, &name, QueueChange::Paused(true)).await
}

/// Resumes a paused queue on every node: its jobs start again at once.
#[utoipa::path(post, path = "/v1/queues/{name}/resume", tag = "queues", operation_id = "resumeQueue",
    params(("name" = String, Path, description = "The queue.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "The queue, running.", body = QueueView),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn resume(
    State(state): State<AppState>,
    _: ClusterReader,
    Path(name): Path<String>,
) -> ApiResult<Json<QueueView>> {
    change(&state, &name, QueueChange::Paused(false)).await
}

/// Replaces a queue's limits, which hold across all nodes together: at most
/// `concurrency` of its jobs running at once, and at most `rate.max` started
/// per `rate.per_ms`, at most `rate.burst` at once (a token bucket shared by
/// every node, full when the rate is new, kept when the same rate is set
/// again). `{}` removes both.
#[utoipa::path(put, path = "/v1/queues/{name}/limits", tag = "queues", operation_id = "setQueueLimits",
    params(("name" = String, Path, description = "The queue.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    request_body = QueueLimits,
    responses((status = 200, description = "The queue with its new limits.", body = QueueView),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody)))]
pub(super) async fn set_limits(
    State(state): State<AppState>,
    _: ClusterReader,
    Path(name): Path<String>,
    ApiJson(limits): ApiJson<QueueLimits>,
) -> ApiResult<Json<QueueView>> {
    limits.validate().map_err(ApiError::invalid)?;
    change(&state, &name, QueueChange::Limits(limits)).await
}
