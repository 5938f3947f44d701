//! Callback delivery: claiming due callbacks and recording attempts.

use super::{BatchRecord, JobRecord};
use crate::domain::{Callback, CallbackState};

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
