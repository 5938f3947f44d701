//! `/v1/jobs` and `/v1/dispatch/{alias}`: dispatch, inspect, wait, cancel, retry.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiQuery, body_bytes, parse_json};
use super::{ApiError, ApiResult, AppState, JobPage, JobView};
use crate::domain::{
    Callback, IdempotencyKey, JobStatus, Limits, QueueName, time::now_ms, time::parse_rfc3339, time::rfc3339,
};
use crate::store::{AliasConfig, JobList, JobOrder, NewJob};

/// Default priority: the middle of 0..=1000.
const DEFAULT_PRIORITY: i64 = 500;
/// Longest `context` tag.
const MAX_CONTEXT: usize = 200;
/// Longest wait of `GET /v1/jobs/{id}/wait`.
const MAX_WAIT_MS: u64 = 300_000;
/// Furthest ahead a job may be scheduled (`delay_ms`, `run_at`): one year.
/// Bounding it keeps every stored time far inside what `i64` milliseconds and
/// RFC 3339 can hold, and a job due in a year is already a scheduling mistake.
pub const MAX_DELAY_MS: u64 = 365 * 24 * 3600 * 1000;

/// `POST /v1/jobs` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// Alias to run; resolved now, and its module pinned on the job.
    pub alias: String,
    /// Any JSON value, handed to the plugin.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// 0..=1000, higher runs first (default: the alias's, else 500).
    pub priority: Option<i64>,
    /// Queue (default: the alias's, else `default`).
    pub queue: Option<String>,
    /// Free tag to filter by (at most 200 bytes).
    pub context: Option<String>,
    /// Run no earlier than this many ms from now (0..=31536000000, one year).
    pub delay_ms: Option<u64>,
    /// Run no earlier than this time (RFC 3339, UTC; at most one year ahead).
    pub run_at: Option<String>,
    /// Attempts before the job is dead (1..=100).
    pub max_attempts: Option<u32>,
    /// Wall-clock limit per attempt, in ms (1..=86400000).
    pub timeout_ms: Option<u64>,
    /// Fuel per attempt (1..=9223372036854775807).
    pub fuel: Option<u64>,
    /// Memory limit in MiB (1..=the engine's ceiling).
    pub memory_mb: Option<u64>,
    /// A repeated key returns the first job instead of creating one.
    pub idempotency_key: Option<String>,
    /// Where to POST the outcome when the job ends.
    pub callback: Option<Callback>,
}

/// Options of `POST /v1/dispatch/{alias}`, as query parameters.
#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DispatchQuery {
    /// 0..=1000.
    pub priority: Option<i64>,
    /// Queue.
    pub queue: Option<String>,
    /// Free tag.
    pub context: Option<String>,
    /// Delay in ms (0..=31536000000, one year).
    pub delay_ms: Option<u64>,
    /// Attempts (1..=100).
    pub max_attempts: Option<u32>,
    /// Wall-clock limit per attempt, in ms (1..=86400000).
    pub timeout_ms: Option<u64>,
    /// Fuel per attempt (1..=9223372036854775807).
    pub fuel: Option<u64>,
    /// Memory in MiB (1..=the engine's ceiling).
    pub memory_mb: Option<u64>,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// Callback URL.
    pub callback_url: Option<String>,
    /// Callback signing secret.
    pub callback_secret: Option<String>,
}

/// `202` answer of the short form.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The job's id.
    pub id: String,
}

/// Per-job options, from either form.
#[derive(Default)]
pub(super) struct JobOptions {
    pub(super) priority: Option<i64>,
    pub(super) queue: Option<String>,
    pub(super) context: Option<String>,
    pub(super) delay_ms: Option<u64>,
    pub(super) run_at: Option<String>,
    pub(super) max_attempts: Option<u32>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) fuel: Option<u64>,
    pub(super) memory_mb: Option<u64>,
    pub(super) idempotency_key: Option<String>,
    pub(super) callback: Option<Callback>,
}

impl JobRequest {
    pub(super) fn split(self) -> (String, Box<RawValue>, JobOptions) {
        let options = JobOptions {
            priority: self.priority,
            queue: self.queue,
            context: self.context,
            delay_ms: self.delay_ms,
            run_at: self.run_at,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout_ms,
            fuel: self.fuel,
            memory_mb: self.memory_mb,
            idempotency_key: self.idempotency_key,
            callback: self.callback,
        };
        (self.alias, self.payload, options)
    }
}

/// The limits of a job: server defaults, then the alias's, then the job's own.
/// Each field a client set is checked against its range first, so the 400
/// names the field as the client spelled it (`memory_mb`, not bytes).
pub(super) fn limits(state: &AppState, alias: &AliasConfig, job: &JobOptions) -> ApiResult<Limits> {
    let mut l: Limits = state.default_limits.clone();
    if let Some(f) = job.fuel.or(alias.fuel) {
        check_range("fuel", f, 1, MAX_FUEL)?;
        l.fuel = Some(f);
    }
    if let Some(t) = job.timeout_ms.or(alias.timeout_ms) {
        check_range("timeout_ms", t, 1, MAX_TIMEOUT_MS)?;
        l.timeout = Duration::from_millis(t);
    }
    if let Some(m) = job.memory_mb.or(alias.memory_mb) {
        let max_mb = state.engine.settings().max_memory_bytes >> 20;
        check_range("memory_mb", m, 1, max_mb)?;
        l.memory_bytes = m << 20;
    }
    state.engine.validate_limits(&l).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(l)
}

/// Largest `fuel` (what wasmtime's fuel counter can hold).
const MAX_FUEL: u64 = i64::MAX as u64;
/// Largest `timeout_ms`: one day, as [`Limits::validate`] allows.
const MAX_TIMEOUT_MS: u64 = 24 * 3600 * 1000;

/// A 400 naming `field` and its range unless `min <= value <= max`.
pub(super) fn check_range(field: &str, value: u64, min: u64, max: u64) -> ApiResult<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("{field} must be between {min} and {max}, got {value}")))
    }
}

/// When a job is due: now, `delay_ms` from now, or `run_at`, at most
/// [`MAX_DELAY_MS`] ahead (a `run_at` in the past is due now).
fn due_at(delay_ms: Option<u64>, run_at: Option<&str>, now: i64) -> ApiResult<i64> {
    match (delay_ms, run_at) {
        (Some(_), Some(_)) => Err(ApiError::invalid("delay_ms and run_at cannot both be given")),
        (Some(d), None) => {
            if d > MAX_DELAY_MS {
                return Err(ApiError::invalid(format!(
                    "delay_ms must be between 0 and {MAX_DELAY_MS} (one year), got {d}"
                )));
            }
            // Both are far below i64::MAX: `now` is today, `d` at most a year.
            Ok(now.saturating_add(d as i64))
        }
        (None, Some(t)) => {
            let at = parse_rfc3339(t).ok_or_else(|| {
                ApiError::invalid(format!(
                    "run_at must be an RFC 3339 time like 2026-01-31T12:00:00Z, got {t:?}"
                ))
            })?;
            let latest = now.saturating_add(MAX_DELAY_MS as i64);
            if at > latest {
                return Err(ApiError::invalid(format!(
                    "run_at must be at most one year ahead (no later than {}), got {t:?}",
                    rfc3339(latest)
                )));
            }
            Ok(at)
        }
        (None, None) => Ok(now),
    }
}

fn check_callback(c: &Callback) -> ApiResult<()> {
    let ok = (c.url.starts_with("http://") || c.url.starts_with("https://"))
        && reqwest::Url::parse(&c.url).is_ok();
    if !ok {
        return Err(ApiError::invalid(format!("callback.url must be an http or https URL, got {:?}", c.url)));
    }
    for name in c.headers.keys() {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ApiError::invalid(format!("callback.headers: {name:?} is not a valid header name")));
        }
    }
    Ok(())
}

/// Validates a dispatch and builds the job to insert (the alias is resolved and
/// its module pinned here, so a later rollback never changes queued work).
pub(super) async fn prepare(
    state: &AppState,
    alias: &str,
    payload: Box<RawValue>,
    opts: JobOptions,
    batch_id: Option<String>,
    now: i64,
) -> ApiResult<NewJob> {
    let alias = super::aliases::parse_alias(alias)?;
    let record = state.aliases.get(state.store.as_ref(), &state.tenant, &alias).await?;
    let cfg = &record.config;
    let priority = opts.priority.or(cfg.priority.map(i64::from)).unwrap_or(DEFAULT_PRIORITY);
    if !(0..=1000).contains(&priority) {
        return Err(ApiError::invalid(format!("priority must be between 0 and 1000, got {priority}")));
    }
    let max_attempts = opts.max_attempts.or(cfg.max_attempts).unwrap_or(state.default_max_attempts);
    if !(1..=100).contains(&max_attempts) {
        return Err(ApiError::invalid(format!("max_attempts must be between 1 and 100, got {max_attempts}")));
    }
    let queue = match opts.queue.as_deref() {
        Some(q) => QueueName::parse(q).map_err(|e| ApiError::invalid(e.to_string()))?,
        None => cfg.queue.clone().unwrap_or_else(QueueName::default_queue),
    };
    if let Some(c) = &opts.context
        && c.len() > MAX_CONTEXT
    {
        return Err(ApiError::invalid(format!(
            "context must be at most {MAX_CONTEXT} bytes, got {}",
            c.len()
        )));
    }
    let run_at = due_at(opts.delay_ms, opts.run_at.as_deref(), now)?;
    let idempotency_key = opts
        .idempotency_key
        .as_deref()
        .map(IdempotencyKey::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if let Some(c) = &opts.callback {
        check_callback(c)?;
    }
    let limits = limits(state, cfg, &opts)?;
    Ok(NewJob {
        id: uuid::Uuid::now_v7().to_string(),
        tenant: state.tenant.clone(),
        alias,
        module: record.module,
        status: if run_at > now { JobStatus::Scheduled } else { JobStatus::Queued },
        priority: priority as i32,
        queue,
        context: opts.context,
        payload: payload.get().to_string(),
        max_attempts,
        limits,
        run_at,
        created_at: now,
        idempotency_key,
        batch_id,
        callback: opts.callback,
    })
}

/// Dispatches a job: 201 with the job, or 200 with the first job when the
/// idempotency key was seen before.
#[utoipa::path(post, path = "/v1/jobs", request_body = JobRequest,
    responses((status = 201, body = JobView), (status = 200, body = JobView),
              (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<JobRequest>,
) -> ApiResult<(StatusCode, Json<JobView>)> {
    let (alias, payload, opts) = req.split();
    let job = prepare(&state, &alias, payload, opts, None, now_ms()).await?;
    state.backpressure.admit(state.store.as_ref(), 1).await?;
    let inserted = state.inserter.insert(vec![job], None).await?.pop().expect("one job inserted");
    if inserted.created {
        state.queue.notify_dispatch();
    }
    let status = if inserted.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(inserted.job.into())))
}

/// The short form: the body is the payload itself, options are query parameters.
/// This is where another wasmq instance's callback can land (submit/response).
#[utoipa::path(post, path = "/v1/dispatch/{alias}", params(DispatchQuery), request_body(content = Object),
    responses((status = 202, body = Accepted), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn dispatch(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    ApiQuery(q): ApiQuery<DispatchQuery>,
    req: Request,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let bytes = body_bytes(req, &state).await?;
    let payload: Box<RawValue> = parse_json(&bytes)?;
    let callback = match (q.callback_url, q.callback_secret) {
        (Some(url), secret) => Some(Callback { url, headers: Default::default(), secret }),
        (None, Some(_)) => return Err(ApiError::invalid("callback_secret needs callback_url")),
        (None, None) => None,
    };
    let opts = JobOptions {
        priority: q.priority,
        queue: q.queue,
        context: q.context,
        delay_ms: q.delay_ms,
        run_at: None,
        max_attempts: q.max_attempts,
        timeout_ms: q.timeout_ms,
        fuel: q.fuel,
        memory_mb: q.memory_mb,
        idempotency_key: q.idempotency_key,
        callback,
    };
    let job = prepare(&state, &alias, payload, opts, None, now_ms()).await?;
    state.backpressure.admit(state.store.as_ref(), 1).await?;
    let inserted = state.inserter.insert(vec![job], None).await?.pop().expect("one job inserted");
    if inserted.created {
        state.queue.notify_dispatch();
    }
    Ok((StatusCode::ACCEPTED, Json(Accepted { id: inserted.job.id })))
}

/// `GET /v1/jobs` filters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this alias.
    pub alias: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this context.
    pub context: Option<String>,
    /// `created` (newest first, default) or `priority` (highest first).
    pub order: Option<JobOrder>,
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of jobs (keyset pagination: stable under concurrent inserts).
#[utoipa::path(get, path = "/v1/jobs", params(ListQuery), responses((status = 200, body = JobPage), (status = 400, body = super::error::ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
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
    let jobs = state
        .store
        .job_list(JobList {
            tenant: state.tenant.clone(),
            status,
            alias: q.alias,
            queue: q.queue,
            context: q.context,
            order: q.order.unwrap_or_default(),
            limit,
            after: q.cursor,
        })
        .await?;
    let next_cursor = (jobs.len() == limit as usize).then(|| jobs.last().map(|j| j.id.clone())).flatten();
    Ok(Json(JobPage { jobs: jobs.into_iter().map(Into::into).collect(), next_cursor }))
}

/// One job.
#[utoipa::path(get, path = "/v1/jobs/{id}", responses((status = 200, body = JobView), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn show(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    Ok(Json(state.store.job_get(&state.tenant, &id).await?.into()))
}

/// `wait` parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// How long to wait for the job to end, in ms (0..=300000, default 30000).
    pub timeout_ms: Option<u64>,
}

/// Long-polls until the job is terminal, or returns it as it is at the timeout
/// (or as soon as the server starts shutting down).
#[utoipa::path(get, path = "/v1/jobs/{id}/wait", params(WaitQuery),
    responses((status = 200, body = JobView), (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn wait(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> ApiResult<Json<JobView>> {
    let timeout = q.timeout_ms.unwrap_or(30_000);
    check_range("timeout_ms", timeout, 0, MAX_WAIT_MS)?;
    let mut deadline = tokio::time::Instant::now() + Duration::from_millis(timeout);
    loop {
        // Subscribe before reading, so an end between the two is not missed.
        let ended = state.queue.events().subscribe(&id);
        let job = state.store.job_get(&state.tenant, &id).await?;
        if job.status.is_terminal() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(job.into()));
        }
        // Re-read at least every second: another node may finish the job.
        let recheck = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
        tokio::select! {
            _ = ended => {}
            () = tokio::time::sleep_until(recheck) => {}
            // Shutting down: answer with the job as it is now.
            () = state.shutdown.cancelled() => deadline = tokio::time::Instant::now(),
        }
    }
}

/// Cancels a job that has not ended; a running job is interrupted within milliseconds.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel",
    responses((status = 200, body = JobView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobView>> {
    let job = state.store.job_cancel(&state.tenant, &id, now_ms()).await?;
    state.queue.cancel_running(&id);
    state.queue.events().finished(&id);
    Ok(Json(job.into()))
}

/// Queues a failed, dead or cancelled job again with a fresh attempt budget.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry",
    responses((status = 200, body = JobView), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub(super) async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    let job = state.store.job_retry(&state.tenant, &id, now_ms()).await?;
    state.queue.notify_dispatch();
    Ok(Json(job.into()))
}
