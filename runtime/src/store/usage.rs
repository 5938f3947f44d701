//! What the store counts per tenant per UTC day (what an operator bills on),
//! and the parameters of `usage_list`.
//!
//! Every counter is added in the transaction of the write that causes it, so
//! a crash neither loses nor double-counts one:
//! - a completion batch (`job_complete`) adds each run's fuel, run time and
//!   outbound HTTP (requests, bytes) once per claim (job id and fencing token), whether or not the completion
//!   is applied: a cancelled run's completion, fenced off, still counts its
//!   fuel, and a completion written twice counts once; the applied ones add
//!   their outcome;
//! - `job_cancel` adds `cancelled`, `job_rescue_expired` adds `failed` or `dead`;
//! - `module_put` (a new module) and `module_delete` move the storage gauge;
//! - `callback_record` adds a delivery attempt;
//! - every key-value write (`kv_set`, `kv_delete`, `kv_increment`) adds
//!   `kv_writes` and moves the key-value gauge (reads are not counted: that
//!   would make every read a write).
//!
//! Counted on the day of the event (a run: the day it ended), in UTC.

use crate::domain::{Day, TenantId};

/// The counters of one tenant on one day. Job outcomes count each time a job
/// ends (a job retried by request and ending again counts again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageCounters {
    /// Runs whose fuel and run time are counted: every attempt that ran in a
    /// sandbox and reported how it ended, including runs cancelled, timed out,
    /// or stopped after losing their claim (not a run whose node died).
    pub runs: u64,
    /// Jobs that ended `succeeded`.
    pub succeeded: u64,
    /// Attempts that failed with an attempt left (the job will run again),
    /// including attempts whose worker stopped renewing its lease.
    pub failed: u64,
    /// Jobs that ended `dead` (failed on their last attempt, or their worker
    /// was lost on it).
    pub dead: u64,
    /// Jobs cancelled by request.
    pub cancelled: u64,
    /// Runs stopped by their wall-clock limit (also counted in `failed` or
    /// `dead` when their outcome was applied).
    pub timed_out: u64,
    /// Fuel the counted runs used.
    pub fuel_used: u64,
    /// Wall-clock milliseconds the counted runs took in the sandbox.
    pub run_ms: u64,
    /// Callback delivery attempts (job and batch callbacks), whatever their answer.
    pub callbacks_sent: u64,
    /// Callback deliveries the receiver accepted.
    pub callbacks_delivered: u64,
    /// Key-value writes (set, delete, increment), from jobs or the API.
    pub kv_writes: u64,
    /// Outbound HTTP requests the counted runs sent (refused ones included).
    pub http_requests: u64,
    /// Bytes of request bodies they sent.
    pub http_bytes_sent: u64,
    /// Bytes of response bodies they received.
    pub http_bytes_received: u64,
}

impl UsageCounters {
    /// Adds `other` to these counters (saturating).
    pub fn add(&mut self, other: &UsageCounters) {
        let pairs = [
            (&mut self.runs, other.runs),
            (&mut self.succeeded, other.succeeded),
            (&mut self.failed, other.failed),
            (&mut self.dead, other.dead),
            (&mut self.cancelled, other.cancelled),
            (&mut self.timed_out, other.timed_out),
            (&mut self.fuel_used, other.fuel_used),
            (&mut self.run_ms, other.run_ms),
            (&mut self.callbacks_sent, other.callbacks_sent),
            (&mut self.callbacks_delivered, other.callbacks_delivered),
            (&mut self.kv_writes, other.kv_writes),
            (&mut self.http_requests, other.http_requests),
            (&mut self.http_bytes_sent, other.http_bytes_sent),
            (&mut self.http_bytes_received, other.http_bytes_received),
        ];
        for (mine, theirs) in pairs {
            *mine = mine.saturating_add(theirs);
        }
    }
}

/// One tenant's usage on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// The tenant.
    pub tenant: TenantId,
    /// The UTC day.
    pub day: Day,
    /// What it did that day.
    pub counters: UsageCounters,
    /// The most bytes of modules it stored at any moment of the day.
    pub module_bytes_max: u64,
    /// The bytes of modules it stored at the end of the day (or now, for today).
    pub module_bytes_end: u64,
    /// The most bytes (keys plus values) in its key-value stores at any moment of the day.
    pub kv_bytes_max: u64,
    /// The bytes in its key-value stores at the end of the day (or now, for today).
    pub kv_bytes_end: u64,
}

/// `usage_list` parameters.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    /// One tenant, or every tenant (`None`, the operator's view).
    pub tenant: Option<TenantId>,
    /// First day, included.
    pub from: Day,
    /// Last day, included.
    pub to: Day,
}
