//! The events of changes made outside the worker loop (dispatches, a
//! schedule's firings, a client's cancels and retries), published after the
//! change committed, in commit order with the claims and completions
//! (`JobEvents::in_order`). The worker loop's own (claims, progress,
//! completions, rescues) are published where they happen.

use std::sync::Arc;

use super::Queue;
use crate::bus::{Bus, Detail, Event, JobRef, Kind};
use crate::domain::JobStatus;
use crate::domain::time::now_ms;
use crate::store::{BulkAction, BulkStep, Cancelled, Inserted, JobRecord};

/// `job.queued` for each job an insert created (`reason`: `dispatched`,
/// `scheduled`), and `job.started` for those it claimed for `node` at once.
pub(crate) fn inserted(bus: &Bus, inserted: &[Inserted], reason: &'static str, node: &Arc<str>) {
    bus.publish_with(|| inserted_events(inserted, reason, node));
}

fn inserted_events(inserted: &[Inserted], reason: &'static str, node: &Arc<str>) -> Vec<Event> {
    let mut events = Vec::with_capacity(inserted.len());
    for Inserted { job, created } in inserted {
        if !created {
            continue;
        }
        let subject = Arc::new(JobRef::from(job));
        events.push(Event::job(Kind::JobQueued, &subject, Detail::queued(job, reason), job.created_at));
        if job.status == JobStatus::Running {
            let detail = Detail::Started { attempt: job.attempt, node: node.clone() };
            events.push(Event::job(
                Kind::JobStarted,
                &subject,
                detail,
                job.started_at.unwrap_or(job.created_at),
            ));
        }
    }
    events
}

impl Queue {
    /// Publishes the jobs a schedule's firing inserted.
    pub async fn announce_fired(&self, fired: &[Inserted]) {
        let _order = self.shared.events.in_order().await;
        inserted(&self.shared.bus, fired, "scheduled", &self.shared.node_name);
    }

    /// Publishes a client's cancel (`job.cancelled`, and `batch.done` if it
    /// ended the batch).
    pub async fn announce_cancelled(&self, cancelled: &Cancelled) {
        let now = now_ms();
        let job = &cancelled.job;
        let mut events = vec![Event::job(
            Kind::JobCancelled,
            &Arc::new(JobRef::from(job)),
            cancelled_detail(job.attempt),
            now,
        )];
        events.extend(cancelled.batches_done.iter().map(|b| Event::batch_done(b, now)));
        let _order = self.shared.events.in_order().await;
        self.shared.bus.publish_all(events);
    }

    /// Publishes a client's retry of one job (`job.queued`, reason `retried`).
    pub async fn announce_retried(&self, job: &JobRecord) {
        let event = Event::job(
            Kind::JobQueued,
            &Arc::new(JobRef::from(job)),
            Detail::queued(job, "retried"),
            now_ms(),
        );
        let _order = self.shared.events.in_order().await;
        self.shared.bus.publish(event);
    }

    /// Publishes what a step of a bulk action did: `job.queued` (reason
    /// `retried`) for each job a retry queued again, `job.cancelled` for each
    /// job a cancel ended, and `batch.done` for the batches it finished. A
    /// deletion has no event (the jobs had ended).
    pub async fn announce_bulk(&self, action: BulkAction, step: &BulkStep) {
        if step.done.is_empty() && step.batches_done.is_empty() {
            return;
        }
        let now = now_ms();
        let _order = self.shared.events.in_order().await;
        self.shared.bus.publish_with(|| bulk_events(action, step, now));
    }
}

fn bulk_events(action: BulkAction, step: &BulkStep, now: i64) -> Vec<Event> {
    let retried = (action == BulkAction::Retry).then(|| Detail::requeued(now, "retried"));
    let jobs = step.done.iter().filter_map(|(job, attempt)| {
        let (kind, detail) = match action {
            BulkAction::Retry => (Kind::JobQueued, retried.clone()?),
            BulkAction::Cancel => (Kind::JobCancelled, cancelled_detail(*attempt)),
            BulkAction::Delete => return None,
        };
        Some(Event::job(kind, &Arc::new(job.clone()), detail, now))
    });
    jobs.chain(step.batches_done.iter().map(|b| Event::batch_done(b, now))).collect()
}

/// A `job.cancelled`'s detail: the attempt it stopped.
fn cancelled_detail(attempt: u32) -> Detail {
    Detail::Ended { attempt, error: None, message: None, duration_ms: None, fuel_used: None, retry_at: None }
}
