//! Acting on many jobs at once (`POST /v1/jobs/retry|cancel|delete` with a
//! filter) and deleting ended jobs and finished batches.
//!
//! A bulk action runs in steps of [`BULK_STEP`] jobs, each a short
//! transaction of its own (`Store::job_bulk`), yielding between them: on
//! SQLite the one writer is free for dispatches between steps, and on
//! PostgreSQL a step skips the rows claims hold. The answer counts what was
//! done; a job that changed state in between (say, finished while a cancel
//! ran) is left as it is and not counted.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Admin, Dispatch, Tenant};
use super::error::ErrorBody;
use super::extract::ApiJson;
use super::{ApiError, ApiResult, AppState};
use crate::domain::{JobStatus, QueueName, TenantId, time::now_ms, time::parse_rfc3339};
use crate::store::{BulkAction, JobBulk, JobFilter};

/// Jobs per step of a bulk action.
pub const BULK_STEP: u32 = 500;

/// Which of the caller's jobs a bulk action takes: every condition given
/// holds (`{}`: every job the action applies to).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobFilterRequest {
    /// Only these statuses, of those the action applies to (retry: `failed`,
    /// `dead`, `cancelled`; cancel: `queued`, `scheduled`, `running`,
    /// `failed`; delete: `succeeded`, `dead`, `cancelled`); the others take
    /// nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 7)]
    pub status: Vec<JobStatus>,
    /// Only this alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub alias: Option<String>,
    /// Only this queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub queue: Option<String>,
    /// Only this context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Only jobs created at or after this time (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|\+00:00)$")]
    pub created_after: Option<String>,
    /// Only jobs created before this time (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|\+00:00)$")]
    pub created_before: Option<String>,
}

/// What a bulk action did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BulkDone {
    /// `retry`, `cancel` or `delete`.
    pub action: String,
    /// Jobs retried, cancelled or deleted.
    pub affected: u64,
}

/// What `DELETE /v1/batches/{id}` did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchDeleted {
    /// The batch.
    pub id: String,
    /// Its jobs deleted with it.
    pub jobs: u64,
}

impl JobFilterRequest {
    /// The filter for `tenant`: names checked as dispatches check them,
    /// times as RFC 3339.
    pub fn into_filter(self, tenant: &TenantId) -> ApiResult<JobFilter> {
        let time = |field: &str, v: Option<String>| {
            v.map(|s| {
                parse_rfc3339(&s).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{field} must be an RFC 3339 time like 2026-01-31T12:00:00Z, got {s:?}"
                    ))
                })
            })
            .transpose()
        };
        if let Some(alias) = &self.alias {
            crate::domain::AliasName::parse(alias.as_str()).map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        if let Some(queue) = &self.queue {
            QueueName::parse(queue.as_str()).map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        Ok(JobFilter {
            tenant: tenant.clone(),
            statuses: self.status,
            alias: self.alias,
            queue: self.queue,
            context: self.context,
            created_after: time("created_after", self.created_after)?,
            created_before: time("created_before", self.created_before)?,
        })
    }
}

fn name(action: BulkAction) -> &'static str {
    match action {
        BulkAction::Retry => "retry",
        BulkAction::Cancel => "cancel",
        BulkAction::Delete => "delete",
    }
}

/// Runs `action` over the filter's jobs in steps (see the module doc).
async fn run(state: &AppState, filter: JobFilter, action: BulkAction) -> ApiResult<Json<BulkDone>> {
    let mut after = None;
    let mut affected = 0u64;
    loop {
        let step = JobBulk { filter: filter.clone(), action, after, limit: BULK_STEP, now: now_ms() };
        let step = state.store.job_bulk(step).await?;
        affected += step.done.len() as u64;
        for (job, _) in &step.done {
            if action == BulkAction::Cancel {
                state.queue.cancel_running(&job.id);
            }
            state.queue.events().changed(&job.id);
        }
        state.queue.announce_bulk(action, &step).await;
        if action == BulkAction::Retry && !step.done.is_empty() {
            state.queue.notify_dispatch();
        }
        match step.next {
            Some(next) => after = Some(next),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    Ok(Json(BulkDone { action: name(action).into(), affected }))
}

/// Queues every failed, dead or cancelled job the filter matches again,
/// each with a fresh attempt budget (as `POST /v1/jobs/{id}/retry`).
#[utoipa::path(post, path = "/v1/jobs/retry", tag = "jobs", operation_id = "retryJobs",
    request_body = JobFilterRequest,
    responses((status = 200, description = "How many jobs were queued again.", body = BulkDone),
              (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(super) async fn retry(
    State(state): State<AppState>,
    tenant: Tenant<Dispatch>,
    ApiJson(req): ApiJson<JobFilterRequest>,
) -> ApiResult<Json<BulkDone>> {
    let filter = req.into_filter(&tenant)?;
    run(&state, filter, BulkAction::Retry).await
}

/// Cancels every job not yet ended that the filter matches (running ones
/// are interrupted, on whichever node runs them).
#[utoipa::path(post, path = "/v1/jobs/cancel", tag = "jobs", operation_id = "cancelJobs",
    request_body = JobFilterRequest,
    responses((status = 200, description = "How many jobs were cancelled.", body = BulkDone),
              (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    tenant: Tenant<Dispatch>,
    ApiJson(req): ApiJson<JobFilterRequest>,
) -> ApiResult<Json<BulkDone>> {
    let filter = req.into_filter(&tenant)?;
    run(&state, filter, BulkAction::Cancel).await
}

/// Deletes every ended job the filter matches whose callback is settled
/// (jobs not ended, and callbacks still being delivered, are left).
#[utoipa::path(post, path = "/v1/jobs/delete", tag = "jobs", operation_id = "deleteJobs",
    request_body = JobFilterRequest,
    responses((status = 200, description = "How many jobs were deleted.", body = BulkDone),
              (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    ApiJson(req): ApiJson<JobFilterRequest>,
) -> ApiResult<Json<BulkDone>> {
    let filter = req.into_filter(&tenant)?;
    run(&state, filter, BulkAction::Delete).await
}

/// Deletes an ended job (its callback settled); 409 while it has not ended.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "deleteJob",
    params(("id" = String, Path, description = "The job's id (a UUIDv7).")),
    responses((status = 204, description = "Deleted."),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn delete_job(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.job_delete(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a finished batch (every job ended, every callback settled) with
/// its jobs; 409 while any has not.
#[utoipa::path(delete, path = "/v1/batches/{id}", tag = "batches", operation_id = "deleteBatch",
    params(("id" = String, Path, description = "The batch's id (a UUIDv7).")),
    responses((status = 200, description = "Deleted, with its jobs.", body = BatchDeleted),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn delete_batch(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(id): Path<String>,
) -> ApiResult<Json<BatchDeleted>> {
    let jobs = state.store.batch_delete(&tenant, &id).await?;
    Ok(Json(BatchDeleted { id, jobs }))
}
