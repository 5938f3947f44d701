//! Callback delivery state on `jobs` and `batches`: claiming due callbacks and
//! recording attempts.

use super::{SqliteStore, usage};
use crate::domain::time::now_ms;
use crate::domain::{CallbackState, TenantId};
use crate::store::rows::{JOB_COLUMNS, JobRow, corrupt, jobs};
use crate::store::rules::{self, CALLBACK_SENDING, UsageTally};
use crate::store::{CallbackClaim, CallbackDue, CallbackOwner, CallbackRecord, StoreResult};

pub(super) async fn due(s: &SqliteStore, p: CallbackClaim) -> StoreResult<Vec<CallbackDue>> {
    // Senders poll this: an idle poll stays a read (through the partial
    // indexes), so it never takes the write lock other writers (and other
    // processes on the same file) would have to wait for.
    let (jobs_due, batches_due): (bool, bool) = sqlx::query_as(&format!(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE callback_state = {CALLBACK_SENDING} AND callback_next_at <= ?1),
                EXISTS (SELECT 1 FROM batches WHERE callback_state = {CALLBACK_SENDING} AND callback_next_at <= ?1)"
    ))
    .bind(p.now)
    .fetch_one(&s.reader)
    .await?;
    let skip = serde_json::to_string(&p.skip_url_prefixes).expect("strings serialize");
    // Batches first (few, and each stands for many jobs), then jobs with
    // the rest of the limit. Each claim is one statement: atomic.
    let batches: Vec<(String, String, i64)> = if !batches_due {
        Vec::new()
    } else {
        sqlx::query_as(&format!(
            "UPDATE batches SET callback_next_at = ?3 WHERE id IN (
            SELECT id FROM batches WHERE callback_state = {CALLBACK_SENDING} AND callback_next_at <= ?1
              AND NOT EXISTS (SELECT 1 FROM json_each(?4) AS s
                WHERE substr(batches.callback ->> 'url', 1, length(s.value)) = s.value)
            ORDER BY callback_next_at LIMIT ?2)
         RETURNING id, tenant, callback_attempts"
        ))
        .bind(p.now)
        .bind(p.limit)
        .bind(p.lease_until)
        .bind(&skip)
        .fetch_all(&s.writer)
        .await?
    };
    let mut due = Vec::new();
    for (id, tenant, attempts) in batches {
        let tenant = TenantId::parse(tenant).map_err(corrupt)?;
        let batch = super::batches::get(s, &tenant, &id).await?;
        due.push(rules::batch_callback_due(batch, tenant, attempts)?);
    }
    let rest = p.limit.saturating_sub(due.len() as u32);
    if rest == 0 || !jobs_due {
        return Ok(due);
    }
    let rows = sqlx::query_as::<_, JobRow>(&format!(
        "UPDATE jobs SET callback_next_at = ?3 WHERE id IN (
            SELECT id FROM jobs WHERE callback_state = {CALLBACK_SENDING} AND callback_next_at <= ?1
              AND NOT EXISTS (SELECT 1 FROM json_each(?4) AS s
                WHERE substr(jobs.callback ->> 'url', 1, length(s.value)) = s.value)
            ORDER BY callback_next_at LIMIT ?2)
         RETURNING {JOB_COLUMNS}"
    ))
    .bind(p.now)
    .bind(rest)
    .bind(p.lease_until)
    .bind(&skip)
    .fetch_all(&s.writer)
    .await?;
    for job in jobs(rows)? {
        due.push(rules::job_callback_due(job)?);
    }
    Ok(due)
}

pub(super) async fn record(s: &SqliteStore, p: CallbackRecord) -> StoreResult<()> {
    let table = match p.owner {
        CallbackOwner::Job => "jobs",
        CallbackOwner::Batch => "batches",
    };
    let mut tx = s.tx().await?;
    let tenant: Option<String> = sqlx::query_scalar(&format!(
        "UPDATE {table} SET callback_state = ?, callback_attempts = callback_attempts + 1,
            callback_last_error = ?, callback_next_at = ? WHERE id = ? RETURNING tenant"
    ))
    .bind(p.state.as_str())
    .bind(&p.error)
    .bind(p.next_at)
    .bind(&p.id)
    .fetch_optional(&mut *tx)
    .await?;
    // Usage: the attempt, on the day it is recorded (a record gone meanwhile
    // was deleted with its tenant).
    if let Some(tenant) = tenant {
        let tenant = TenantId::parse(tenant).map_err(corrupt)?;
        let mut tally = UsageTally::default();
        tally.callback(&tenant, now_ms(), p.state == CallbackState::Delivered);
        usage::add(&mut tx, &tally).await?;
    }
    tx.commit().await?;
    Ok(())
}
