//! `jobs`: inserting, reading, cancelling, retrying and pruning jobs (claims
//! and completions are in `leases`, listing in `list`).

use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::batches::schedule_done_batches;
use crate::domain::{CallbackState, JobStatus, TenantId};
use crate::store::rows::{
    JOB_COLUMNS, JobRow, JobWatchRow, KeyedJobRow, callback_json, insert_row, keyed, record_of,
};
use crate::store::rules::{
    self, CALLBACK_ON_END, CALLBACK_PENDING, CALLBACK_SETTLED, CANCELLED, DELAYED, QUEUED, RETRYABLE,
    RUNNABLE, TERMINAL,
};
use crate::store::{Cancelled, Inserted, JobRecord, JobWatch, NewBatch, NewJob, StatusCounts, StoreResult};

pub(super) async fn insert(
    s: &SqliteStore,
    new: Vec<NewJob>,
    batch: Option<NewBatch>,
) -> StoreResult<Vec<Inserted>> {
    // The common dispatch: one statement (`rules::lone_insert`), no round
    // trips to the writer's thread for BEGIN and COMMIT.
    if rules::lone_insert(&new, &batch) {
        let (rows, out): (Vec<_>, Vec<_>) = new
            .iter()
            .map(|job| {
                let record = record_of(job);
                (insert_row(job, &record), Inserted { job: record, created: true })
            })
            .unzip();
        insert_rows(&s.writer, rows).await?;
        return Ok(out);
    }
    let mut tx = s.tx().await?;
    let out = insert_in(&mut tx, &new, batch.as_ref()).await?;
    tx.commit().await?;
    Ok(out)
}

/// [`insert`] inside `tx` (not committed here): the jobs of one dispatch or
/// batch, or of a schedule's firing.
pub(super) async fn insert_in(
    tx: &mut Transaction<'_, Sqlite>,
    new: &[NewJob],
    batch: Option<&NewBatch>,
) -> StoreResult<Vec<Inserted>> {
    // Inside the write transaction: a tenant deleted before it began is gone.
    for tenant in rules::tenants_to_hold(new) {
        if !super::tenants::exists_in(tx, tenant).await? {
            return Err(rules::tenant_missing(tenant));
        }
    }
    if let Some(b) = batch {
        sqlx::query(
            "INSERT INTO batches (id, tenant, total, callback, callback_state, created_at, trace)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&b.id)
        .bind(b.tenant.as_str())
        .bind(new.len() as i64)
        .bind(callback_json(&b.callback))
        .bind(rules::initial_callback_state(&b.callback).map(CallbackState::as_str))
        .bind(b.created_at)
        .bind(&b.trace)
        .execute(&mut **tx)
        .await?;
    }
    // Jobs without an idempotency key go in with one statement (the rows are
    // passed as one JSON array); keyed jobs need their duplicate check first.
    let mut out: Vec<Option<Inserted>> = Vec::with_capacity(new.len());
    let mut bulk = Vec::new();
    for job in new {
        if let Some(unique) = &job.unique {
            // Inside the write transaction: no other insert runs between
            // this look and this insert.
            let states = serde_json::to_string(&unique.states).expect("statuses serialize");
            let existing = sqlx::query_as::<_, JobRow>(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE tenant = ? AND unique_key = ? AND status IN (SELECT value FROM json_each(?))
                   AND created_at >= ?
                 ORDER BY created_at DESC LIMIT 1"
            ))
            .bind(job.tenant.as_str())
            .bind(&unique.key)
            .bind(states)
            .bind(unique.since.unwrap_or(i64::MIN))
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = existing {
                out.push(Some(Inserted { job: row.try_into()?, created: false }));
                continue;
            }
            if job.idempotency_key.is_none() {
                // Inserted now, not with the bulk: a later job of this
                // submission with the same key must see it.
                let record = record_of(job);
                insert_rows(&mut **tx, vec![insert_row(job, &record)]).await?;
                out.push(Some(Inserted { job: record, created: true }));
                continue;
            }
        }
        match &job.idempotency_key {
            None => {
                let record = record_of(job);
                bulk.push(insert_row(job, &record));
                out.push(Some(Inserted { job: record, created: true }));
            }
            Some(key) => {
                let existing = sqlx::query_as::<_, KeyedJobRow>(&format!(
                    "SELECT idempotency_fingerprint, {JOB_COLUMNS} FROM jobs
                     WHERE tenant = ? AND idempotency_key = ?"
                ))
                .bind(job.tenant.as_str())
                .bind(key.as_str())
                .fetch_optional(&mut **tx)
                .await?;
                match existing {
                    Some(row) => {
                        // On a conflict, dropping `tx` rolls back the whole insert.
                        rules::idempotent_reuse(
                            key,
                            row.idempotency_fingerprint.as_deref(),
                            job.idempotency_fingerprint.as_deref(),
                        )?;
                        out.push(Some(Inserted { job: row.job.try_into()?, created: false }));
                    }
                    None => {
                        let record = record_of(job);
                        insert_rows(&mut **tx, vec![keyed(insert_row(job, &record), job)]).await?;
                        out.push(Some(Inserted { job: record, created: true }));
                    }
                }
            }
        }
    }
    insert_rows(&mut **tx, bulk).await?;
    if let Some(b) = batch {
        // The batch owns the jobs inserted with it, not the earlier jobs
        // returned for an existing key (they belong to whoever made them):
        // counting those would leave the batch waiting forever.
        sqlx::query(
            "UPDATE batches SET total = (SELECT COUNT(*) FROM jobs WHERE batch_id = ?1) WHERE id = ?1",
        )
        .bind(&b.id)
        .execute(&mut **tx)
        .await?;
        // A batch that owns no job is done now: its callback is due.
        schedule_done_batches(tx, std::slice::from_ref(&b.id), b.created_at).await?;
    }
    Ok(out.into_iter().flatten().collect())
}

pub(super) async fn get(s: &SqliteStore, tenant: &TenantId, id: &str) -> StoreResult<JobRecord> {
    sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = ? AND id = ?"))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&s.reader)
        .await?
        .ok_or_else(|| rules::job_missing(id))?
        .try_into()
}

pub(super) async fn watch(s: &SqliteStore, tenant: &TenantId, id: &str) -> StoreResult<JobWatch> {
    sqlx::query_as::<_, JobWatchRow>(
        "SELECT status, attempt, progress_percent, progress_message FROM jobs WHERE tenant = ? AND id = ?",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&s.reader)
    .await?
    .ok_or_else(|| rules::job_missing(id))?
    .try_into()
}

pub(super) async fn cancel(s: &SqliteStore, tenant: &TenantId, id: &str, now: i64) -> StoreResult<Cancelled> {
    let mut tx = s.tx().await?;
    let row = sqlx::query_as::<_, JobRow>(&format!(
        "UPDATE jobs SET status = {CANCELLED}, finished_at = ?1, lease_owner = NULL, lease_expires_at = NULL,
            error_kind = ?4, error_message = ?5,
            {CALLBACK_ON_END} CASE WHEN callback IS NOT NULL THEN ?1 ELSE NULL END
         WHERE tenant = ?2 AND id = ?3 AND status NOT IN {TERMINAL}
         RETURNING {JOB_COLUMNS}"
    ))
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .bind(rules::CANCELLED_BY_REQUEST.0)
    .bind(rules::CANCELLED_BY_REQUEST.1)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        drop(tx);
        let job = get(s, tenant, id).await?;
        return Err(rules::cancel_refused(id, job.status));
    };
    let job: JobRecord = row.try_into()?;
    let batches_done = match &job.batch_id {
        Some(b) => schedule_done_batches(&mut tx, std::slice::from_ref(b), now).await?,
        None => Vec::new(),
    };
    let mut tally = rules::UsageTally::default();
    tally.outcome(tenant, JobStatus::Cancelled, now);
    super::usage::add(&mut tx, &tally).await?;
    tx.commit().await?;
    Ok(Cancelled { job, batches_done })
}

pub(super) async fn retry(s: &SqliteStore, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord> {
    let row = sqlx::query_as::<_, JobRow>(&format!(
        "UPDATE jobs SET status = {QUEUED}, attempt = 0, run_at = ?1, finished_at = NULL, started_at = NULL,
            result = NULL, error_kind = NULL, error_message = NULL, progress_percent = NULL,
            progress_message = NULL,
            callback_state = CASE WHEN callback IS NOT NULL THEN {CALLBACK_PENDING} ELSE NULL END,
            callback_attempts = 0, callback_last_error = NULL, callback_next_at = NULL
         WHERE tenant = ?2 AND id = ?3 AND status IN {RETRYABLE}
         RETURNING {JOB_COLUMNS}"
    ))
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&s.writer)
    .await?;
    match row {
        Some(row) => row.try_into(),
        None => {
            let job = get(s, tenant, id).await?;
            Err(rules::retry_refused(id, job.status))
        }
    }
}

pub(super) async fn waiting(s: &SqliteStore) -> StoreResult<Vec<(TenantId, u64)>> {
    // An index-only scan of `jobs_runnable` (tenant first: migration 0010).
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT tenant, COUNT(*) FROM jobs WHERE status IN {RUNNABLE} GROUP BY tenant"
    ))
    .fetch_all(&s.reader)
    .await?;
    rows.into_iter()
        .map(|(t, n)| Ok((TenantId::parse(t).map_err(crate::store::rows::corrupt)?, n as u64)))
        .collect()
}

pub(super) async fn prune(s: &SqliteStore, finished_before: i64, limit: u32) -> StoreResult<u64> {
    let jobs = sqlx::query(&format!(
        "DELETE FROM jobs WHERE id IN (
            SELECT id FROM jobs
            WHERE status IN {TERMINAL} AND finished_at < ?1
              AND (callback_state IS NULL OR callback_state IN {CALLBACK_SETTLED})
            LIMIT ?2)"
    ))
    .bind(finished_before)
    .bind(limit)
    .execute(&s.writer)
    .await?
    .rows_affected();
    // A batch goes after its last job (`jobs_batch` answers "any job left?").
    let batches = sqlx::query(&format!(
        "DELETE FROM batches WHERE id IN (
            SELECT id FROM batches
            WHERE created_at < ?1
              AND (callback_state IS NULL OR callback_state IN {CALLBACK_SETTLED})
              AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id)
            LIMIT ?2)"
    ))
    .bind(finished_before)
    .bind(limit)
    .execute(&s.writer)
    .await?
    .rows_affected();
    Ok(jobs + batches)
}

pub(super) async fn next_due(s: &SqliteStore) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT run_at FROM jobs WHERE status IN {DELAYED} ORDER BY run_at LIMIT 1"
    ))
    .fetch_optional(&s.writer)
    .await?)
}

pub(super) async fn status_counts(s: &SqliteStore, tenant: &TenantId) -> StoreResult<StatusCounts> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT queue, status, COUNT(*) FROM jobs WHERE tenant = ? GROUP BY queue, status")
            .bind(tenant.as_str())
            .fetch_all(&s.reader)
            .await?;
    Ok(rules::status_counts(rows))
}

/// The bulk insert: the new jobs travel as one JSON array of `rows::insert_row`s.
/// Each row is taken out of the array once, in SQLite's binary JSON (`r`,
/// materialized): `json_each`'s `value` would render the row as text again
/// for every field read from it (24 here), which cost more than the insert.
pub(super) const INSERT: &str = "WITH r AS MATERIALIZED (SELECT jsonb(value) AS v FROM json_each(?1))
     INSERT INTO jobs (id, tenant, alias, module, status, priority, queue, context, payload, max_attempts,
        limits, run_at, created_at, idempotency_key, idempotency_fingerprint, batch_id, callback,
        callback_state, attempt, lease_token, started_at, lease_owner, lease_expires_at, unique_key, trace)
     SELECT v ->> 'id', v ->> 'tenant', v ->> 'alias', v ->> 'module', v ->> 'status',
        v ->> 'priority', v ->> 'queue', v ->> 'context', v ->> 'payload',
        v ->> 'max_attempts', v ->> 'limits', v ->> 'run_at', v ->> 'created_at',
        v ->> 'idempotency_key', v ->> 'idempotency_fingerprint', v ->> 'batch_id',
        v ->> 'callback', v ->> 'callback_state', v ->> 'attempt', v ->> 'lease_token',
        v ->> 'started_at', v ->> 'lease_owner', v ->> 'lease_expires_at', v ->> 'unique_key',
        v ->> 'trace'
     FROM r";

/// Inserts many jobs with one statement.
pub(super) async fn insert_rows<'c>(
    conn: impl sqlx::Executor<'c, Database = Sqlite>,
    rows: Vec<serde_json::Value>,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(INSERT).bind(serde_json::Value::Array(rows).to_string()).execute(conn).await?;
    Ok(())
}
