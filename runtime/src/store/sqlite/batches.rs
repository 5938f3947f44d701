//! `batches`: groups of jobs with one callback when all have ended.

use sqlx::{Sqlite, Transaction};
use std::collections::BTreeMap;

use super::rows::parse_callback;
use super::{SqliteStore, TERMINAL};
use crate::domain::{CallbackState, JobStatus, TenantId};
use crate::store::{BatchRecord, StoreError, StoreResult};

/// After jobs reached a terminal status: batches whose jobs are now all
/// terminal get their callback scheduled (once: only from `pending`).
pub(super) async fn schedule_done_batches(
    tx: &mut Transaction<'_, Sqlite>,
    batch_ids: &[String],
    now: i64,
) -> StoreResult<()> {
    for id in batch_ids {
        sqlx::query(&format!(
            "UPDATE batches SET callback_state = 'sending', callback_next_at = ?1
             WHERE id = ?2 AND callback_state = 'pending'
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
    type BatchRow = (i64, Option<String>, Option<String>, i64, Option<String>, i64);
    let row: Option<BatchRow> = sqlx::query_as(
        "SELECT total, callback, callback_state, callback_attempts, callback_last_error, created_at
         FROM batches WHERE tenant = ? AND id = ?",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&s.writer)
    .await?;
    let (total, callback, callback_state, callback_attempts, callback_last_error, created_at) =
        row.ok_or_else(|| StoreError::NotFound(format!("batch {id}")))?;
    let counted: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY status")
            .bind(id)
            .fetch_all(&s.writer)
            .await?;
    let mut counts: BTreeMap<String, u64> = JobStatus::ALL.iter().map(|s| (s.as_str().into(), 0)).collect();
    let mut terminal = 0;
    for (status, n) in counted {
        if JobStatus::parse(&status).is_some_and(JobStatus::is_terminal) {
            terminal += n as u64;
        }
        counts.insert(status, n as u64);
    }
    Ok(BatchRecord {
        id: id.to_string(),
        total: total as u64,
        done: terminal == total as u64,
        counts,
        callback: parse_callback(callback)?,
        callback_state: callback_state.as_deref().and_then(CallbackState::parse),
        callback_attempts: callback_attempts as u32,
        callback_last_error,
        created_at,
    })
}
