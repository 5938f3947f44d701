//! `batches`: groups of jobs with one callback when all have ended.

use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::domain::TenantId;
use crate::store::rows::BatchRow;
use crate::store::rules::{self, CALLBACK_PENDING, CALLBACK_SENDING, TERMINAL};
use crate::store::{BatchRecord, StoreResult};

/// After jobs reached a terminal status: batches whose jobs are now all
/// terminal get their callback scheduled (once: only from `pending`).
///
/// The batch rows are locked first (in id order), and only then is "any job
/// left?" asked, in a statement of its own: of two transactions that each end
/// some of a batch's last jobs, the second to take the lock waits for the
/// first to commit and then sees its jobs ended, so one of them schedules the
/// callback (asked at once, each would see the other's jobs still running).
pub(super) async fn schedule_done_batches(
    tx: &mut Transaction<'_, Postgres>,
    batch_ids: &[String],
    now: i64,
) -> StoreResult<()> {
    if batch_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT id FROM batches WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(batch_ids)
        .execute(&mut **tx)
        .await?;
    sqlx::query(&format!(
        "UPDATE batches b SET callback_state = {CALLBACK_SENDING}, callback_next_at = $1
         WHERE b.id = ANY($2) AND b.callback_state = {CALLBACK_PENDING}
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = b.id AND jobs.status NOT IN {TERMINAL})"
    ))
    .bind(now)
    .bind(batch_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn get(s: &PgStore, tenant: &TenantId, id: &str) -> StoreResult<BatchRecord> {
    let row = sqlx::query_as::<_, BatchRow>(
        "SELECT total, callback, callback_state, callback_attempts, callback_last_error, created_at
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
