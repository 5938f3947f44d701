//! `batches`: groups of jobs with one callback when all have ended.

use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::domain::TenantId;
use crate::store::rows::{BATCH_SUMMARY_COLUMNS, BatchRow, BatchSummaryRow, corrupt};
use crate::store::rules::{self, CALLBACK_PENDING, CALLBACK_SENDING, TERMINAL};
use crate::store::{BatchList, BatchRecord, BatchSummary, DoneBatch, StoreResult};

/// After jobs reached a terminal status: batches whose jobs are now all
/// terminal are marked done (once: only while `done_at` is unset) and get
/// their callback scheduled (once: only from `pending`). Returns the batches
/// this marked done.
///
/// The batch rows are locked first (in id order), and only then is "any job
/// left?" asked, in a statement of its own: of two transactions that each end
/// some of a batch's last jobs, the second to take the lock waits for the
/// first to commit and then sees its jobs ended, so one of them marks the
/// batch done (asked at once, each would see the other's jobs still running).
pub(super) async fn schedule_done_batches(
    tx: &mut Transaction<'_, Postgres>,
    batch_ids: &[String],
    now: i64,
) -> StoreResult<Vec<DoneBatch>> {
    if batch_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query("SELECT id FROM batches WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(batch_ids)
        .execute(&mut **tx)
        .await?;
    let done: Vec<(String, String)> = sqlx::query_as(&format!(
        "UPDATE batches b SET done_at = $1,
            callback_state = CASE WHEN b.callback_state = {CALLBACK_PENDING} THEN {CALLBACK_SENDING}
                                  ELSE b.callback_state END,
            callback_next_at = CASE WHEN b.callback_state = {CALLBACK_PENDING} THEN $1
                                    ELSE b.callback_next_at END
         WHERE b.id = ANY($2) AND b.done_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = b.id AND jobs.status NOT IN {TERMINAL})
         RETURNING b.tenant, b.id"
    ))
    .bind(now)
    .bind(batch_ids)
    .fetch_all(&mut **tx)
    .await?;
    done.into_iter()
        .map(|(tenant, id)| Ok(DoneBatch { tenant: TenantId::parse(&tenant).map_err(corrupt)?, id }))
        .collect()
}

pub(super) async fn get(s: &PgStore, tenant: &TenantId, id: &str) -> StoreResult<BatchRecord> {
    let row = sqlx::query_as::<_, BatchRow>(
        "SELECT total, callback, callback_state, callback_attempts, callback_last_error, created_at, trace
         FROM batches WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&s.pool)
    .await?
    .ok_or_else(|| rules::batch_missing(id))?;
    let counted: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM jobs WHERE batch_id = $1 GROUP BY status")
            .bind(id)
            .fetch_all(&s.pool)
            .await?;
    rules::batch_record(id, row, counted)
}

pub(super) async fn list(s: &PgStore, p: BatchList) -> StoreResult<Vec<BatchSummary>> {
    let rows = sqlx::query_as::<_, BatchSummaryRow>(&format!(
        "SELECT {BATCH_SUMMARY_COLUMNS} FROM batches
         WHERE tenant = $1 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(p.tenant.as_str())
    .bind(p.before)
    .bind(i64::from(p.limit))
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter().map(BatchSummary::try_from).collect()
}
