//! `/v1/jobs` and `/v1/dispatch/{alias}`: dispatch, inspect, wait, cancel, retry.
//! Dispatches go through [`submit`](super::submit), where their rules live.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Dispatch, Read, Tenant};
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery, TraceContext, body_bytes, parse_json};
use super::submit::{CallbackForm, JobOptions, Origin, Submission, check_range, submit};
use super::unique::UniqueRequest;
use super::{ApiError, ApiResult, AppState, JobPage, JobView};
use crate::domain::{Callback, JobStatus, json_int, time::now_ms};
use crate::store::{JobCursor, JobList, JobOrder, JobWatch};

/// Longest wait of `GET /v1/jobs/{id}/wait`.
const MAX_WAIT_MS: u64 = 300_000;

/// `POST /v1/jobs` body.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// Alias to run; resolved now, and its module pinned on the job.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "echo")]
    pub alias: String,
    /// Any JSON value, handed to the plugin.
    #[schema(value_type = Value, example = json!([1, 2, 3]))]
    pub payload: Box<RawValue>,
    /// 0..=1000, higher runs first (default: the alias's, else 500).
    #[schema(minimum = 0, maximum = 1000)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub priority: Option<i64>,
    /// Queue (default: the alias's, else `default`).
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Free tag to filter by (at most 200 characters).
    #[schema(max_length = 200)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Run no earlier than this many ms from now (0..=31536000000, one year).
    #[schema(minimum = 0, maximum = 31536000000_u64)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub delay_ms: Option<u64>,
    /// Run no earlier than this time: RFC 3339 in UTC (`Z` or `+00:00`), at
    /// most one year (31536000000 ms, the `delay_ms` maximum) after the
    /// server's clock. A later time is refused with 400 naming the latest
    /// accepted one; a past time is due now.
    // The bound moves with the clock, which no JSON Schema keyword can state:
    // the description says it, the pattern says the form the server reads
    // (`domain::time::parse_rfc3339`: year 1970 or later, UTC only).
    #[schema(
        format = DateTime,
        pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|\+00:00)$",
        example = "2026-01-31T12:00:00Z"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at: Option<String>,
    /// Attempts before the job is dead (1..=100).
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub max_attempts: Option<u32>,
    /// Wall-clock limit per attempt, in ms (1..=86400000).
    #[schema(minimum = 1, maximum = 86400000)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub timeout_ms: Option<u64>,
    /// Fuel per attempt (1..=9223372036854775807).
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub fuel: Option<u64>,
    /// Memory limit in MiB (1..=the engine's ceiling).
    #[schema(minimum = 1)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub memory_mb: Option<u64>,
    /// A repeated key with the same request returns the first job instead of
    /// creating one; with a different request (payload, alias or options) it
    /// is refused with 409 `idempotency_conflict`.
    #[schema(pattern = r"^[!-~]{1,200}$")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Where to POST the outcome when the job ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
    /// Answer an existing matching job (200) instead of creating one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique: Option<UniqueRequest>,
}

/// Options of `POST /v1/dispatch/{alias}`, as query parameters.
#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DispatchQuery {
    /// 0..=1000.
    #[param(minimum = 0, maximum = 1000)]
    pub priority: Option<i64>,
    /// Queue.
    #[param(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub queue: Option<String>,
    /// Free tag (at most 200 characters).
    #[param(max_length = 200)]
    pub context: Option<String>,
    /// Delay in ms (0..=31536000000, one year).
    #[param(minimum = 0, maximum = 31536000000_u64)]
    pub delay_ms: Option<u64>,
    /// Attempts (1..=100).
    #[param(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Wall-clock limit per attempt, in ms (1..=86400000).
    #[param(minimum = 1, maximum = 86400000)]
    pub timeout_ms: Option<u64>,
    /// Fuel per attempt (1..=9223372036854775807).
    #[param(minimum = 1, maximum = 9223372036854775807_u64)]
    pub fuel: Option<u64>,
    /// Memory in MiB (1..=the engine's ceiling).
    #[param(minimum = 1)]
    pub memory_mb: Option<u64>,
    /// Idempotency key (1 to 200 printable ASCII characters without spaces).
    #[param(pattern = r"^[!-~]{1,200}$")]
    pub idempotency_key: Option<String>,
    /// Callback URL (`http` or `https`, a public address).
    #[param(format = "uri", max_length = 2048, pattern = r"^[hH][tT][tT][pP][sS]?://[^/?#]")]
    pub callback_url: Option<String>,
    /// Callback signing secret (needs `callback_url`; never shown again).
    #[param(min_length = 1, max_length = 1024)]
    pub callback_secret: Option<String>,
}

/// `202` answer of the short form.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The job's id.
    pub id: String,
}

impl From<JobRequest> for Submission {
    fn from(r: JobRequest) -> Self {
        let options = JobOptions {
            priority: r.priority,
            queue: r.queue,
            context: r.context,
            delay_ms: r.delay_ms,
            run_at: r.run_at,
            max_attempts: r.max_attempts,
            timeout_ms: r.timeout_ms,
            fuel: r.fuel,
            memory_mb: r.memory_mb,
            idempotency_key: r.idempotency_key,
            callback: r.callback,
            unique: r.unique,
        };
        Submission { alias: r.alias, payload: r.payload, options, form: CallbackForm::Body }
    }
}

impl DispatchQuery {
    /// The job of the short form: `alias` from the path, `payload` the body.
    fn into_dispatch(self, alias: String, payload: Box<RawValue>) -> ApiResult<Submission> {
        let callback = match (self.callback_url, self.callback_secret) {
            (Some(url), secret) => Some(Callback { url, headers: Default::default(), secret }),
            (None, Some(_)) => return Err(ApiError::invalid("callback_secret needs callback_url")),
            (None, None) => None,
        };
        let options = JobOptions {
            priority: self.priority,
            queue: self.queue,
            context: self.context,
            delay_ms: self.delay_ms,
            run_at: None,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout_ms,
            fuel: self.fuel,
            memory_mb: self.memory_mb,
            idempotency_key: self.idempotency_key,
            callback,
            unique: None,
        };
        Ok(Submission { alias, payload, options, form: CallbackForm::Query })
    }
}

/// Dispatches a job: 201 with the job, or 200 with the first job when the
/// same request came before with its idempotency key (or with the existing
/// job its `unique` matched); 409 when the key came with a different request.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs", operation_id = "createJob", request_body = JobRequest,
    responses((status = 201, description = "Dispatched: the new job, `running` already when a worker of this node had room for it (it was claimed in its insert), else `queued` or `scheduled`.", body = JobView),
              (status = 200, description = "The job first dispatched with this idempotency key, or the existing job its `unique` matched.", body = JobView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 429, body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    tenant: Tenant<Dispatch>,
    TraceContext(trace): TraceContext,
    ApiJson(req): ApiJson<JobRequest>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let origin = Origin { trace, route: "/v1/jobs" };
    let inserted = submit(&state, &tenant, req.into(), origin).await?;
    let status = if inserted.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(inserted.job.into())))
}

/// The short form: the body is the payload itself, options are query parameters.
/// This is where another wasmq instance's callback can land (submit/response).
#[utoipa::path(post, path = "/v1/dispatch/{alias}", tag = "jobs", operation_id = "dispatchJob",
    params(("alias" = String, Path, description = "The alias to run.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"), DispatchQuery),
    request_body(content = Value, content_type = "application/json", description = "The payload: any JSON value."),
    responses((status = 202, description = "Dispatched (or the job first dispatched with this idempotency key).", body = Accepted),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(super) async fn dispatch(
    State(state): State<AppState>,
    tenant: Tenant<Dispatch>,
    Path(alias): Path<String>,
    ApiQuery(q): ApiQuery<DispatchQuery>,
    TraceContext(trace): TraceContext,
    req: Request,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let bytes = body_bytes(req, &state).await?;
    let payload: Box<RawValue> = parse_json(&bytes)?;
    let origin = Origin { trace, route: "/v1/dispatch/{alias}" };
    let inserted = submit(&state, &tenant, q.into_dispatch(alias, payload)?, origin).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { id: inserted.job.id })))
}

/// `GET /v1/jobs` filters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this status.
    #[param(value_type = Option<JobStatus>, inline)]
    pub status: Option<String>,
    /// Only this alias.
    pub alias: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this context.
    pub context: Option<String>,
    /// Only the jobs of this batch.
    pub batch: Option<String>,
    /// `created` (newest first, default) or `priority` (highest first).
    #[param(inline)]
    pub order: Option<JobOrder>,
    /// Most jobs per page, 1..=1000 (default 100); a page also ends at 4 MiB.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (absent or empty: the first page).
    #[param(
        pattern = r"^((0|[1-9][0-9]{0,2}|1000)\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$"
    )]
    pub cursor: Option<String>,
}

/// Byte budget of a page of `GET /v1/jobs`: jobs are added while their stored
/// payload, result, logs and messages (plus 1 KiB each) stay within it, and the
/// first job always is. Bounds the response and the memory that builds it;
/// jobs past it are not read.
pub const PAGE_BYTES: u64 = 4 << 20;

/// A page of jobs (keyset pagination: stable under concurrent inserts).
///
/// A page holds at most `limit` jobs and ends early once the jobs in it reach
/// 4 MiB of stored payload, result, logs and messages (counting 1 KiB more per
/// job); a single larger job comes alone. `next_cursor` is present exactly
/// when more jobs follow: pass it as `cursor` to continue where this page
/// ended, so following it visits every job once. Each job is complete, as in
/// `GET /v1/jobs/{id}`.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", operation_id = "listJobs", params(ListQuery),
    responses((status = 200, description = "A page of jobs.", body = JobPage), (status = 400, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<JobPage>> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(format!(
                    "status must be one of queued, scheduled, running, succeeded, failed, dead, cancelled; got {s:?}"
                ))
            })
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be between 1 and 1000, got {limit}")));
    }
    let order = q.order.unwrap_or_default();
    // An empty cursor is the first page (as an absent one), like `cursor=` from a form.
    let after = q.cursor.as_deref().filter(|c| !c.is_empty()).map(|c| parse_cursor(c, order)).transpose()?;
    let page = state
        .store
        .job_list(JobList {
            tenant: tenant.0,
            status,
            alias: q.alias,
            queue: q.queue,
            context: q.context,
            batch: q.batch,
            order,
            limit,
            after,
            max_bytes: PAGE_BYTES,
        })
        .await?;
    let next_cursor =
        page.more.then(|| page.jobs.last().map(|j| format!("{}.{}", j.priority, j.id))).flatten();
    Ok(Json(JobPage { jobs: page.jobs.into_iter().map(Into::into).collect(), next_cursor }))
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "getJob", params(("id" = String, Path, description = "The job's id (a UUIDv7).")),
    responses((status = 200, description = "The job.", body = JobView), (status = 404, body = ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(state.store.job_get(&tenant, &id).await?.into()))
}

/// `wait` parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// How long to wait for the job to end, in ms (0..=300000, default 30000).
    #[param(minimum = 0, maximum = 300000)]
    pub timeout_ms: Option<u64>,
}

/// Reads a `next_cursor`: `<priority>.<id>` of the page's last job, so the
/// next page does not depend on that job still existing. Exactly the form the
/// server writes (the document's pattern), nothing looser.
fn parse_cursor(cursor: &str, _order: JobOrder) -> ApiResult<JobCursor> {
    let parsed = cursor.split_once('.').and_then(|(p, id)| {
        let canonical = |p: &str| p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
        let priority = p.parse::<i32>().ok().filter(|n| (0..=1000).contains(n) && canonical(p))?;
        let uuid = uuid::Uuid::parse_str(id).ok().filter(|u| u.hyphenated().to_string() == id)?;
        Some(JobCursor { priority, id: uuid.hyphenated().to_string() })
    });
    parsed.ok_or_else(|| {
        ApiError::invalid(format!("cursor must be a next_cursor from this endpoint, got {cursor:?}"))
    })
}

/// Long-polls until the job is terminal, or returns it as it is at the timeout
/// (or as soon as the server starts shutting down).
///
/// At most `max_waits` (server setting, default 10000) waits are open at once;
/// past that the answer is 503 `at_capacity` with `Retry-After`. A tenant past
/// its own `max_waits` quota gets 429 `quota_exceeded`.
#[utoipa::path(get, path = "/v1/jobs/{id}/wait", tag = "jobs", operation_id = "waitJob", params(("id" = String, Path, description = "The job's id (a UUIDv7)."), WaitQuery),
    responses((status = 200, description = "The job: ended, or as it is at the timeout.", body = JobView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub(super) async fn wait(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> ApiResult<Response> {
    let timeout = q.timeout_ms.unwrap_or(30_000);
    check_range("timeout_ms", timeout, 0, MAX_WAIT_MS)?;
    let quotas = state.quotas.of(state.store.as_ref(), &tenant).await?;
    let _slot = state.watch_caps.wait(&tenant, quotas.max_waits)?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout);
    // Status only while waiting (pushed by this node, polled narrowly for
    // others'); registered until this request ends, however it ends.
    let mut follow = state.queue.follow(&tenant, &id).await?;
    while !follow.view().status.is_terminal() {
        tokio::select! {
            changed = follow.changed(Some(deadline)) => if !changed? { break },
            // Shutting down: answer with the job as it is now.
            () = state.shutdown.cancelled() => break,
        }
    }
    // The whole job, read once: at its end (shared with the job's other
    // watchers ending now), or as it is at the timeout.
    let job = if follow.view().status.is_terminal() {
        super::events::final_job(&state, &tenant, &follow, &id).await?
    } else {
        drop(follow);
        JobView::from(state.store.job_get(&tenant, &id).await?).one_line_json().map_err(ApiError::internal)?
    };
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], job).into_response())
}

/// Cancels a job that has not ended; a running job is interrupted within milliseconds.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs", operation_id = "cancelJob", params(("id" = String, Path, description = "The job's id (a UUIDv7).")),
    responses((status = 200, description = "The cancelled job.", body = JobView),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    tenant: Tenant<Dispatch>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let cancelled = state.store.job_cancel(&tenant, &id, now_ms()).await?;
    state.queue.cancel_running(&id);
    state.queue.events().publish(&id, JobWatch::from(&cancelled.job));
    state.queue.announce_cancelled(&cancelled).await;
    Ok(Json(cancelled.job.into()))
}

/// Queues a failed, dead or cancelled job again with a fresh attempt budget.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs", operation_id = "retryJob", params(("id" = String, Path, description = "The job's id (a UUIDv7).")),
    responses((status = 200, description = "The job, queued again.", body = JobView),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn retry(
    State(state): State<AppState>,
    tenant: Tenant<Dispatch>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let job = state.store.job_retry(&tenant, &id, now_ms()).await?;
    state.queue.events().changed(&id);
    state.queue.announce_retried(&job).await;
    state.queue.notify_dispatch();
    Ok(Json(job.into()))
}
