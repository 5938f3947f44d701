//! Runs one claimed job and decides what its outcome means.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{CompleterMsg, Shared};
use crate::domain::{JobInfo, JobStatus, LogLevel, Outcome, RunError, retry_backoff, time::now_ms};
use crate::sandbox::{CancelToken, HostHooks, Plugin, RunContext};
use crate::store::{JobCompletion, JobRecord, JobWatch};

/// Progress is written to the store at most this often per job (the latest
/// value is always written with the outcome).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Streams a running job's progress to the store, throttled.
struct ProgressHooks {
    shared: Arc<Shared>,
    id: String,
    /// The attempt running (what the progress belongs to, for watchers).
    attempt: u32,
    last: Mutex<Option<Instant>>,
}

impl HostHooks for ProgressHooks {
    fn progress(&self, percent: u8, message: &str) {
        let mut last = self.last.lock().expect("progress lock");
        if last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let (store, id, message) = (self.shared.store.clone(), self.id.clone(), message.to_string());
        let (events, attempt) = (self.shared.events.clone(), self.attempt);
        tokio::spawn(async move {
            if let Err(e) = store.job_progress(&id, percent, &message).await {
                tracing::warn!(job = %id, error = %e, "could not store progress");
            }
            // Pushed after the write, so a watcher's read never lags the push.
            let progress = Some((percent, message));
            events.publish(&id, JobWatch { status: JobStatus::Running, attempt, progress });
        });
    }

    fn log(&self, level: LogLevel, message: &str) {
        tracing::debug!(job = %self.id, ?level, message, "plugin log");
    }
}

/// Runs `job` (claimed, registered in `running`, taken from the buffer by a
/// runner) and sends its completion.
pub(crate) async fn execute(shared: Arc<Shared>, job: JobRecord, cancel: CancelToken) {
    let id = job.id.clone();
    let started_at = now_ms();
    let outcome = match plugin(&shared, &job).await {
        Ok(plugin) => {
            let ctx = RunContext {
                job: JobInfo {
                    id: job.id.clone(),
                    alias: job.alias.clone(),
                    attempt: job.attempt,
                    tenant: job.tenant.to_string(),
                },
                hooks: Some(Arc::new(ProgressHooks {
                    shared: shared.clone(),
                    id: id.clone(),
                    attempt: job.attempt,
                    last: Mutex::new(None),
                })),
                cancel: cancel.clone(),
            };
            shared.engine.run(&plugin, &job.payload, &job.limits, ctx).await
        }
        Err(error) => Outcome::rejected(error),
    };
    shared.running.lock().expect("running lock").remove(&id);
    shared.wake.notify_one();
    if shared.abandoning.is_cancelled() && matches!(outcome.error, Some(RunError::Cancelled)) {
        // Interrupted by shutdown: not the job's failure; `job_release` requeues it.
        return;
    }
    record_run_time(&shared, outcome.duration);
    let completion = completion(&shared, &job, outcome, started_at);
    let callback = job.callback.is_some() || job.batch_id.is_some();
    let _ = shared.completions.send(CompleterMsg::Complete(Box::new(completion), callback));
}

/// Folds a run time into the moving average that sizes the prefetch (weight
/// 1/8 per run; the first measurement replaces the pessimistic start value).
fn record_run_time(shared: &Shared, took: Duration) {
    use std::sync::atomic::Ordering;
    let took = took.as_micros().min(u64::MAX as u128 / 4) as u64;
    let old = shared.avg_run_us.load(Ordering::Relaxed);
    let new = if old >= u64::MAX / 4 { took } else { old - old / 8 + took / 8 };
    shared.avg_run_us.store(new.max(1), Ordering::Relaxed);
}

/// Registers a claimed job as held by this node and returns its cancel token.
pub(crate) fn register(shared: &Shared, job: &JobRecord) -> CancelToken {
    let cancel = CancelToken::new();
    shared.running.lock().expect("running lock").insert(job.id.clone(), cancel.clone());
    cancel
}

async fn plugin(shared: &Shared, job: &JobRecord) -> Result<Plugin, RunError> {
    if let Some(p) = shared.engine.cached(&job.module) {
        return Ok(p);
    }
    let bytes = shared.store.module_bytes(&job.tenant, &job.module).await.map_err(|e| {
        RunError::InvalidModule { reason: format!("module {} could not be read: {e}", job.module) }
    })?;
    shared.engine.load(bytes).await.map_err(|e| RunError::InvalidModule { reason: e.to_string() })
}

/// What an outcome means for the job: the error decides the retry.
fn completion(shared: &Shared, job: &JobRecord, outcome: Outcome, started_at: i64) -> JobCompletion {
    let now = now_ms();
    let (status, run_at) = match &outcome.error {
        None => (JobStatus::Succeeded, job.run_at),
        Some(e) if e.retryable() && job.attempt < job.max_attempts => {
            let s = &shared.settings;
            let delay = retry_backoff(job.attempt, s.retry_base, s.retry_max, fastrand::f64());
            (JobStatus::Failed, now + delay.as_millis() as i64)
        }
        Some(_) => (JobStatus::Dead, job.run_at),
    };
    // Most jobs log nothing: store nothing then (rows stay small on the hot path).
    let quiet = outcome.logs.is_empty() && outcome.stdout.text.is_empty() && outcome.stderr.text.is_empty();
    let logs = (!quiet).then(|| {
        serde_json::json!({
            "log": outcome.logs,
            "log_truncated": outcome.logs_truncated,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
        })
        .to_string()
    });
    JobCompletion {
        id: job.id.clone(),
        owner: shared.node.clone(),
        status,
        result: outcome.result.as_ref().map(|r| r.get().to_string()),
        error: outcome.error.as_ref().map(|e| (e.kind().to_string(), e.to_string())),
        fuel_used: outcome.fuel_used,
        duration_ms: outcome.duration.as_millis() as u64,
        logs,
        progress: outcome.progress.last().map(|p| (p.percent, p.message.clone())),
        started_at,
        finished_at: now,
        run_at,
    }
}
