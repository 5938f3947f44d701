//! Reading many jobs: `job_list` pages and per-status counts.

use serde::Deserialize;
use std::collections::BTreeMap;

use super::JobRecord;
use crate::domain::{JobStatus, TenantId};

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

/// Job counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Per status (every status present, zero included).
    pub by_status: BTreeMap<String, u64>,
    /// Per queue, per status (non-zero only).
    pub by_queue: BTreeMap<String, BTreeMap<String, u64>>,
}
