//! `GET /v1/usage`: per tenant per UTC day, what an operator bills on. A
//! tenant's token (any scope) sees its own days; the operator token sees every
//! tenant's (or the one `tenant` names, deleted tenants included), or, with
//! `X-Wasmq-Tenant`, that tenant's.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::ErrorBody;
use super::extract::ApiQuery;
use super::{ApiError, ApiResult, AppState};
use crate::domain::{Day, TenantId, time::now_ms};
use crate::store::{UsageQuery, UsageRecord};

/// Most days one request covers (a leap year).
pub const MAX_DAYS: i64 = 366;

/// `GET /v1/usage` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// First day (UTC, `YYYY-MM-DD`), included; default: the first day of `to`'s month.
    #[param(pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub from: Option<String>,
    /// Last day (UTC, `YYYY-MM-DD`), included; default: today. At most 366 days after `from`, counting both.
    #[param(pattern = r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub to: Option<String>,
    /// Only this tenant. The operator may name any (deleted ones too); a
    /// tenant's token only its own (another answers 404).
    #[param(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub tenant: Option<String>,
}

/// Usage over a range of days.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    /// First day of the range (`YYYY-MM-DD`, UTC).
    pub from: String,
    /// Last day of the range.
    pub to: String,
    /// By tenant, then day: each day a tenant had a counted event or stored
    /// modules; days with neither are left out.
    pub days: Vec<UsageDay>,
}

/// One tenant's usage on one UTC day. Job outcomes count when they happen (a
/// job retried by request that ends again counts again); runs count on the day
/// they ended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageDay {
    /// The tenant.
    pub tenant: String,
    /// The day (`YYYY-MM-DD`, UTC).
    pub day: String,
    /// Runs whose fuel and run time are counted: every attempt that ran and
    /// reported its end, including cancelled, timed-out and stale runs.
    pub runs: u64,
    /// Jobs that ended `succeeded`.
    pub succeeded: u64,
    /// Attempts that failed with another attempt to come (including a lost worker).
    pub failed: u64,
    /// Jobs that ended `dead`.
    pub dead: u64,
    /// Jobs cancelled by request.
    pub cancelled: u64,
    /// Runs stopped by their wall-clock limit (also in `failed` or `dead`).
    pub timed_out: u64,
    /// Fuel the runs used.
    pub fuel_used: u64,
    /// Milliseconds the runs took in the sandbox.
    pub run_ms: u64,
    /// The most bytes of modules stored at any moment of the day.
    pub module_bytes_max: u64,
    /// Bytes of modules stored at the end of the day (now, for today).
    pub module_bytes_end: u64,
    /// Callback delivery attempts (job and batch callbacks), whatever the answer.
    pub callbacks_sent: u64,
    /// Callback deliveries the receiver accepted.
    pub callbacks_delivered: u64,
    /// Key-value writes (set, delete, increment) by its jobs and through the API; reads are not counted.
    #[serde(default)]
    pub kv_writes: u64,
    /// The most bytes (keys plus values) in its key-value stores at any moment of the day.
    #[serde(default)]
    pub kv_bytes_max: u64,
    /// Bytes in its key-value stores at the end of the day (now, for today).
    #[serde(default)]
    pub kv_bytes_end: u64,
    /// Outbound HTTP requests plugins sent (refused ones included).
    #[serde(default)]
    pub http_requests: u64,
    /// Bytes of outbound request bodies.
    #[serde(default)]
    pub http_bytes_sent: u64,
    /// Bytes of outbound response bodies received.
    #[serde(default)]
    pub http_bytes_received: u64,
}

impl From<UsageRecord> for UsageDay {
    fn from(r: UsageRecord) -> Self {
        let c = r.counters;
        UsageDay {
            tenant: r.tenant.to_string(),
            day: r.day.to_string(),
            runs: c.runs,
            succeeded: c.succeeded,
            failed: c.failed,
            dead: c.dead,
            cancelled: c.cancelled,
            timed_out: c.timed_out,
            fuel_used: c.fuel_used,
            run_ms: c.run_ms,
            module_bytes_max: r.module_bytes_max,
            module_bytes_end: r.module_bytes_end,
            callbacks_sent: c.callbacks_sent,
            callbacks_delivered: c.callbacks_delivered,
            kv_writes: c.kv_writes,
            kv_bytes_max: r.kv_bytes_max,
            kv_bytes_end: r.kv_bytes_end,
            http_requests: c.http_requests,
            http_bytes_sent: c.http_bytes_sent,
            http_bytes_received: c.http_bytes_received,
        }
    }
}

/// Whose usage a request may read: one tenant's, or (the operator) any.
pub(super) enum Viewer {
    /// A tenant (its token, or the operator acting for it).
    Tenant(TenantId),
    /// The operator, for every tenant.
    Operator,
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Any scope reads usage: `read` is the least, and every token has it.
        match parts.extensions.get::<Caller>().ok_or_else(ApiError::unauthorized)? {
            Caller::Tenant { tenant, .. } => Ok(Viewer::Tenant(tenant.clone())),
            Caller::Operator { acting_as: Some(tenant) } => Ok(Viewer::Tenant(tenant.clone())),
            Caller::Operator { acting_as: None } => Ok(Viewer::Operator),
        }
    }
}

fn day(field: &str, value: &str) -> ApiResult<Day> {
    Day::parse(value).ok_or_else(|| {
        ApiError::invalid(format!(
            "{field} must be a date YYYY-MM-DD from 1970-01-01 to 9999-12-31; got {value:?}"
        ))
    })
}

/// The range a request asks for: defaults filled in, checked.
pub(super) fn range(from: Option<&str>, to: Option<&str>, today: Day) -> ApiResult<(Day, Day)> {
    let to = to.map(|t| day("to", t)).transpose()?.unwrap_or(today);
    let from = from.map(|f| day("from", f)).transpose()?.unwrap_or(to.month_start());
    if from > to {
        return Err(ApiError::invalid(format!("from ({from}) is after to ({to})")));
    }
    let days = from.span(to);
    if days > MAX_DAYS {
        return Err(ApiError::invalid(format!(
            "to: the range from {from} to {to} covers {days} days; at most {MAX_DAYS} per request"
        )));
    }
    Ok((from, to))
}

/// Usage per tenant per UTC day over a range of at most 366 days.
///
/// Counted exactly and durably (each counter in the transaction of the write
/// that causes it): job outcomes, runs with their fuel and run time (a
/// cancelled or timed-out run's too), the module storage gauge, callback
/// deliveries.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", operation_id = "getUsage", params(UsageParams),
    responses((status = 200, description = "The days of the range with usage.", body = UsageReport),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn usage(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> ApiResult<Json<UsageReport>> {
    let (from, to) = range(q.from.as_deref(), q.to.as_deref(), Day::of_ms(now_ms()))?;
    let named = q
        .tenant
        .map(|t| TenantId::parse(t).map_err(|e| ApiError::invalid(format!("tenant: {e}"))))
        .transpose()?;
    let tenant = match (viewer, named) {
        (Viewer::Operator, named) => named,
        (Viewer::Tenant(own), None) => Some(own),
        (Viewer::Tenant(own), Some(named)) if named == own => Some(own),
        // Another tenant's usage answers as a tenant that does not exist.
        (Viewer::Tenant(_), Some(named)) => {
            return Err(ApiError::not_found(format!("tenant {named} not found")));
        }
    };
    let records = state.store.usage_list(UsageQuery { tenant, from, to }).await?;
    Ok(Json(UsageReport {
        from: from.to_string(),
        to: to.to_string(),
        days: records.into_iter().map(UsageDay::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_defaults_to_this_month_and_is_bounded() {
        let today = Day::parse("2024-03-15").unwrap();
        let shown =
            |r: ApiResult<(Day, Day)>| r.map(|(f, t)| format!("{f}..{t}")).map_err(|e| format!("{e:?}"));
        assert_eq!(shown(range(None, None, today)), Ok("2024-03-01..2024-03-15".into()));
        assert_eq!(shown(range(None, Some("2024-01-20"), today)), Ok("2024-01-01..2024-01-20".into()));
        assert_eq!(shown(range(Some("2023-03-16"), None, today)), Ok("2023-03-16..2024-03-15".into()));
        let err = shown(range(Some("2023-03-15"), None, today)).unwrap_err();
        assert!(err.contains("to: the range") && err.contains("367 days") && err.contains("366"), "{err}");
        let err = shown(range(Some("2024-03-16"), None, today)).unwrap_err();
        assert!(err.contains("from (2024-03-16) is after to (2024-03-15)"), "{err}");
        let err = shown(range(Some("2024-02-30"), None, today)).unwrap_err();
        assert!(err.contains("from must be a date") && err.contains("2024-02-30"), "{err}");
        let err = shown(range(None, Some("yesterday"), today)).unwrap_err();
        assert!(err.contains("to must be a date"), "{err}");
    }
}
