//! Acting on many jobs at once (`job_bulk`): retry, cancel or delete every
//! job of a tenant that a filter matches, in bounded steps.

use crate::domain::{JobStatus, TenantId};

/// Which jobs a bulk action takes: every condition given holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    /// Owner.
    pub tenant: TenantId,
    /// Only these statuses (empty: every status the action applies to).
    pub statuses: Vec<JobStatus>,
    /// Only this alias.
    pub alias: Option<String>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this context.
    pub context: Option<String>,
    /// Only jobs created at or after this (unix ms).
    pub created_after: Option<i64>,
    /// Only jobs created before this (unix ms).
    pub created_before: Option<i64>,
}

/// What a bulk action does to each job it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// Failed, dead and cancelled jobs run again with a fresh attempt
    /// budget (as `job_retry`).
    Retry,
    /// Jobs not yet ended end `cancelled` (as `job_cancel`; a running one is
    /// told to stop: PostgreSQL tells every node).
    Cancel,
    /// Ended jobs whose callback is settled are deleted.
    Delete,
}

impl BulkAction {
    /// The statuses the action applies to.
    pub fn applies_to(self, status: JobStatus) -> bool {
        match self {
            BulkAction::Retry => matches!(status, JobStatus::Failed | JobStatus::Dead | JobStatus::Cancelled),
            BulkAction::Cancel => !status.is_terminal(),
            BulkAction::Delete => status.is_terminal(),
        }
    }

    /// The statuses a filter's `statuses` mean for this action: the ones
    /// given that it applies to (empty given: all it applies to).
    pub fn statuses(self, given: &[JobStatus]) -> Vec<JobStatus> {
        let all = JobStatus::ALL.iter().copied().filter(|s| self.applies_to(*s));
        if given.is_empty() { all.collect() } else { all.filter(|s| given.contains(s)).collect() }
    }
}

/// `job_bulk` parameters: one step of a bulk action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobBulk {
    /// The jobs.
    pub filter: JobFilter,
    /// What to do.
    pub action: BulkAction,
    /// Where the previous step ended (the last id it looked at).
    pub after: Option<String>,
    /// Most jobs this step looks at.
    pub limit: u32,
    /// Unix ms.
    pub now: i64,
}

/// What one step of a bulk action did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkStep {
    /// The jobs it changed (retried, cancelled or deleted) in id order, each
    /// with its attempt as the step left it (a cancel's: the attempt it
    /// stopped; a retry's: 0).
    pub done: Vec<(crate::domain::JobRef, u32)>,
    /// Where the next step starts (`None`: the filter has nothing more).
    pub next: Option<String>,
    /// Batches the step finished (a cancel's).
    pub batches_done: Vec<super::DoneBatch>,
}
