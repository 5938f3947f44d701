//! The epoch ticker: one thread per engine that advances the engine's epoch
//! every `epoch_tick` while runs are in flight, and sleeps while none are.
//!
//! Each run's store has an epoch deadline one tick ahead; when it passes, the
//! store's callback checks cancellation and the wall-clock deadline, then yields
//! to tokio. That is what stops a guest spinning in pure wasm: fuel alone does not
//! see wall time, and `tokio::time::timeout` cannot preempt a running fiber.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use wasmtime::EngineWeak;

pub(crate) struct Ticker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    active: AtomicUsize,
    stop: AtomicBool,
}

/// Keeps the ticker running while alive; one per run in flight.
pub(crate) struct ActiveRun {
    shared: Arc<Shared>,
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        self.shared.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Ticker {
    pub(crate) fn start(engine: EngineWeak, tick: Duration) -> std::io::Result<Self> {
        let shared = Arc::new(Shared { active: AtomicUsize::new(0), stop: AtomicBool::new(false) });
        let s = shared.clone();
        let thread = thread::Builder::new().name("wasmq-epoch".into()).spawn(move || {
            while !s.stop.load(Ordering::Acquire) {
                if s.active.load(Ordering::Acquire) == 0 {
                    // Idle: no wake-ups until a run starts (it unparks us).
                    thread::park_timeout(Duration::from_secs(1));
                    continue;
                }
                thread::sleep(tick);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Marks a run as in flight until the returned guard drops.
    pub(crate) fn activate(&self) -> ActiveRun {
        if self.shared.active.fetch_add(1, Ordering::AcqRel) == 0
            && let Some(t) = &self.thread
        {
            t.thread().unpark();
        }
        ActiveRun { shared: self.shared.clone() }
    }
}

impl Ticker {
    /// Runs in flight right now.
    pub(crate) fn active(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
