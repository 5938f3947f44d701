//! Many jobs at once (see `Store::job_bulk`), and deleting ended jobs and
//! finished batches. Each step is one short write transaction: the writer
//! is free for dispatches between steps.

use super::SqliteStore;
use super::batches::schedule_done_batches;
use super::jobs::get;
use crate::domain::TenantId;
use crate::store::rows::{JOB_REF_COLUMNS, JobRefRow};
use crate::store::rules::{
    self, CALLBACK_ON_END, CALLBACK_PENDING, CALLBACK_SETTLED, CANCELLED, QUEUED, TERMINAL, bulk_select,
    bulk_takes,
};
use crate::store::{BulkAction, BulkStep, JobBulk, StoreResult};

pub(super) async fn step(s: &SqliteStore, p: JobBulk) -> StoreResult<BulkStep> {
    if p.action.statuses(&p.filter.statuses).is_empty() {
        return Ok(BulkStep::default());
    }
    let f = &p.filter;
    let mut tx = s.tx().await?;
    let ids: Vec<String> = sqlx::query_scalar(&bulk_select(&p, |n| format!("?{n}")))
        .bind(f.tenant.as_str())
        .bind(&f.alias)
        .bind(&f.queue)
        .bind(&f.context)
        .bind(f.created_after)
        .bind(f.created_before)
        .bind(&p.after)
        .bind(p.limit)
        .fetch_all(&mut *tx)
        .await?;
    let next = (ids.len() == p.limit as usize).then(|| ids.last().cloned()).flatten();
    if ids.is_empty() {
        return Ok(BulkStep { done: Vec::new(), next, batches_done: Vec::new() });
    }
    let list = serde_json::to_string(&ids).expect("strings serialize");
    let takes = bulk_takes(&p);
    let done: Vec<JobRefRow> = match p.action {
        BulkAction::Retry => {
            sqlx::query_as(&format!(
                "UPDATE jobs SET status = {QUEUED}, attempt = 0, run_at = ?1, finished_at = NULL, started_at = NULL,
                    result = NULL, error_kind = NULL, error_message = NULL, progress_percent = NULL,
                    progress_message = NULL,
                    callback_state = CASE WHEN callback IS NOT NULL THEN {CALLBACK_PENDING} ELSE NULL END,
                    callback_attempts = 0, callback_last_error = NULL, callback_next_at = NULL
                 WHERE id IN (SELECT value FROM json_each(?2)) AND {takes}
                 RETURNING {JOB_REF_COLUMNS}"
            ))
            .bind(p.now)
            .bind(&list)
            .fetch_all(&mut *tx)
            .await?
        }
        BulkAction::Cancel => {
            let rows: Vec<JobRefRow> = sqlx::query_as(&format!(
                "UPDATE jobs SET status = {CANCELLED}, finished_at = ?1, lease_owner = NULL, lease_expires_at = NULL,
                    error_kind = ?3, error_message = ?4,
                    {CALLBACK_ON_END} CASE WHEN callback IS NOT NULL THEN ?1 ELSE NULL END
                 WHERE id IN (SELECT value FROM json_each(?2)) AND {takes}
                 RETURNING {JOB_REF_COLUMNS}"
            ))
            .bind(p.now)
            .bind(&list)
            .bind(rules::CANCELLED_BY_REQUEST.0)
            .bind(rules::CANCELLED_BY_REQUEST.1)
            .fetch_all(&mut *tx)
            .await?;
            let rows = rules::bulk_changed(rows)?;
            let (batches, tally) = rules::bulk_cancelled(&rows, &f.tenant, p.now);
            let batches_done = schedule_done_batches(&mut tx, &batches, p.now).await?;
            super::usage::add(&mut tx, &tally).await?;
            tx.commit().await?;
            return Ok(BulkStep { done: rows, next, batches_done });
        }
        BulkAction::Delete => {
            sqlx::query_as(&format!(
                "DELETE FROM jobs WHERE id IN (SELECT value FROM json_each(?1)) AND {takes}
                 RETURNING {JOB_REF_COLUMNS}"
            ))
            .bind(&list)
            .fetch_all(&mut *tx)
            .await?
        }
    };
    tx.commit().await?;
    Ok(BulkStep { done: rules::bulk_changed(done)?, next, batches_done: Vec::new() })
}

pub(super) async fn delete_job(s: &SqliteStore, tenant: &TenantId, id: &str) -> StoreResult<()> {
    let deleted = sqlx::query(&format!(
        "DELETE FROM jobs WHERE tenant = ?1 AND id = ?2 AND status IN {TERMINAL}
           AND (callback_state IS NULL OR callback_state IN {CALLBACK_SETTLED})"
    ))
    .bind(tenant.as_str())
    .bind(id)
    .execute(&s.writer)
    .await?
    .rows_affected();
    if deleted == 0 {
        let job = get(s, tenant, id).await?;
        return Err(rules::delete_refused(id, job.status));
    }
    Ok(())
}

pub(super) async fn delete_batch(s: &SqliteStore, tenant: &TenantId, id: &str) -> StoreResult<u64> {
    let mut tx = s.tx().await?;
    let settled: Option<bool> = sqlx::query_scalar(&format!(
        "SELECT callback_state IS NULL OR callback_state IN {CALLBACK_SETTLED} FROM batches
         WHERE tenant = ?1 AND id = ?2"
    ))
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let settled = settled.ok_or_else(|| rules::batch_missing(id))?;
    let unsettled: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM jobs WHERE batch_id = ?1 AND (status NOT IN {TERMINAL}
           OR (callback_state IS NOT NULL AND callback_state NOT IN {CALLBACK_SETTLED}))"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if unsettled > 0 || !settled {
        return Err(rules::batch_busy(id, unsettled, settled));
    }
    let jobs =
        sqlx::query("DELETE FROM jobs WHERE batch_id = ?1").bind(id).execute(&mut *tx).await?.rows_affected();
    sqlx::query("DELETE FROM batches WHERE id = ?1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(jobs)
}
