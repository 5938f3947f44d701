//! Queues as resources: the controls an operator sets on a queue (pause,
//! concurrency, rate), which every node's claims obey, and its depth.

use crate::domain::QueueLimits;

/// A queue's controls as stored (a queue nobody set anything on has none:
/// it runs freely).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecord {
    /// The queue's name.
    pub name: String,
    /// Paused: its jobs are accepted and none starts.
    pub paused: bool,
    /// Its concurrency and rate limits.
    pub limits: QueueLimits,
    /// Unix ms of the last change.
    pub updated_at: i64,
}

impl QueueRecord {
    /// Whether claims must treat the queue on its own (paused or limited),
    /// not in the claim of every other queue's jobs.
    pub fn governed(&self) -> bool {
        self.paused || self.limits.any()
    }
}

/// The name of the `queues` row that holds the limits of a tenant's alias:
/// `@<tenant>/<alias>`. No queue can be named so (`@` and `/` are outside a
/// queue name's characters); `queue_update` on it limits the alias on every
/// node, `queue_list` lists it beside the queues.
pub fn alias_limits_name(tenant: &str, alias: &str) -> String {
    format!("@{tenant}/{alias}")
}

/// The tenant and alias of an [`alias_limits_name`]; `None` for a queue's name.
pub fn alias_of_limits_name(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix('@')?.split_once('/')
}

/// A change to one queue's controls (`queue_update`; the row is created on
/// first change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueChange {
    /// Pause (`true`) or resume (`false`).
    Paused(bool),
    /// Replace both limits (a new rate starts with a full bucket).
    Limits(QueueLimits),
}

/// `queue_update` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUpdate {
    /// The queue (validated by the caller).
    pub name: String,
    /// What changes.
    pub change: QueueChange,
    /// Unix ms.
    pub now: i64,
}

/// Jobs of one queue in one status not yet finished, as `queue_depths` counts
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue.
    pub queue: String,
    /// `queued`, `scheduled`, `running` or `failed` (waiting to retry).
    pub status: String,
    /// How many.
    pub count: u64,
}
