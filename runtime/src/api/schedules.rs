//! `/v1/schedules`: a tenant's recurring dispatches. Each due time makes one
//! job on whichever node reaches it first (see [`super::scheduler`]); the
//! view shows the next due times.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, Read, Tenant};
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery};
use super::{ApiError, ApiResult, AppState};
use crate::domain::{CatchUp, QueueName, Recurrence, ScheduleName, json_int, time::now_ms, time::rfc3339};
use crate::store::{SchedulePut, ScheduleRecord, ScheduleSpec, StoreError};

/// Due times a schedule's view lists.
const SHOWN_DUE: usize = 5;
/// Most schedules per page of `GET /v1/schedules` (default 100).
const MAX_PAGE: u32 = 1000;

/// `PUT /v1/schedules/{name}` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Alias its jobs run (it must exist).
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "report")]
    pub alias: String,
    /// The payload of every job (default `null`).
    #[schema(value_type = Value, example = json!({"kind": "daily"}))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    /// A cron expression: 5 fields (minute first), or 6 with seconds first;
    /// `L`, `W`, `#` and names (`MON`, `JAN`) as croner reads them. Give
    /// `cron` or `every_ms`.
    #[schema(max_length = 200, example = "0 9 * * MON-FRI")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A fixed interval in ms (1000..=31536000000), due at every multiple of
    /// it since the Unix epoch. Give `cron` or `every_ms`.
    #[schema(minimum = 1000, maximum = 31536000000_u64)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub every_ms: Option<u64>,
    /// The tz database zone `cron` is read in (default `UTC`), e.g.
    /// `Europe/Berlin`; daylight saving moves the due times with the clock.
    #[schema(max_length = 64, example = "Europe/Berlin")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Queue of its jobs (default: the alias's).
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Priority of its jobs, 0..=1000 (default: the alias's).
    #[schema(minimum = 0, maximum = 1000)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub priority: Option<i64>,
    /// Fires only while enabled (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// What runs of the due times missed while no node could fire it (a
    /// due time reached more than 5 s late): `none`, `one` (the latest;
    /// default) or `all` (each, oldest first; the latest 1,000 at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUp>,
}

/// A schedule.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    /// Its name.
    pub name: String,
    /// Alias its jobs run.
    pub alias: String,
    /// Payload of its jobs.
    #[schema(value_type = Value)]
    pub payload: Box<RawValue>,
    /// Cron expression (absent with `every_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Interval in ms (absent with `cron`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// Zone of `cron` (absent: UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Queue of its jobs (absent: the alias's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Priority of its jobs (absent: the alias's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Fires only while enabled.
    pub enabled: bool,
    /// What runs of missed due times.
    pub catch_up: CatchUp,
    /// The next due times (RFC 3339), soonest first; empty while paused or
    /// when it never fires again.
    pub next_due: Vec<String>,
    /// The latest due time fired (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_due_at: Option<String>,
    /// The job of the latest due time fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job_id: Option<String>,
    /// Why the latest firing made no job (cleared by the next that does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 of the last change.
    pub updated_at: String,
}

/// A page of schedules, by name.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SchedulePage {
    /// The schedules.
    pub schedules: Vec<ScheduleView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /v1/schedules` paging.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScheduleListQuery {
    /// Most schedules per page, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^([a-z0-9][a-z0-9._-]{0,63})?$")]
    pub cursor: Option<String>,
}

/// The recurrence of a stored schedule (checked when it was put).
pub(super) fn recurrence(spec: &ScheduleSpec) -> Result<Recurrence, String> {
    Recurrence::parse(spec.cron.as_deref(), spec.every_ms, spec.timezone.as_deref())
}

impl From<ScheduleRecord> for ScheduleView {
    fn from(r: ScheduleRecord) -> Self {
        let next_due = match (r.next_due_at, recurrence(&r.spec)) {
            (Some(next), Ok(rec)) => {
                let mut due = vec![next];
                due.extend(rec.upcoming(next, SHOWN_DUE - 1));
                due.into_iter().map(rfc3339).collect()
            }
            _ => Vec::new(),
        };
        let spec = r.spec;
        Self {
            name: r.name,
            alias: spec.alias.to_string(),
            payload: RawValue::from_string(spec.payload)
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON")),
            cron: spec.cron,
            every_ms: spec.every_ms,
            timezone: spec.timezone,
            queue: spec.queue.map(|q| q.to_string()),
            priority: spec.priority.map(i64::from),
            enabled: spec.enabled,
            catch_up: spec.catch_up,
            next_due,
            last_due_at: r.last_due_at.map(rfc3339),
            last_job_id: r.last_job_id,
            last_error: r.last_error,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

fn parse_name(name: &str) -> ApiResult<ScheduleName> {
    ScheduleName::parse(name).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Checks a request into what is stored, and its recurrence.
async fn spec_of(
    state: &AppState,
    tenant: &Tenant<Admin>,
    req: ScheduleRequest,
) -> ApiResult<(ScheduleSpec, Recurrence)> {
    let alias = super::aliases::parse_alias(&req.alias)?;
    // The alias must exist now: a typo is a 404 here, not a failing job later.
    state.aliases.get(state.store.as_ref(), tenant, &alias).await?;
    let recurrence = Recurrence::parse(req.cron.as_deref(), req.every_ms, req.timezone.as_deref())
        .map_err(ApiError::invalid)?;
    let queue = req
        .queue
        .as_deref()
        .map(QueueName::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if let Some(p) = req.priority
        && !(0..=1000).contains(&p)
    {
        return Err(ApiError::invalid(format!("priority must be between 0 and 1000, got {p}")));
    }
    let spec = ScheduleSpec {
        alias,
        payload: req.payload.map_or_else(|| "null".to_string(), |p| p.get().to_string()),
        cron: req.cron,
        every_ms: req.every_ms,
        timezone: req.timezone,
        queue,
        priority: req.priority.map(|p| p as i32),
        enabled: req.enabled.unwrap_or(true),
        catch_up: req.catch_up.unwrap_or_default(),
    };
    Ok((spec, recurrence))
}

/// Creates or replaces a schedule. Putting the same schedule again changes
/// nothing (its next due time stays); a new recurrence counts from now.
#[utoipa::path(put, path = "/v1/schedules/{name}", tag = "schedules", operation_id = "setSchedule",
    params(("name" = String, Path, description = "The schedule's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    request_body = ScheduleRequest,
    responses((status = 201, description = "Created.", body = ScheduleView),
              (status = 200, description = "Replaced (or unchanged).", body = ScheduleView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(super) async fn set(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<ScheduleView>)> {
    let name = parse_name(&name)?;
    let (spec, recurrence) = spec_of(&state, &tenant, req).await?;
    let existed = match state.store.schedule_get(&tenant, name.as_str()).await {
        Ok(_) => true,
        Err(StoreError::NotFound(_)) => false,
        Err(e) => return Err(e.into()),
    };
    let now = now_ms();
    let next_due_at = spec.enabled.then(|| recurrence.next_after(now)).flatten();
    let put = SchedulePut { tenant: tenant.0.clone(), name: name.to_string(), spec, next_due_at, now };
    let record = state.store.schedule_put(put).await?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(record.into())))
}

/// One schedule, with its next due times.
#[utoipa::path(get, path = "/v1/schedules/{name}", tag = "schedules", operation_id = "getSchedule",
    params(("name" = String, Path, description = "The schedule's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "The schedule.", body = ScheduleView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let name = parse_name(&name)?;
    Ok(Json(state.store.schedule_get(&tenant, name.as_str()).await?.into()))
}

/// The tenant's schedules, by name.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules", operation_id = "listSchedules",
    params(ScheduleListQuery),
    responses((status = 200, description = "A page of schedules.", body = SchedulePage),
              (status = 400, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    ApiQuery(q): ApiQuery<ScheduleListQuery>,
) -> ApiResult<Json<SchedulePage>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be between 1 and {MAX_PAGE}, got {limit}")));
    }
    let after = q.cursor.filter(|c| !c.is_empty());
    if let Some(c) = &after {
        parse_name(c).map_err(|_| {
            ApiError::invalid(format!("cursor must be a next_cursor from this endpoint, got {c:?}"))
        })?;
    }
    let mut rows = state.store.schedule_list(&tenant, after.as_deref(), limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|r| r.name.clone())).flatten();
    Ok(Json(SchedulePage { schedules: rows.into_iter().map(ScheduleView::from).collect(), next_cursor }))
}

/// Deletes a schedule (the jobs it made stay).
#[utoipa::path(delete, path = "/v1/schedules/{name}", tag = "schedules", operation_id = "deleteSchedule",
    params(("name" = String, Path, description = "The schedule's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 204, description = "Deleted."),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let name = parse_name(&name)?;
    state.store.schedule_delete(&tenant, name.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pauses a schedule: no due time fires until it is resumed.
#[utoipa::path(post, path = "/v1/schedules/{name}/pause", tag = "schedules", operation_id = "pauseSchedule",
    params(("name" = String, Path, description = "The schedule's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "The schedule, paused.", body = ScheduleView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn pause(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let name = parse_name(&name)?;
    Ok(Json(state.store.schedule_enable(&tenant, name.as_str(), None, now_ms()).await?.into()))
}

/// Resumes a schedule from now: the due times that passed while it was
/// paused do not run.
#[utoipa::path(post, path = "/v1/schedules/{name}/resume", tag = "schedules", operation_id = "resumeSchedule",
    params(("name" = String, Path, description = "The schedule's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "The schedule, enabled.", body = ScheduleView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn resume(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(name): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    let name = parse_name(&name)?;
    let record = state.store.schedule_get(&tenant, name.as_str()).await?;
    let now = now_ms();
    let next = recurrence(&record.spec).map_err(ApiError::internal)?.next_after(now);
    let Some(next) = next else {
        return Err(ApiError::invalid(format!("schedule {name} has no due time after now to resume from")));
    };
    Ok(Json(state.store.schedule_enable(&tenant, name.as_str(), Some(next), now).await?.into()))
}
