//! Lease renewal for this node's running jobs, rescue of jobs whose lease
//! expired because their worker died (crash, `kill -9`, lost node), and the
//! retention of finished jobs.

use std::sync::Arc;

use super::Shared;
use crate::domain::time::now_ms;

/// Renews the leases of held jobs every third of the lease, and stops the runs
/// of jobs this node no longer holds (cancelled through another node, or
/// rescued after this node stalled): their outcomes would be ignored anyway.
pub(crate) async fn heartbeat(shared: Arc<Shared>) {
    let every = shared.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let ids: Vec<String> = shared.running.lock().expect("running lock").keys().cloned().collect();
        if ids.is_empty() {
            continue;
        }
        let until = now_ms() + shared.settings.lease.as_millis() as i64;
        match shared.store.job_heartbeat(&shared.node, &ids, until).await {
            Ok(held) => {
                let held: std::collections::HashSet<String> = held.into_iter().collect();
                let running = shared.running.lock().expect("running lock");
                for id in ids.iter().filter(|id| !held.contains(*id)) {
                    if let Some(cancel) = running.get(id) {
                        tracing::info!(job = %id, "job no longer held by this node; stopping its run");
                        cancel.cancel();
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, jobs = ids.len(), "could not renew leases"),
        }
    }
}

/// Returns expired-lease jobs to the queue, at start and every half lease.
pub(crate) async fn rescuer(shared: Arc<Shared>) {
    loop {
        match shared.store.job_rescue_expired(now_ms()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(jobs = n, "rescued jobs whose worker stopped renewing its lease");
                shared.wake.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "rescuing expired jobs failed"),
        }
        tokio::time::sleep(shared.settings.lease / 2).await;
    }
}

/// Finished jobs deleted per statement (short transactions: the writer is shared).
const PRUNE_CHUNK: u32 = 1000;

/// Deletes finished jobs older than the retention, in chunks, every minute.
pub(crate) async fn pruner(shared: Arc<Shared>) {
    let Some(retention) = shared.settings.retention else {
        return;
    };
    loop {
        let before = now_ms() - retention.as_millis() as i64;
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
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}
