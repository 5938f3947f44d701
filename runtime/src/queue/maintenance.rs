//! Lease renewal for this node's running jobs, and rescue of jobs whose lease
//! expired because their worker died (crash, `kill -9`, lost node).

use std::sync::Arc;

use super::Shared;
use crate::domain::time::now_ms;

/// Renews the leases of running jobs every third of the lease.
pub(crate) async fn heartbeat(shared: Arc<Shared>) {
    let every = shared.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let ids: Vec<String> = shared.running.lock().expect("running lock").keys().cloned().collect();
        if ids.is_empty() {
            continue;
        }
        let until = now_ms() + shared.settings.lease.as_millis() as i64;
        if let Err(e) = shared.store.job_heartbeat(&shared.node, &ids, until).await {
            tracing::error!(error = %e, jobs = ids.len(), "could not renew leases");
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
