//! `jobs`: inserting, reading, cancelling, retrying and pruning jobs (claims
//! and completions are in `leases`, listing in `list`).

use sqlx::{Postgres, Transaction};
use std::sync::LazyLock;

use super::PgStore;
use super::batches::schedule_done_batches;
use crate::domain::{CallbackState, IdempotencyKey, JobStatus, TenantId};
use crate::store::rows::{
    JOB_COLUMNS, JobRow, JobWatchRow, KeyedJobRow, callback_json, insert_row, keyed, record_of,
};
use crate::store::rules::{
    self, CALLBACK_ON_END, CALLBACK_PENDING, CALLBACK_SETTLED, CANCELLED, DELAYED, QUEUED, RETRYABLE,
    RUNNABLE, TERMINAL,
};
use crate::store::{
    BackendError, Cancelled, Inserted, JobRecord, JobWatch, NewBatch, NewJob, StatusCounts, StoreError,
    StoreResult,
};

pub(super) async fn insert(
    s: &PgStore,
    new: Vec<NewJob>,
    batch: Option<NewBatch>,
) -> StoreResult<Vec<Inserted>> {
    // The common dispatch: one statement (`rules::lone_insert`).
    if rules::lone_insert(&new, &batch) {
        let (rows, out): (Vec<_>, Vec<_>) = new
            .iter()
            .map(|job| {
                let record = record_of(job);
                (insert_row(job, &record), Inserted { job: record, created: true })
            })
            .unzip();
        insert_rows(&s.pool, &rows, &INSERT).await?;
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
    tx: &mut Transaction<'_, Postgres>,
    new: &[NewJob],
    batch: Option<&NewBatch>,
) -> StoreResult<Vec<Inserted>> {
    // Each tenant's row held (FOR KEY SHARE) until the commit: a deletion of
    // the tenant (FOR UPDATE) waits for this insert, or this insert for it
    // and then finds the tenant gone.
    for tenant in rules::tenants_to_hold(new) {
        if !super::tenants::exists_in(tx, tenant).await? {
            return Err(rules::tenant_missing(tenant));
        }
    }
    if let Some(b) = batch {
        sqlx::query(
            "INSERT INTO batches (id, tenant, total, callback, callback_state, created_at, trace)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
    // Jobs without an idempotency key or uniqueness go in with one statement
    // (the rows are passed as one JSON array); each keyed job goes in on its
    // own, settled by the unique index on its key. Keyed jobs go in in key
    // order, not the request's: two batches sharing keys in opposite orders
    // would otherwise each wait on a key the other inserted first, a
    // deadlock PostgreSQL ends by failing one of them.
    let mut out: Vec<Option<Inserted>> = Vec::with_capacity(new.len());
    let mut bulk = Vec::new();
    let mut keyed_at = Vec::new();
    for (i, job) in new.iter().enumerate() {
        match (&job.idempotency_key, &job.unique) {
            (_, Some(_)) => out.push(None),
            (None, None) => {
                let record = record_of(job);
                bulk.push(insert_row(job, &record));
                out.push(Some(Inserted { job: record, created: true }));
            }
            (Some(key), None) => {
                keyed_at.push((key, i));
                out.push(None);
            }
        }
    }
    insert_unique(tx, new, &mut out).await?;
    keyed_at.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    for (key, i) in keyed_at {
        out[i] = Some(insert_keyed(tx, &new[i], key).await?);
    }
    let out: Vec<Inserted> = out.into_iter().map(|o| o.expect("every job was inserted")).collect();
    insert_rows(&mut **tx, &bulk, &INSERT).await?;
    if let Some(b) = batch {
        // The batch owns the jobs inserted with it, not the earlier jobs
        // returned for an existing key (they belong to whoever made them).
        sqlx::query(
            "UPDATE batches SET total = (SELECT COUNT(*) FROM jobs WHERE batch_id = $1) WHERE id = $1",
        )
        .bind(&b.id)
        .execute(&mut **tx)
        .await?;
        // A batch that owns no job is done now: its callback is due.
        schedule_done_batches(tx, std::slice::from_ref(&b.id), b.created_at).await?;
    }
    Ok(out)
}

/// Inserts the jobs of `new` that carry a uniqueness, in request order, each
/// unless a matching job exists (then `out` gets that job). The advisory
/// locks of all their keys are taken first, in lock order (no deadlock with
/// another insert taking some of the same), and held to the commit: an
/// insert racing on a key through another node waits, then sees this job.
async fn insert_unique(
    tx: &mut Transaction<'_, Postgres>,
    new: &[NewJob],
    out: &mut [Option<Inserted>],
) -> StoreResult<()> {
    let mut locks: Vec<i64> =
        new.iter().filter_map(|j| Some(rules::unique_lock(&j.tenant, &j.unique.as_ref()?.key))).collect();
    if locks.is_empty() {
        return Ok(());
    }
    locks.sort_unstable();
    locks.dedup();
    // `unnest` yields the sorted array in its order.
    sqlx::query("SELECT pg_advisory_xact_lock(l) FROM unnest($1::bigint[]) AS l")
        .bind(&locks)
        .execute(&mut **tx)
        .await?;
    for (i, job) in new.iter().enumerate() {
        let Some(unique) = &job.unique else { continue };
        let states: Vec<&str> = unique.states.iter().map(|s| s.as_str()).collect();
        let existing = sqlx::query_as::<_, JobRow>(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE tenant = $1 AND unique_key = $2 AND status = ANY($3::text[]) AND created_at >= $4
             ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(job.tenant.as_str())
        .bind(&unique.key)
        .bind(&states)
        .bind(unique.since.unwrap_or(i64::MIN))
        .fetch_optional(&mut **tx)
        .await?;
        out[i] = Some(match (existing, &job.idempotency_key) {
            (Some(row), _) => Inserted { job: row.try_into()?, created: false },
            (None, Some(key)) => insert_keyed(tx, job, key).await?,
            (None, None) => {
                let record = record_of(job);
                insert_rows(&mut **tx, &[insert_row(job, &record)], &INSERT).await?;
                Inserted { job: record, created: true }
            }
        });
    }
    Ok(())
}

/// Inserts a keyed job unless its key is taken: the insert does nothing on a
/// conflict with the unique index (waiting for a transaction inserting the
/// same key elsewhere to end), then the row that holds the key is read. Never
/// a read before the write: two nodes racing with one key leave one row, and
/// the loser gets the winner's job (or the conflict, for another request).
async fn insert_keyed(
    tx: &mut Transaction<'_, Postgres>,
    job: &NewJob,
    key: &IdempotencyKey,
) -> StoreResult<Inserted> {
    let record = record_of(job);
    // A row that conflicted but is gone when read (pruned in between) is
    // raced again; a few tries settle it.
    for _ in 0..3 {
        if insert_rows(&mut **tx, &[keyed(insert_row(job, &record), job)], &KEYED).await? == 1 {
            return Ok(Inserted { job: record, created: true });
        }
        let existing = sqlx::query_as::<_, KeyedJobRow>(&format!(
            "SELECT idempotency_fingerprint, {JOB_COLUMNS} FROM jobs
             WHERE tenant = $1 AND idempotency_key = $2"
        ))
        .bind(job.tenant.as_str())
        .bind(key.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = existing {
            // On a conflict, dropping `tx` rolls back the whole insert.
            rules::idempotent_reuse(
                key,
                row.idempotency_fingerprint.as_deref(),
                job.idempotency_fingerprint.as_deref(),
            )?;
            return Ok(Inserted { job: row.job.try_into()?, created: false });
        }
    }
    Err(StoreError::Database(BackendError::new(format!(
        "the job holding idempotency_key {:?} kept vanishing while it was read",
        key.as_str()
    ))))
}

pub(super) async fn get(s: &PgStore, tenant: &TenantId, id: &str) -> StoreResult<JobRecord> {
    sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = $1 AND id = $2"))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&s.pool)
        .await?
        .ok_or_else(|| rules::job_missing(id))?
        .try_into()
}

pub(super) async fn watch(s: &PgStore, tenant: &TenantId, id: &str) -> StoreResult<JobWatch> {
    sqlx::query_as::<_, JobWatchRow>(
        "SELECT status, attempt, progress_percent, progress_message FROM jobs WHERE tenant = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&s.pool)
    .await?
    .ok_or_else(|| rules::job_missing(id))?
    .try_into()
}

pub(super) async fn cancel(s: &PgStore, tenant: &TenantId, id: &str, now: i64) -> StoreResult<Cancelled> {
    let mut tx = s.tx().await?;
    let row = sqlx::query_as::<_, JobRow>(&format!(
        "UPDATE jobs SET status = {CANCELLED}, finished_at = $1, lease_owner = NULL, lease_expires_at = NULL,
            error_kind = $4, error_message = $5,
            {CALLBACK_ON_END} CASE WHEN callback IS NOT NULL THEN $1 ELSE NULL END
         WHERE tenant = $2 AND id = $3 AND status NOT IN {TERMINAL}
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

pub(super) async fn retry(s: &PgStore, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord> {
    let row = sqlx::query_as::<_, JobRow>(&format!(
        "UPDATE jobs SET status = {QUEUED}, attempt = 0, run_at = $1, finished_at = NULL, started_at = NULL,
            result = NULL, error_kind = NULL, error_message = NULL, progress_percent = NULL,
            progress_message = NULL,
            callback_state = CASE WHEN callback IS NOT NULL THEN {CALLBACK_PENDING} ELSE NULL END,
            callback_attempts = 0, callback_last_error = NULL, callback_next_at = NULL
         WHERE tenant = $2 AND id = $3 AND status IN {RETRYABLE}
         RETURNING {JOB_COLUMNS}"
    ))
    .bind(now)
    .bind(tenant.as_str())
    .bind(id)
    .fetch_optional(&s.pool)
    .await?;
    match row {
        Some(row) => row.try_into(),
        None => {
            let job = get(s, tenant, id).await?;
            Err(rules::retry_refused(id, job.status))
        }
    }
}

pub(super) async fn waiting(s: &PgStore) -> StoreResult<Vec<(TenantId, u64)>> {
    // An index-only scan of `jobs_runnable` (tenant first).
    let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT tenant, COUNT(*) FROM jobs WHERE status IN {RUNNABLE} GROUP BY tenant"
    ))
    .fetch_all(&s.pool)
    .await?;
    rows.into_iter()
        .map(|(t, n)| Ok((TenantId::parse(t).map_err(crate::store::rows::corrupt)?, n as u64)))
        .collect()
}

pub(super) async fn prune(s: &PgStore, finished_before: i64, limit: u32) -> StoreResult<u64> {
    // Finished jobs found through `jobs_finished`, oldest first. Rows another
    // node's pruner (or anything else) holds are skipped, not waited for:
    // the pruners of several nodes share the work instead of queueing on it.
    let jobs = sqlx::query(&format!(
        "DELETE FROM jobs WHERE id IN (
            SELECT id FROM jobs
            WHERE status IN {TERMINAL} AND finished_at < $1
              AND (callback_state IS NULL OR callback_state IN {CALLBACK_SETTLED})
            ORDER BY finished_at LIMIT $2
            FOR UPDATE SKIP LOCKED)"
    ))
    .bind(finished_before)
    .bind(i64::from(limit))
    .execute(&s.pool)
    .await?
    .rows_affected();
    // A batch goes after its last job (`jobs_batch` answers "any job left?").
    let batches = sqlx::query(&format!(
        "DELETE FROM batches WHERE id IN (
            SELECT id FROM batches
            WHERE created_at < $1
              AND (callback_state IS NULL OR callback_state IN {CALLBACK_SETTLED})
              AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id)
            LIMIT $2
            FOR UPDATE SKIP LOCKED)"
    ))
    .bind(finished_before)
    .bind(i64::from(limit))
    .execute(&s.pool)
    .await?
    .rows_affected();
    Ok(jobs + batches)
}

pub(super) async fn next_due(s: &PgStore) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT run_at FROM jobs WHERE status IN {DELAYED} ORDER BY run_at LIMIT 1"
    ))
    .fetch_optional(&s.pool)
    .await?)
}

pub(super) async fn status_counts(s: &PgStore, tenant: &TenantId) -> StoreResult<StatusCounts> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT queue, status, COUNT(*) FROM jobs WHERE tenant = $1 GROUP BY queue, status")
            .bind(tenant.as_str())
            .fetch_all(&s.pool)
            .await?;
    Ok(rules::status_counts(rows))
}

/// The bulk insert: the new jobs travel as one JSON array of
/// `rows::insert_row`s, read once by `jsonb_to_recordset`.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    let columns = "id, tenant, alias, module, status, priority, queue, context, payload, max_attempts, \
        limits, run_at, created_at, idempotency_key, idempotency_fingerprint, batch_id, callback, \
        callback_state, attempt, lease_token, started_at, lease_owner, lease_expires_at, unique_key, trace";
    format!(
        "INSERT INTO jobs ({columns})
     SELECT {columns}
     FROM jsonb_to_recordset($1::jsonb) AS r(id text, tenant text, alias text, module text, status text,
        priority bigint, queue text, context text, payload text, max_attempts bigint, limits text,
        run_at bigint, created_at bigint, idempotency_key text, idempotency_fingerprint text,
        batch_id text, callback text, callback_state text, attempt bigint, lease_token bigint,
        started_at bigint, lease_owner text, lease_expires_at bigint, unique_key text, trace text)"
    )
});

/// [`INSERT`] of a keyed job: nothing is inserted when its key is taken
/// (`jobs_idempotency`).
static KEYED: LazyLock<String> = LazyLock::new(|| {
    format!("{} ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING", *INSERT)
});

/// Inserts many jobs with one `statement` ([`INSERT`] or [`KEYED`]); returns
/// how many went in.
async fn insert_rows<'c>(
    conn: impl sqlx::Executor<'c, Database = Postgres>,
    rows: &[serde_json::Value],
    statement: &str,
) -> StoreResult<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let rows = serde_json::Value::Array(rows.to_vec()).to_string();
    Ok(sqlx::query(statement).bind(rows).execute(conn).await?.rows_affected())
}
