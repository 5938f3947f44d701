//! What the store keeps and the parameters its methods take.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::domain::{
    AliasName, Callback, CallbackState, Digest, IdempotencyKey, JobStatus, Limits, PluginKind, QueueName,
    TenantId,
};

/// A stored module (its bytes are fetched separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRecord {
    /// Content address.
    pub digest: Digest,
    /// Bytes.
    pub size: u64,
    /// Contract.
    pub kind: PluginKind,
    /// Unix ms.
    pub created_at: i64,
}

/// `module_put` parameters.
pub struct ModulePut {
    /// Owner.
    pub tenant: TenantId,
    /// Content address of `bytes`.
    pub digest: Digest,
    /// Contract (validated by the engine before storing).
    pub kind: PluginKind,
    /// The module.
    pub bytes: Vec<u8>,
    /// Unix ms.
    pub now: i64,
}

/// Per-alias defaults applied to jobs dispatched to it (a job may override).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasConfig {
    /// Fuel budget per attempt.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    pub fuel: Option<u64>,
    /// Wall-clock limit per attempt, in ms.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1, maximum = 86400000)]
    pub timeout_ms: Option<u64>,
    /// Memory limit, in MiB (at most the server's memory ceiling).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1)]
    pub memory_mb: Option<u64>,
    /// Attempts before a job is dead.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Queue of its jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub queue: Option<QueueName>,
    /// Priority of its jobs (0..=1000).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 0, maximum = 1000)]
    pub priority: Option<u16>,
}

/// An alias: a name pointing at a module, with defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// Name.
    pub name: AliasName,
    /// Counts up from 1 with every change (rollbacks included).
    pub version: i64,
    /// The module it points to.
    pub module: Digest,
    /// Defaults for its jobs.
    pub config: AliasConfig,
    /// Unix ms of the last change.
    pub updated_at: i64,
}

/// One version in an alias's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasVersion {
    /// Version number.
    pub version: i64,
    /// Module of that version.
    pub module: Digest,
    /// Config of that version.
    pub config: AliasConfig,
    /// Unix ms.
    pub created_at: i64,
}

/// `alias_set` parameters.
pub struct AliasSet {
    /// Owner.
    pub tenant: TenantId,
    /// Name.
    pub name: AliasName,
    /// Module (must exist for the tenant).
    pub module: Digest,
    /// Defaults.
    pub config: AliasConfig,
    /// Unix ms.
    pub now: i64,
    /// Versions kept (at least 2); older ones are pruned in the same write.
    pub keep_versions: u32,
}

/// `alias_rollback` parameters.
pub struct AliasRollback {
    /// Owner.
    pub tenant: TenantId,
    /// Name.
    pub name: AliasName,
    /// Unix ms.
    pub now: i64,
    /// Versions kept, as for [`AliasSet::keep_versions`].
    pub keep_versions: u32,
}

/// `alias_history` parameters: a page of versions, newest first.
pub struct AliasHistory {
    /// Owner.
    pub tenant: TenantId,
    /// Name.
    pub name: AliasName,
    /// Most versions returned.
    pub limit: u32,
    /// Only versions older than this one (the previous page's last version).
    pub before: Option<i64>,
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// UUIDv7.
    pub id: String,
    /// Owner.
    pub tenant: TenantId,
    /// Alias it was dispatched to.
    pub alias: AliasName,
    /// Module digest resolved at dispatch and pinned.
    pub module: Digest,
    /// `Queued`, or `Scheduled` when delayed.
    pub status: JobStatus,
    /// 0..=1000, higher first.
    pub priority: i32,
    /// Queue.
    pub queue: QueueName,
    /// Free tag for filtering.
    pub context: Option<String>,
    /// JSON text.
    pub payload: String,
    /// Attempts before dead.
    pub max_attempts: u32,
    /// Per-attempt limits.
    pub limits: Limits,
    /// When it becomes runnable (unix ms).
    pub run_at: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Deduplication key.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Digest of the request that carried `idempotency_key`: a later request
    /// with the same key but another fingerprint is refused as a conflict.
    pub idempotency_fingerprint: Option<String>,
    /// Batch it belongs to.
    pub batch_id: Option<String>,
    /// Where to report its end.
    pub callback: Option<Callback>,
}

/// A batch to insert with its jobs.
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// UUIDv7.
    pub id: String,
    /// Owner.
    pub tenant: TenantId,
    /// Fires once when every job is terminal.
    pub callback: Option<Callback>,
    /// Unix ms.
    pub created_at: i64,
}

/// An inserted (or deduplicated) job.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The stored job.
    pub job: JobRecord,
    /// False when an earlier job had the same idempotency key.
    pub created: bool,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// UUIDv7.
    pub id: String,
    /// Owner.
    pub tenant: TenantId,
    /// Alias it was dispatched to.
    pub alias: String,
    /// Pinned module.
    pub module: Digest,
    /// Status.
    pub status: JobStatus,
    /// Priority.
    pub priority: i32,
    /// Queue.
    pub queue: String,
    /// Free tag.
    pub context: Option<String>,
    /// JSON text.
    pub payload: String,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Per-attempt limits.
    pub limits: Limits,
    /// Due time (unix ms).
    pub run_at: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Start of the latest attempt.
    pub started_at: Option<i64>,
    /// End of the job.
    pub finished_at: Option<i64>,
    /// Holder of the lease while running.
    pub lease_owner: Option<String>,
    /// Fencing token of the latest claim (0: never claimed). Every claim takes
    /// the next number, so it only grows, unlike `attempt` (which `job_retry`
    /// resets and `job_release` lowers).
    pub lease_token: u64,
    /// JSON text of the result.
    pub result: Option<String>,
    /// Error kind and message of the latest failure.
    pub error: Option<(String, String)>,
    /// Latest progress.
    pub progress: Option<(u8, String)>,
    /// JSON array of log entries of the latest attempt.
    pub logs: Option<String>,
    /// Fuel of the latest attempt.
    pub fuel_used: Option<u64>,
    /// Duration of the latest attempt.
    pub duration_ms: Option<u64>,
    /// Deduplication key.
    pub idempotency_key: Option<String>,
    /// Batch.
    pub batch_id: Option<String>,
    /// Callback target.
    pub callback: Option<Callback>,
    /// Callback delivery state.
    pub callback_state: Option<CallbackState>,
    /// Delivery attempts so far.
    pub callback_attempts: u32,
    /// Last delivery error.
    pub callback_last_error: Option<String>,
}

/// What a job counts for in a `job_list` byte budget beyond its stored text
/// (payload, result, logs, context, error and progress messages, callback and
/// its last error): about what its view's fixed fields take in JSON.
pub const JOB_FIXED_BYTES: u64 = 1024;

/// Sort order of `job_list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobOrder {
    /// Newest first.
    #[default]
    Created,
    /// Highest priority first, then oldest.
    Priority,
}

/// Where a job list continues: the last job of the previous page, with what
/// the order sorts by, so the next page does not depend on that job still
/// existing (it may have been pruned or deleted in between).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    /// Its priority (read by the `Priority` order).
    pub priority: i32,
    /// Its id.
    pub id: String,
}

/// `job_list` parameters.
#[derive(Debug, Clone)]
pub struct JobList {
    /// Owner.
    pub tenant: TenantId,
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Only this alias.
    pub alias: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this context.
    pub context: Option<String>,
    /// Only the jobs of this batch.
    pub batch: Option<String>,
    /// Order.
    pub order: JobOrder,
    /// Page size.
    pub limit: u32,
    /// The last job of the previous page.
    pub after: Option<JobCursor>,
    /// Byte budget of the page: jobs are taken in order while the size of
    /// those taken (their stored text plus [`JOB_FIXED_BYTES`] each) stays
    /// within it; the first job is always taken, however large. Backends size
    /// jobs without reading them, so jobs past the budget cost nothing.
    pub max_bytes: u64,
}

/// A page of `job_list`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobListPage {
    /// The jobs, in the page's order.
    pub jobs: Vec<JobRecord>,
    /// Whether jobs follow the last one (the page ended at `limit` or at
    /// `max_bytes`, not at the end of the list).
    pub more: bool,
}

/// What watchers of a job follow (`wait`, event streams): `job_watch` reads
/// only this, never the payload, result or logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobWatch {
    /// Status.
    pub status: JobStatus,
    /// Attempts started so far.
    pub attempt: u32,
    /// Latest progress.
    pub progress: Option<(u8, String)>,
}

impl From<&JobRecord> for JobWatch {
    fn from(j: &JobRecord) -> Self {
        Self { status: j.status, attempt: j.attempt, progress: j.progress.clone() }
    }
}

impl JobRecord {
    /// The claim this record was read under: job id and fencing token.
    pub fn lease(&self) -> Lease {
        Lease { id: self.id.clone(), token: self.lease_token }
    }
}

/// One claim of one job: its id and the fencing token the claim was given.
/// Writes on behalf of a run (heartbeat, progress, completion) present it; the
/// store applies them only while that claim is the job's current one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lease {
    /// Job id.
    pub id: String,
    /// Fencing token of the claim (`JobRecord::lease_token`).
    pub token: u64,
}

/// `job_claim` parameters.
#[derive(Debug, Clone)]
pub struct JobClaim {
    /// Worker identity (node id); holds the leases.
    pub owner: String,
    /// Unix ms.
    pub now: i64,
    /// Lease end for the claimed jobs.
    pub lease_expires_at: i64,
    /// Most jobs to claim.
    pub limit: u32,
    /// Queues whose concurrency limit is reached: claim none from them.
    pub exclude_queues: Vec<String>,
}

/// `job_heartbeat` parameters.
#[derive(Debug, Clone)]
pub struct JobHeartbeat {
    /// Worker identity (node id) that holds the leases.
    pub owner: String,
    /// The claims to renew.
    pub leases: Vec<Lease>,
    /// Unix ms: a lease that lapsed before this is not renewed.
    pub now: i64,
    /// New lease end.
    pub lease_expires_at: i64,
}

/// What `job_rescue_expired` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rescued {
    /// Jobs returned to `queued` for another attempt: id and the attempt
    /// whose lease lapsed.
    pub requeued: Vec<(String, u32)>,
    /// Jobs that had no attempt left and are now `dead` (ids).
    pub dead: Vec<String>,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub struct JobCompletion {
    /// Job id.
    pub id: String,
    /// Fencing token of the claim the attempt ran under.
    pub token: u64,
    /// Lease holder that ran it.
    pub owner: String,
    /// `Succeeded`, `Failed` (retry at `run_at`) or `Dead`.
    pub status: JobStatus,
    /// JSON result.
    pub result: Option<String>,
    /// Error kind and message.
    pub error: Option<(String, String)>,
    /// Fuel used.
    pub fuel_used: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// JSON object of the attempt's logs (`None` when it logged nothing).
    pub logs: Option<String>,
    /// Latest progress.
    pub progress: Option<(u8, String)>,
    /// When the attempt actually started in a sandbox (unix ms; a claimed job may
    /// wait in its node's buffer for a worker after the claim).
    pub started_at: i64,
    /// End time (unix ms).
    pub finished_at: i64,
    /// Next attempt (for `Failed`).
    pub run_at: i64,
}

/// Which record a callback belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOwner {
    /// A job's own callback.
    Job,
    /// A batch callback.
    Batch,
}

/// Which due callbacks `Store::callback_due` claims.
#[derive(Debug, Clone)]
pub struct CallbackClaim {
    /// Due at or before this time (unix ms).
    pub now: i64,
    /// At most this many (job and batch callbacks together).
    pub limit: u32,
    /// Claimed until then: not handed out again before (unix ms).
    pub lease_until: i64,
    /// Skip callbacks whose URL starts with one of these (the origins of
    /// receivers that already have as many deliveries in flight as allowed).
    pub skip_url_prefixes: Vec<String>,
}

/// A callback due for delivery, with the body to send.
#[derive(Debug, Clone)]
pub struct CallbackDue {
    /// Job or batch.
    pub owner: CallbackOwner,
    /// Its id.
    pub id: String,
    /// Target.
    pub callback: Callback,
    /// Attempts so far.
    pub attempts: u32,
    /// The job (for job callbacks).
    pub job: Option<JobRecord>,
    /// The batch (for batch callbacks).
    pub batch: Option<BatchRecord>,
}

/// Outcome of one delivery attempt.
#[derive(Debug, Clone)]
pub struct CallbackRecord {
    /// Job or batch.
    pub owner: CallbackOwner,
    /// Its id.
    pub id: String,
    /// New state.
    pub state: CallbackState,
    /// Error of this attempt.
    pub error: Option<String>,
    /// Next attempt (for `Sending`).
    pub next_at: Option<i64>,
}

/// A batch and its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// UUIDv7.
    pub id: String,
    /// Jobs in it.
    pub total: u64,
    /// Jobs per status.
    pub counts: BTreeMap<String, u64>,
    /// True when every job is terminal.
    pub done: bool,
    /// Callback target.
    pub callback: Option<Callback>,
    /// Callback delivery state.
    pub callback_state: Option<CallbackState>,
    /// Callback delivery attempts so far.
    pub callback_attempts: u32,
    /// Last callback delivery error.
    pub callback_last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// Job counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Per status (every status present, zero included).
    pub by_status: BTreeMap<String, u64>,
    /// Per queue, per status (non-zero only).
    pub by_queue: BTreeMap<String, BTreeMap<String, u64>>,
}
