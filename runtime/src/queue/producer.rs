//! The claim loop: fills free worker slots with runnable jobs.
//!
//! It holds at most `workers + prefetch` jobs (a claimed job holds a lease that
//! other nodes respect), claims many at once when it can, and sleeps on an
//! in-process notification until a dispatch, a completion, the next due time of
//! a delayed job, or the fallback poll for other nodes' work.
//!
//! Fairness across tenants is the claim's (`Store::job_claim`: shares by
//! weight over what each tenant runs in the store, which counts held jobs as
//! running). Holding jobs ahead would blur it: a tenant's share would be
//! spent on jobs that wait here while another tenant's run. So the node claims
//! ahead only while one tenant has work; as soon as a claim or the buffer
//! spans several tenants it claims for idle workers only, and what runs is
//! what the claim shared out. A tenant arriving while the node holds another's
//! backlog is claimed on the next claim (at most `HELD_WORK` per worker
//! away) and started next by the buffer's own fair order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
use super::buffer::Held;
use super::executor::register;
use crate::bus::{Detail, Event, JobRef, Kind};
use crate::domain::time::now_ms;
use crate::store::{JobClaim, JobRecord, JobWatch};

/// The `job.started` event of a job this node claimed.
fn started(shared: &Shared, job: &JobRecord, subject: &Arc<JobRef>) -> Event {
    let detail = Detail::Started { attempt: job.attempt, node: shared.node_name.clone() };
    Event::job(Kind::JobStarted, subject, detail, job.started_at.unwrap_or(job.run_at))
}

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut failures = 0u32;
    // Whether the last claim handed out jobs of several tenants.
    let mut shared_claim = false;
    loop {
        if shared.stopping.is_cancelled() {
            return;
        }
        let (free, idle) = capacity(&shared, shared_claim);
        let mut sleep_for = shared.settings.poll_interval;
        if free > 0 {
            let known = shared.controls.fresh(&*shared.store).await;
            if let Some(wake) = known.token_wake {
                // A rated queue earns tokens as time passes, which nothing
                // else would wake the producer for.
                sleep_for = sleep_for.min(wake);
            }
            let now = now_ms();
            let claim = JobClaim {
                owner: shared.node.clone(),
                now,
                lease_expires_at: now + shared.settings.lease.as_millis() as i64,
                limit: free as u32,
                queues: shared.settings.queues.clone(),
                governed: known.governed.clone(),
                limited_slots: idle as u32,
                default_max_running: shared.settings.tenant_max_running,
            };
            // Claims are published in commit order with rescues and completions.
            let order = shared.events.in_order().await;
            let claimed = shared.store.job_claim(claim).await;
            // Each job's reference, built once for its run and its events.
            let mut subjects = Vec::new();
            if let Ok(jobs) = &claimed {
                subjects = jobs.iter().map(|job| Arc::new(JobRef::from(job))).collect();
                for job in jobs {
                    shared.events.publish(&job.id, JobWatch::from(job));
                }
                shared.bus.publish_with(|| {
                    jobs.iter().zip(&subjects).map(|(job, subject)| started(&shared, job, subject))
                });
            }
            drop(order);
            match claimed {
                Ok(jobs) => {
                    failures = 0;
                    let full = jobs.len() == free;
                    if !jobs.is_empty() {
                        shared_claim = jobs.iter().any(|j| j.tenant != jobs[0].tenant);
                    }
                    // A short claim of one tenant's jobs emptied what this node
                    // may claim: until a dispatch is not taken in its insert,
                    // dispatches may fill the prefetch window themselves.
                    shared.backlog_clear.store(!full && !shared_claim, Ordering::Relaxed);
                    if !jobs.is_empty() {
                        let mut buffer = shared.buffer.lock().expect("buffer lock");
                        // Shutdown began during the claim: it has drained the
                        // buffer already, or will once we let go of it. Left
                        // unregistered, these jobs go back with the node's
                        // release (or lease expiry), and shutdown does not
                        // wait for runs that no runner will start.
                        if shared.stopping.is_cancelled() {
                            return;
                        }
                        for (job, subject) in jobs.into_iter().zip(subjects) {
                            let run = register(&shared, &job);
                            buffer.push(Held { job, run, subject });
                        }
                        drop(buffer);
                        shared.ready.notify_waiters();
                    }
                    if full {
                        continue; // more may be waiting; claim again once slots free up
                    }
                    // A job due already but not claimed waits for a slot (its
                    // queue's or its tenant's limit): a completion wakes us.
                    if let Ok(Some(due)) = shared.store.job_next_due().await
                        && due > now
                    {
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
    let avg = shared.avg_run_us.load(Ordering::Relaxed).max(1);
    let per_worker = (HELD_WORK.as_micros() as u64 / avg) as usize;
    per_worker.saturating_mul(shared.settings.workers).min(shared.settings.prefetch)
}

/// Free claim slots (workers plus prefetch, minus jobs held), and the
/// workers that would idle with what the node holds (the most jobs of limited
/// queues it may claim: those are never held ahead). No prefetch while several
/// tenants have work (`shared_claim`, or the buffer holds several): see the
/// module doc.
fn capacity(shared: &Shared, shared_claim: bool) -> (usize, usize) {
    let (several, reserved) = {
        let buffer = shared.buffer.lock().expect("buffer lock");
        (shared_claim || buffer.tenants() > 1, buffer.reserved())
    };
    let held = shared.running.lock().expect("running lock").len() + reserved;
    let limit = shared.settings.workers + if several { 0 } else { prefetch(shared) };
    // Claim when workers would otherwise idle or a quarter of the window is
    // free, so claims come in batches rather than one job per completion.
    let free = if held <= shared.settings.workers || limit - held.min(limit) >= limit / 4 {
        limit.saturating_sub(held)
    } else {
        0
    };
    (free, shared.settings.workers.saturating_sub(held))
}
