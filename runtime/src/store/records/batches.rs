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
