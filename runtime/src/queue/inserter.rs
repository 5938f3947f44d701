//! Group commit for dispatches: concurrent `POST /v1/jobs` requests are written
//! in one transaction (whatever arrived while the previous one committed), so
//! under load one commit serves many dispatches, and an idle server still
//! writes a lone dispatch at once. Every request is answered only after its
//! transaction committed: a 201/202 always means durable.
//!
//! A dispatch that finds no write under way and nothing waiting is written by
//! its own request, not handed to the group task and back: on an idle server
//! those two task switches were a good part of the dispatch -> start time.
//! One write at a time either way (`writing`), so the writer still sees one
//! transaction after another and waiting requests still group.

use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{JobEvents, Queue};
use crate::bus::Bus;
use crate::store::{Inserted, NewBatch, NewJob, Store, StoreError, StoreResult};

/// Writes dispatches and publishes what each write created (`job.queued`;
/// `job.started` for a job claimed in its insert), in commit order with the
/// node's claims and completions while anyone watches: a stream never shows
/// a job start before it was queued.
#[derive(Clone)]
struct Writer {
    store: Arc<dyn Store>,
    events: JobEvents,
    bus: Bus,
    node: Arc<str>,
}

impl Writer {
    async fn job_insert(&self, jobs: Vec<NewJob>, batch: Option<NewBatch>) -> StoreResult<Vec<Inserted>> {
        // The order matters only to the event stream's readers: while nobody
        // watches, inserts do not wait for claims and completions (on
        // PostgreSQL they run side by side on their own connections).
        let _order = match self.bus.active() {
            true => Some(self.events.in_order().await),
            false => None,
        };
        let inserted = self.store.job_insert(jobs, batch).await?;
        super::announce::inserted(&self.bus, &inserted, "dispatched", &self.node);
        Ok(inserted)
    }
}

/// Most jobs combined into one transaction.
const MAX_GROUP: usize = 1024;

struct Request {
    jobs: Vec<NewJob>,
    batch: Option<NewBatch>,
    reply: oneshot::Sender<StoreResult<Vec<Inserted>>>,
}

/// The handle dispatch handlers insert through. Cheap to clone.
#[derive(Clone)]
pub struct Inserter {
    tx: mpsc::Sender<Request>,
    store: Writer,
    /// Held by whoever writes now: the group task or a lone request.
    writing: Arc<Semaphore>,
}

impl Inserter {
    /// Starts the group-commit task, writing to `store` and publishing on
    /// `queue`'s event stream.
    pub fn start(store: Arc<dyn Store>, queue: &Queue) -> Self {
        let shared = &queue.shared;
        let store = Writer {
            store,
            events: shared.events.clone(),
            bus: shared.bus.clone(),
            node: shared.node_name.clone(),
        };
        let (tx, rx) = mpsc::channel(4096);
        let writing = Arc::new(Semaphore::new(1));
        tokio::spawn(run(store.clone(), rx, writing.clone()));
        Self { tx, store, writing }
    }

    /// Inserts `jobs` (with their batch, if any); returns when committed.
    pub async fn insert(&self, jobs: Vec<NewJob>, batch: Option<NewBatch>) -> StoreResult<Vec<Inserted>> {
        let idle = self.tx.capacity() == self.tx.max_capacity();
        if let Some(_writing) = idle.then(|| self.writing.try_acquire()).and_then(Result::ok) {
            return self.store.job_insert(jobs, batch).await;
        }
        let (reply, answer) = oneshot::channel();
        self.tx.send(Request { jobs, batch, reply }).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

fn closed() -> crate::store::StoreError {
    crate::store::StoreError::Conflict("the server is shutting down".into())
}

async fn run(store: Writer, mut rx: mpsc::Receiver<Request>, writing: Arc<Semaphore>) {
    let mut carry: Option<Request> = None;
    loop {
        let first = match carry.take() {
            Some(r) => r,
            None => match rx.recv().await {
                Some(r) => r,
                None => return,
            },
        };
        // After a lone request's write: what queued meanwhile groups.
        let Ok(_writing) = writing.acquire().await else { return };
        if first.batch.is_some() {
            // A batch is already one transaction of many jobs.
            let result = store.job_insert(first.jobs, first.batch).await;
            let _ = first.reply.send(result);
            continue;
        }
        let mut group = vec![first];
        let mut size = group[0].jobs.len();
        while size < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) if r.batch.is_some() => {
                    carry = Some(r);
                    break;
                }
                Ok(r) => {
                    size += r.jobs.len();
                    group.push(r);
                }
                Err(_) => break,
            }
        }
        commit(&store, group).await;
    }
}

async fn commit(store: &Writer, mut group: Vec<Request>) {
    loop {
        if group.len() == 1 {
            let r = group.into_iter().next().expect("one request");
            let _ = r.reply.send(store.job_insert(r.jobs, None).await);
            return;
        }
        let sizes: Vec<usize> = group.iter().map(|r| r.jobs.len()).collect();
        let all: Vec<NewJob> = group.iter().flat_map(|r| r.jobs.iter().cloned()).collect();
        match store.job_insert(all, None).await {
            Ok(inserted) => {
                let mut rest = inserted.into_iter();
                for (r, n) in group.into_iter().zip(sizes) {
                    let _ = r.reply.send(Ok(rest.by_ref().take(n).collect()));
                }
                return;
            }
            // A client's reused idempotency key must not cost the others their
            // group commit: the requests carrying that key go alone (each gets
            // its own answer, the first of them may well be fine), the rest
            // commit together again.
            Err(StoreError::IdempotencyConflict { key }) => {
                let (suspects, rest): (Vec<Request>, Vec<Request>) = group.into_iter().partition(|r| {
                    r.jobs.iter().any(|j| j.idempotency_key.as_ref().is_some_and(|k| k.as_str() == key))
                });
                if suspects.is_empty() {
                    let e = StoreError::IdempotencyConflict { key };
                    return one_by_one(store, rest, e).await;
                }
                for r in suspects {
                    let _ = r.reply.send(store.job_insert(r.jobs, None).await);
                }
                if rest.is_empty() {
                    return;
                }
                group = rest;
            }
            Err(e) => return one_by_one(store, group, e).await,
        }
    }
}

/// Isolates a failure: each request alone gets its own answer.
async fn one_by_one(store: &Writer, group: Vec<Request>, e: StoreError) {
    tracing::warn!(error = %e, requests = group.len(), "group insert failed; retrying one by one");
    for r in group {
        let _ = r.reply.send(store.job_insert(r.jobs, None).await);
    }
}
