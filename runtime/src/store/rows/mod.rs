//! Rows as a backend returns them and their decoding into records, and the
//! encoding of the values stored as text (limits, callbacks, plugin kinds,
//! quotas) and of the rows statements take as JSON (`json`): written once,
//! above the backends. The row types derive `sqlx::FromRow` generically, so
//! any sqlx backend reads them; a backend only supplies SQL that returns
//! these columns (with these types: TEXT for the JSON-as-text columns, a
//! 64-bit integer for every number).

mod json;
mod nodes;
mod queues;
mod schedules;
mod tenants;
mod usage;

pub(super) use json::*;
pub(super) use nodes::*;
pub(super) use queues::*;
pub(super) use schedules::*;
pub(super) use tenants::*;
pub(super) use usage::*;

use sqlx::FromRow;

use crate::domain::{AliasName, Callback, CallbackState, Digest, JobStatus, Limits, PluginKind, TenantId};
use crate::store::{
    AliasConfig, AliasRecord, AliasVersion, JobRecord, JobWatch, ModuleRecord, NewJob, NewLease, StoreError,
    StoreResult,
};

/// Columns of `jobs` in the order `JobRow` reads them.
pub(super) const JOB_COLUMNS: &str = "id, tenant, alias, module, status, priority, queue, context, payload, \
    attempt, max_attempts, limits, run_at, created_at, started_at, finished_at, lease_owner, result, error_kind, \
    error_message, progress_percent, progress_message, logs, fuel_used, duration_ms, idempotency_key, \
    batch_id, callback, callback_state, callback_attempts, callback_last_error, lease_token, trace";

/// Columns of `jobs` in the order `JobRefRow` reads them.
pub(super) const JOB_REF_COLUMNS: &str = "id, tenant, alias, queue, batch_id, attempt";

/// A job a rescue or a bulk step changed ([`JOB_REF_COLUMNS`]).
#[derive(FromRow)]
pub(super) struct JobRefRow {
    pub(super) id: String,
    pub(super) tenant: String,
    pub(super) alias: String,
    pub(super) queue: String,
    pub(super) batch_id: Option<String>,
    pub(super) attempt: i64,
}

impl JobRefRow {
    /// The job and its attempt (for a rescue, the one whose lease lapsed).
    pub(super) fn into_refs(rows: Vec<JobRefRow>) -> StoreResult<Vec<(crate::domain::JobRef, u32)>> {
        rows.into_iter().map(JobRefRow::into_ref).collect()
    }

    fn into_ref(self) -> StoreResult<(crate::domain::JobRef, u32)> {
        let job = crate::domain::JobRef {
            id: self.id,
            tenant: TenantId::parse(&self.tenant).map_err(corrupt)?,
            alias: self.alias,
            queue: self.queue,
            batch: self.batch_id,
        };
        Ok((job, self.attempt as u32))
    }
}

/// A job row with its idempotency fingerprint (read only by `job_insert`).
#[derive(FromRow)]
pub(super) struct KeyedJobRow {
    pub(super) idempotency_fingerprint: Option<String>,
    #[sqlx(flatten)]
    pub(super) job: JobRow,
}

/// A row of `jobs` ([`JOB_COLUMNS`]).
#[derive(FromRow)]
pub(super) struct JobRow {
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
    trace: Option<String>,
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(super) fn digest(s: &str) -> StoreResult<Digest> {
    s.parse().map_err(corrupt)
}

pub(super) fn callback_json(c: &Option<Callback>) -> Option<String> {
    // The secret is stored (it signs deliveries; sealed by the API layer, see
    // `callbacks::SecretBox`) even though the API never shows it.
    c.as_ref()
        .map(|c| serde_json::json!({ "url": c.url, "headers": c.headers, "secret": c.secret }).to_string())
}

pub(super) fn parse_callback(s: Option<String>) -> StoreResult<Option<Callback>> {
    s.map(|s| serde_json::from_str(&s).map_err(corrupt)).transpose()
}

impl TryFrom<JobRow> for JobRecord {
    type Error = StoreError;

    fn try_from(r: JobRow) -> StoreResult<Self> {
        Ok(JobRecord {
            tenant: TenantId::parse(r.tenant).map_err(corrupt)?,
            module: digest(&r.module)?,
            status: status(&r.status)?,
            limits: serde_json::from_str::<Limits>(&r.limits).map_err(corrupt)?,
            error: r.error_kind.map(|k| (k, r.error_message.unwrap_or_default())),
            progress: progress(r.progress_percent, r.progress_message),
            callback: parse_callback(r.callback)?,
            callback_state: callback_state(r.callback_state.as_deref()),
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
            trace: r.trace,
        })
    }
}

pub(super) fn jobs(rows: Vec<JobRow>) -> StoreResult<Vec<JobRecord>> {
    rows.into_iter().map(JobRecord::try_from).collect()
}

/// A row of `modules` without its bytes: `digest, size, kind, created_at`.
#[derive(FromRow)]
pub(super) struct ModuleRow {
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

pub(super) fn kind_str(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Job => "job",
        PluginKind::Command => "command",
    }
}

/// A row of `aliases`: `name, version, module, config, updated_at`.
#[derive(FromRow)]
pub(super) struct AliasRow {
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
            config: alias_config(&r.config)?,
            updated_at: r.updated_at,
        })
    }
}

/// A row of `alias_versions`: `version, module, config, created_at`.
#[derive(FromRow)]
pub(super) struct AliasVersionRow {
    version: i64,
    module: String,
    config: String,
    created_at: i64,
}

impl TryFrom<AliasVersionRow> for AliasVersion {
    type Error = StoreError;

    fn try_from(r: AliasVersionRow) -> StoreResult<Self> {
        Ok(AliasVersion {
            version: r.version,
            module: digest(&r.module)?,
            config: alias_config(&r.config)?,
            created_at: r.created_at,
        })
    }
}

/// An alias's config as stored.
pub(super) fn alias_config_json(config: &AliasConfig) -> String {
    serde_json::to_string(config).expect("config serializes")
}

fn alias_config(s: &str) -> StoreResult<AliasConfig> {
    serde_json::from_str(s).map_err(corrupt)
}

/// What watchers read of a job: `status, attempt, progress_percent, progress_message`.
#[derive(FromRow)]
pub(super) struct JobWatchRow {
    status: String,
    attempt: i64,
    progress_percent: Option<i64>,
    progress_message: Option<String>,
}

impl TryFrom<JobWatchRow> for JobWatch {
    type Error = StoreError;

    fn try_from(r: JobWatchRow) -> StoreResult<Self> {
        Ok(JobWatch {
            status: status(&r.status)?,
            attempt: r.attempt as u32,
            progress: progress(r.progress_percent, r.progress_message),
        })
    }
}

/// A row of `batches` without its counts: `total, callback, callback_state,
/// callback_attempts, callback_last_error, created_at` (see `rules::batch_record`).
#[derive(FromRow)]
pub(super) struct BatchRow {
    pub(super) total: i64,
    pub(super) callback: Option<String>,
    pub(super) callback_state: Option<String>,
    pub(super) callback_attempts: i64,
    pub(super) callback_last_error: Option<String>,
    pub(super) created_at: i64,
    pub(super) trace: Option<String>,
}

/// A row of `batches` as listed ([`BATCH_SUMMARY_COLUMNS`]).
#[derive(FromRow)]
pub(super) struct BatchSummaryRow {
    id: String,
    done_at: Option<i64>,
    #[sqlx(flatten)]
    row: BatchRow,
}

/// Columns of `batches` in the order `BatchSummaryRow` reads them.
pub(super) const BATCH_SUMMARY_COLUMNS: &str =
    "id, done_at, total, callback, callback_state, callback_attempts, callback_last_error, created_at, trace";

impl TryFrom<BatchSummaryRow> for crate::store::BatchSummary {
    type Error = StoreError;

    fn try_from(r: BatchSummaryRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.id,
            total: r.row.total as u64,
            done_at: r.done_at,
            callback: parse_callback(r.row.callback)?,
            callback_state: callback_state(r.row.callback_state.as_deref()),
            callback_attempts: r.row.callback_attempts as u32,
            callback_last_error: r.row.callback_last_error,
            created_at: r.row.created_at,
        })
    }
}

/// A stored status.
pub(super) fn status(s: &str) -> StoreResult<JobStatus> {
    JobStatus::parse(s).ok_or_else(|| corrupt(format!("status {s}")))
}

/// Stored progress: the percent is clamped into 0..=100, a missing message is empty.
fn progress(percent: Option<i64>, message: Option<String>) -> Option<(u8, String)> {
    percent.map(|p| (p.clamp(0, 100) as u8, message.unwrap_or_default()))
}

/// A stored callback state (unknown ones read as none).
pub(super) fn callback_state(s: Option<&str>) -> Option<CallbackState> {
    s.and_then(CallbackState::parse)
}

/// The stored form of a job just inserted (what `RETURNING *` would give):
/// claimed already if it carries a lease.
pub(super) fn record_of(job: &NewJob) -> JobRecord {
    JobRecord {
        id: job.id.clone(),
        tenant: job.tenant.clone(),
        alias: job.alias.to_string(),
        module: job.module,
        status: if job.lease.is_some() { JobStatus::Running } else { job.status },
        priority: job.priority,
        queue: job.queue.to_string(),
        context: job.context.clone(),
        payload: job.payload.clone(),
        attempt: u32::from(job.lease.is_some()),
        max_attempts: job.max_attempts,
        limits: job.limits.clone(),
        run_at: job.run_at,
        created_at: job.created_at,
        started_at: job.lease.as_ref().map(|_| job.created_at),
        finished_at: None,
        lease_owner: job.lease.as_ref().map(|l| l.owner.clone()),
        lease_token: if job.lease.is_some() { NewLease::TOKEN } else { 0 },
        result: None,
        error: None,
        progress: None,
        logs: None,
        fuel_used: None,
        duration_ms: None,
        idempotency_key: job.idempotency_key.as_ref().map(|k| k.as_str().to_string()),
        batch_id: job.batch_id.clone(),
        callback: job.callback.clone(),
        callback_state: super::rules::initial_callback_state(&job.callback),
        callback_attempts: 0,
        callback_last_error: None,
        trace: job.trace.clone(),
    }
}

/// A job's limits as stored: only the fields that differ from
/// `Limits::default()` (which fills the rest back in when read), so the rows
/// that every claim and completion rewrites stay small.
pub(super) fn compact_limits(limits: &Limits) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_stored_compactly_and_read_back_whole() {
        assert_eq!(compact_limits(&Limits::default()), "{}");
        let custom = Limits { fuel: None, timeout: std::time::Duration::from_secs(30), ..Limits::default() };
        let stored = compact_limits(&custom);
        assert_eq!(stored, r#"{"fuel":null,"timeout_ms":30000}"#);
        assert_eq!(serde_json::from_str::<Limits>(&stored).unwrap(), custom);
    }
}
