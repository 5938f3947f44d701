//! Lease renewal for this node's running jobs, rescue of jobs whose lease
//! expired because their worker died (crash, `kill -9`, lost node), the
//! retention of finished jobs, and the notices of other nodes' changes.

use std::collections::HashSet;
use std::sync::Arc;

use super::Shared;
use crate::bus::{Detail, Event, Kind};
use crate::domain::JobStatus;
use crate::domain::time::now_ms;
use crate::store::{JobHeartbeat, JobWatch, Lease, Notice};

/// Renews the leases of held jobs every third of the lease, and stops the runs
/// whose claim this node no longer holds (cancelled through another node,
/// rescued after this node stalled, or lapsed while it stalled): their outcomes
/// must not land, and the store would refuse them anyway.
pub(crate) async fn heartbeat(shared: Arc<Shared>) {
    let every = shared.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let leases: Vec<Lease> = shared.running.lock().expect("running lock").keys().cloned().collect();
        if leases.is_empty() {
            continue;
        }
        let now = now_ms();
        let beat = JobHeartbeat {
            owner: shared.node.clone(),
            leases: leases.clone(),
            now,
            lease_expires_at: now + shared.settings.lease.as_millis() as i64,
        };
        match shared.store.job_heartbeat(beat).await {
            Ok(held) => {
                let held: HashSet<Lease> = held.into_iter().collect();
                let running = shared.running.lock().expect("running lock");
                for lease in leases.iter().filter(|l| !held.contains(*l)) {
                    if let Some(run) = running.get(lease) {
                        tracing::info!(job = %lease.id, token = lease.token,
                            "claim no longer held by this node; stopping its run");
                        run.lose();
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, jobs = leases.len(), "could not renew leases"),
        }
    }
}

/// Acts on what other nodes commit, as the store reports it (PostgreSQL's
/// LISTEN/NOTIFY): runnable jobs wake the producer, so an idle node starts a
/// job dispatched through another within milliseconds instead of at its next
/// poll; a cancel stops the run here at once, not at the next lease renewal.
/// Nothing to do on a store that has no notices (SQLite: one node); the
/// task stays (a task that ends means a broken node, see `stopped_task`).
pub(crate) async fn notices(shared: Arc<Shared>) {
    loop {
        let mut notices = match shared.store.notices().await {
            Ok(Some(notices)) => notices,
            Ok(None) => return std::future::pending().await,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for other nodes' changes; polling meanwhile");
                tokio::time::sleep(shared.settings.lease / 3).await;
                continue;
            }
        };
        // A connection just made may have missed notices: claim once.
        shared.wake.notify_one();
        // Other nodes listen too: this node's event stream trades events with theirs.
        crate::bus::relay::start(&shared.bus, shared.store.clone(), shared.node_name.clone());
        while let Some(notice) = notices.recv().await {
            match notice {
                Notice::JobsRunnable => shared.wake.notify_one(),
                Notice::QueuesChanged => {
                    shared.controls.invalidate();
                    shared.wake.notify_one();
                }
                Notice::Cancelled(id) => {
                    if shared.cancel_running(&id) {
                        tracing::info!(job = %id, "cancelled through another node; stopping its run");
                    }
                }
                Notice::Relayed(message) => {
                    crate::bus::relay::receive(&shared.bus, &shared.node_name, message)
                }
            }
        }
    }
}

/// Ends the claims whose lease lapsed (requeued, or dead on their last
/// attempt), at start and every half lease.
pub(crate) async fn rescuer(shared: Arc<Shared>) {
    loop {
        // Rescues are published in commit order with claims and completions.
        let order = shared.events.in_order().await;
        let rescued = shared.store.job_rescue_expired(now_ms()).await;
        if let Ok(rescued) = &rescued {
            // Watchers see the attempt end (`queued` again, or `dead`) before
            // the next claim, which may follow at once, starts another.
            for (job, attempt) in &rescued.requeued {
                let requeued = JobWatch { status: JobStatus::Queued, attempt: *attempt, progress: None };
                shared.events.publish(&job.id, requeued);
            }
            for (job, _) in &rescued.dead {
                shared.events.changed(&job.id);
            }
            shared.bus.publish_with(|| rescue_events(rescued, now_ms()));
        }
        drop(order);
        match rescued {
            Ok(rescued) => {
                if !rescued.requeued.is_empty() {
                    tracing::warn!(
                        jobs = rescued.requeued.len(),
                        "requeued jobs whose worker stopped renewing its lease"
                    );
                    shared.wake.notify_one();
                }
                if !rescued.dead.is_empty() {
                    tracing::warn!(
                        jobs = rescued.dead.len(),
                        "jobs whose worker stopped renewing its lease on their last attempt are dead"
                    );
                    shared.callbacks_wake.notify_one();
                }
            }
            Err(e) => tracing::error!(error = %e, "rescuing expired jobs failed"),
        }
        tokio::time::sleep(shared.settings.lease / 2).await;
    }
}

/// Finished jobs deleted per statement (short transactions: the writer is shared).
const PRUNE_CHUNK: u32 = 1000;

/// Every minute: deletes finished jobs older than the retention (none with
/// `--retention forever`), in chunks, and on a shared store the tags of
/// signed requests whose replay window has ended.
pub(crate) async fn pruner(shared: Arc<Shared>) {
    loop {
        if let Some(retention) = shared.settings.retention {
            prune_jobs(&shared, now_ms() - retention.as_millis() as i64).await;
        }
        if shared.store.shared() {
            match shared.store.signature_prune(now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(tags = n, "forgot signed requests past their replay window"),
                Err(e) => tracing::error!(error = %e, "pruning seen signatures failed"),
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

async fn prune_jobs(shared: &Shared, before: i64) {
    loop {
        match shared.store.job_prune(before, PRUNE_CHUNK).await {
            Ok(n) if n == u64::from(PRUNE_CHUNK) => tokio::task::yield_now().await,
            Ok(0) => break,
            Ok(n) => {
                tracing::debug!(jobs = n, "pruned finished jobs past their retention");
                break;
            }
            Err(e) => {
                tracing::error!(error = %e, "pruning finished jobs failed");
                break;
            }
        }
    }
}

/// The events of a rescue: `job.queued` (reason `rescued`) for a requeued
/// job, `job.dead` (`lease_expired`) for one out of attempts, `batch.done`.
fn rescue_events(rescued: &crate::store::Rescued, now: i64) -> Vec<Event> {
    let detail = Detail::requeued(now, "rescued");
    let requeued = rescued
        .requeued
        .iter()
        .map(|(job, _)| Event::job(Kind::JobQueued, &Arc::new(job.clone()), detail.clone(), now));
    let dead = rescued.dead.iter().map(|(job, attempt)| {
        let detail = Detail::Ended {
            attempt: *attempt,
            error: Some("lease_expired".to_string()),
            message: Some(format!("the worker running attempt {attempt} stopped renewing its lease")),
            duration_ms: None,
            fuel_used: None,
            retry_at: None,
        };
        Event::job(Kind::JobDead, &Arc::new(job.clone()), detail, now)
    });
    let batches = rescued.batches_done.iter().map(|b| Event::batch_done(b, now));
    requeued.chain(dead).chain(batches).collect()
}
