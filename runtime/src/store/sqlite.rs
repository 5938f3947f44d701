//! SQLite backend (the embedded default): WAL, `synchronous = NORMAL` (a commit
//! survives a process crash or `kill -9`; power loss may lose the last commits),
//! one writer connection and a small pool of readers.
//!
//! All writes go through the single writer connection, so write transactions
//! never race each other for SQLite's lock (a deferred transaction upgrading to a
//! writer fails at once with SQLITE_BUSY instead of waiting).

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, Sqlite, SqlitePool, Transaction};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

mod list;

use super::records::*;
use super::{Store, StoreError, StoreResult};
use crate::domain::{AliasName, Callback, CallbackState, Digest, JobStatus, Limits, PluginKind, TenantId};

/// Columns of `jobs` in the order `JobRow` reads them.
const JOB_COLUMNS: &str = "id, tenant, alias, module, status, priority, queue, context, payload, attempt, \
    max_attempts, limits, run_at, created_at, started_at, finished_at, lease_owner, result, error_kind, \
    error_message, progress_percent, progress_message, logs, fuel_used, duration_ms, idempotency_key, \
    batch_id, callback, callback_state, callback_attempts, callback_last_error, lease_token";

/// The statuses a claim picks from.
const RUNNABLE: &str = "('queued', 'scheduled', 'failed')";
/// The statuses that end a job.
const TERMINAL: &str = "('succeeded', 'dead', 'cancelled')";

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The database file and its identity when opened (`None` in memory).
    file: Option<(std::path::PathBuf, FileId)>,
}

/// Device and inode of a file: a file removed, or replaced by another at the
/// same path, no longer matches, though open connections still use the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    fn of(path: &std::path::Path) -> std::io::Result<FileId> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(FileId(m.dev(), m.ino()))
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://wasmq.db`)
    /// and applies pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-32000")
            // Read pages through a memory map instead of read(2) copies.
            .pragma("mmap_size", "268435456");
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Database(sqlx::Error::Migrate(Box::new(e))))?;
        let file = options.get_filename().to_path_buf();
        let file = FileId::of(&file).ok().map(|id| (file, id));
        let reader =
            SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, reader, file })
    }

    async fn tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin().await?)
    }
}

/// A job row with its idempotency fingerprint (read only by `job_insert`).
#[derive(FromRow)]
struct KeyedJobRow {
    idempotency_fingerprint: Option<String>,
    #[sqlx(flatten)]
    job: JobRow,
}

#[derive(FromRow)]
struct JobRow {
    id: String,
    tenant: String,
    alias: String,
    module: String,
    status: String,
    priority: i64,
    queue: String,
    context: Option<String>,
    payload: String,
    attempt: i64,
    max_attempts: i64,
    limits: String,
    run_at: i64,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    lease_owner: Option<String>,
    result: Option<String>,
    error_kind: Option<String>,
    error_message: Option<String>,
    progress_percent: Option<i64>,
    progress_message: Option<String>,
    logs: Option<String>,
    fuel_used: Option<i64>,
    duration_ms: Option<i64>,
    idempotency_key: Option<String>,
    batch_id: Option<String>,
    callback: Option<String>,
    callback_state: Option<String>,
    callback_attempts: i64,
    callback_last_error: Option<String>,
    lease_token: i64,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn digest(s: &str) -> StoreResult<Digest> {
    s.parse().map_err(corrupt)
}

fn callback_json(c: &Option<Callback>) -> Option<String> {
    // The secret is stored (it signs deliveries; sealed by the API layer, see
    // `callbacks::SecretBox`) even though the API never shows it.
    c.as_ref()
        .map(|c| serde_json::json!({ "url": c.url, "headers": c.headers, "secret": c.secret }).to_string())
}

fn parse_callback(s: Option<String>) -> StoreResult<Option<Callback>> {
    s.map(|s| serde_json::from_str(&s).map_err(corrupt)).transpose()
}

impl TryFrom<JobRow> for JobRecord {
    type Error = StoreError;

    fn try_from(r: JobRow) -> StoreResult<Self> {
        Ok(JobRecord {
            tenant: TenantId::parse(r.tenant).map_err(corrupt)?,
            module: digest(&r.module)?,
            status: JobStatus::parse(&r.status).ok_or_else(|| corrupt(format!("status {}", r.status)))?,
            limits: serde_json::from_str::<Limits>(&r.limits).map_err(corrupt)?,
            error: r.error_kind.map(|k| (k, r.error_message.unwrap_or_default())),
            progress: r
                .progress_percent
                .map(|p| (p.clamp(0, 100) as u8, r.progress_message.unwrap_or_default())),
            callback: parse_callback(r.callback)?,
            callback_state: r.callback_state.as_deref().and_then(CallbackState::parse),
            id: r.id,
            alias: r.alias,
            priority: r.priority as i32,
            queue: r.queue,
            context: r.context,
            payload: r.payload,
            attempt: r.attempt as u32,
            max_attempts: r.max_attempts as u32,
            run_at: r.run_at,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            lease_owner: r.lease_owner,
            lease_token: r.lease_token as u64,
            result: r.result,
            logs: r.logs,
            fuel_used: r.fuel_used.map(|f| f as u64),
            duration_ms: r.duration_ms.map(|d| d as u64),
            idempotency_key: r.idempotency_key,
            batch_id: r.batch_id,
            callback_attempts: r.callback_attempts as u32,
            callback_last_error: r.callback_last_error,
        })
    }
}

fn jobs(rows: Vec<JobRow>) -> StoreResult<Vec<JobRecord>> {
    rows.into_iter().map(JobRecord::try_from).collect()
}

#[derive(FromRow)]
struct ModuleRow {
    digest: String,
    size: i64,
    kind: String,
    created_at: i64,
}

impl TryFrom<ModuleRow> for ModuleRecord {
    type Error = StoreError;

    fn try_from(r: ModuleRow) -> StoreResult<Self> {
        Ok(ModuleRecord {
            digest: digest(&r.digest)?,
            size: r.size as u64,
            kind: serde_json::from_value(serde_json::Value::String(r.kind)).map_err(corrupt)?,
            created_at: r.created_at,
        })
    }
}

fn kind_str(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Job => "job",
        PluginKind::Command => "command",
    }
}

#[derive(FromRow)]
struct AliasRow {
    name: String,
    version: i64,
    module: String,
    config: String,
    updated_at: i64,
}

impl TryFrom<AliasRow> for AliasRecord {
    type Error = StoreError;

    fn try_from(r: AliasRow) -> StoreResult<Self> {
        Ok(AliasRecord {
            name: AliasName::parse(r.name).map_err(corrupt)?,
            version: r.version,
            module: digest(&r.module)?,
            config: serde_json::from_str(&r.config).map_err(corrupt)?,
            updated_at: r.updated_at,
        })
    }
}

/// After jobs reached a terminal status: batches whose jobs are now all
/// terminal get their callback scheduled (once: only from `pending`).
async fn schedule_done_batches(
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

/// The error a rescue records: the attempt whose worker stopped renewing.
const LEASE_LOST: &str =
    "error_kind = 'lease_expired', error_message = 'the worker running attempt ' || attempt
    || ' of ' || max_attempts || ' stopped renewing its lease'";

/// Claims as the JSON array `[{"id", "token"}]` the statements read with `json_each`.
fn leases_json(leases: &[Lease]) -> String {
    serde_json::Value::Array(
        leases.iter().map(|l| serde_json::json!({"id": l.id, "token": l.token})).collect(),
    )
    .to_string()
}

/// The SQL that moves a job's callback to `sending` when it ends.
const CALLBACK_ON_END: &str =
    "callback_state = CASE WHEN callback IS NOT NULL THEN 'sending' ELSE NULL END, callback_next_at = ";

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn module_put(&self, p: ModulePut) -> StoreResult<(ModuleRecord, bool)> {
        let inserted = sqlx::query(
            "INSERT INTO modules (tenant, digest, size, kind, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (tenant, digest) DO NOTHING",
        )
        .bind(p.tenant.as_str())
        .bind(p.digest.to_string())
        .bind(p.bytes.len() as i64)
        .bind(kind_str(p.kind))
        .bind(&p.bytes)
        .bind(p.now)
        .execute(&self.writer)
        .await?
        .rows_affected()
            == 1;
        let record = self.module_get(&p.tenant, &p.digest).await?;
        Ok((record, inserted))
    }

    async fn module_get(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<ModuleRecord> {
        sqlx::query_as::<_, ModuleRow>(
            "SELECT digest, size, kind, created_at FROM modules WHERE tenant = ? AND digest = ?",
        )
        .bind(tenant.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.writer)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("module {digest}")))?
        .try_into()
    }

    async fn module_bytes(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<Vec<u8>> {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT bytes FROM modules WHERE tenant = ? AND digest = ?")
            .bind(tenant.as_str())
            .bind(digest.to_string())
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("module {digest}")))
    }

    async fn module_list(&self, tenant: &TenantId) -> StoreResult<Vec<ModuleRecord>> {
        sqlx::query_as::<_, ModuleRow>(
            "SELECT digest, size, kind, created_at FROM modules WHERE tenant = ? ORDER BY created_at DESC, digest",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(ModuleRecord::try_from)
        .collect()
    }

    async fn module_delete(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        let d = digest.to_string();
        let users: Vec<String> =
            sqlx::query_scalar("SELECT name FROM aliases WHERE tenant = ? AND module = ? ORDER BY name")
                .bind(tenant.as_str())
                .bind(&d)
                .fetch_all(&mut *tx)
                .await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "module {digest} is used by alias {}; point the alias elsewhere or delete it first",
                users.join(", ")
            )));
        }
        let pending: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM jobs WHERE tenant = ? AND module = ? AND status NOT IN {TERMINAL}"
        ))
        .bind(tenant.as_str())
        .bind(&d)
        .fetch_one(&mut *tx)
        .await?;
        if pending > 0 {
            return Err(StoreError::Conflict(format!("module {digest} has {pending} unfinished jobs")));
        }
        let deleted = sqlx::query("DELETE FROM modules WHERE tenant = ? AND digest = ?")
            .bind(tenant.as_str())
            .bind(&d)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("module {digest}")));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn alias_set(&self, p: AliasSet) -> StoreResult<AliasRecord> {
        let mut tx = self.tx().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM modules WHERE tenant = ? AND digest = ?")
            .bind(p.tenant.as_str())
            .bind(p.module.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("module {}", p.module)));
        }
        let record = put_alias_version(&mut tx, &p.tenant, &p.name, &p.module, &p.config, p.now).await?;
        prune_alias_versions(&mut tx, &p.tenant, &p.name, record.version, p.keep_versions).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn alias_get(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<AliasRecord> {
        sqlx::query_as::<_, AliasRow>(
            "SELECT name, version, module, config, updated_at FROM aliases WHERE tenant = ? AND name = ?",
        )
        .bind(tenant.as_str())
        .bind(name.as_str())
        .fetch_optional(&self.writer)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("alias {name}")))?
        .try_into()
    }

    async fn alias_history(&self, p: AliasHistory) -> StoreResult<Vec<AliasVersion>> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT version, module, config, created_at FROM alias_versions
             WHERE tenant = ? AND name = ? AND version < ? ORDER BY version DESC LIMIT ?",
        )
        .bind(p.tenant.as_str())
        .bind(p.name.as_str())
        .bind(p.before.unwrap_or(i64::MAX))
        .bind(p.limit)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|(version, module, config, created_at)| {
                Ok(AliasVersion {
                    version,
                    module: digest(&module)?,
                    config: serde_json::from_str(&config).map_err(corrupt)?,
                    created_at,
                })
            })
            .collect()
    }

    async fn alias_list(&self, tenant: &TenantId) -> StoreResult<Vec<AliasRecord>> {
        sqlx::query_as::<_, AliasRow>(
            "SELECT name, version, module, config, updated_at FROM aliases WHERE tenant = ? ORDER BY name",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(AliasRecord::try_from)
        .collect()
    }

    async fn alias_rollback(&self, p: AliasRollback) -> StoreResult<AliasRecord> {
        let (tenant, name, now) = (&p.tenant, &p.name, p.now);
        let mut tx = self.tx().await?;
        let current: i64 = sqlx::query_scalar("SELECT version FROM aliases WHERE tenant = ? AND name = ?")
            .bind(tenant.as_str())
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("alias {name}")))?;
        let previous: Option<(String, String)> = sqlx::query_as(
            "SELECT module, config FROM alias_versions WHERE tenant = ? AND name = ? AND version = ?",
        )
        .bind(tenant.as_str())
        .bind(name.as_str())
        .bind(current - 1)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((module, config)) = previous else {
            return Err(StoreError::Conflict(format!("alias {name} has no version before {current}")));
        };
        let module = digest(&module)?;
        let present: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM modules WHERE tenant = ? AND digest = ?")
                .bind(tenant.as_str())
                .bind(module.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if present.is_none() {
            return Err(StoreError::Conflict(format!(
                "alias {name} version {} points to module {module}, which was deleted",
                current - 1
            )));
        }
        let config: AliasConfig = serde_json::from_str(&config).map_err(corrupt)?;
        let record = put_alias_version(&mut tx, tenant, name, &module, &config, now).await?;
        prune_alias_versions(&mut tx, tenant, name, record.version, p.keep_versions).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn alias_delete(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        let deleted = sqlx::query("DELETE FROM aliases WHERE tenant = ? AND name = ?")
            .bind(tenant.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound(format!("alias {name}")));
        }
        sqlx::query("DELETE FROM alias_versions WHERE tenant = ? AND name = ?")
            .bind(tenant.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn job_insert(&self, new: Vec<NewJob>, batch: Option<NewBatch>) -> StoreResult<Vec<Inserted>> {
        let mut tx = self.tx().await?;
        if let Some(b) = &batch {
            sqlx::query(
                "INSERT INTO batches (id, tenant, total, callback, callback_state, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&b.id)
            .bind(b.tenant.as_str())
            .bind(new.len() as i64)
            .bind(callback_json(&b.callback))
            .bind(b.callback.as_ref().map(|_| "pending"))
            .bind(b.created_at)
            .execute(&mut *tx)
            .await?;
        }
        // Jobs without an idempotency key go in with one statement (the rows are
        // passed as one JSON array); keyed jobs need their duplicate check first.
        let mut out: Vec<Option<Inserted>> = Vec::with_capacity(new.len());
        let mut bulk = Vec::new();
        for job in &new {
            match &job.idempotency_key {
                None => {
                    bulk.push(insert_row(job));
                    out.push(Some(Inserted { job: record_of(job), created: true }));
                }
                Some(key) => {
                    let existing = sqlx::query_as::<_, KeyedJobRow>(&format!(
                        "SELECT idempotency_fingerprint, {JOB_COLUMNS} FROM jobs
                         WHERE tenant = ? AND idempotency_key = ?"
                    ))
                    .bind(job.tenant.as_str())
                    .bind(key.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    match existing {
                        Some(row) => {
                            // A row from before fingerprints (NULL), or a caller
                            // that gives none, matches any request.
                            if let (Some(stored), Some(given)) =
                                (&row.idempotency_fingerprint, &job.idempotency_fingerprint)
                                && stored != given
                            {
                                // Dropping `tx` rolls back the whole insert.
                                return Err(StoreError::IdempotencyConflict { key: key.as_str().into() });
                            }
                            out.push(Some(Inserted { job: row.job.try_into()?, created: false }));
                        }
                        None => {
                            let mut row = insert_row(job);
                            row["idempotency_key"] = key.as_str().into();
                            row["idempotency_fingerprint"] = job.idempotency_fingerprint.clone().into();
                            insert_rows(&mut tx, &[row]).await?;
                            out.push(Some(Inserted { job: record_of(job), created: true }));
                        }
                    }
                }
            }
        }
        insert_rows(&mut tx, &bulk).await?;
        if let Some(b) = &batch {
            // The batch owns the jobs inserted with it, not the earlier jobs
            // returned for an existing key (they belong to whoever made them):
            // counting those would leave the batch waiting forever.
            sqlx::query(
                "UPDATE batches SET total = (SELECT COUNT(*) FROM jobs WHERE batch_id = ?1) WHERE id = ?1",
            )
            .bind(&b.id)
            .execute(&mut *tx)
            .await?;
            // A batch that owns no job is done now: its callback is due.
            schedule_done_batches(&mut tx, std::slice::from_ref(&b.id), b.created_at).await?;
        }
        let out: Vec<Inserted> = out.into_iter().flatten().collect();
        tx.commit().await?;
        Ok(out)
    }

    async fn job_get(&self, tenant: &TenantId, id: &str) -> StoreResult<JobRecord> {
        sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = ? AND id = ?"))
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("job {id}")))?
            .try_into()
    }

    async fn job_watch(&self, tenant: &TenantId, id: &str) -> StoreResult<JobWatch> {
        let row: Option<(String, i64, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT status, attempt, progress_percent, progress_message FROM jobs WHERE tenant = ? AND id = ?",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        let (status, attempt, percent, message) =
            row.ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
        Ok(JobWatch {
            status: JobStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status}")))?,
            attempt: attempt as u32,
            progress: percent.map(|p| (p.clamp(0, 100) as u8, message.unwrap_or_default())),
        })
    }

    async fn job_list(&self, p: JobList) -> StoreResult<JobListPage> {
        list::job_list(&self.reader, p).await
    }

    async fn job_claim(&self, p: JobClaim) -> StoreResult<Vec<JobRecord>> {
        claim_in(&self.writer, &p).await
    }

    async fn job_heartbeat(&self, p: JobHeartbeat) -> StoreResult<Vec<Lease>> {
        if p.leases.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE jobs SET lease_expires_at = ?1
             FROM (SELECT value ->> 'id' AS id, value ->> 'token' AS token FROM json_each(?3)) AS l
             WHERE jobs.id = l.id AND jobs.lease_token = l.token AND jobs.lease_owner = ?2
               AND jobs.status = 'running' AND jobs.lease_expires_at >= ?4
             RETURNING jobs.id, jobs.lease_token",
        )
        .bind(p.lease_expires_at)
        .bind(&p.owner)
        .bind(leases_json(&p.leases))
        .bind(p.now)
        .fetch_all(&self.writer)
        .await?;
        Ok(rows.into_iter().map(|(id, token)| Lease { id, token: token as u64 }).collect())
    }

    async fn job_complete(&self, completions: Vec<JobCompletion>) -> StoreResult<Vec<Lease>> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.tx().await?;
        let applied = complete_in(&mut tx, &completions).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn job_progress(&self, lease: &Lease, percent: u8, message: &str) -> StoreResult<bool> {
        let stored = sqlx::query(
            "UPDATE jobs SET progress_percent = ?, progress_message = ?
             WHERE id = ? AND lease_token = ? AND status = 'running'",
        )
        .bind(percent as i64)
        .bind(message)
        .bind(&lease.id)
        .bind(lease.token as i64)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(stored == 1)
    }

    async fn job_cancel(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord> {
        let mut tx = self.tx().await?;
        let row = sqlx::query_as::<_, JobRow>(&format!(
            "UPDATE jobs SET status = 'cancelled', finished_at = ?1, lease_owner = NULL, lease_expires_at = NULL,
                error_kind = 'cancelled', error_message = 'cancelled by request',
                {CALLBACK_ON_END} CASE WHEN callback IS NOT NULL THEN ?1 ELSE NULL END
             WHERE tenant = ?2 AND id = ?3 AND status NOT IN {TERMINAL}
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(now)
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            drop(tx);
            let job = self.job_get(tenant, id).await?;
            return Err(StoreError::Conflict(format!("job {id} is already {}", job.status.as_str())));
        };
        let job: JobRecord = row.try_into()?;
        if let Some(b) = &job.batch_id {
            schedule_done_batches(&mut tx, std::slice::from_ref(b), now).await?;
        }
        tx.commit().await?;
        Ok(job)
    }

    async fn job_retry(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord> {
        let row = sqlx::query_as::<_, JobRow>(&format!(
            "UPDATE jobs SET status = 'queued', attempt = 0, run_at = ?1, finished_at = NULL, started_at = NULL,
                result = NULL, error_kind = NULL, error_message = NULL, progress_percent = NULL,
                progress_message = NULL,
                callback_state = CASE WHEN callback IS NOT NULL THEN 'pending' ELSE NULL END,
                callback_attempts = 0, callback_last_error = NULL, callback_next_at = NULL
             WHERE tenant = ?2 AND id = ?3 AND status IN ('failed', 'dead', 'cancelled')
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(now)
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        match row {
            Some(row) => row.try_into(),
            None => {
                let job = self.job_get(tenant, id).await?;
                Err(StoreError::Conflict(format!(
                    "job {id} is {}; only failed, dead or cancelled jobs can be retried",
                    job.status.as_str()
                )))
            }
        }
    }

    async fn job_rescue_expired(&self, now: i64) -> StoreResult<Rescued> {
        let mut tx = self.tx().await?;
        // On the last attempt: dead, ending like any other terminal transition.
        // Then the waiting jobs with no attempt left (see the migration 0003).
        let mut dead: Vec<(String, Option<String>)> = Vec::new();
        for lapsed in [
            "status = 'running' AND lease_expires_at < ?1 AND attempt >= max_attempts",
            "status IN ('queued', 'scheduled', 'failed') AND attempt >= max_attempts",
        ] {
            dead.extend(
                sqlx::query_as::<_, (String, Option<String>)>(&format!(
                    "UPDATE jobs SET status = 'dead', finished_at = ?1, lease_owner = NULL,
                        lease_expires_at = NULL, {LEASE_LOST},
                        {CALLBACK_ON_END} CASE WHEN callback IS NOT NULL THEN ?1 ELSE NULL END
                     WHERE {lapsed}
                     RETURNING id, batch_id"
                ))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?,
            );
        }
        // The rest have attempts left: back to the queue.
        let requeued: Vec<(String, i64)> = sqlx::query_as(&format!(
            "UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, {LEASE_LOST}
             WHERE status = 'running' AND lease_expires_at < ?1
             RETURNING id, attempt"
        ))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let requeued = requeued.into_iter().map(|(id, attempt)| (id, attempt as u32)).collect();
        let mut batches: Vec<String> = dead.iter().filter_map(|(_, b)| b.clone()).collect();
        batches.sort();
        batches.dedup();
        schedule_done_batches(&mut tx, &batches, now).await?;
        tx.commit().await?;
        Ok(Rescued { requeued, dead: dead.into_iter().map(|(id, _)| id).collect() })
    }

    async fn job_release(&self, owner: &str) -> StoreResult<u64> {
        // The interrupted attempt does not count: the job did nothing wrong. Its
        // fencing token stays: the next claim takes a new one all the same.
        Ok(sqlx::query(
            "UPDATE jobs SET status = 'queued', attempt = MAX(attempt - 1, 0), lease_owner = NULL,
                lease_expires_at = NULL
             WHERE status = 'running' AND lease_owner = ?",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    async fn job_waiting(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM jobs WHERE status IN {RUNNABLE}"))
            .fetch_one(&self.reader)
            .await?;
        Ok(n as u64)
    }

    async fn job_prune(&self, finished_before: i64, limit: u32) -> StoreResult<u64> {
        let jobs = sqlx::query(&format!(
            "DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs
                WHERE status IN {TERMINAL} AND finished_at < ?1
                  AND (callback_state IS NULL OR callback_state IN ('delivered', 'failed'))
                LIMIT ?2)"
        ))
        .bind(finished_before)
        .bind(limit)
        .execute(&self.writer)
        .await?
        .rows_affected();
        // A batch goes after its last job (`jobs_batch` answers "any job left?").
        let batches = sqlx::query(
            "DELETE FROM batches WHERE id IN (
                SELECT id FROM batches
                WHERE created_at < ?1
                  AND (callback_state IS NULL OR callback_state IN ('delivered', 'failed'))
                  AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.batch_id = batches.id)
                LIMIT ?2)",
        )
        .bind(finished_before)
        .bind(limit)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(jobs + batches)
    }

    async fn job_next_due(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT run_at FROM jobs WHERE status IN ('scheduled', 'failed') ORDER BY run_at LIMIT 1",
        )
        .fetch_optional(&self.writer)
        .await?)
    }

    async fn callback_due(&self, p: CallbackClaim) -> StoreResult<Vec<CallbackDue>> {
        // Senders poll this: an idle poll stays a read (through the partial
        // indexes), so it never takes the write lock other writers (and other
        // processes on the same file) would have to wait for.
        let (jobs_due, batches_due): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE callback_state = 'sending' AND callback_next_at <= ?1),
                    EXISTS (SELECT 1 FROM batches WHERE callback_state = 'sending' AND callback_next_at <= ?1)",
        )
        .bind(p.now)
        .fetch_one(&self.reader)
        .await?;
        let skip = serde_json::to_string(&p.skip_url_prefixes).expect("strings serialize");
        // Batches first (few, and each stands for many jobs), then jobs with
        // the rest of the limit. Each claim is one statement: atomic.
        let batches: Vec<(String, String, i64)> = if !batches_due {
            Vec::new()
        } else {
            sqlx::query_as(
                "UPDATE batches SET callback_next_at = ?3 WHERE id IN (
                SELECT id FROM batches WHERE callback_state = 'sending' AND callback_next_at <= ?1
                  AND NOT EXISTS (SELECT 1 FROM json_each(?4) AS s
                    WHERE substr(batches.callback ->> 'url', 1, length(s.value)) = s.value)
                ORDER BY callback_next_at LIMIT ?2)
             RETURNING id, tenant, callback_attempts",
            )
            .bind(p.now)
            .bind(p.limit)
            .bind(p.lease_until)
            .bind(&skip)
            .fetch_all(&self.writer)
            .await?
        };
        let mut due = Vec::new();
        for (id, tenant, attempts) in batches {
            let tenant = TenantId::parse(tenant).map_err(corrupt)?;
            let batch = self.batch_get(&tenant, &id).await?;
            let callback =
                batch.callback.clone().ok_or_else(|| corrupt("sending callback without target"))?;
            due.push(CallbackDue {
                owner: CallbackOwner::Batch,
                id,
                callback,
                attempts: attempts as u32,
                job: None,
                batch: Some(batch),
            });
        }
        let rest = p.limit.saturating_sub(due.len() as u32);
        if rest == 0 || !jobs_due {
            return Ok(due);
        }
        let rows = sqlx::query_as::<_, JobRow>(&format!(
            "UPDATE jobs SET callback_next_at = ?3 WHERE id IN (
                SELECT id FROM jobs WHERE callback_state = 'sending' AND callback_next_at <= ?1
                  AND NOT EXISTS (SELECT 1 FROM json_each(?4) AS s
                    WHERE substr(jobs.callback ->> 'url', 1, length(s.value)) = s.value)
                ORDER BY callback_next_at LIMIT ?2)
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(p.now)
        .bind(rest)
        .bind(p.lease_until)
        .bind(&skip)
        .fetch_all(&self.writer)
        .await?;
        for job in jobs(rows)? {
            let callback = job.callback.clone().ok_or_else(|| corrupt("sending callback without target"))?;
            due.push(CallbackDue {
                owner: CallbackOwner::Job,
                id: job.id.clone(),
                callback,
                attempts: job.callback_attempts,
                job: Some(job),
                batch: None,
            });
        }
        Ok(due)
    }

    async fn callback_record(&self, p: CallbackRecord) -> StoreResult<()> {
        let table = match p.owner {
            CallbackOwner::Job => "jobs",
            CallbackOwner::Batch => "batches",
        };
        sqlx::query(&format!(
            "UPDATE {table} SET callback_state = ?, callback_attempts = callback_attempts + 1,
                callback_last_error = ?, callback_next_at = ? WHERE id = ?"
        ))
        .bind(p.state.as_str())
        .bind(&p.error)
        .bind(p.next_at)
        .bind(&p.id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn batch_get(&self, tenant: &TenantId, id: &str) -> StoreResult<BatchRecord> {
        type BatchRow = (i64, Option<String>, Option<String>, i64, Option<String>, i64);
        let row: Option<BatchRow> = sqlx::query_as(
            "SELECT total, callback, callback_state, callback_attempts, callback_last_error, created_at
             FROM batches WHERE tenant = ? AND id = ?",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        let (total, callback, callback_state, callback_attempts, callback_last_error, created_at) =
            row.ok_or_else(|| StoreError::NotFound(format!("batch {id}")))?;
        let counted: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY status")
                .bind(id)
                .fetch_all(&self.writer)
                .await?;
        let mut counts: BTreeMap<String, u64> =
            JobStatus::ALL.iter().map(|s| (s.as_str().into(), 0)).collect();
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

    async fn status_counts(&self, tenant: &TenantId) -> StoreResult<StatusCounts> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT queue, status, COUNT(*) FROM jobs WHERE tenant = ? GROUP BY queue, status",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.reader)
        .await?;
        let mut counts = StatusCounts {
            by_status: JobStatus::ALL.iter().map(|s| (s.as_str().into(), 0)).collect(),
            by_queue: BTreeMap::new(),
        };
        for (queue, status, n) in rows {
            *counts.by_status.entry(status.clone()).or_default() += n as u64;
            counts.by_queue.entry(queue).or_default().insert(status, n as u64);
        }
        Ok(counts)
    }

    async fn store_ping(&self) -> StoreResult<()> {
        if let Some((path, opened)) = &self.file {
            let now = FileId::of(path);
            if now.as_ref().ok() != Some(opened) {
                let why = match now {
                    Err(e) => e.to_string(),
                    Ok(_) => "another file is at its path".into(),
                };
                return Err(StoreError::Database(sqlx::Error::Io(std::io::Error::other(format!(
                    "the database file {} is no longer the one opened at start ({why})",
                    path.display()
                )))));
            }
        }
        sqlx::query("SELECT COUNT(*) FROM sqlite_master").execute(&self.reader).await?;
        sqlx::query("SELECT 1").execute(&self.writer).await?;
        Ok(())
    }
}

/// A job's limits as stored: only the fields that differ from
/// `Limits::default()` (which fills the rest back in when read), so the rows
/// that every claim and completion rewrites stay small.
fn compact_limits(limits: &Limits) -> String {
    let full = serde_json::to_value(limits).expect("limits serialize");
    let default = serde_json::to_value(Limits::default()).expect("limits serialize");
    let mut diff = serde_json::Map::new();
    if let (serde_json::Value::Object(full), serde_json::Value::Object(default)) = (full, default) {
        for (k, v) in full {
            if default.get(&k) != Some(&v) {
                diff.insert(k, v);
            }
        }
    }
    serde_json::Value::Object(diff).to_string()
}

/// The row of a new job, as the JSON object `insert_rows` reads.
fn insert_row(job: &NewJob) -> serde_json::Value {
    serde_json::json!({
        "id": job.id, "tenant": job.tenant.as_str(), "alias": job.alias.as_str(),
        "module": job.module.to_string(), "status": job.status.as_str(), "priority": job.priority,
        "queue": job.queue.as_str(), "context": job.context, "payload": job.payload,
        "max_attempts": job.max_attempts,
        "limits": compact_limits(&job.limits),
        "run_at": job.run_at, "created_at": job.created_at, "idempotency_key": null,
        "idempotency_fingerprint": null,
        "batch_id": job.batch_id, "callback": callback_json(&job.callback),
        "callback_state": job.callback.as_ref().map(|_| "pending"),
    })
}

/// Inserts many jobs with one statement.
async fn insert_rows(tx: &mut Transaction<'_, Sqlite>, rows: &[serde_json::Value]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO jobs (id, tenant, alias, module, status, priority, queue, context, payload, max_attempts,
            limits, run_at, created_at, idempotency_key, idempotency_fingerprint, batch_id, callback,
            callback_state)
         SELECT value ->> 'id', value ->> 'tenant', value ->> 'alias', value ->> 'module', value ->> 'status',
            value ->> 'priority', value ->> 'queue', value ->> 'context', value ->> 'payload',
            value ->> 'max_attempts', value ->> 'limits', value ->> 'run_at', value ->> 'created_at',
            value ->> 'idempotency_key', value ->> 'idempotency_fingerprint', value ->> 'batch_id',
            value ->> 'callback', value ->> 'callback_state'
         FROM json_each(?1)",
    )
    .bind(serde_json::Value::Array(rows.to_vec()).to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The stored form of a job just inserted (what `RETURNING *` would give).
fn record_of(job: &NewJob) -> JobRecord {
    JobRecord {
        id: job.id.clone(),
        tenant: job.tenant.clone(),
        alias: job.alias.to_string(),
        module: job.module,
        status: job.status,
        priority: job.priority,
        queue: job.queue.to_string(),
        context: job.context.clone(),
        payload: job.payload.clone(),
        attempt: 0,
        max_attempts: job.max_attempts,
        limits: job.limits.clone(),
        run_at: job.run_at,
        created_at: job.created_at,
        started_at: None,
        finished_at: None,
        lease_owner: None,
        lease_token: 0,
        result: None,
        error: None,
        progress: None,
        logs: None,
        fuel_used: None,
        duration_ms: None,
        idempotency_key: job.idempotency_key.as_ref().map(|k| k.as_str().to_string()),
        batch_id: job.batch_id.clone(),
        callback: job.callback.clone(),
        callback_state: job.callback.as_ref().map(|_| CallbackState::Pending),
        callback_attempts: 0,
        callback_last_error: None,
    }
}

/// Claims runnable jobs (see `Store::job_claim`) on `conn`.
async fn claim_in<'c, E: sqlx::Executor<'c, Database = Sqlite>>(
    conn: E,
    p: &JobClaim,
) -> StoreResult<Vec<JobRecord>> {
    let excluded = serde_json::to_string(&p.exclude_queues).expect("strings serialize");
    let rows = sqlx::query_as::<_, JobRow>(&format!(
        "UPDATE jobs SET status = 'running', attempt = attempt + 1, lease_token = lease_token + 1,
            started_at = ?1, lease_owner = ?2, lease_expires_at = ?3, progress_percent = NULL,
            progress_message = NULL
         WHERE id IN (
            SELECT id FROM jobs
            WHERE status IN {RUNNABLE} AND run_at <= ?1 AND attempt < max_attempts
              AND queue NOT IN (SELECT value FROM json_each(?5))
            ORDER BY priority DESC, run_at, id LIMIT ?4)
         RETURNING {JOB_COLUMNS}"
    ))
    .bind(p.now)
    .bind(&p.owner)
    .bind(p.lease_expires_at)
    .bind(p.limit)
    .bind(excluded)
    .fetch_all(conn)
    .await?;
    let mut claimed = jobs(rows)?;
    // RETURNING gives no order: restore the claim order.
    claimed.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.run_at.cmp(&b.run_at)).then(a.id.cmp(&b.id)));
    Ok(claimed)
}

/// Records outcomes (see `Store::job_complete`) inside `tx`.
async fn complete_in(
    tx: &mut Transaction<'_, Sqlite>,
    completions: &[JobCompletion],
) -> StoreResult<Vec<Lease>> {
    if completions.is_empty() {
        return Ok(Vec::new());
    }
    let now = completions.iter().map(|c| c.finished_at).max().unwrap_or_default();
    let rows: Vec<serde_json::Value> = completions
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id, "token": c.token, "owner": c.owner, "status": c.status.as_str(),
                "terminal": c.status.is_terminal(),
                "result": c.result, "error_kind": c.error.as_ref().map(|e| &e.0),
                "error_message": c.error.as_ref().map(|e| &e.1), "fuel_used": c.fuel_used,
                "duration_ms": c.duration_ms, "logs": c.logs,
                "progress_percent": c.progress.as_ref().map(|p| p.0),
                "progress_message": c.progress.as_ref().map(|p| &p.1),
                "started_at": c.started_at, "finished_at": c.finished_at, "run_at": c.run_at,
            })
        })
        .collect();
    // One statement for the whole batch: the completions travel as a JSON
    // array; only rows still running under the completing run's own claim
    // (owner and fencing token) change.
    let applied: Vec<(String, i64, Option<String>, String)> = sqlx::query_as(
        "UPDATE jobs SET status = c.status, result = c.result, error_kind = c.error_kind,
            error_message = c.error_message, fuel_used = c.fuel_used, duration_ms = c.duration_ms,
            logs = c.logs, progress_percent = COALESCE(c.progress_percent, jobs.progress_percent),
            progress_message = COALESCE(c.progress_message, jobs.progress_message),
            finished_at = CASE WHEN c.terminal THEN c.finished_at ELSE NULL END,
            run_at = c.run_at, started_at = c.started_at, lease_owner = NULL, lease_expires_at = NULL,
            callback_state = CASE WHEN c.terminal AND jobs.callback IS NOT NULL THEN 'sending'
                                  ELSE jobs.callback_state END,
            callback_next_at = CASE WHEN c.terminal AND jobs.callback IS NOT NULL THEN c.finished_at
                                    ELSE jobs.callback_next_at END
         FROM (SELECT value ->> 'id' AS id, value ->> 'token' AS token, value ->> 'owner' AS owner,
                      value ->> 'status' AS status,
                      value ->> 'terminal' AS terminal, value ->> 'result' AS result,
                      value ->> 'error_kind' AS error_kind, value ->> 'error_message' AS error_message,
                      value ->> 'fuel_used' AS fuel_used, value ->> 'duration_ms' AS duration_ms,
                      value ->> 'logs' AS logs, value ->> 'progress_percent' AS progress_percent,
                      value ->> 'progress_message' AS progress_message,
                      value ->> 'started_at' AS started_at, value ->> 'finished_at' AS finished_at,
                      value ->> 'run_at' AS run_at
               FROM json_each(?1)) AS c
         WHERE jobs.id = c.id AND jobs.status = 'running' AND jobs.lease_owner = c.owner
           AND jobs.lease_token = c.token
         RETURNING jobs.id, jobs.lease_token, jobs.batch_id, jobs.status",
    )
    .bind(serde_json::Value::Array(rows).to_string())
    .fetch_all(&mut **tx)
    .await?;
    let mut batches: Vec<String> = applied
        .iter()
        .filter(|(_, _, _, status)| JobStatus::parse(status).is_some_and(JobStatus::is_terminal))
        .filter_map(|(_, _, batch, _)| batch.clone())
        .collect();
    batches.sort();
    batches.dedup();
    schedule_done_batches(tx, &batches, now).await?;
    // Report in the order given.
    let applied: std::collections::HashSet<Lease> =
        applied.into_iter().map(|(id, token, _, _)| Lease { id, token: token as u64 }).collect();
    Ok(completions
        .iter()
        .map(|c| Lease { id: c.id.clone(), token: c.token })
        .filter(|l| applied.contains(l))
        .collect())
}

/// Deletes the versions of an alias older than the newest `keep` (at least the
/// current one and the one before it are kept, so rollback always works).
async fn prune_alias_versions(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &TenantId,
    name: &AliasName,
    current: i64,
    keep: u32,
) -> StoreResult<()> {
    let keep = i64::from(keep.max(2));
    sqlx::query("DELETE FROM alias_versions WHERE tenant = ? AND name = ? AND version <= ?")
        .bind(tenant.as_str())
        .bind(name.as_str())
        .bind(current - keep)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes a new current version of an alias and its history row.
async fn put_alias_version(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &TenantId,
    name: &AliasName,
    module: &Digest,
    config: &AliasConfig,
    now: i64,
) -> StoreResult<AliasRecord> {
    let version: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM alias_versions WHERE tenant = ? AND name = ?",
    )
    .bind(tenant.as_str())
    .bind(name.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let config_json = serde_json::to_string(config).expect("config serializes");
    sqlx::query(
        "INSERT INTO aliases (tenant, name, version, module, config, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant, name) DO UPDATE SET version = ?3, module = ?4, config = ?5, updated_at = ?6",
    )
    .bind(tenant.as_str())
    .bind(name.as_str())
    .bind(version)
    .bind(module.to_string())
    .bind(&config_json)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO alias_versions (tenant, name, version, module, config, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(tenant.as_str())
    .bind(name.as_str())
    .bind(version)
    .bind(module.to_string())
    .bind(&config_json)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(AliasRecord { name: name.clone(), version, module: *module, config: config.clone(), updated_at: now })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_stored_compactly_and_read_back_whole() {
        assert_eq!(compact_limits(&Limits::default()), "{}");
        let custom = Limits { fuel: None, timeout: Duration::from_secs(30), ..Limits::default() };
        let stored = compact_limits(&custom);
        assert_eq!(stored, r#"{"fuel":null,"timeout_ms":30000}"#);
        assert_eq!(serde_json::from_str::<Limits>(&stored).unwrap(), custom);
    }
}
