//! This node's copy of the queues' controls (`Store::queue_list`): which
//! queues are governed (paused, or limited in concurrency or rate across the
//! cluster), so that its claims take those queues' jobs only through the
//! store's second phase, its dispatches never start them in the insert, and
//! its runners never run more of a limited queue at once than its limit.
//!
//! The copy only routes: the claim statements read the controls themselves
//! (`rules::queues`), so a stale copy delays a queue's jobs, never overruns
//! its limits. It is read again before the next claim when this node changed
//! a queue, when PostgreSQL tells of another node's change (`wasmq_queues`),
//! and at least every [`CONTROLS_TTL`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::store::{QueueRecord, Store, StoreResult};

/// Longest a node goes without reading the controls again.
pub const CONTROLS_TTL: Duration = Duration::from_secs(2);

/// Shortest wake-up interval for a rated queue's tokens: a rate of 1,000/s
/// is claimed in batches of about 25, not a claim per token.
const TOKEN_WAKE_FLOOR: Duration = Duration::from_millis(25);

/// The controls as this node last read them.
#[derive(Debug, Default)]
pub struct Known {
    /// Every queue with a row, by name.
    pub records: Vec<QueueRecord>,
    /// The governed ones (claimed in the second phase).
    pub governed: Vec<String>,
    /// Concurrency limits (what one node's runners never exceed either).
    pub concurrency: HashMap<String, usize>,
    /// How soon a rated queue earns its next token, at the fastest: the
    /// producer looks again this often while one is governed.
    pub token_wake: Option<Duration>,
}

impl Known {
    fn of(records: Vec<QueueRecord>) -> Self {
        let governed = records.iter().filter(|r| r.governed()).map(|r| r.name.clone()).collect();
        let concurrency = records
            .iter()
            .filter_map(|r| {
                Some((r.name.clone(), usize::try_from(r.limits.concurrency?).unwrap_or(usize::MAX)))
            })
            .collect();
        let token_wake = records
            .iter()
            .filter(|r| !r.paused)
            .filter_map(|r| r.limits.rate)
            .map(|rate| Duration::from_millis((rate.per_ms / rate.max).max(1)).max(TOKEN_WAKE_FLOOR))
            .min();
        Self { records, governed, concurrency, token_wake }
    }

    /// Whether `queue`'s jobs go through the second phase.
    pub fn is_governed(&self, queue: &str) -> bool {
        self.governed.iter().any(|q| q == queue)
    }
}

/// The cached controls (see the module doc).
pub struct QueueControls {
    known: RwLock<Arc<Known>>,
    /// Read again before the next claim.
    stale: AtomicBool,
    read_at: Mutex<Option<Instant>>,
}

impl Default for QueueControls {
    fn default() -> Self {
        Self {
            known: RwLock::new(Arc::new(Known::default())),
            stale: AtomicBool::new(true),
            read_at: Mutex::new(None),
        }
    }
}

impl QueueControls {
    /// The controls as last read (no store access: the dispatch and runner
    /// paths).
    pub fn known(&self) -> Arc<Known> {
        self.known.read().expect("controls lock").clone()
    }

    /// Marks the copy stale: the next [`QueueControls::fresh`] reads the store.
    pub fn invalidate(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// The controls, read again first if stale or older than
    /// [`CONTROLS_TTL`]. A failed read keeps the last copy (and is retried
    /// at the next call).
    pub async fn fresh(&self, store: &dyn Store) -> Arc<Known> {
        let due = self.stale.load(Ordering::Acquire)
            || self.read_at.lock().expect("controls lock").is_none_or(|at| at.elapsed() >= CONTROLS_TTL);
        if due {
            match self.reload(store).await {
                Ok(known) => return known,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the queues' controls failed; using the last ones")
                }
            }
        }
        self.known()
    }

    async fn reload(&self, store: &dyn Store) -> StoreResult<Arc<Known>> {
        // Cleared before the read: a change that lands during it marks the
        // copy stale again.
        self.stale.store(false, Ordering::Release);
        let records = match store.queue_list().await {
            Ok(r) => r,
            Err(e) => {
                self.stale.store(true, Ordering::Release);
                return Err(e);
            }
        };
        let known = Arc::new(Known::of(records));
        *self.known.write().expect("controls lock") = known.clone();
        *self.read_at.lock().expect("controls lock") = Some(Instant::now());
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{QueueLimits, Rate};

    fn record(name: &str, paused: bool, limits: QueueLimits) -> QueueRecord {
        QueueRecord { name: name.into(), paused, limits, updated_at: 0 }
    }

    #[test]
    fn paused_or_limited_queues_are_governed_and_resumed_ones_are_not() {
        let known = Known::of(vec![
            record("free", false, QueueLimits::default()),
            record("held", true, QueueLimits::default()),
            record("gpu", false, QueueLimits { concurrency: Some(2), rate: None }),
            record(
                "mail",
                false,
                QueueLimits { concurrency: None, rate: Some(Rate { max: 100, per_ms: 1000, burst: None }) },
            ),
        ]);
        assert_eq!(known.governed, ["held", "gpu", "mail"]);
        assert!(!known.is_governed("free"));
        assert_eq!(known.concurrency.get("gpu"), Some(&2));
        assert_eq!(known.token_wake, Some(TOKEN_WAKE_FLOOR));
        let slow = Known::of(vec![record(
            "s",
            false,
            QueueLimits { concurrency: None, rate: Some(Rate { max: 1, per_ms: 60_000, burst: None }) },
        )]);
        assert_eq!(slow.token_wake, Some(Duration::from_secs(60)));
    }
}
