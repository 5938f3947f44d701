//! What runs under a claim of a job (the claim itself is in `claim`):
//! heartbeat, progress, completion, rescue and release, all fenced by the
//! claim's owner and token.
//!
//! The statements that change many jobs lock them in id order first (the
//! `locked` CTEs), so a completion batch, a heartbeat and a release of the
//! same node never wait for each other in a cycle; the rescue skips rows
//! another transaction holds (they are being completed or renewed; if still
//! lapsed, the next rescue takes them).

use sqlx::{Postgres, Transaction};
use std::collections::HashSet;
use std::sync::LazyLock;

use super::PgStore;
use super::batches::schedule_done_batches;
use super::usage;
use crate::domain::JobStatus;
use crate::store::rows::{JOB_REF_COLUMNS, JobRefRow, completions_json, leases_json};
use crate::store::rules::{
    self, CALLBACK_ON_END, CALLBACK_SENDING, DEAD, LEASE_LOST, QUEUED, RUNNABLE, RUNNING, UsageTally,
};
use crate::store::{Completed, JobCompletion, JobHeartbeat, Lease, Rescued, StoreResult};

/// The completion of a batch of attempts (see `complete_in`): `$1` is the
/// JSON array of `rows::completions_json`. Only rows still running under the
/// completing run's own claim (owner and fencing token) change; a row a
/// concurrent transaction changed first is checked again as it left it.
static COMPLETE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH c AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset($1::jsonb) AS c(id text, token bigint, owner text, status text,
            terminal boolean, result text, error_kind text, error_message text, fuel_used bigint,
            duration_ms bigint, logs text, progress_percent bigint, progress_message text,
            started_at bigint, finished_at bigint, run_at bigint)),
     locked AS (SELECT id FROM jobs WHERE id IN (SELECT id FROM c) ORDER BY id FOR NO KEY UPDATE)
     UPDATE jobs SET status = c.status, result = c.result, error_kind = c.error_kind,
        error_message = c.error_message, fuel_used = c.fuel_used, duration_ms = c.duration_ms,
        logs = c.logs, progress_percent = COALESCE(c.progress_percent, jobs.progress_percent),
        progress_message = COALESCE(c.progress_message, jobs.progress_message),
        finished_at = CASE WHEN c.terminal THEN c.finished_at ELSE NULL END,
        run_at = c.run_at, started_at = c.started_at, lease_owner = NULL, lease_expires_at = NULL,
        callback_state = CASE WHEN c.terminal AND jobs.callback IS NOT NULL THEN {CALLBACK_SENDING}
                              ELSE jobs.callback_state END,
        callback_next_at = CASE WHEN c.terminal AND jobs.callback IS NOT NULL THEN c.finished_at
                                ELSE jobs.callback_next_at END
     FROM c
     WHERE jobs.id = c.id AND jobs.id IN (SELECT id FROM locked) AND jobs.status = {RUNNING}
       AND jobs.lease_owner = c.owner AND jobs.lease_token = c.token
     RETURNING jobs.id, jobs.lease_token, jobs.batch_id, jobs.status"
    )
});

pub(super) async fn heartbeat(s: &PgStore, p: JobHeartbeat) -> StoreResult<Vec<Lease>> {
    if p.leases.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "WITH l AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($3::jsonb) AS l(id text, token bigint)),
         locked AS (
            SELECT id FROM jobs
            WHERE id IN (SELECT id FROM l) AND lease_owner = $2 AND status = {RUNNING}
            ORDER BY id FOR NO KEY UPDATE)
         UPDATE jobs SET lease_expires_at = $1
         FROM l
         WHERE jobs.id = l.id AND jobs.id IN (SELECT id FROM locked) AND jobs.lease_token = l.token
           AND jobs.lease_owner = $2 AND jobs.status = {RUNNING} AND jobs.lease_expires_at >= $4
         RETURNING jobs.id, jobs.lease_token"
    ))
    .bind(p.lease_expires_at)
    .bind(&p.owner)
    .bind(leases_json(&p.leases))
    .bind(p.now)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows.into_iter().map(|(id, token)| Lease { id, token: token as u64 }).collect())
}

pub(super) async fn complete(s: &PgStore, completions: Vec<JobCompletion>) -> StoreResult<Completed> {
    if completions.is_empty() {
        return Ok(Completed::default());
    }
    let completions: Vec<JobCompletion> = completions.into_iter().map(text_safe).collect();
    let mut tx = s.tx().await?;
    let applied = complete_in(&mut tx, &completions).await?;
    tx.commit().await?;
    Ok(applied)
}

/// A completion whose texts PostgreSQL can store: a TEXT value cannot hold
/// the NUL character (nor can `jsonb`, which the statement reads the
/// completions through), so a guest's NUL becomes U+FFFD rather than failing
/// the whole completion batch.
fn text_safe(mut c: JobCompletion) -> JobCompletion {
    fn clean(s: &mut String) {
        if s.contains('\0') {
            *s = s.replace('\0', "\u{FFFD}");
        }
    }
    for text in [c.result.as_mut(), c.logs.as_mut()].into_iter().flatten() {
        clean(text);
    }
    if let Some((kind, message)) = c.error.as_mut() {
        clean(kind);
        clean(message);
    }
    if let Some((_, message)) = c.progress.as_mut() {
        clean(message);
    }
    c
}

pub(super) async fn progress(s: &PgStore, lease: &Lease, percent: u8, message: &str) -> StoreResult<bool> {
    let stored = sqlx::query(&format!(
        "UPDATE jobs SET progress_percent = $1, progress_message = $2
         WHERE id = $3 AND lease_token = $4 AND status = {RUNNING}"
    ))
    .bind(i64::from(percent))
    .bind(message.replace('\0', "\u{FFFD}"))
    .bind(&lease.id)
    .bind(lease.token as i64)
    .execute(&s.pool)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

pub(super) async fn rescue_expired(s: &PgStore, now: i64) -> StoreResult<Rescued> {
    let mut tx = s.tx().await?;
    // On the last attempt: dead, ending like any other terminal transition.
    // Then the waiting jobs with no attempt left. Then the rest, which have
    // attempts left: back to the queue.
    let mut dead: Vec<JobRefRow> = Vec::new();
    for lapsed in [
        format!("status = {RUNNING} AND lease_expires_at < $1 AND attempt >= max_attempts"),
        format!("status IN {RUNNABLE} AND attempt >= max_attempts"),
    ] {
        dead.extend(
            sqlx::query_as::<_, JobRefRow>(&format!(
                "WITH lapsed AS (SELECT id FROM jobs WHERE {lapsed} ORDER BY id FOR NO KEY UPDATE SKIP LOCKED)
                 UPDATE jobs SET status = {DEAD}, finished_at = $1, lease_owner = NULL,
                    lease_expires_at = NULL, {LEASE_LOST},
                    {CALLBACK_ON_END} CASE WHEN callback IS NOT NULL THEN $1 ELSE NULL END
                 WHERE id IN (SELECT id FROM lapsed)
                 RETURNING {JOB_REF_COLUMNS}"
            ))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?,
        );
    }
    // Only jobs with attempts left: a last attempt skipped above (its row was
    // held, e.g. by a heartbeat that then found the lease lapsed) is free by
    // now, and must end dead at the next rescue, not be queued again.
    let requeued: Vec<JobRefRow> = sqlx::query_as(&format!(
        "WITH lapsed AS (
            SELECT id FROM jobs WHERE status = {RUNNING} AND lease_expires_at < $1
              AND attempt < max_attempts
            ORDER BY id FOR NO KEY UPDATE SKIP LOCKED)
         UPDATE jobs SET status = {QUEUED}, lease_owner = NULL, lease_expires_at = NULL, {LEASE_LOST}
         WHERE id IN (SELECT id FROM lapsed)
         RETURNING {JOB_REF_COLUMNS}"
    ))
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    // Batches before usage: every write transaction takes jobs, then
    // batches, then usage rows.
    let (rescued, tally, batches) = rules::rescued(requeued, dead, now)?;
    let batches_done = schedule_done_batches(&mut tx, &batches, now).await?;
    usage::add(&mut tx, &tally).await?;
    tx.commit().await?;
    Ok(Rescued { batches_done, ..rescued })
}

pub(super) async fn release(s: &PgStore, owner: &str) -> StoreResult<u64> {
    // The interrupted attempt does not count: the job did nothing wrong. Its
    // fencing token stays: the next claim takes a new one all the same.
    Ok(sqlx::query(&format!(
        "WITH mine AS (
            SELECT id FROM jobs WHERE status = {RUNNING} AND lease_owner = $1 ORDER BY id FOR NO KEY UPDATE)
         UPDATE jobs SET status = {QUEUED}, attempt = GREATEST(attempt - 1, 0), lease_owner = NULL,
            lease_expires_at = NULL
         WHERE id IN (SELECT id FROM mine)"
    ))
    .bind(owner)
    .execute(&s.pool)
    .await?
    .rows_affected())
}

/// Records outcomes (see `Store::job_complete`) inside `tx`.
async fn complete_in(
    tx: &mut Transaction<'_, Postgres>,
    completions: &[JobCompletion],
) -> StoreResult<Completed> {
    let now = completions.iter().map(|c| c.finished_at).max().unwrap_or_default();
    let mut tally = UsageTally::default();
    let applying: Vec<&JobCompletion> = completions.iter().filter(|c| !c.usage_only).collect();
    let applied: Vec<(String, i64, Option<String>, String)> = if applying.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(&COMPLETE).bind(completions_json(&applying)).fetch_all(&mut **tx).await?
    };
    let batches = rules::ended_batches(
        applied.iter().filter_map(|(_, _, b, s)| Some((JobStatus::parse(s)?, b.as_ref()))),
    );
    let batches_done = schedule_done_batches(tx, &batches, now).await?;
    let applied: HashSet<Lease> =
        applied.into_iter().map(|(id, token, _, _)| Lease { id, token: token as u64 }).collect();
    // Report in the order given, and count each applied run and outcome once.
    let (reported, fenced) = rules::settle_completions(completions, &applied, &mut tally);
    // Runs whose completion did not apply still used fuel and time: each
    // claim counted once however often it is reported.
    usage::count_fenced_runs(tx, &fenced, &mut tally).await?;
    usage::add(tx, &tally).await?;
    Ok(Completed { applied: reported, batches_done })
}
