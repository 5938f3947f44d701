//! Admission to the compiler: at most `max_concurrent_compiles` compilations at
//! once, a bounded queue of uploads waiting for one, and a memory of recent
//! failures by digest.
//!
//! Each compilation is a child process that may use `compile_memory_bytes` and
//! a core per thread for up to `compile_timeout`; three crafted uploads at once
//! once took 5.7 GiB together. So compiles queue for a slot, an upload that
//! finds the queue full is refused at once (the caller retries later), and a
//! module that failed is answered from memory when it comes back, without a
//! child, until the entry expires or is pushed out by newer failures.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::engine::LoadError;
use super::settings::EngineSettings;
use crate::domain::Digest;

/// What the compiler did so far (shown as is by `GET /v1/status`, and read by tests).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct CompileStats {
    /// Compile slots (`max_concurrent_compiles`).
    pub slots: usize,
    /// Compilations started since the engine was built.
    pub started: u64,
    /// Compilations running now.
    pub running: usize,
    /// The most that ever ran at once.
    pub max_running: usize,
    /// Loads waiting for a slot now.
    pub waiting: usize,
    /// Uploads refused because the wait queue was full.
    pub refused_busy: u64,
    /// Failed digests remembered now.
    pub failures_remembered: usize,
    /// Loads answered from the failure memory (no compile).
    pub failures_replayed: u64,
}

/// Whether a load may wait for a slot however many others wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// An upload from a client: refused with [`LoadError::Busy`] when
    /// `compile_queue` loads already wait.
    Bounded,
    /// A worker loading a module it must run (bounded by the worker count).
    Unbounded,
}

pub(crate) struct CompileGate {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Arc<Semaphore>,
    slot_count: usize,
    max_waiting: usize,
    waiting: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    started: AtomicU64,
    refused: AtomicU64,
    replayed: AtomicU64,
    failures: Mutex<hashlink::LruCache<Digest, (Instant, LoadError)>>,
    failure_ttl: Duration,
}

/// A held compile slot; the slot frees when this drops (for an in-process
/// compile, when the compiler thread really ends, not when the caller stops
/// waiting for it).
pub(crate) struct CompilePermit {
    inner: Arc<Inner>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for CompilePermit {
    fn drop(&mut self) {
        self.inner.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a load as waiting for as long as it waits (also when its request
/// goes away mid-wait and the future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl CompileGate {
    pub(crate) fn new(settings: &EngineSettings) -> Self {
        let slot_count = settings.max_concurrent_compiles.max(1);
        Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(slot_count)),
                slot_count,
                max_waiting: settings.compile_queue,
                waiting: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                max_running: AtomicUsize::new(0),
                started: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                replayed: AtomicU64::new(0),
                failures: Mutex::new(hashlink::LruCache::new(settings.failed_compiles_remembered.max(1))),
                failure_ttl: settings.failed_compile_ttl,
            }),
        }
    }

    /// Waits for a compile slot (or refuses, see [`Wait::Bounded`]).
    pub(crate) async fn enter(&self, wait: Wait) -> Result<CompilePermit, LoadError> {
        let inner = &self.inner;
        let slot = match inner.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let before = inner.waiting.fetch_add(1, Ordering::AcqRel);
                let _waiting = Waiting(&inner.waiting);
                if wait == Wait::Bounded && before >= inner.max_waiting {
                    inner.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(LoadError::Busy {
                        running: inner.running.load(Ordering::Acquire),
                        waiting: before,
                    });
                }
                inner.slots.clone().acquire_owned().await.expect("the compile semaphore is never closed")
            }
        };
        let running = inner.running.fetch_add(1, Ordering::AcqRel) + 1;
        inner.max_running.fetch_max(running, Ordering::AcqRel);
        inner.started.fetch_add(1, Ordering::Relaxed);
        Ok(CompilePermit { inner: inner.clone(), _slot: slot })
    }

    /// The remembered failure of `digest`, if it failed within the TTL.
    pub(crate) fn remembered(&self, digest: &Digest) -> Option<LoadError> {
        let mut failures = self.inner.failures.lock().expect("failure memory lock");
        let (at, error) = failures.get(digest)?;
        if at.elapsed() >= self.inner.failure_ttl {
            failures.remove(digest);
            return None;
        }
        let error = error.clone();
        self.inner.replayed.fetch_add(1, Ordering::Relaxed);
        Some(error)
    }

    /// Remembers a failure that is the module's own doing (it would fail the
    /// same way again); faults of this host are not remembered.
    pub(crate) fn remember(&self, digest: Digest, error: &LoadError) {
        let module_fault = matches!(
            error,
            LoadError::InvalidModule(_) | LoadError::CompileFailed(_) | LoadError::CompileTimeout(_)
        );
        if module_fault {
            self.inner
                .failures
                .lock()
                .expect("failure memory lock")
                .insert(digest, (Instant::now(), error.clone()));
        }
    }

    /// Forgets `digest`'s failure (its module was deleted).
    pub(crate) fn forget(&self, digest: &Digest) {
        self.inner.failures.lock().expect("failure memory lock").remove(digest);
    }

    pub(crate) fn stats(&self) -> CompileStats {
        let inner = &self.inner;
        CompileStats {
            slots: inner.slot_count,
            started: inner.started.load(Ordering::Relaxed),
            running: inner.running.load(Ordering::Acquire),
            max_running: inner.max_running.load(Ordering::Acquire),
            waiting: inner.waiting.load(Ordering::Acquire),
            refused_busy: inner.refused.load(Ordering::Relaxed),
            failures_remembered: inner.failures.lock().expect("failure memory lock").len(),
            failures_replayed: inner.replayed.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(slots: usize, queue: usize) -> CompileGate {
        CompileGate::new(&EngineSettings {
            max_concurrent_compiles: slots,
            compile_queue: queue,
            failed_compiles_remembered: 2,
            failed_compile_ttl: Duration::from_secs(3600),
            ..EngineSettings::default()
        })
    }

    #[tokio::test]
    async fn uploads_beyond_the_queue_are_refused_and_workers_wait() {
        let gate = gate(1, 1);
        let held = gate.enter(Wait::Bounded).await.unwrap();
        // One upload may wait...
        let waiter = {
            let gate = CompileGate { inner: gate.inner.clone() };
            tokio::spawn(async move { gate.enter(Wait::Bounded).await.map(drop) })
        };
        while gate.stats().waiting == 0 {
            tokio::task::yield_now().await;
        }
        // ...the next is refused at once, naming what is busy.
        match gate.enter(Wait::Bounded).await {
            Err(LoadError::Busy { running: 1, waiting: 1 }) => {}
            Err(other) => panic!("expected Busy, got {other}"),
            Ok(_) => panic!("expected Busy, got a slot"),
        }
        // A worker is not refused: it queues behind the upload.
        let worker = {
            let gate = CompileGate { inner: gate.inner.clone() };
            tokio::spawn(async move { gate.enter(Wait::Unbounded).await.map(drop) })
        };
        while gate.stats().waiting < 2 {
            tokio::task::yield_now().await;
        }
        drop(held);
        waiter.await.unwrap().unwrap();
        worker.await.unwrap().unwrap();
        let stats = gate.stats();
        assert_eq!((stats.started, stats.max_running, stats.running, stats.waiting), (3, 1, 0, 0));
        assert_eq!(stats.refused_busy, 1);
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_the_queue() {
        let gate = gate(1, 1);
        let held = gate.enter(Wait::Bounded).await.unwrap();
        let mut wait = Box::pin(gate.enter(Wait::Bounded));
        assert!(futures_poll_once(wait.as_mut()).await.is_none());
        assert_eq!(gate.stats().waiting, 1);
        drop(wait);
        assert_eq!(gate.stats().waiting, 0);
        drop(held);
        gate.enter(Wait::Bounded).await.unwrap();
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }

    #[test]
    fn module_faults_are_remembered_host_faults_are_not() {
        let gate = gate(1, 1);
        let [a, b, c, d] = [b"a", b"b", b"c", b"d"].map(|x| Digest::of(x));
        gate.remember(a, &LoadError::CompileFailed("killed".into()));
        gate.remember(b, &LoadError::Internal("cannot spawn".into()));
        assert!(matches!(gate.remembered(&a), Some(LoadError::CompileFailed(r)) if r == "killed"));
        assert!(gate.remembered(&b).is_none(), "host faults are retried");
        // Bounded: the least recently used failure goes first.
        gate.remember(c, &LoadError::InvalidModule("bad".into()));
        gate.remember(d, &LoadError::CompileTimeout(Duration::from_secs(1)));
        assert!(gate.remembered(&a).is_none());
        assert_eq!(gate.stats().failures_remembered, 2);
        gate.forget(&c);
        assert!(gate.remembered(&c).is_none());
        assert_eq!(gate.stats().failures_replayed, 1);
    }

    #[test]
    fn failures_expire() {
        let gate = CompileGate::new(&EngineSettings {
            failed_compile_ttl: Duration::ZERO,
            ..EngineSettings::default()
        });
        let a = Digest::of(b"a");
        gate.remember(a, &LoadError::InvalidModule("bad".into()));
        assert!(gate.remembered(&a).is_none());
        assert_eq!(gate.stats().failures_remembered, 0);
    }
}
