//! Callback delivery state on `jobs` and `batches`: claiming due callbacks and
//! recording attempts. A delivery is claimed like a job: the due rows are
//! taken FOR UPDATE SKIP LOCKED and their next attempt moved to the lease's
//! end in one statement, so two nodes polling at once never get the same one.

use super::{PgStore, usage};
use crate::domain::time::now_ms;
use crate::domain::{CallbackState, TenantId};
use crate::store::rows::{JOB_COLUMNS, JobRow, corrupt, jobs};
use crate::store::rules::{self, CALLBACK_SENDING, UsageTally};
use crate::store::{CallbackClaim, CallbackDue, CallbackOwner, CallbackRecord, StoreResult};

/// The claim of up to `$2` due callbacks of `table` (`$1` now, `$3` the
/// lease's end, `$4` the URL prefixes to skip), returning `returning`.
fn claim_due(table: &str, returning: &str) -> String {
    format!(
        "WITH due AS (
            SELECT id FROM {table}
            WHERE callback_state = {CALLBACK_SENDING} AND callback_next_at <= $1
              AND NOT EXISTS (SELECT 1 FROM unnest($4::text[]) AS s(prefix)
                              WHERE starts_with({table}.callback::jsonb ->> 'url', s.prefix))
            ORDER BY callback_next_at LIMIT $2
            FOR NO KEY UPDATE SKIP LOCKED)
         UPDATE {table} SET callback_next_at = $3 WHERE id IN (SELECT id FROM due)
         RETURNING {returning}"
    )
}

pub(super) async fn due(s: &PgStore, p: CallbackClaim) -> StoreResult<Vec<CallbackDue>> {
    // Senders poll this: an idle poll stays a read (through the partial indexes).
    let (jobs_due, batches_due): (bool, bool) = sqlx::query_as(&format!(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE callback_state = {CALLBACK_SENDING} AND callback_next_at <= $1),
                EXISTS (SELECT 1 FROM batches WHERE callback_state = {CALLBACK_SENDING} AND callback_next_at <= $1)"
    ))
    .bind(p.now)
    .fetch_one(&s.pool)
    .await?;
    // Batches first (few, and each stands for many jobs), then jobs with
    // the rest of the limit.
    let batches: Vec<(String, String, i64)> = if !batches_due {
        Vec::new()
    } else {
        sqlx::query_as(&claim_due("batches", "id, tenant, callback_attempts"))
            .bind(p.now)
            .bind(i64::from(p.limit))
            .bind(p.lease_until)
            .bind(&p.skip_url_prefixes)
            .fetch_all(&s.pool)
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
    let rows = sqlx::query_as::<_, JobRow>(&claim_due("jobs", JOB_COLUMNS))
        .bind(p.now)
        .bind(i64::from(rest))
        .bind(p.lease_until)
        .bind(&p.skip_url_prefixes)
        .fetch_all(&s.pool)
        .await?;
    for job in jobs(rows)? {
        due.push(rules::job_callback_due(job)?);
    }
    Ok(due)
}

pub(super) async fn record(s: &PgStore, p: CallbackRecord) -> StoreResult<()> {
    let table = match p.owner {
        CallbackOwner::Job => "jobs",
        CallbackOwner::Batch => "batches",
    };
    let mut tx = s.tx().await?;
    let tenant: Option<String> = sqlx::query_scalar(&format!(
        "UPDATE {table} SET callback_state = $1, callback_attempts = callback_attempts + 1,
            callback_last_error = $2, callback_next_at = $3 WHERE id = $4 RETURNING tenant"
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
