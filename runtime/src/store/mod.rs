//! Persistence layer: the [`Store`] trait every backend implements, its record
//! and parameter types, and one module per backend (`sqlite`; PostgreSQL next).
//!
//! Methods are noun-first (`job_insert`, `job_claim`, `job_complete`,
//! `job_rescue_expired`) and take parameter structs; every method is scoped by
//! tenant. The conformance suite in `tests/all/store.rs` runs against each
//! backend; extend it whenever semantics change.

mod records;
mod sqlite;

pub use records::*;
pub use sqlite::SqliteStore;

use crate::domain::{AliasName, Digest, TenantId};

/// Why a store operation failed. `NotFound` and `Conflict` are the caller's
/// (4xx); `Database` is ours (5xx, logged).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist (for this tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// The operation conflicts with the record's state (e.g. deleting a module
    /// an alias points to, cancelling a finished job).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value could not be decoded (a bug or a corrupted row).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// The storage contract of wasmq. Implementations must be safe to share across
/// tasks and (for multi-node backends) across processes: `job_claim` hands each
/// runnable job to exactly one claimer.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a module's bytes; returns the record and whether it was new.
    async fn module_put(&self, p: ModulePut) -> StoreResult<(ModuleRecord, bool)>;
    /// One module's metadata.
    async fn module_get(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<ModuleRecord>;
    /// One module's bytes.
    async fn module_bytes(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<Vec<u8>>;
    /// Every module of the tenant, newest first.
    async fn module_list(&self, tenant: &TenantId) -> StoreResult<Vec<ModuleRecord>>;
    /// Deletes a module; `Conflict` while an alias points to it.
    async fn module_delete(&self, tenant: &TenantId, digest: &Digest) -> StoreResult<()>;

    /// Points an alias at a module with a config; the version counts up.
    async fn alias_set(&self, p: AliasSet) -> StoreResult<AliasRecord>;
    /// One alias.
    async fn alias_get(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<AliasRecord>;
    /// Every version of an alias, newest first.
    async fn alias_history(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<Vec<AliasVersion>>;
    /// Every alias of the tenant, by name.
    async fn alias_list(&self, tenant: &TenantId) -> StoreResult<Vec<AliasRecord>>;
    /// Re-applies the version before the current one as a new version.
    async fn alias_rollback(&self, tenant: &TenantId, name: &AliasName, now: i64)
    -> StoreResult<AliasRecord>;
    /// Deletes an alias and its history.
    async fn alias_delete(&self, tenant: &TenantId, name: &AliasName) -> StoreResult<()>;

    /// Inserts jobs in one transaction (a batch, or one dispatch). A job whose
    /// idempotency key exists already is not inserted: the first job is returned
    /// with `created = false`.
    async fn job_insert(&self, jobs: Vec<NewJob>, batch: Option<NewBatch>) -> StoreResult<Vec<Inserted>>;
    /// One job.
    async fn job_get(&self, tenant: &TenantId, id: &str) -> StoreResult<JobRecord>;
    /// A page of jobs (keyset pagination on the id / priority).
    async fn job_list(&self, p: JobList) -> StoreResult<Vec<JobRecord>>;
    /// Claims up to `limit` runnable jobs for `owner`, highest priority first,
    /// then earliest due; marks them running with a lease and counts the attempt.
    async fn job_claim(&self, p: JobClaim) -> StoreResult<Vec<JobRecord>>;
    /// Extends the leases `owner` holds on `ids`; returns the ids it still
    /// holds. A missing id was cancelled (or rescued) elsewhere: its run on this
    /// node should stop, since its outcome would be ignored anyway.
    async fn job_heartbeat(
        &self,
        owner: &str,
        ids: &[String],
        lease_expires_at: i64,
    ) -> StoreResult<Vec<String>>;
    /// Records how attempts ended, in one transaction. A completion whose lease
    /// `owner` no longer holds the job (cancelled, or rescued after a stall) is
    /// ignored; the returned ids are those that were applied.
    async fn job_complete(&self, completions: Vec<JobCompletion>) -> StoreResult<Vec<String>>;
    /// Stores the latest progress of a running job.
    async fn job_progress(&self, id: &str, percent: u8, message: &str) -> StoreResult<()>;
    /// Cancels a job that has not finished; `Conflict` if it has.
    async fn job_cancel(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord>;
    /// Queues a failed, dead or cancelled job again with a fresh attempt budget.
    async fn job_retry(&self, tenant: &TenantId, id: &str, now: i64) -> StoreResult<JobRecord>;
    /// Returns running jobs whose lease expired (their worker died) to `queued`.
    async fn job_rescue_expired(&self, now: i64) -> StoreResult<u64>;
    /// Returns every job `owner` holds to `queued` (graceful shutdown).
    async fn job_release(&self, owner: &str) -> StoreResult<u64>;
    /// Jobs waiting to run (queued, scheduled or failed-and-retrying): the
    /// figure behind backpressure (429 when the queue is full).
    async fn job_waiting(&self) -> StoreResult<u64>;
    /// Deletes up to `limit` finished jobs (succeeded, dead, cancelled) that
    /// ended before `finished_before` and have no callback still to deliver;
    /// returns how many. Retention keeps the table from growing without bound.
    async fn job_prune(&self, finished_before: i64, limit: u32) -> StoreResult<u64>;
    /// When the next scheduled or retrying job becomes due, if any.
    async fn job_next_due(&self) -> StoreResult<Option<i64>>;

    /// Callbacks (job and batch) due for delivery.
    async fn callback_due(&self, now: i64, limit: u32) -> StoreResult<Vec<CallbackDue>>;
    /// Records a delivery attempt.
    async fn callback_record(&self, p: CallbackRecord) -> StoreResult<()>;

    /// A batch with its per-status counts.
    async fn batch_get(&self, tenant: &TenantId, id: &str) -> StoreResult<BatchRecord>;

    /// Counts per status and per queue.
    async fn status_counts(&self, tenant: &TenantId) -> StoreResult<StatusCounts>;

    /// Checks cheaply that the database answers reads and that its file is the
    /// one opened at start (for `/readyz`); an error says what is wrong.
    async fn store_ping(&self) -> StoreResult<()>;
}
