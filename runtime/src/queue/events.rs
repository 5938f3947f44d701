//! In-process publication of job changes to the requests watching them
//! (`GET /v1/jobs/{id}/wait` and `/events`).
//!
//! This node sees claims (producer), progress (executor), completions
//! (completer) and cancels and retries (API) and publishes them here, so
//! watchers are pushed instead of polling the store. A job has an entry only
//! while someone watches it: [`JobEvents::watch`] returns a [`Watcher`] guard,
//! and the entry goes when its last guard is dropped, which happens when the
//! request ends for any reason (answer, error, timeout, client gone).
//! Publishing to a job nobody watches is one map lookup.
//!
//! The final answer (the whole job, for `end` and `wait`) is the one expensive
//! read; watchers that need it at the same moment share one read and one
//! encoding through [`Watcher::shared_end`], so 20 streams on a 15 MiB job read
//! and encode it once, not 20 times.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, watch};

use crate::store::JobWatch;

/// Publications kept per watched job for its watchers to catch up on. Status
/// changes are a few per attempt and progress replaces progress, so a watcher
/// only falls this far behind when it stalls; it then reads the store.
const KEPT: usize = 64;

/// What this node recently published about one job, numbered. A `watch`
/// channel keeps only its latest value, so the value is this log: a watcher
/// woken once after several publications still sees each of them in order
/// (a retry's `failed` is not hidden by the next attempt's `running` pushed
/// a moment later).
#[derive(Debug, Clone, Default)]
struct Pushed {
    /// Number of the latest publication (0: none yet).
    seq: u64,
    /// Highest number dropped from the front of `log`.
    dropped: u64,
    /// Recent publications, oldest first: a state, or `None` for "changed,
    /// read the store" (changes whose full state the publisher does not hold).
    log: VecDeque<(u64, Option<JobWatch>)>,
}

impl Pushed {
    fn push(&mut self, state: Option<JobWatch>) {
        self.seq += 1;
        // Progress replaces progress of the same status and attempt: a
        // watcher needs the latest, not every step.
        if let (Some(new), Some((seq, Some(last)))) = (&state, self.log.back_mut())
            && (new.status, new.attempt) == (last.status, last.attempt)
        {
            *seq = self.seq;
            *last = new.clone();
            return;
        }
        self.log.push_back((self.seq, state));
        if self.log.len() > KEPT
            && let Some((seq, _)) = self.log.pop_front()
        {
            self.dropped = seq;
        }
    }
}

struct Entry {
    tx: watch::Sender<Pushed>,
    watchers: usize,
    /// The final answer being rendered now, for watchers that ask meanwhile.
    end: Option<Arc<OnceCell<Bytes>>>,
}

/// The registry of watched jobs. Cheap to clone.
#[derive(Clone, Default)]
pub struct JobEvents {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    /// Held from a status change's write to its publication (claims,
    /// completions, rescues): this node then publishes in the order the
    /// store committed, so a watcher that read the store meanwhile has every
    /// push older than its read (see `Follow`).
    order: Arc<tokio::sync::Mutex<()>>,
}

/// How many requests watch how many jobs now (for `GET /v1/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchCounts {
    /// Jobs with at least one watcher.
    pub jobs: usize,
    /// Registered watchers over all jobs.
    pub watchers: usize,
}

impl JobEvents {
    /// Registers interest in `id` until the returned guard is dropped.
    /// Subscribe before reading the job, so no change in between is missed.
    pub fn watch(&self, id: &str) -> Watcher {
        let mut entries = self.entries.lock().expect("events lock");
        let entry = entries.entry(id.to_string()).or_insert_with(|| Entry {
            tx: watch::Sender::new(Pushed::default()),
            watchers: 0,
            end: None,
        });
        entry.watchers += 1;
        let rx = entry.tx.subscribe();
        let seen = rx.borrow().seq;
        Watcher { events: self.clone(), id: id.to_string(), rx, seen }
    }

    /// Hold this from writing a status change to publishing it, so that
    /// this node's publications follow the store's commit order.
    pub async fn in_order(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.order.lock().await
    }

    /// Publishes a job's full new state (after it is stored).
    pub fn publish(&self, id: &str, state: JobWatch) {
        if let Some(entry) = self.entries.lock().expect("events lock").get(id) {
            entry.tx.send_modify(|p| p.push(Some(state)));
        }
    }

    /// Publishes that a job changed in a way watchers must read from the store
    /// (after it is stored).
    pub fn changed(&self, id: &str) {
        if let Some(entry) = self.entries.lock().expect("events lock").get(id) {
            entry.tx.send_modify(|p| p.push(None));
        }
    }

    /// Watched jobs and watchers now.
    pub fn counts(&self) -> WatchCounts {
        let entries = self.entries.lock().expect("events lock");
        WatchCounts { jobs: entries.len(), watchers: entries.values().map(|e| e.watchers).sum() }
    }
}

/// One request's registration; dropping it unregisters (RAII), and the job's
/// entry goes with its last watcher.
pub struct Watcher {
    events: JobEvents,
    id: String,
    rx: watch::Receiver<Pushed>,
    /// Number of the last publication taken.
    seen: u64,
}

/// What a watcher learned from a publication.
#[derive(Debug, PartialEq)]
pub enum News {
    /// The job changed: read it from the store.
    Reread,
    /// The job's new state, as published.
    State(JobWatch),
}

impl Watcher {
    /// Waits for the next publications about the job and returns every one
    /// since the last call, oldest first (a watcher that fell more than
    /// [`KEPT`] behind is told to read the store first).
    pub async fn next(&mut self) -> Vec<News> {
        if self.rx.changed().await.is_err() {
            // The entry outlives its watchers, so this cannot happen; reading
            // the store is right whatever happened.
            return vec![News::Reread];
        }
        self.take()
    }

    /// The publications since the last call, without waiting (empty if none).
    pub fn try_next(&mut self) -> Vec<News> {
        if self.rx.has_changed().unwrap_or(false) { self.take() } else { Vec::new() }
    }

    fn take(&mut self) -> Vec<News> {
        let pushed = self.rx.borrow_and_update();
        let mut news = Vec::new();
        if pushed.dropped > self.seen {
            news.push(News::Reread);
        }
        for (_, state) in pushed.log.iter().filter(|(seq, _)| *seq > self.seen) {
            news.push(state.clone().map_or(News::Reread, News::State));
        }
        self.seen = pushed.seq;
        news
    }
}

impl Watcher {
    /// The job's final answer, rendered by `render` once for every watcher of
    /// the job that asks while it is being rendered (they all saw the job
    /// ended, so one read serves them all). Nothing is kept afterwards: a
    /// later request renders afresh.
    pub async fn shared_end<E, F, Fut>(&self, render: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let cell = {
            let mut entries = self.events.entries.lock().expect("events lock");
            match entries.get_mut(&self.id) {
                Some(entry) => entry.end.get_or_insert_with(Default::default).clone(),
                None => Arc::default(), // cannot happen while this watcher lives
            }
        };
        let end = cell.get_or_try_init(render).await.cloned();
        let mut entries = self.events.entries.lock().expect("events lock");
        if let Some(entry) = entries.get_mut(&self.id)
            && entry.end.as_ref().is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            entry.end = None;
        }
        end
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut entries = self.events.entries.lock().expect("events lock");
        if let Some(entry) = entries.get_mut(&self.id) {
            entry.watchers -= 1;
            if entry.watchers == 0 {
                entries.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobStatus;

    fn running(attempt: u32, percent: u8) -> JobWatch {
        JobWatch { status: JobStatus::Running, attempt, progress: Some((percent, String::new())) }
    }

    #[tokio::test]
    async fn entries_live_exactly_as_long_as_their_watchers() {
        let events = JobEvents::default();
        events.publish("a", running(1, 0)); // nobody watches: nothing is kept
        assert_eq!(events.counts(), WatchCounts { jobs: 0, watchers: 0 });
        let w1 = events.watch("a");
        let w2 = events.watch("a");
        let w3 = events.watch("b");
        assert_eq!(events.counts(), WatchCounts { jobs: 2, watchers: 3 });
        drop(w1);
        assert_eq!(events.counts(), WatchCounts { jobs: 2, watchers: 2 });
        drop((w2, w3));
        assert_eq!(events.counts(), WatchCounts { jobs: 0, watchers: 0 });
    }

    #[tokio::test]
    async fn watchers_asking_for_the_end_at_once_share_one_rendering() {
        let events = JobEvents::default();
        let (w1, w2) = (events.watch("a"), events.watch("a"));
        let renders = std::sync::atomic::AtomicUsize::new(0);
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        let render = || async {
            renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = gate_rx.await; // still rendering when the second asks
            Ok::<_, ()>(Bytes::from_static(b"{}"))
        };
        let first = w1.shared_end(render);
        let second = w2.shared_end(|| async {
            renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, ()>(Bytes::from_static(b"second"))
        });
        let release = async {
            tokio::task::yield_now().await;
            let _ = gate_tx.send(());
        };
        let (a, b, ()) = tokio::join!(first, second, release);
        assert_eq!((a.unwrap(), b.unwrap()), (Bytes::from_static(b"{}"), Bytes::from_static(b"{}")));
        assert_eq!(renders.load(std::sync::atomic::Ordering::SeqCst), 1, "the second joined the first");
        // Nothing is kept: a later request renders afresh.
        let again = w1.shared_end(|| async { Ok::<_, ()>(Bytes::from_static(b"[]")) }).await;
        assert_eq!(again.unwrap(), Bytes::from_static(b"[]"));
    }

    #[tokio::test]
    async fn a_watcher_woken_late_sees_every_status_change_in_order() {
        let events = JobEvents::default();
        let mut w = events.watch("a");
        events.publish("a", running(1, 10));
        assert_eq!(w.next().await, [News::State(running(1, 10))]);
        // An attempt fails and the next one is claimed before the watcher runs.
        events.publish("a", running(1, 20));
        let failed = JobWatch { status: JobStatus::Failed, attempt: 1, progress: None };
        events.publish("a", failed.clone());
        events.changed("a");
        events.publish("a", running(2, 0));
        events.publish("a", running(2, 5)); // progress replaces progress
        let expected =
            [News::State(running(1, 20)), News::State(failed), News::Reread, News::State(running(2, 5))];
        assert_eq!(w.next().await, expected);
    }

    #[tokio::test]
    async fn a_watcher_that_fell_far_behind_reads_the_store_first() {
        let events = JobEvents::default();
        let mut w = events.watch("a");
        for attempt in 1..=KEPT as u32 {
            events.publish("a", running(attempt, 0));
            events.publish("a", JobWatch { status: JobStatus::Failed, attempt, progress: None });
        }
        let news = w.next().await;
        assert_eq!(news.len(), KEPT + 1);
        assert_eq!(news[0], News::Reread, "the oldest were dropped");
        let last = JobWatch { status: JobStatus::Failed, attempt: KEPT as u32, progress: None };
        assert_eq!(news[KEPT], News::State(last));
    }
}
