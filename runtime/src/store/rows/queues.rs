//! Rows of `queues` (the controls set on queues) and the depth statement both
//! backends run.

use sqlx::FromRow;
use std::sync::LazyLock;

use crate::domain::{Bucket, QueueLimits, Rate};
use crate::store::rules::{RUNNABLE, RUNNING};
use crate::store::{QueueDepth, QueueRecord, StoreError, StoreResult};

/// Columns of `queues` in the order `QueueRow` reads them.
pub(in crate::store) const QUEUE_COLUMNS: &str =
    "name, paused, concurrency, rate_max, rate_per_ms, rate_burst, tokens, refilled_at, updated_at";

/// A row of `queues` ([`QUEUE_COLUMNS`]).
#[derive(FromRow, Debug, Clone)]
pub(in crate::store) struct QueueRow {
    pub(in crate::store) name: String,
    pub(in crate::store) paused: bool,
    concurrency: Option<i64>,
    rate_max: Option<i64>,
    rate_per_ms: Option<i64>,
    rate_burst: Option<i64>,
    tokens: Option<f64>,
    refilled_at: Option<i64>,
    updated_at: i64,
}

impl QueueRow {
    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt(format!("queue {}: {what}", self.name))
    }

    /// Its limits.
    pub(in crate::store) fn limits(&self) -> StoreResult<QueueLimits> {
        let unsigned =
            |n: i64, what: &str| u64::try_from(n).map_err(|_| self.corrupt(&format!("{what} {n}")));
        let concurrency = self.concurrency.map(|n| unsigned(n, "concurrency")).transpose()?;
        let rate = match (self.rate_max, self.rate_per_ms) {
            (Some(max), Some(per)) => {
                let burst = self.rate_burst.map(|b| unsigned(b, "rate_burst")).transpose()?;
                Some(Rate { max: unsigned(max, "rate_max")?, per_ms: unsigned(per, "rate_per_ms")?, burst })
            }
            (None, None) => None,
            _ => return Err(self.corrupt("half a rate")),
        };
        Ok(QueueLimits { concurrency, rate })
    }

    /// Its rate's bucket at `now` (`None`: no rate). A rate set without a
    /// bucket yet starts full.
    pub(in crate::store) fn bucket(&self, now: i64) -> StoreResult<Option<(Rate, Bucket)>> {
        let Some(rate) = self.limits()?.rate else { return Ok(None) };
        let bucket = match (self.tokens, self.refilled_at) {
            (Some(tokens), Some(refilled_at)) => Bucket { tokens, refilled_at }.at(&rate, now),
            _ => Bucket::full(&rate, now),
        };
        Ok(Some((rate, bucket)))
    }
}

impl TryFrom<QueueRow> for QueueRecord {
    type Error = StoreError;

    fn try_from(r: QueueRow) -> StoreResult<Self> {
        Ok(QueueRecord { limits: r.limits()?, paused: r.paused, updated_at: r.updated_at, name: r.name })
    }
}

/// The columns a `QueueChange::Limits` writes.
pub(in crate::store) struct LimitValues {
    pub(in crate::store) concurrency: Option<i64>,
    pub(in crate::store) rate_max: Option<i64>,
    pub(in crate::store) rate_per_ms: Option<i64>,
    pub(in crate::store) rate_burst: Option<i64>,
    /// The full bucket a new rate starts with (the statement keeps the old
    /// one when the rate is unchanged).
    pub(in crate::store) tokens: Option<f64>,
    pub(in crate::store) refilled_at: Option<i64>,
}

impl LimitValues {
    pub(in crate::store) fn of(limits: &QueueLimits, now: i64) -> Self {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let rate = limits.rate.as_ref();
        Self {
            concurrency: limits.concurrency.map(int),
            rate_max: rate.map(|r| int(r.max)),
            rate_per_ms: rate.map(|r| int(r.per_ms)),
            rate_burst: rate.and_then(|r| r.burst).map(int),
            tokens: rate.map(|r| Bucket::full(r, now).tokens),
            refilled_at: rate.map(|_| now),
        }
    }
}

/// The jobs not yet finished per queue and status; `{tenant}` is the
/// backend's condition on the tenant (or `TRUE`). Two scans along partial
/// indexes (the waiting jobs, the running ones), never the finished rows.
pub(in crate::store) fn depth_sql(tenant: &str) -> String {
    format!(
        "SELECT queue, status, COUNT(*) FROM jobs WHERE status IN {RUNNABLE} AND {tenant} GROUP BY queue, status
         UNION ALL
         SELECT queue, status, COUNT(*) FROM jobs WHERE status = {RUNNING} AND {tenant} GROUP BY queue, status"
    )
}

/// Depth rows as the statement returns them.
pub(in crate::store) fn depths(rows: Vec<(String, String, i64)>) -> Vec<QueueDepth> {
    rows.into_iter()
        .map(|(queue, status, count)| QueueDepth { queue, status, count: count.max(0) as u64 })
        .collect()
}

/// The statement listing every queue's row.
pub(in crate::store) static QUEUE_LIST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name"));
