//! The claim loop: fills free worker slots with runnable jobs.
//!
//! It holds at most `workers + prefetch` jobs (a claimed job holds a lease that
//! other nodes respect), claims many at once when it can, and sleeps on an
//! in-process notification until a dispatch, a completion, the next due time of
//! a delayed job, or the fallback poll for other nodes' work.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use super::buffer::Held;
use super::executor::register;
use crate::domain::time::now_ms;
use crate::store::{JobClaim, JobWatch};

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut failures = 0u32;
    loop {
        if shared.stopping.is_cancelled() {
            return;
        }
        let (free, exclude) = capacity(&shared);
        let mut sleep_for = shared.settings.poll_interval;
        if free > 0 {
            let now = now_ms();
            let claim = JobClaim {
                owner: shared.node.clone(),
                now,
                lease_expires_at: now + shared.settings.lease.as_millis() as i64,
                limit: free as u32,
                exclude_queues: exclude,
            };
            // Claims are published in commit order with rescues and completions.
            let order = shared.events.in_order().await;
            let claimed = shared.store.job_claim(claim).await;
            if let Ok(jobs) = &claimed {
                for job in jobs {
                    shared.events.publish(&job.id, JobWatch::from(job));
                }
            }
            drop(order);
            match claimed {
                Ok(jobs) => {
                    failures = 0;
                    let full = jobs.len() == free;
                    if !jobs.is_empty() {
                        let mut buffer = shared.buffer.lock().expect("buffer lock");
                        for job in jobs {
                            let run = register(&shared, &job);
                            buffer.push(Held { job, run });
                        }
                        drop(buffer);
                        shared.ready.notify_waiters();
                    }
                    if full {
                        continue; // more may be waiting; claim again once slots free up
                    }
                    if let Ok(Some(due)) = shared.store.job_next_due().await {
                        let wait = Duration::from_millis(due.saturating_sub(now_ms()).max(0) as u64);
                        sleep_for = sleep_for.min(wait);
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, "claiming jobs failed");
                    sleep_for = Duration::from_millis(50 << failures.min(6));
                }
            }
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(sleep_for) => {}
            () = shared.stopping.cancelled() => return,
        }
    }
}

/// Work a node holds per worker beyond what runs: enough to bridge a claim
/// round trip many times over, too little to matter for priorities or for
/// spreading work over nodes.
const HELD_WORK: std::time::Duration = std::time::Duration::from_millis(50);

/// Jobs to hold ahead of the workers: about `HELD_WORK` of work per worker at
/// the recent average run time, capped by the `prefetch` setting. Short jobs
/// (echo: ~20 us) get the full window; second-long jobs get none.
pub(crate) fn prefetch(shared: &Shared) -> usize {
    let avg = shared.avg_run_us.load(std::sync::atomic::Ordering::Relaxed).max(1);
    let per_worker = (HELD_WORK.as_micros() as u64 / avg) as usize;
    per_worker.saturating_mul(shared.settings.workers).min(shared.settings.prefetch)
}

/// Free claim slots (workers plus prefetch, minus jobs held), and the queues
/// that reached their own limit.
fn capacity(shared: &Shared) -> (usize, Vec<String>) {
    let running = shared.running.lock().expect("running lock");
    let held = running.len();
    let limit = shared.settings.workers + prefetch(shared);
    // Claim when workers would otherwise idle or a quarter of the window is
    // free, so claims come in batches rather than one job per completion.
    let free = if held <= shared.settings.workers || limit - held.min(limit) >= limit / 4 {
        limit.saturating_sub(held)
    } else {
        0
    };
    drop(running);
    let buffer = shared.buffer.lock().expect("buffer lock");
    // Do not hold more of a limited queue than its limit allows to run.
    let exclude = shared
        .settings
        .queue_limits
        .iter()
        .filter(|(q, limit)| buffer.count(q) >= **limit)
        .map(|(q, _)| q.clone())
        .collect();
    (free, exclude)
}
