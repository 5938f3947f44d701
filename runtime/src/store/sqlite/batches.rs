//! `batches`: groups of jobs with one callback when all have ended.

use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use crate::domain::TenantId;
use crate::store::rows::{BATCH_SUMMARY_COLUMNS, BatchRow, BatchSummaryRow, corrupt};
use crate::store::rules::{self, CALLBACK_PENDING, CALLBACK_SENDING, TERMINAL};
use crate::store::{BatchList, BatchRecord, BatchSummary, DoneBatch, StoreResult};

/// After jobs reached a terminal status: batches whose jobs are now all
/// terminal are marked done (once: only while `done_at` is unset) and get
/// their callback scheduled (once: only from `pending`). Returns the batches
/// this marked done.
pub(super) async fn schedule_done_batches(
    tx: &mut Transaction<'_, Sqlite>,
    batch_ids: &[String],
    now: i64,
) -> StoreResult<Vec<DoneBatch>> {
    let mut done = Vec::new();
    for id in batch_ids {
        let tenant: Option<String> = sqlx::query_scalar(&format!(
            "UPDATE batches SET done_at = ?1,
                callback_state = CASE WHEN callback_state = {CALLBACK_PENDING} THEN {CALLBACK_SENDING}
                                      ELSE callback_state END,
                callback_next_at = CASE WHEN callback_state = {CALLBACK_PENDING} THEN ?1
                                        ELSE callback_next_at END
             WHERE id = ?2 AND done_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ?2 AND status NOT IN {TERMINAL})
             RETURNING tenant"
        ))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(tenant) = tenant {
            done.push(DoneBatch { tenant: TenantId::parse(&tenant).map_err(corrupt)?, id: id.clone() });
        }
    }
    Ok(done)
}

pub(super) async fn get(s: &SqliteStore, tenant: &TenantId, id: &str) -> StoreResult<BatchRecord> {
    let row = sqlx::query_as::<_, BatchRow>(
        "SELECT total, callback, callback_state, callback_attempts, callback_last_error, created_at, trace
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

pub(super) async fn list(s: &SqliteStore, p: BatchList) -> StoreResult<Vec<BatchSummary>> {
    let rows = sqlx::query_as::<_, BatchSummaryRow>(&format!(
        "SELECT {BATCH_SUMMARY_COLUMNS} FROM batches
         WHERE tenant = ?1 AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
    ))
    .bind(p.tenant.as_str())
    .bind(p.before)
    .bind(i64::from(p.limit))
    .fetch_all(&s.writer)
    .await?;
    rows.into_iter().map(BatchSummary::try_from).collect()
}
