//! Rows of `schedules`.

use sqlx::FromRow;

use super::corrupt;
use crate::domain::{AliasName, CatchUp, QueueName, TenantId};
use crate::store::{ScheduleRecord, ScheduleSpec, StoreError, StoreResult};

/// Columns of `schedules` in the order `ScheduleRow` reads them.
pub(in crate::store) const SCHEDULE_COLUMNS: &str = "tenant, name, alias, payload, cron, every_ms, timezone, \
    queue, priority, enabled, catch_up, next_due_at, last_due_at, last_job_id, last_error, created_at, updated_at";

/// A row of `schedules` ([`SCHEDULE_COLUMNS`]).
#[derive(FromRow, Debug, Clone)]
pub(in crate::store) struct ScheduleRow {
    tenant: String,
    name: String,
    alias: String,
    payload: String,
    cron: Option<String>,
    every_ms: Option<i64>,
    timezone: Option<String>,
    queue: Option<String>,
    priority: Option<i64>,
    enabled: bool,
    catch_up: String,
    next_due_at: Option<i64>,
    last_due_at: Option<i64>,
    last_job_id: Option<String>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ScheduleRow> for ScheduleRecord {
    type Error = StoreError;

    fn try_from(r: ScheduleRow) -> StoreResult<Self> {
        let bad = |what: &str| StoreError::Corrupt(format!("schedule {}: {what}", r.name));
        let spec = ScheduleSpec {
            alias: AliasName::parse(&r.alias).map_err(corrupt)?,
            payload: r.payload.clone(),
            cron: r.cron.clone(),
            every_ms: r.every_ms.map(|ms| u64::try_from(ms).map_err(|_| bad("every_ms"))).transpose()?,
            timezone: r.timezone.clone(),
            queue: r.queue.as_deref().map(QueueName::parse).transpose().map_err(corrupt)?,
            priority: r.priority.map(|p| i32::try_from(p).map_err(|_| bad("priority"))).transpose()?,
            enabled: r.enabled,
            catch_up: CatchUp::parse(&r.catch_up).ok_or_else(|| bad("catch_up"))?,
        };
        Ok(ScheduleRecord {
            tenant: TenantId::parse(&r.tenant).map_err(corrupt)?,
            name: r.name,
            spec,
            next_due_at: r.next_due_at,
            last_due_at: r.last_due_at,
            last_job_id: r.last_job_id,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}
