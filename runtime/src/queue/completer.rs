//! Writes attempt outcomes in batches: whatever has arrived while the previous
//! transaction committed goes into the next one, so under load one commit (and
//! one fsync) serves many jobs, and when idle a completion is written at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::{Notify, mpsc, oneshot};

use super::{CompleterMsg, JobEvents};
use crate::bus::{Bus, Detail, Event, JobRef, Kind, Subject};
use crate::domain::time::rfc3339;
use crate::domain::{JobStatus, TenantId};
use crate::store::{JobCompletion, JobWatch, Lease, Store};
use crate::traces::{Parent, Traces};

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
    bus: Bus,
    traces: Traces,
    callbacks_wake: Arc<Notify>,
    wake_producer: impl Fn() + Send + 'static,
    mut rx: mpsc::UnboundedReceiver<CompleterMsg>,
) {
    let mut pending = Pending::default();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // What each completion makes of its job, for watchers and the event
    // stream once it is stored.
    let mut ends: HashMap<Lease, End> = HashMap::new();
    let mut flushes = Vec::new();
    let mut callbacks_due = false;
    let mut last_size = 0;
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(msg) => pending.add(msg, &mut flushes),
                None => return,
            }
            if last_size >= BUSY {
                tokio::time::sleep(LINGER).await;
            }
        }
        while let Ok(msg) = rx.try_recv() {
            pending.add(msg, &mut flushes);
        }
        // Events are built only while someone keeps them (see `Bus::active`).
        let announce = bus.active();
        for Waiting { completion, attempt, callback, job, trace } in pending.take(MAX_BATCH) {
            callbacks_due |= callback;
            let watch =
                JobWatch { status: completion.status, attempt, progress: completion.progress.clone() };
            let event = announce.then(|| ended(&completion, attempt, job));
            let trace = trace.map(|(parent, ended)| (parent, attempt, ended));
            ends.insert(
                Lease { id: completion.id.clone(), token: completion.token },
                End { watch, event, trace },
            );
            batch.push(completion);
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
                    Ok(done) => {
                        // Ended or failed-and-retrying: watchers are told how
                        // the attempt ended (a retry may be claimed at once,
                        // so they must not have to read it from the store).
                        let mut published = Vec::new();
                        for lease in &done.applied {
                            match ends.remove(lease) {
                                Some(End { watch, event, trace }) => {
                                    events.publish(&lease.id, watch);
                                    published.extend(event);
                                    if let Some((parent, attempt, finished_at)) = trace {
                                        traces.completed(&parent, &lease.id, attempt, finished_at);
                                    }
                                }
                                None => events.changed(&lease.id),
                            }
                        }
                        let now = crate::domain::time::now_ms();
                        published.extend(done.batches_done.iter().map(|b| Event::batch_done(b, now)));
                        bus.publish_with(|| published);
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
        // Everything sent before a flush is committed once nothing is pending.
        if pending.is_empty() {
            for ack in flushes.drain(..) {
                let _ = ack.send(());
            }
        }
    }
}

/// A completion waiting for its transaction.
struct Waiting {
    completion: JobCompletion,
    /// The attempt it ends.
    attempt: u32,
    /// Whether a callback may be due.
    callback: bool,
    /// The job (for the event stream).
    job: Arc<JobRef>,
    /// The parent of its `wasmq.complete` span and the run's end, when traced.
    trace: Option<(Parent, SystemTime)>,
}

/// What a stored completion tells: watchers its end, the event stream its
/// event (while watched), the trace its `wasmq.complete` span (the parent,
/// the attempt, when it ended).
struct End {
    watch: JobWatch,
    event: Option<Event>,
    trace: Option<(Parent, u32, SystemTime)>,
}

/// The event a stored completion makes (`job.succeeded`, `failed`, `dead`).
fn ended(c: &JobCompletion, attempt: u32, job: Arc<JobRef>) -> Event {
    let kind = Kind::of_end(c.status).unwrap_or(Kind::JobFailed);
    let (error, message) = match &c.error {
        Some((kind, message)) => (Some(kind.clone()), Some(message.clone())),
        None => (None, None),
    };
    let detail = Detail::Ended {
        attempt,
        error,
        message,
        duration_ms: Some(c.duration_ms),
        fuel_used: Some(c.fuel_used),
        retry_at: (c.status == JobStatus::Failed).then(|| rfc3339(c.run_at)),
    };
    Event { kind, subject: Subject::Job(job), detail, at: c.finished_at }
}

/// Completions received and not yet written, in a queue per tenant. Each
/// transaction takes them round-robin across tenants, so a tenant's one job
/// is stored in the next commit, not after another tenant's backlog that
/// arrived before it (under a flood, completions arrive faster than a
/// transaction of `MAX_BATCH` commits).
#[derive(Default)]
struct Pending {
    tenants: Vec<(TenantId, VecDeque<Waiting>)>,
}

impl Pending {
    fn add(&mut self, msg: CompleterMsg, flushes: &mut Vec<oneshot::Sender<()>>) {
        match msg {
            CompleterMsg::Complete { completion, attempt, callback, job, trace } => {
                let waiting = Waiting { completion: *completion, attempt, callback, job, trace };
                match self.tenants.iter_mut().find(|(t, _)| *t == waiting.completion.tenant) {
                    Some((_, queue)) => queue.push_back(waiting),
                    None => self.tenants.push((waiting.completion.tenant.clone(), VecDeque::from([waiting]))),
                }
            }
            CompleterMsg::Flush(ack) => flushes.push(ack),
        }
    }

    fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    /// Up to `max` completions, one per tenant in turn.
    fn take(&mut self, max: usize) -> Vec<Waiting> {
        let mut out = Vec::with_capacity(max.min(self.tenants.iter().map(|(_, q)| q.len()).sum()));
        while out.len() < max && !self.tenants.is_empty() {
            for (_, queue) in &mut self.tenants {
                if out.len() == max {
                    break;
                }
                out.extend(queue.pop_front());
            }
            self.tenants.retain(|(_, queue)| !queue.is_empty());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(tenant: &str, id: &str) -> CompleterMsg {
        CompleterMsg::Complete {
            completion: Box::new(JobCompletion {
                id: id.into(),
                tenant: TenantId::parse(tenant).unwrap(),
                token: 1,
                owner: "node".into(),
                status: JobStatus::Succeeded,
                result: Some("{}".into()),
                error: None,
                fuel_used: 1,
                duration_ms: 0,
                logs: None,
                progress: None,
                started_at: 0,
                finished_at: 0,
                run_at: 0,
                usage_only: false,
                http: Default::default(),
            }),
            attempt: 1,
            callback: false,
            job: Arc::new(JobRef {
                id: id.into(),
                tenant: TenantId::parse(tenant).unwrap(),
                alias: "a".into(),
                queue: "default".into(),
                batch: None,
            }),
            trace: None,
        }
    }

    fn ids(taken: &[Waiting]) -> Vec<&str> {
        taken.iter().map(|w| w.completion.id.as_str()).collect()
    }

    #[test]
    fn a_tenants_one_completion_goes_into_the_next_transaction_past_another_tenants_backlog() {
        let mut pending = Pending::default();
        let mut flushes = Vec::new();
        for k in 0..5 {
            pending.add(completion("flood", &format!("f{k}")), &mut flushes);
        }
        pending.add(completion("calm", "c0"), &mut flushes);
        // Round-robin: the calm tenant's job is in the first batch of three.
        assert_eq!(ids(&pending.take(3)), ["f0", "c0", "f1"]);
        // Each tenant's own completions keep their order.
        assert_eq!(ids(&pending.take(10)), ["f2", "f3", "f4"]);
        assert!(pending.is_empty());
        // A flush waits outside the tenants' queues.
        let (ack, _rx) = oneshot::channel();
        pending.add(CompleterMsg::Flush(ack), &mut flushes);
        assert!(pending.is_empty());
        assert_eq!(flushes.len(), 1);
    }
}
