//! Claims of jobs and what runs under them: claim, heartbeat, completion,
//! rescue.

use super::DoneBatch;
use crate::domain::{JobRef, JobStatus, TenantId};

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
    /// The queues this node consumes (`None`: every queue).
    pub queues: Option<Vec<String>>,
    /// The queues this node knows to be governed (paused, or limited in
    /// concurrency or rate: `Store::queue_update`). Their jobs are claimed
    /// only as their controls, read under the queue's claim lock, allow;
    /// every other claim statement leaves out whatever queue the store holds
    /// governed, so a node that has not heard of a change yet starts none of
    /// its jobs.
    pub governed: Vec<String>,
    /// Most jobs of governed queues this claim may take: the node's idle
    /// workers. A limited queue's job is never held ahead of a worker, where
    /// it would wait while another node could run it.
    pub limited_slots: u32,
    /// Most jobs of one tenant running at once across the server, for tenants
    /// whose quota sets no `max_running` (`None`: unbounded).
    pub default_max_running: Option<u64>,
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
    /// Jobs returned to `queued` for another attempt, with the attempt whose
    /// lease lapsed.
    pub requeued: Vec<(JobRef, u32)>,
    /// Jobs that had no attempt left and are now `dead`, with their last attempt.
    pub dead: Vec<(JobRef, u32)>,
    /// Batches these deaths finished.
    pub batches_done: Vec<DoneBatch>,
}

/// What `job_complete` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completed {
    /// The completions applied (those whose claim was still the job's).
    pub applied: Vec<Lease>,
    /// Batches they finished.
    pub batches_done: Vec<DoneBatch>,
}

/// What `job_cancel` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancelled {
    /// The job, cancelled.
    pub job: super::JobRecord,
    /// Its batch, if this cancel finished it.
    pub batches_done: Vec<DoneBatch>,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub struct JobCompletion {
    /// Job id.
    pub id: String,
    /// The job's tenant (whose usage the run adds to).
    pub tenant: TenantId,
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
    /// Only the run's usage is recorded (fuel, run time), never its outcome:
    /// the run lost its claim, or shutdown interrupted it and its job is
    /// released for another attempt.
    pub usage_only: bool,
    /// What the run's outbound HTTP cost (counted with its fuel, once per claim).
    pub http: crate::domain::HttpUsage,
}
