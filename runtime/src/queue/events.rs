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
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, watch};

use crate::store::JobWatch;

/// What this node last published about one job.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    /// Counts publications that only say "changed, read the store"
    /// (completions and retries, whose full state the publisher does not hold).
    /// A counter rather than a flag, so a later state push never hides one.
    pub rereads: u64,
    /// The latest full state pushed (claims, progress, cancels).
    pub state: Option<JobWatch>,
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
        let rereads = rx.borrow().rereads;
        Watcher { events: self.clone(), id: id.to_string(), rx, rereads }
    }

    /// Publishes a job's full new state (after it is stored).
    pub fn publish(&self, id: &str, state: JobWatch) {
        if let Some(entry) = self.entries.lock().expect("events lock").get(id) {
            entry.tx.send_modify(|p| p.state = Some(state));
        }
    }

    /// Publishes that a job changed in a way watchers must read from the store
    /// (after it is stored).
    pub fn changed(&self, id: &str) {
        if let Some(entry) = self.entries.lock().expect("events lock").get(id) {
            entry.tx.send_modify(|p| p.rereads += 1);
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
    rereads: u64,
}

/// What a watcher learned from a publication.
#[derive(Debug, PartialEq)]
pub enum News {
    /// The job changed: read it from the store (and apply `state` if newer).
    Reread(Option<JobWatch>),
    /// The job's new state, as published.
    State(JobWatch),
}

impl Watcher {
    /// Waits for the next publication about the job.
    pub async fn next(&mut self) -> News {
        if self.rx.changed().await.is_err() {
            // The entry outlives its watchers, so this cannot happen; reading
            // the store is right whatever happened.
            return News::Reread(None);
        }
        let pushed = self.rx.borrow_and_update().clone();
        if pushed.rereads != self.rereads {
            self.rereads = pushed.rereads;
            return News::Reread(pushed.state);
        }
        match pushed.state {
            Some(state) => News::State(state),
            None => News::Reread(None),
        }
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
    async fn a_reread_is_never_hidden_by_a_later_state() {
        let events = JobEvents::default();
        let mut w = events.watch("a");
        events.publish("a", running(1, 10));
        assert_eq!(w.next().await, News::State(running(1, 10)));
        events.changed("a");
        events.publish("a", running(1, 20)); // a late progress push after a completion
        assert_eq!(w.next().await, News::Reread(Some(running(1, 20))));
        events.publish("a", running(1, 30));
        assert_eq!(w.next().await, News::State(running(1, 30)));
    }
}
