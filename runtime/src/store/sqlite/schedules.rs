//! `schedules`: recurring dispatches (see `Store::schedule_fire`).

use super::SqliteStore;
use crate::domain::TenantId;
use crate::store::rows::{SCHEDULE_COLUMNS, ScheduleRow};
use crate::store::rules;
use crate::store::{Fired, ScheduleFiring, SchedulePut, ScheduleRecord, StoreResult};

pub(super) async fn put(s: &SqliteStore, p: SchedulePut) -> StoreResult<ScheduleRecord> {
    let v = &p.spec;
    // The same recurrence, still enabled (or still not), keeps its next due
    // time: putting a schedule again changes nothing.
    let row: ScheduleRow = sqlx::query_as(&format!(
        "INSERT INTO schedules (tenant, name, alias, payload, cron, every_ms, timezone, queue, priority, enabled,
            catch_up, next_due_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)
         ON CONFLICT (tenant, name) DO UPDATE SET
            next_due_at = CASE WHEN schedules.cron IS NOT DISTINCT FROM excluded.cron
                AND schedules.every_ms IS NOT DISTINCT FROM excluded.every_ms
                AND schedules.timezone IS NOT DISTINCT FROM excluded.timezone
                AND schedules.enabled = excluded.enabled
                THEN schedules.next_due_at ELSE excluded.next_due_at END,
            alias = excluded.alias, payload = excluded.payload, cron = excluded.cron,
            every_ms = excluded.every_ms, timezone = excluded.timezone, queue = excluded.queue,
            priority = excluded.priority, enabled = excluded.enabled, catch_up = excluded.catch_up,
            updated_at = excluded.updated_at
         RETURNING {SCHEDULE_COLUMNS}"
    ))
    .bind(p.tenant.as_str())
    .bind(&p.name)
    .bind(v.alias.as_str())
    .bind(&v.payload)
    .bind(&v.cron)
    .bind(v.every_ms.map(|ms| ms as i64))
    .bind(&v.timezone)
    .bind(v.queue.as_ref().map(|q| q.as_str()))
    .bind(v.priority.map(i64::from))
    .bind(v.enabled)
    .bind(v.catch_up.as_str())
    .bind(p.next_due_at)
    .bind(p.now)
    .fetch_one(&s.writer)
    .await?;
    row.try_into()
}

pub(super) async fn get(s: &SqliteStore, tenant: &TenantId, name: &str) -> StoreResult<ScheduleRecord> {
    sqlx::query_as::<_, ScheduleRow>(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE tenant = ?1 AND name = ?2"
    ))
    .bind(tenant.as_str())
    .bind(name)
    .fetch_optional(&s.reader)
    .await?
    .ok_or_else(|| rules::schedule_missing(name))?
    .try_into()
}

pub(super) async fn list(
    s: &SqliteStore,
    tenant: &TenantId,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<ScheduleRecord>> {
    let rows: Vec<ScheduleRow> = sqlx::query_as(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE tenant = ?1 AND name > ?2 ORDER BY name LIMIT ?3"
    ))
    .bind(tenant.as_str())
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter().map(ScheduleRecord::try_from).collect()
}

pub(super) async fn delete(s: &SqliteStore, tenant: &TenantId, name: &str) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM schedules WHERE tenant = ?1 AND name = ?2")
        .bind(tenant.as_str())
        .bind(name)
        .execute(&s.writer)
        .await?;
    if done.rows_affected() == 0 {
        return Err(rules::schedule_missing(name));
    }
    Ok(())
}

pub(super) async fn enable(
    s: &SqliteStore,
    tenant: &TenantId,
    name: &str,
    next_due_at: Option<i64>,
    now: i64,
) -> StoreResult<ScheduleRecord> {
    sqlx::query_as::<_, ScheduleRow>(&format!(
        "UPDATE schedules SET enabled = ?3, next_due_at = ?4, updated_at = ?5
         WHERE tenant = ?1 AND name = ?2 RETURNING {SCHEDULE_COLUMNS}"
    ))
    .bind(tenant.as_str())
    .bind(name)
    .bind(next_due_at.is_some())
    .bind(next_due_at)
    .bind(now)
    .fetch_optional(&s.writer)
    .await?
    .ok_or_else(|| rules::schedule_missing(name))?
    .try_into()
}

pub(super) async fn due(s: &SqliteStore, now: i64, limit: u32) -> StoreResult<Vec<ScheduleRecord>> {
    let rows: Vec<ScheduleRow> = sqlx::query_as(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules
         WHERE next_due_at <= ?1 AND enabled ORDER BY next_due_at LIMIT ?2"
    ))
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter().map(ScheduleRecord::try_from).collect()
}

pub(super) async fn next_due(s: &SqliteStore) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT MIN(next_due_at) FROM schedules WHERE enabled")
        .fetch_one(&s.reader)
        .await?)
}

pub(super) async fn fire(s: &SqliteStore, f: ScheduleFiring) -> StoreResult<Fired> {
    let mut tx = s.tx().await?;
    // The compare-and-set that makes this firing the one of these due times
    // (in the write transaction: a firing before it moved `next_due_at`).
    let moved = sqlx::query(
        "UPDATE schedules SET next_due_at = ?4, last_due_at = COALESCE(?5, last_due_at), last_error = ?6
         WHERE tenant = ?1 AND name = ?2 AND next_due_at = ?3 AND enabled",
    )
    .bind(f.tenant.as_str())
    .bind(&f.name)
    .bind(f.expected_next_due)
    .bind(f.next_due_at)
    .bind(f.last_due_at)
    .bind(&f.error)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Ok(Fired::Lost);
    }
    let inserted = super::jobs::insert_in(&mut tx, &f.jobs, None).await?;
    if let Some(last) = inserted.last() {
        sqlx::query("UPDATE schedules SET last_job_id = ?3 WHERE tenant = ?1 AND name = ?2")
            .bind(f.tenant.as_str())
            .bind(&f.name)
            .bind(&last.job.id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Fired::Fired(inserted))
}
