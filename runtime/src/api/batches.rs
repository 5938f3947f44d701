//! `/v1/batches`: many jobs in one request and one transaction, with one
//! callback when all of them have ended.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;

use super::auth::{Dispatch, Read, Tenant};
use super::error::ErrorBody;
use super::extract::ApiJson;
use super::jobs::JobRequest;
use super::submit::{BatchSpec, Submission, submit_many};
use super::{ApiResult, AppState, BatchView};
use crate::domain::Callback;

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
    ApiJson(req): ApiJson<BatchRequest>,
) -> ApiResult<(StatusCode, Json<BatchCreated>)> {
    let jobs = req.jobs.into_iter().map(Submission::from).collect();
    let batch = BatchSpec::new(req.callback);
    let id = batch.id.clone();
    let inserted = submit_many(&state, &tenant, jobs, Some(batch)).await?;
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
