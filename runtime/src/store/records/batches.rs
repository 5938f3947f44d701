//! Batches: groups of jobs with one callback when all have ended.

use std::collections::BTreeMap;

use crate::domain::{Callback, CallbackState, TenantId};

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
    /// The W3C `traceparent` of the dispatch (see `traces`).
    pub trace: Option<String>,
}

/// A batch whose last job a write ended (reported once per batch: the
/// write that set its `done_at`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneBatch {
    /// Owner.
    pub tenant: TenantId,
    /// Batch id.
    pub id: String,
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
    /// The W3C `traceparent` its callback continues.
    pub trace: Option<String>,
}

/// Which of a tenant's batches to list: newest first, from after `before`.
#[derive(Debug, Clone)]
pub struct BatchList {
    /// Owner.
    pub tenant: TenantId,
    /// Only batches older than this id (the previous page's last).
    pub before: Option<String>,
    /// Most batches.
    pub limit: u32,
}

/// A batch as listed: what its row says, without counting its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// UUIDv7.
    pub id: String,
    /// Jobs in it.
    pub total: u64,
    /// When its last job ended (`None`: some have not).
    pub done_at: Option<i64>,
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
