//! A running job's progress: kept in memory and written to the store (and
//! pushed to watchers) only once the job has run [`PROGRESS_EVERY`], then at
//! most that often. A job that reports progress and ends sooner costs no write
//! of its own: its last progress is stored with its outcome, in the
//! completion's transaction. The value written is always the latest reported:
//! the throttle delays a report, it never drops the last one while the job
//! still runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Shared;
use crate::bus::{Detail, Event, Kind};
use crate::domain::{JobRef, JobStatus, LogLevel, time::now_ms};
use crate::sandbox::HostHooks;
use crate::store::{JobRecord, JobWatch, Lease};

/// How long a job runs before its progress is first written, and how often
/// it is written after that.
pub(super) const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// When to write a job's progress: the decisions alone, on explicit instants.
#[derive(Debug)]
struct Throttle {
    started: Instant,
    /// Reported and not written yet.
    latest: Option<(u8, String)>,
    /// A write is scheduled (it takes `latest` when it is due).
    scheduled: bool,
    last_write: Option<Instant>,
}

impl Throttle {
    fn new(started: Instant) -> Throttle {
        Throttle { started, latest: None, scheduled: false, last_write: None }
    }

    /// Keeps a report; returns when a write must happen if none is scheduled
    /// yet (the caller schedules it), `None` if one already is.
    fn report(&mut self, percent: u8, message: &str) -> Option<Instant> {
        self.latest = Some((percent, message.to_string()));
        if self.scheduled {
            return None;
        }
        self.scheduled = true;
        Some(self.last_write.unwrap_or(self.started) + PROGRESS_EVERY)
    }

    /// The scheduled write is due at `now`: what it writes.
    fn take(&mut self, now: Instant) -> Option<(u8, String)> {
        self.scheduled = false;
        self.last_write = Some(now);
        self.latest.take()
    }
}

/// Log lines of one attempt shown live on the event stream (`job.log`); the
/// rest are in the job's logs only (a plugin logging in a loop must not flush
/// every other job's events out of the node's ring).
const LIVE_LOG_LINES: u32 = 100;
/// Longest message of a live `job.log` event, in bytes (cut at a character).
const LIVE_LOG_BYTES: usize = 1024;

/// The sandbox's hooks for one run: progress as above, plugin logs to tracing
/// and to the event stream (the logs themselves travel with the outcome).
pub(super) struct ProgressHooks {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    id: String,
    /// The job, for its events.
    job: Arc<JobRef>,
    /// Log lines shown live so far.
    logged: std::sync::atomic::AtomicU32,
    /// Fencing token of the run's claim: a stale run's progress is not stored.
    token: u64,
    /// The attempt running (what the progress belongs to, for watchers).
    attempt: u32,
    /// Set when the run ends: a write not yet due is dropped (the completion
    /// carries the last progress).
    ended: AtomicBool,
    throttle: Mutex<Throttle>,
}

impl ProgressHooks {
    pub(super) fn new(shared: &Arc<Shared>, job: &JobRecord, subject: Arc<JobRef>) -> ProgressHooks {
        ProgressHooks {
            inner: Arc::new(Inner {
                shared: shared.clone(),
                id: job.id.clone(),
                job: subject,
                logged: std::sync::atomic::AtomicU32::new(0),
                token: job.lease_token,
                attempt: job.attempt,
                ended: AtomicBool::new(false),
                throttle: Mutex::new(Throttle::new(Instant::now())),
            }),
        }
    }

    /// The run ended: nothing more is written from here.
    pub(super) fn end(&self) {
        self.inner.ended.store(true, Ordering::Release);
    }
}

impl HostHooks for ProgressHooks {
    fn progress(&self, percent: u8, message: &str) {
        let inner = &self.inner;
        if inner.ended.load(Ordering::Acquire) {
            return;
        }
        let Some(due) = inner.throttle.lock().expect("progress lock").report(percent, message) else {
            return;
        };
        // No task or timer per job: the node's one board writes it when due
        // (most jobs have ended by then, and cost nothing more).
        inner.shared.progress.schedule(due, inner.clone());
    }

    fn log(&self, level: LogLevel, message: &str) {
        let inner = &self.inner;
        tracing::debug!(job = %inner.id, ?level, message, "plugin log");
        let line = inner.logged.fetch_add(1, Ordering::Relaxed) + 1;
        if line > LIVE_LOG_LINES || !inner.shared.bus.active() {
            return;
        }
        let mut shown = message;
        if shown.len() > LIVE_LOG_BYTES {
            let mut cut = LIVE_LOG_BYTES;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown = &shown[..cut];
        }
        let detail = Detail::Log {
            attempt: inner.attempt,
            level,
            message: shown.to_string(),
            truncated: shown.len() < message.len(),
            more: (line == LIVE_LOG_LINES).then_some("later lines are in the job's logs"),
        };
        inner.shared.bus.publish(Event::job(Kind::JobLog, &inner.job, detail, now_ms()));
    }
}

/// The node's scheduled progress writes; one task works them off while there
/// are any and exits when none are left (an idle node has no timer running
/// for it). An entry scheduled while the task sleeps towards a later one waits
/// for that one (entries are due about one interval after they are made, so
/// this delays a write by less than one interval).
#[derive(Default)]
pub(crate) struct Board {
    state: Mutex<BoardState>,
}

#[derive(Default)]
struct BoardState {
    due: Vec<(Instant, Arc<Inner>)>,
    ticking: bool,
}

impl Board {
    fn schedule(&self, due: Instant, inner: Arc<Inner>) {
        let shared = inner.shared.clone();
        let mut state = self.state.lock().expect("progress board lock");
        state.due.push((due, inner));
        if !state.ticking {
            state.ticking = true;
            tokio::spawn(tick(shared));
        }
    }
}

/// Writes the scheduled progress as it falls due, until none is scheduled.
async fn tick(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut state = shared.progress.state.lock().expect("progress board lock");
            // Runs that ended need nothing more.
            state.due.retain(|(_, inner)| !inner.ended.load(Ordering::Acquire));
            match state.due.iter().map(|(due, _)| *due).min() {
                Some(next) => next,
                None => {
                    state.ticking = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(next.into()).await;
        let now = Instant::now();
        let ready: Vec<Arc<Inner>> = {
            let mut state = shared.progress.state.lock().expect("progress board lock");
            let (ready, later) = std::mem::take(&mut state.due).into_iter().partition(|(due, _)| *due <= now);
            state.due = later;
            ready.into_iter().map(|(_, inner)| inner).collect()
        };
        for inner in ready {
            if inner.ended.load(Ordering::Acquire) {
                continue;
            }
            let taken = inner.throttle.lock().expect("progress lock").take(Instant::now());
            if let Some((percent, message)) = taken {
                inner.write(percent, message).await;
            }
        }
    }
}

impl Inner {
    async fn write(&self, percent: u8, message: String) {
        let lease = Lease { id: self.id.clone(), token: self.token };
        match self.shared.store.job_progress(&lease, percent, &message).await {
            Ok(true) => {
                // Pushed after the write, so a watcher's read never lags the push.
                self.shared.bus.publish_with(|| {
                    let detail =
                        Detail::Progress { attempt: self.attempt, percent, message: message.clone() };
                    [Event::job(Kind::JobProgress, &self.job, detail, now_ms())]
                });
                let progress = Some((percent, message));
                let watch = JobWatch { status: JobStatus::Running, attempt: self.attempt, progress };
                self.shared.events.publish(&lease.id, watch);
            }
            // A stale run's progress, or the run ended meanwhile: not stored, not shown.
            Ok(false) => {}
            Err(e) => tracing::warn!(job = %lease.id, error = %e, "could not store progress"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_write_waits_for_the_interval_and_takes_the_latest_report() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(t0);
        // A job reporting at once: the write is scheduled one interval after
        // its start, not done now (a job ending before then writes nothing).
        assert_eq!(throttle.report(10, "a"), Some(t0 + PROGRESS_EVERY));
        // Reports meanwhile schedule nothing more; the write takes the last.
        assert_eq!(throttle.report(20, "b"), None);
        assert_eq!(throttle.report(30, "c"), None);
        let wrote = t0 + PROGRESS_EVERY;
        assert_eq!(throttle.take(wrote), Some((30, "c".to_string())));
        // The next report is due one interval after that write.
        assert_eq!(throttle.report(40, "d"), Some(wrote + PROGRESS_EVERY));
        assert_eq!(throttle.take(wrote + PROGRESS_EVERY), Some((40, "d".to_string())));
        // Nothing reported since: a write due now has nothing to write.
        assert_eq!(throttle.report(50, "e"), Some(wrote + 2 * PROGRESS_EVERY));
        assert_eq!(throttle.take(wrote + 2 * PROGRESS_EVERY), Some((50, "e".to_string())));
        assert_eq!(throttle.take(wrote + 3 * PROGRESS_EVERY), None);
    }

    #[test]
    fn a_report_after_a_quiet_spell_is_due_at_once() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(t0);
        throttle.report(1, "first");
        assert_eq!(throttle.take(t0 + PROGRESS_EVERY), Some((1, "first".to_string())));
        // Nothing for ten intervals, then a report: its write is due one
        // interval after the last write, long past, so it is written at once.
        let due = throttle.report(2, "again").unwrap();
        assert_eq!(due, t0 + 2 * PROGRESS_EVERY);
        assert!(due < t0 + 10 * PROGRESS_EVERY);
    }
}
