//! Writes attempt outcomes in batches: whatever has arrived while the previous
//! transaction committed goes into the next one, so under load one commit (and
//! one fsync) serves many jobs, and when idle a completion is written at once.

use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Notify, mpsc};

use super::{CompleterMsg, JobEvents};
use crate::store::{JobWatch, Lease, Store};

/// Most completions in one transaction.
const MAX_BATCH: usize = 512;
/// Under load (the previous transaction carried at least `BUSY` completions),
/// wait this long for more before committing: a transaction costs the same for
/// 5 or 50 jobs, and a millisecond is noise next to a loaded queue's latency.
/// An idle server never waits.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);
const BUSY: usize = 8;

/// `wake_producer` is called after each commit: a tenant at its `max_running`
/// may claim again only once its finished jobs stopped counting as running in
/// the store, and the runner that woke the producer did so before that.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    events: JobEvents,
    callbacks_wake: Arc<Notify>,
    wake_producer: impl Fn() + Send + 'static,
    mut rx: mpsc::UnboundedReceiver<CompleterMsg>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // What each completion makes of its job, for watchers once it is stored.
    let mut ends: HashMap<Lease, JobWatch> = HashMap::new();
    let mut flushes = Vec::new();
    let mut callbacks_due = false;
    let mut last_size = 0;
    while let Some(first) = rx.recv().await {
        if last_size >= BUSY {
            tokio::time::sleep(LINGER).await;
        }
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                CompleterMsg::Complete { completion, attempt, callback } => {
                    callbacks_due |= callback;
                    let end = JobWatch {
                        status: completion.status,
                        attempt,
                        progress: completion.progress.clone(),
                    };
                    ends.insert(Lease { id: completion.id.clone(), token: completion.token }, end);
                    batch.push(*completion);
                }
                CompleterMsg::Flush(ack) => flushes.push(ack),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        last_size = batch.len();
        if !batch.is_empty() {
            let leases: Vec<Lease> =
                batch.iter().map(|c| Lease { id: c.id.clone(), token: c.token }).collect();
            let mut attempt = 0;
            loop {
                // Completions are published in commit order with claims and rescues.
                let order = events.in_order().await;
                match store.job_complete(batch.clone()).await {
                    Ok(applied) => {
                        // Ended or failed-and-retrying: watchers are told how
                        // the attempt ended (a retry may be claimed at once,
                        // so they must not have to read it from the store).
                        for lease in &applied {
                            match ends.remove(lease) {
                                Some(end) => events.publish(&lease.id, end),
                                None => events.changed(&lease.id),
                            }
                        }
                        drop(order);
                        wake_producer();
                        if std::mem::take(&mut callbacks_due) {
                            callbacks_wake.notify_one();
                        }
                        break;
                    }
                    Err(e) => {
                        drop(order);
                        // The leases keep these jobs ours until they expire; if the
                        // store stays down they are rescued and run again.
                        attempt += 1;
                        let jobs = leases.len();
                        tracing::error!(error = %e, jobs, attempt, "could not store job outcomes");
                        if attempt >= 5 {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                    }
                }
            }
            batch.clear();
            ends.clear();
        }
        for ack in flushes.drain(..) {
            let _ = ack.send(());
        }
    }
}
