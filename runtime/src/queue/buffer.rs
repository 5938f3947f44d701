//! The node-local buffer of claimed jobs and the worker tasks that drain it.
//!
//! Claims fetch more jobs than there are workers (see `producer`), so the order
//! in which held jobs start is decided here: always the best eligible job
//! (highest priority, then earliest due, then oldest), skipping queues that are
//! at their concurrency limit. A fixed set of `workers` runner tasks pulls from
//! it; no task is spawned per job.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::executor::execute;
use super::{RunHandle, Shared};
use crate::store::{JobRecord, Lease};

/// A claimed job waiting for a worker.
pub(crate) struct Held {
    pub(crate) job: JobRecord,
    pub(crate) run: RunHandle,
}

/// Jobs held, and how many of each queue are running.
#[derive(Default)]
pub(crate) struct Buffer {
    held: Vec<Held>,
    running_per_queue: HashMap<String, usize>,
}

impl Buffer {
    pub(crate) fn push(&mut self, held: Held) {
        self.held.push(held);
    }

    /// Removes every held job (shutdown); returns their claims.
    pub(crate) fn drain_leases(&mut self) -> Vec<Lease> {
        self.held.drain(..).map(|h| h.job.lease()).collect()
    }

    /// Takes the best job whose queue has room. The buffer holds at most
    /// `workers + prefetch` jobs, so a scan is cheaper than keeping a heap
    /// consistent with per-queue limits.
    fn take(&mut self, limits: &HashMap<String, usize>) -> Option<Held> {
        let running = &self.running_per_queue;
        let eligible = |h: &Held| {
            limits
                .get(&h.job.queue)
                .is_none_or(|limit| running.get(&h.job.queue).copied().unwrap_or(0) < *limit)
        };
        let best = self
            .held
            .iter()
            .enumerate()
            .filter(|(_, h)| eligible(h))
            .min_by(|(_, a), (_, b)| {
                b.job
                    .priority
                    .cmp(&a.job.priority)
                    .then(a.job.run_at.cmp(&b.job.run_at))
                    .then(a.job.id.cmp(&b.job.id))
            })
            .map(|(i, _)| i)?;
        let held = self.held.swap_remove(best);
        *self.running_per_queue.entry(held.job.queue.clone()).or_default() += 1;
        Some(held)
    }

    fn finished(&mut self, queue: &str) {
        if let Some(n) = self.running_per_queue.get_mut(queue) {
            *n = n.saturating_sub(1);
        }
    }

    /// Jobs of `queue` held or running (for the producer's per-queue limit).
    pub(crate) fn count(&self, queue: &str) -> usize {
        self.running_per_queue.get(queue).copied().unwrap_or(0)
            + self.held.iter().filter(|h| h.job.queue == queue).count()
    }
}

/// One worker: runs held jobs one after another until shutdown starts.
pub(crate) async fn runner(shared: Arc<Shared>) {
    loop {
        let ready = shared.ready.notified();
        tokio::pin!(ready);
        ready.as_mut().enable();
        if shared.stopping.is_cancelled() {
            return;
        }
        let next = shared.buffer.lock().expect("buffer lock").take(&shared.settings.queue_limits);
        match next {
            Some(held) => {
                let queue = held.job.queue.clone();
                shared.busy.fetch_add(1, Ordering::AcqRel);
                execute(shared.clone(), held.job, held.run).await;
                shared.busy.fetch_sub(1, Ordering::AcqRel);
                shared.buffer.lock().expect("buffer lock").finished(&queue);
                // A freed queue slot may make another held job eligible.
                shared.ready.notify_waiters();
            }
            None => {
                tokio::select! {
                    () = &mut ready => {}
                    () = shared.stopping.cancelled() => return,
                }
            }
        }
    }
}
