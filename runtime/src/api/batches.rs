//! `/v1/batches`: many jobs in one request and one transaction, with one
//! callback when all of them have ended.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::ApiJson;
use super::jobs::{CallbackForm, JobRequest, check_callback, prepare, stored_callback};
use super::{ApiError, ApiResult, AppState, BatchView};
use crate::domain::{Callback, time::now_ms};
use crate::store::NewBatch;

/// Most jobs in one batch.
const MAX_BATCH: usize = 10_000;

/// `POST /v1/batches` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The jobs, each as in `POST /v1/jobs`.
    pub jobs: Vec<JobRequest>,
    /// Fires once, when every job of the batch has ended.
    pub callback: Option<Callback>,
}

/// `POST /v1/batches` answer.
#[derive(Serialize, ToSchema)]
pub struct BatchCreated {
    /// The batch's id.
    pub id: String,
    /// Jobs in it.
    pub total: usize,
    /// The jobs' ids, in request order.
    pub job_ids: Vec<String>,
}

/// Dispatches many jobs at once (all or none: one bad job rejects the batch,
/// and the message names it as `jobs[i]`).
#[utoipa::path(post, path = "/v1/batches", request_body = BatchRequest,
    responses((status = 201, body = BatchCreated), (status = 400, body = super::error::ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult<(StatusCode, Json<BatchCreated>)> {
    if req.jobs.is_empty() || req.jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "jobs must hold between 1 and {MAX_BATCH} jobs, got {}",
            req.jobs.len()
        )));
    }
    let now = now_ms();
    if let Some(c) = &req.callback {
        check_callback(&state, c, CallbackForm::Body)?;
    }
    let id = uuid::Uuid::now_v7().to_string();
    let batch = NewBatch {
        callback: req.callback.map(|c| stored_callback(&state, c, &id)),
        id,
        tenant: state.tenant.clone(),
        created_at: now,
    };
    let mut jobs = Vec::with_capacity(req.jobs.len());
    for (i, job) in req.jobs.into_iter().enumerate() {
        let (alias, payload, opts) = job.split();
        let job = prepare(&state, &alias, payload, opts, Some(batch.id.clone()), now)
            .await
            .map_err(|e| e.prefixed(&format!("jobs[{i}]")))?;
        jobs.push(job);
    }
    let total = jobs.len();
    state.backpressure.admit(state.store.as_ref(), total as u64).await?;
    let id = batch.id.clone();
    let inserted = state.inserter.insert(jobs, Some(batch)).await?;
    state.queue.notify_dispatch();
    Ok((
        StatusCode::CREATED,
        Json(BatchCreated { id, total, job_ids: inserted.into_iter().map(|i| i.job.id).collect() }),
    ))
}

/// A batch: counts per status and whether it is done.
#[utoipa::path(get, path = "/v1/batches/{id}", responses((status = 200, body = BatchView), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BatchView>> {
    Ok(Json(state.store.batch_get(&state.tenant, &id).await?.into()))
}
