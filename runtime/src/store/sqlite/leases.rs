//! What runs under a claim of a job (the claim itself is in `claim`):
//! heartbeat, progress, completion, rescue and release, all fenced by the
//! claim's token.

use sqlx::{Sqlite, Transaction};
use std::sync::LazyLock;

use super::SqliteStore;
use super::batches::schedule_done_batches;
use super::usage;
use crate::domain::JobStatus;
use crate::store::rows::{JOB_REF_COLUMNS, JobRefRow, completions_json, leases_json};
use crate::store::rules::{
    self, CALLBACK_ON_END, CALLBACK_SENDING, DEAD, LEASE_LOST, QUEUED, RUNNABLE, RUNNING, UsageTally,
};
use crate::store::{Completed, JobCompletion, JobHeartbeat, Lease, Rescued, StoreResult};

/// The completion of a batch of attempts (see `complete_in`), rendered once.
/// Each row is read from binary JSON taken out once (see `jobs::INSERT`).
pub(super) static COMPLETE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each(?1))
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
     FROM (SELECT v ->> 'id' AS id, v ->> 'token' AS token, v ->> 'owner' AS owner,
                  v ->> 'status' AS status,
                  v ->> 'terminal' AS terminal, v ->> 'result' AS result,
                  v ->> 'error_kind' AS error_kind, v ->> 'error_message' AS error_message,
                  v ->> 'fuel_used' AS fuel_used, v ->> 'duration_ms' AS duration_ms,
                  v ->> 'logs' AS logs, v ->> 'progress_percent' AS progress_percent,
                  v ->> 'progress_message' AS progress_message,
                  v ->> 'started_at' AS started_at, v ->> 'finished_at' AS finished_at,
                  v ->> 'run_at' AS run_at
           FROM r) AS c
     WHERE jobs.id = c.id AND jobs.status = {RUNNING} AND jobs.lease_owner = c.owner
       AND jobs.lease_token = c.token
     RETURNING jobs.id, jobs.lease_token, jobs.batch_id, jobs.status"
    )
});

pub(super) async fn heartbeat(s: &SqliteStore, p: JobHeartbeat) -> StoreResult<Vec<Lease>> {
    if p.leases.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "UPDATE jobs SET lease_expires_at = ?1
         FROM (SELECT value ->> 'id' AS id, value ->> 'token' AS token FROM json_each(?3)) AS l
         WHERE jobs.id = l.id AND jobs.lease_token = l.token AND jobs.lease_owner = ?2
           AND jobs.status = {RUNNING} AND jobs.lease_expires_at >= ?4
         RETURNING jobs.id, jobs.lease_token"
    ))
    .bind(p.lease_expires_at)
    .bind(&p.owner)
    .bind(leases_json(&p.leases))
    .bind(p.now)
    .fetch_all(&s.writer)
    .await?;
    Ok(rows.into_iter().map(|(id, token)| Lease { id, token: token as u64 }).collect())
}

pub(super) async fn complete(s: &SqliteStore, completions: Vec<JobCompletion>) -> StoreResult<Completed> {
    if completions.is_empty() {
        return Ok(Completed::default());
    }
    let mut tx = s.tx().await?;
    let applied = complete_in(&mut tx, &completions).await?;
    tx.commit().await?;
    Ok(applied)
}

pub(super) async fn progress(
    s: &SqliteStore,
    lease: &Lease,
    percent: u8,
    message: &str,
) -> StoreResult<bool> {
    let stored = sqlx::query(&format!(
        "UPDATE jobs SET progress_percent = ?, progress_message = ?
         WHERE id = ? AND lease_token = ? AND status = {RUNNING}"
    ))
    .bind(percent as i64)
    .bind(message)
    .bind(&lease.id)
    .bind(lease.token as i64)
    .execute(&s.writer)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

pub(super) async fn rescue_expired(s: &SqliteStore, now: i64) -> StoreResult<Rescued> {
    let mut tx = s.tx().await?;
    // On the last attempt: dead, ending like any other terminal transition.
    // Then the waiting jobs with no attempt left (see the migration 0003).
    let mut dead: Vec<JobRefRow> = Vec::new();
    for lapsed in [
        format!("status = {RUNNING} AND lease_expires_at < ?1 AND attempt >= max_attempts"),
        format!("status IN {RUNNABLE} AND attempt >= max_attempts"),
    ] {
        dead.extend(
            sqlx::query_as::<_, JobRefRow>(&format!(
                "UPDATE jobs SET status = {DEAD}, finished_at = ?1, lease_owner = NULL,
                    lease_expires_at = NULL, {LEASE_LOST},
                    {CALLBACK_ON_END} CASE WHEN callback IS NOT NULL THEN ?1 ELSE NULL END
                 WHERE {lapsed}
                 RETURNING {JOB_REF_COLUMNS}"
            ))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?,
        );
    }
    // The rest have attempts left: back to the queue.
    let requeued: Vec<JobRefRow> = sqlx::query_as(&format!(
        "UPDATE jobs SET status = {QUEUED}, lease_owner = NULL, lease_expires_at = NULL, {LEASE_LOST}
         WHERE status = {RUNNING} AND lease_expires_at < ?1
         RETURNING {JOB_REF_COLUMNS}"
    ))
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let (rescued, tally, batches) = rules::rescued(requeued, dead, now)?;
    let batches_done = schedule_done_batches(&mut tx, &batches, now).await?;
    usage::add(&mut tx, &tally).await?;
    tx.commit().await?;
    Ok(Rescued { batches_done, ..rescued })
}

pub(super) async fn release(s: &SqliteStore, owner: &str) -> StoreResult<u64> {
    // The interrupted attempt does not count: the job did nothing wrong. Its
    // fencing token stays: the next claim takes a new one all the same.
    Ok(sqlx::query(&format!(
        "UPDATE jobs SET status = {QUEUED}, attempt = MAX(attempt - 1, 0), lease_owner = NULL,
            lease_expires_at = NULL
         WHERE status = {RUNNING} AND lease_owner = ?"
    ))
    .bind(owner)
    .execute(&s.writer)
    .await?
    .rows_affected())
}

/// Records outcomes (see `Store::job_complete`) inside `tx`.
pub(super) async fn complete_in(
    tx: &mut Transaction<'_, Sqlite>,
    completions: &[JobCompletion],
) -> StoreResult<Completed> {
    if completions.is_empty() {
        return Ok(Completed::default());
    }
    let now = completions.iter().map(|c| c.finished_at).max().unwrap_or_default();
    let mut tally = UsageTally::default();
    let applying: Vec<&JobCompletion> = completions.iter().filter(|c| !c.usage_only).collect();
    let applied: Vec<(String, i64, Option<String>, String)> = if applying.is_empty() {
        Vec::new()
    } else {
        // One statement for the whole batch: the completions travel as a JSON
        // array; only rows still running under the completing run's own claim
        // (owner and fencing token) change.
        sqlx::query_as(&COMPLETE).bind(completions_json(&applying)).fetch_all(&mut **tx).await?
    };
    let batches = rules::ended_batches(
        applied.iter().filter_map(|(_, _, b, s)| Some((JobStatus::parse(s)?, b.as_ref()))),
    );
    let batches_done = schedule_done_batches(tx, &batches, now).await?;
    let applied: std::collections::HashSet<Lease> =
        applied.into_iter().map(|(id, token, _, _)| Lease { id, token: token as u64 }).collect();
    // Report in the order given, and count each applied run and outcome once.
    let (reported, fenced) = rules::settle_completions(completions, &applied, &mut tally);
    // Runs whose completion did not apply still used fuel and time: each
    // claim counted once however often it is reported.
    usage::count_fenced_runs(tx, &fenced, &mut tally).await?;
    usage::add(tx, &tally).await?;
    Ok(Completed { applied: reported, batches_done })
}
