//! `batches`: groups of jobs with one callback when all have ended.

use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use crate::domain::TenantId;
use crate::store::rows::BatchRow;
use crate::store::rules::{self, CALLBACK_PENDING, CALLBACK_SENDING, TERMINAL};
use crate::store::{BatchRecord, StoreResult};

/// After jobs reached a terminal status: batches whose jobs are now all
/// terminal get their callback scheduled (once: only from `pending`).
pub(super) async fn schedule_done_batches(
    tx: &mut Transaction<'_, Sqlite>,
    batch_ids: &[String],
    now: i64,
) -> StoreResult<()> {
    for id in batch_ids {
        sqlx::query(&format!(
            "UPDATE batches SET callback_state = {CALLBACK_SENDING}, callback_next_at = ?1
             WHERE id = ?2 AND callback_state = {CALLBACK_PENDING}
               AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ?2 AND status NOT IN {TERMINAL})"
        ))
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn get(s: &SqliteStore, tenant: &TenantId, id: &str) -> StoreResult<BatchRecord> {
    let row = sqlx::query_as::<_, BatchRow>(
        "SELECT total, callback, callback_state, callback_attempts, callback_last_error, created_at
         FROM batches WHERE tenant = ? AND id = ?",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&s.writer)
    .await?
    .ok_or_else(|| rules::batch_missing(id))?;
    let counted: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY status")
            .bind(id)
            .fetch_all(&s.writer)
            .await?;
    rules::batch_record(id, row, counted)
}
