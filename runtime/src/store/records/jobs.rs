//! Jobs: what is inserted and what is stored.

use super::Lease;
use crate::domain::{
    AliasName, Callback, CallbackState, Digest, IdempotencyKey, JobStatus, Limits, QueueName, TenantId,
};

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
    /// The W3C `traceparent` of the dispatch (see `traces`).
    pub trace: Option<String>,
    /// Not inserted while a matching job exists (see [`UniqueCheck`]).
    pub unique: Option<UniqueCheck>,
    /// Inserted already claimed by this lease holder (a node with room for it
    /// right now): stored `running` on its first attempt under fencing token 1,
    /// so no claim write follows. `None`: queued for a claim.
    pub lease: Option<NewLease>,
}

/// The uniqueness of a new job: while a job of its tenant with the same
/// `key` is in one of `states` (and was created at or after `since`), the
/// insert answers that job (`Inserted::created` false) instead. Settled by
/// the store under a lock on the key, so racing inserts through any number
/// of nodes leave one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueCheck {
    /// `domain::unique_key` of the chosen fields.
    pub key: String,
    /// States in which a matching job blocks the insert (not empty).
    pub states: Vec<JobStatus>,
    /// Only jobs created at or after this time match (unix ms); `None`: any.
    pub since: Option<i64>,
}

/// The claim a job is inserted under (see `NewJob::lease`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLease {
    /// Lease holder (a node).
    pub owner: String,
    /// When the lease lapses unless renewed (unix ms).
    pub expires_at: i64,
}

impl NewLease {
    /// The fencing token of a claim made in the insert (the first claim).
    pub const TOKEN: u64 = 1;
}

/// An inserted (or deduplicated) job.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The stored job.
    pub job: JobRecord,
    /// False when an earlier job had the same idempotency key, or matched
    /// the job's uniqueness.
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
    /// The W3C `traceparent` its spans and callbacks continue (see `traces`).
    pub trace: Option<String>,
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

impl From<&JobRecord> for crate::domain::JobRef {
    fn from(j: &JobRecord) -> Self {
        Self {
            id: j.id.clone(),
            tenant: j.tenant.clone(),
            alias: j.alias.clone(),
            queue: j.queue.clone(),
            batch: j.batch_id.clone(),
        }
    }
}
