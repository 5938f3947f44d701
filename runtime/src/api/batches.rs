//! `/v1/batches`: many jobs in one request and one transaction, with one
//! callback when all of them have ended.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Dispatch, Read, Tenant};
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery, TraceContext};
use super::jobs::JobRequest;
use super::submit::{BatchSpec, Origin, Submission, check_range, submit_many};
use super::{ApiError, ApiResult, AppState, BatchPage, BatchView};
use crate::domain::Callback;
use crate::store::BatchList;

/// `POST /v1/batches` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The jobs, each as in `POST /v1/jobs`.
    #[schema(min_items = 1, max_items = 10000)]
    pub jobs: Vec<JobRequest>,
    /// Fires once, when every job of the batch has ended.
    pub callback: Option<Callback>,
}

/// `POST /v1/batches` answer.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchCreated {
    /// The batch's id.
    pub id: String,
    /// Jobs the batch owns: those it created. Jobs that existed already under
    /// their idempotency key (or matched their `unique`) are not counted, and the batch (and its callback)
    /// does not wait for them; a batch that owns none is done at once.
    pub total: usize,
    /// The jobs' ids, in request order (an existing job's id where its key
    /// matched one).
    pub job_ids: Vec<String>,
    /// The ids among `job_ids` of jobs that already existed under their
    /// idempotency key (or matched their `unique`) and so are not part of
    /// this batch (each once).
    pub existing: Vec<String>,
}

/// Dispatches many jobs at once (all or none: one bad job rejects the batch,
/// and the message names it as `jobs[i]`; an idempotency key reused with a
/// different request is a 409 naming `jobs[i]` and the key).
#[utoipa::path(post, path = "/v1/batches", tag = "batches", operation_id = "createBatch", request_body = BatchRequest,
    responses((status = 201, description = "Dispatched: the batch and its jobs' ids.", body = BatchCreated),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    tenant: Tenant<Dispatch>,
    TraceContext(trace): TraceContext,
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult<(StatusCode, Json<BatchCreated>)> {
    let jobs = req.jobs.into_iter().map(Submission::from).collect();
    let batch = BatchSpec::new(req.callback);
    let id = batch.id.clone();
    let origin = Origin { trace, route: "/v1/batches" };
    let inserted = submit_many(&state, &tenant, jobs, Some(batch), origin).await?;
    // Same accounting as the store's: the distinct jobs created with this batch.
    let mut owned = HashSet::new();
    let (mut existing, mut seen) = (Vec::new(), HashSet::new());
    for i in &inserted {
        if i.job.batch_id.as_deref() == Some(id.as_str()) {
            owned.insert(i.job.id.as_str());
        } else if seen.insert(i.job.id.as_str()) {
            existing.push(i.job.id.clone());
        }
    }
    let total = owned.len();
    let job_ids = inserted.iter().map(|i| i.job.id.clone()).collect();
    Ok((StatusCode::CREATED, Json(BatchCreated { id, total, job_ids, existing })))
}

/// `GET /v1/batches` parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchListQuery {
    /// Most batches in the page (1 to 1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (absent or empty: the first page).
    #[param(pattern = r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$")]
    pub cursor: Option<String>,
}

/// The tenant's batches, newest first (keyset pages: stable under new
/// batches). Each shows its size, whether it is done and its callback, read
/// from the batch alone: `GET /v1/batches/{id}` counts a batch's jobs by status.
#[utoipa::path(get, path = "/v1/batches", tag = "batches", operation_id = "listBatches", params(BatchListQuery),
    responses((status = 200, description = "A page of batches.", body = BatchPage), (status = 400, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    ApiQuery(q): ApiQuery<BatchListQuery>,
) -> ApiResult<Json<BatchPage>> {
    let limit = q.limit.unwrap_or(50);
    check_range("limit", u64::from(limit), 1, 1000)?;
    let before = q.cursor.filter(|c| !c.is_empty());
    if let Some(c) = &before
        && uuid::Uuid::parse_str(c).is_err()
    {
        return Err(ApiError::invalid(format!("cursor must be a batch id from next_cursor, got {c:?}")));
    }
    // One more than asked tells whether a next page exists.
    let mut batches =
        state.store.batch_list(BatchList { tenant: tenant.0, before, limit: limit + 1 }).await?;
    let more = batches.len() > limit as usize;
    batches.truncate(limit as usize);
    let next_cursor = more.then(|| batches.last().map(|b| b.id.clone())).flatten();
    Ok(Json(BatchPage { batches: batches.into_iter().map(Into::into).collect(), next_cursor }))
}

/// A batch: counts per status and whether it is done.
#[utoipa::path(get, path = "/v1/batches/{id}", tag = "batches", operation_id = "getBatch",
    params(("id" = String, Path, description = "The batch's id (a UUIDv7).")),
    responses((status = 200, description = "The batch.", body = BatchView), (status = 404, body = ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<BatchView>> {
    Ok(Json(state.store.batch_get(&tenant, &id).await?.into()))
}
