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
use super::jobs::{CallbackForm, JobRequest, check_callback, prepare_keyed, stored_callback};
use super::{ApiError, ApiResult, AppState, BatchView};
use crate::domain::{Callback, time::now_ms};
use crate::store::{NewBatch, StoreError};

/// Most jobs in one batch.
const MAX_BATCH: usize = 10_000;

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
#[derive(Serialize, ToSchema)]
pub struct BatchCreated {
    /// The batch's id.
    pub id: String,
    /// Jobs the batch owns: those it created. Jobs that existed already under
    /// their idempotency key are not counted, and the batch (and its callback)
    /// does not wait for them; a batch that owns none is done at once.
    pub total: usize,
    /// The jobs' ids, in request order (an existing job's id where its key
    /// matched one).
    pub job_ids: Vec<String>,
    /// The ids among `job_ids` of jobs that already existed under their
    /// idempotency key and so are not part of this batch (each once).
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
        tenant: tenant.0.clone(),
        created_at: now,
    };
    let mut jobs = Vec::with_capacity(req.jobs.len());
    for (i, job) in req.jobs.into_iter().enumerate() {
        let (alias, payload, opts) = job.split();
        let job = prepare_keyed(&state, &tenant, &alias, payload, opts, Some(batch.id.clone()), now)
            .await
            .map_err(|e| e.prefixed(&format!("jobs[{i}]")))?;
        jobs.push(job);
    }
    state.backpressure.admit(state.store.as_ref(), jobs.len() as u64).await?;
    let id = batch.id.clone();
    let keys: Vec<Option<(String, Option<String>)>> = jobs
        .iter()
        .map(|j| {
            j.idempotency_key.as_ref().map(|k| (k.as_str().to_string(), j.idempotency_fingerprint.clone()))
        })
        .collect();
    let inserted = match state.inserter.insert(jobs, Some(batch)).await {
        Ok(inserted) => inserted,
        Err(StoreError::IdempotencyConflict { key }) => {
            let index = conflicting(&keys, &key);
            let error = ApiError::from(StoreError::IdempotencyConflict { key });
            return Err(match index {
                Some(i) => error.prefixed(&format!("jobs[{i}]")),
                None => error,
            });
        }
        Err(e) => return Err(e.into()),
    };
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
    if total > 0 {
        state.queue.notify_dispatch();
    }
    let job_ids = inserted.iter().map(|i| i.job.id.clone()).collect();
    Ok((StatusCode::CREATED, Json(BatchCreated { id, total, job_ids, existing })))
}

/// Which job of a batch reused `key` with a different request: the first
/// one asking something else than the key's first job in the batch (which the
/// store met first), else that first job (it differs from the stored job).
fn conflicting(keys: &[Option<(String, Option<String>)>], key: &str) -> Option<usize> {
    let mut with_key = keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.as_ref().filter(|(k, _)| k == key).map(|(_, fingerprint)| (i, fingerprint)));
    let (first, fingerprint) = with_key.next()?;
    Some(with_key.find(|(_, f)| *f != fingerprint).map_or(first, |(i, _)| i))
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
