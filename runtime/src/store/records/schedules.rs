//! Schedules: recurring dispatches of a tenant, fired by whichever node
//! reaches a due time first (`schedule_fire` settles it: one firing per due
//! time across every node and restart).

use super::{Inserted, NewJob};
use crate::domain::{AliasName, CatchUp, QueueName, TenantId};

/// What a schedule dispatches and when, as set through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    /// The alias its jobs run.
    pub alias: AliasName,
    /// The payload of every job (JSON text).
    pub payload: String,
    /// A cron expression (5 fields, or 6 with seconds), or `None` with
    /// `every_ms`.
    pub cron: Option<String>,
    /// A fixed interval counted from the Unix epoch, or `None` with `cron`.
    pub every_ms: Option<u64>,
    /// The tz database zone `cron` is read in (`None`: UTC).
    pub timezone: Option<String>,
    /// Queue of its jobs (`None`: the alias's).
    pub queue: Option<QueueName>,
    /// Priority of its jobs (`None`: the alias's).
    pub priority: Option<i32>,
    /// Fires only while enabled.
    pub enabled: bool,
    /// What runs of the due times missed while no node fired it.
    pub catch_up: CatchUp,
}

/// `schedule_put` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulePut {
    /// Owner.
    pub tenant: TenantId,
    /// Its name (validated by the caller).
    pub name: String,
    /// What it dispatches and when.
    pub spec: ScheduleSpec,
    /// Its next due time computed from now: stored unless the schedule
    /// exists with the same recurrence and `enabled`, whose stored next due
    /// time is kept (putting the same schedule again changes nothing).
    pub next_due_at: Option<i64>,
    /// Unix ms.
    pub now: i64,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// Owner.
    pub tenant: TenantId,
    /// Its name.
    pub name: String,
    /// What it dispatches and when.
    pub spec: ScheduleSpec,
    /// The next due time not yet fired (`None`: never again, or disabled
    /// before it had one).
    pub next_due_at: Option<i64>,
    /// The latest due time fired.
    pub last_due_at: Option<i64>,
    /// The job of the latest due time fired.
    pub last_job_id: Option<String>,
    /// Why the latest firing made no job (the alias was deleted, a quota
    /// refused it); cleared by the next firing that makes its jobs.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last change through the API.
    pub updated_at: i64,
}

/// `schedule_fire` parameters: the firing of one schedule by one node.
#[derive(Debug, Clone)]
pub struct ScheduleFiring {
    /// Owner.
    pub tenant: TenantId,
    /// The schedule.
    pub name: String,
    /// The next due time the node read: the firing applies only if it is
    /// still the stored one (no other node fired it since, nobody changed it).
    pub expected_next_due: i64,
    /// The next due time after this firing.
    pub next_due_at: Option<i64>,
    /// The latest due time fired (`None`: none fired, all were skipped).
    pub last_due_at: Option<i64>,
    /// One job per due time fired, each with an idempotency key naming the
    /// schedule and due time (the database's own guard against a second job).
    pub jobs: Vec<NewJob>,
    /// Why no job could be made, if so (`jobs` is then empty).
    pub error: Option<String>,
}

/// What `schedule_fire` did.
#[derive(Debug, Clone)]
pub enum Fired {
    /// This node fired it: the jobs of its due times (existing ones when a
    /// due time had its job already).
    Fired(Vec<Inserted>),
    /// Another node fired it first, or it changed: nothing was done.
    Lost,
}
