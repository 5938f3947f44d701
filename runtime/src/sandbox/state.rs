//! Per-run store data, the resource limiter, and `configure_store`: the one place
//! where a run's limits are applied to its `Store`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::Capabilities;
use super::http::{HttpSession, OutboundHooks};
use super::output::Capture;
use super::run::{CancelToken, HostHooks};
use crate::domain::{JobInfo, Limits, LogEntry, LogLevel, Progress};

/// Progress reports kept per run (the latest are kept, older ones dropped and
/// the outcome marked `progress_truncated`), so a guest reporting in a loop
/// holds at most this many messages of at most `MAX_MESSAGE` bytes.
const MAX_PROGRESS: usize = 100;
/// What one log entry costs against `max_log_bytes` on top of its message:
/// about its stored JSON (`{"level":"debug","message":""}`). Every call counts,
/// so `host.log("")` in a loop reaches the budget like any other log line, and
/// the budget bounds the stored logs, not just the text in them.
pub(crate) const LOG_ENTRY_OVERHEAD: u64 = 32;
/// Longest progress or log message kept, in bytes.
const MAX_MESSAGE: usize = 4096;
/// Tables and memories per store; a Rust component needs one or two of each.
const MAX_TABLES: usize = 16;
const MAX_MEMORIES: usize = 4;

/// Why the epoch callback stopped the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Interrupt {
    #[error("the run was cancelled")]
    Cancelled,
    #[error("the run exceeded its time limit")]
    Timeout,
}

/// Store data common to both kinds of store.
pub(crate) struct RunState {
    pub(crate) limiter: Limiter,
    pub(crate) job: JobInfo,
    pub(crate) hooks: Option<Arc<dyn HostHooks>>,
    /// What contract 0.2.0's configuration, secret and key-value calls reach
    /// (`None`: nothing granted).
    pub(crate) capabilities: Option<Arc<dyn Capabilities>>,
    pub(crate) started: Instant,
    /// How long after `started` the instance was ready (see `instantiated`).
    pub(crate) instantiate: Option<std::time::Duration>,
    pub(crate) progress: VecDeque<Progress>,
    pub(crate) progress_truncated: bool,
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) log_bytes: u64,
    pub(crate) max_log_bytes: u64,
    pub(crate) logs_truncated: bool,
    pub(crate) interrupted: Option<Interrupt>,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    /// Outbound HTTP records and budgets (shared with the request tasks).
    pub(crate) http: HttpSession,
}

impl RunState {
    /// The instance is ready to be called: the time it took is reported.
    pub(crate) fn instantiated(&mut self) {
        self.instantiate.get_or_insert_with(|| self.started.elapsed());
    }

    pub(crate) fn record_progress(&mut self, percent: u8, message: String) {
        let percent = percent.min(100);
        let message = truncate(message);
        if let Some(hooks) = &self.hooks {
            hooks.progress(percent, &message);
        }
        if self.progress.len() == MAX_PROGRESS {
            self.progress.pop_front();
            self.progress_truncated = true;
        }
        let at_ms = self.started.elapsed().as_millis() as u64;
        self.progress.push_back(Progress { percent, message, at_ms });
    }

    /// Keeps a log line while the budget lasts. The first line that does not fit
    /// marks the logs truncated, and from then on nothing is recorded or passed
    /// to the hooks (a guest logging in a loop costs the host nothing more).
    pub(crate) fn record_log(&mut self, level: LogLevel, message: String) {
        if self.logs_truncated {
            return;
        }
        let message = truncate(message);
        let cost = message.len() as u64 + LOG_ENTRY_OVERHEAD;
        if self.log_bytes + cost > self.max_log_bytes {
            self.logs_truncated = true;
            return;
        }
        if let Some(hooks) = &self.hooks {
            hooks.log(level, &message);
        }
        self.log_bytes += cost;
        self.logs.push(LogEntry { level, message });
    }
}

fn truncate(s: String) -> String {
    clip(s, MAX_MESSAGE)
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub(crate) fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Enforces a run's memory, table and instance limits and remembers whether it
/// refused anything. A guest denied `memory.grow` usually aborts with a plain
/// `unreachable` trap; `memory_denied` is how the outcome still says "memory limit".
pub(crate) struct Limiter {
    memory_limit: u64,
    table_elements: usize,
    instances: usize,
    /// Sum of all linear memories' current sizes.
    memory_now: u64,
    pub(crate) peak_memory: u64,
    pub(crate) memory_denied: bool,
}

impl Limiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            memory_limit: limits.memory_bytes,
            table_elements: usize::try_from(limits.table_elements).unwrap_or(usize::MAX),
            instances: limits.instances as usize,
            memory_now: 0,
            peak_memory: 0,
            memory_denied: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grown = (desired - current) as u64;
        if self.memory_now + grown > self.memory_limit {
            self.memory_denied = true;
            return Ok(false);
        }
        self.memory_now += grown;
        self.peak_memory = self.peak_memory.max(self.memory_now);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Store data for components (job plugins and p2 commands).
pub(crate) struct ComponentState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) run: RunState,
    pub(crate) http: WasiHttpCtx,
    /// Where every outgoing request is checked and sent (`sandbox::http`).
    pub(crate) outbound: OutboundHooks,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// Store data for WASI preview 1 core modules.
pub(crate) struct CoreState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) run: RunState,
}

/// Access to the common part of either store's data.
pub(crate) trait HasRun: Send + 'static {
    fn run(&mut self) -> &mut RunState;
    fn into_run(self) -> RunState;
}

impl HasRun for ComponentState {
    fn run(&mut self) -> &mut RunState {
        &mut self.run
    }
    fn into_run(self) -> RunState {
        self.run
    }
}

impl HasRun for CoreState {
    fn run(&mut self) -> &mut RunState {
        &mut self.run
    }
    fn into_run(self) -> RunState {
        self.run
    }
}

/// The fuel a store starts with when metering is on but the run has no limit.
pub(crate) const UNLIMITED_FUEL: u64 = u64::MAX / 2;

/// Applies every limit of a run to its store. Invariants:
/// - With fuel metering on, fuel must be set or the first instruction traps.
/// - With epoch interruption on, a deadline must always be set: the callback
///   re-arms it one tick ahead each time, so it runs once per tick of the ticker,
///   checks cancellation and the wall-clock deadline, and otherwise yields to
///   tokio so a long run never pins a worker thread.
pub(crate) fn configure_store<T: HasRun>(
    store: &mut Store<T>,
    limits: &Limits,
    fuel_metering: bool,
    epoch_interruption: bool,
    cancel: CancelToken,
    deadline: Instant,
) -> wasmtime::Result<()> {
    store.limiter(|data| &mut data.run().limiter);
    if fuel_metering {
        store.set_fuel(limits.fuel.unwrap_or(UNLIMITED_FUEL))?;
    }
    if epoch_interruption {
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let interrupt = if cancel.is_cancelled() {
                Interrupt::Cancelled
            } else if Instant::now() >= deadline {
                Interrupt::Timeout
            } else {
                return Ok(UpdateDeadline::Yield(1));
            };
            ctx.data_mut().run().interrupted = Some(interrupt);
            Err(wasmtime::Error::new(interrupt))
        });
    }
    Ok(())
}

/// Wall time left before `deadline` (zero if passed).
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
