//! Runs one claimed job and decides what its outcome means.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::buffer::Held;
use super::progress::ProgressHooks;
use super::{CompleterMsg, RunHandle, Shared};
use crate::domain::{JobInfo, JobStatus, Outcome, RetryPolicy, RunError, time::now_ms};
use crate::sandbox::{Plugin, RunContext};
use crate::store::{JobCompletion, JobRecord};
use crate::traces::{JobSpan, Parent};

/// Runs `job` (claimed, registered in `running`, taken from the buffer by a
/// runner) and sends its completion, unless its claim was lost meanwhile.
pub(crate) async fn execute(shared: Arc<Shared>, held: Held) {
    let Held { job, run, subject } = held;
    let id = job.id.clone();
    if run.is_lost() {
        // The lease lapsed while the job waited in the buffer: not ours to run.
        shared.running.lock().expect("running lock").remove(&job.lease());
        shared.wake.notify_one();
        return;
    }
    let started_at = now_ms();
    // Spans take the run's own clock (stored times are whole milliseconds).
    let run_started = shared.traces.on().then(SystemTime::now);
    let outcome = match plugin(&shared, &job).await {
        Ok(plugin) => {
            let hooks = Arc::new(ProgressHooks::new(&shared, &job, subject.clone()));
            let capabilities = match &shared.grants {
                Some(grants) => grants.for_job(&job.tenant, &job.alias).await,
                None => None,
            };
            let ctx = RunContext {
                job: JobInfo {
                    id: job.id.clone(),
                    alias: job.alias.clone(),
                    attempt: job.attempt,
                    tenant: job.tenant.to_string(),
                },
                hooks: Some(hooks.clone()),
                cancel: run.cancel_token(),
                capabilities,
            };
            let outcome = shared.engine.run(&plugin, &job.payload, &job.limits, ctx).await;
            hooks.end();
            outcome
        }
        Err(error) => Outcome::rejected(error),
    };
    shared.running.lock().expect("running lock").remove(&job.lease());
    shared.wake.notify_one();
    // Rescued (and perhaps claimed again) after this node stalled: the
    // outcome belongs to no current claim (the store would refuse it too).
    // Interrupted by shutdown: not the job's failure; `job_release` requeues
    // it. Either way the run used fuel and time: only that is recorded.
    let lost = run.is_lost();
    let released = shared.abandoning.is_cancelled() && matches!(outcome.error, Some(RunError::Cancelled));
    if lost {
        tracing::info!(job = %id, token = job.lease_token, "run lost its claim; its outcome is dropped");
    }
    if lost || released {
        let completion = JobCompletion { usage_only: true, ..completion(&shared, &job, outcome, started_at) };
        let msg = CompleterMsg::Complete {
            completion: Box::new(completion),
            attempt: job.attempt,
            callback: false,
            job: subject,
            trace: None,
        };
        let _ = shared.completions.send(msg);
        return;
    }
    record_run_time(&shared, outcome.duration);
    let completion = completion(&shared, &job, outcome, started_at);
    // One line per attempt's end, on by default (info): what an operator reads
    // to see the queue work. Every field is borrowed or a number, and tracing
    // evaluates them only when the level is on: nothing is allocated otherwise.
    tracing::info!(
        job = %completion.id,
        alias = %job.alias,
        status = %completion.status.as_str(),
        outcome = %completion.error.as_ref().map_or("ok", |(kind, _)| kind.as_str()),
        attempt = job.attempt,
        duration_ms = completion.duration_ms,
        fuel = completion.fuel_used,
        "job attempt finished"
    );
    let trace = shared.traces.parent(job.trace.as_deref()).zip(run_started).map(|(parent, start)| {
        let run = start..SystemTime::now();
        trace_attempt(&shared, &parent, &job, &completion, run.clone());
        (parent, run.end)
    });
    let callback = job.callback.is_some() || job.batch_id.is_some();
    let msg = CompleterMsg::Complete {
        completion: Box::new(completion),
        attempt: job.attempt,
        callback,
        job: subject,
        trace,
    };
    let _ = shared.completions.send(msg);
}

/// The attempt's `wasmq.claim` (due until claimed) and `wasmq.run` spans.
fn trace_attempt(
    shared: &Shared,
    parent: &Parent,
    job: &JobRecord,
    c: &JobCompletion,
    run: Range<SystemTime>,
) {
    let span = JobSpan {
        id: &job.id,
        alias: &job.alias,
        queue: &job.queue,
        tenant: job.tenant.as_str(),
        attempt: job.attempt,
        node: &shared.node_name,
        fuel_used: c.fuel_used,
    };
    let claimed_at = job.started_at.unwrap_or(c.started_at);
    let queued = (job.run_at.max(job.created_at), claimed_at);
    shared.traces.attempt(parent, &span, queued, run, c.status, c.error.as_ref());
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

/// Registers a claimed job as held by this node (under its claim) and returns
/// the handle that stops its run.
pub(crate) fn register(shared: &Shared, job: &JobRecord) -> RunHandle {
    let run = RunHandle::new();
    shared.running.lock().expect("running lock").insert(job.lease(), run.clone());
    run
}

async fn plugin(shared: &Shared, job: &JobRecord) -> Result<Plugin, RunError> {
    if let Some(p) = shared.engine.cached(&job.module) {
        return Ok(p);
    }
    let bytes = shared.store.module_bytes(&job.tenant, &job.module).await.map_err(|e| {
        RunError::InvalidModule { reason: format!("module {} could not be read: {e}", job.module) }
    })?;
    let compiling = std::time::Instant::now();
    let plugin =
        shared.engine.load(bytes).await.map_err(|e| RunError::InvalidModule { reason: e.to_string() })?;
    shared.metrics.compiled(compiling.elapsed());
    Ok(plugin)
}

/// What an outcome means for the job: the error decides the retry.
fn completion(shared: &Shared, job: &JobRecord, outcome: Outcome, started_at: i64) -> JobCompletion {
    let now = now_ms();
    let (status, run_at) = match &outcome.error {
        None => (JobStatus::Succeeded, job.run_at),
        Some(e) if e.retryable() && job.attempt < job.max_attempts => {
            // The alias's policy, pinned on the job at dispatch; else the server's.
            let s = &shared.settings;
            let policy = job.limits.retry.unwrap_or_else(|| RetryPolicy::doubling(s.retry_base, s.retry_max));
            let delay = policy.delay(job.attempt, fastrand::f64());
            (JobStatus::Failed, now + delay.as_millis() as i64)
        }
        Some(_) => (JobStatus::Dead, job.run_at),
    };
    shared.metrics.job_attempt(job.tenant.as_str(), &job.alias, status.as_str(), &outcome);
    // Most jobs log nothing: store nothing then (rows stay small on the hot path).
    let quiet = outcome.logs.is_empty()
        && outcome.stdout.text.is_empty()
        && outcome.stderr.text.is_empty()
        && outcome.http.is_empty();
    let logs = (!quiet).then(|| {
        let mut logs = serde_json::json!({
            "log": outcome.logs,
            "log_truncated": outcome.logs_truncated,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
        });
        // Outbound requests (the first MAX_RECORDED_CALLS), only when there were some.
        if !outcome.http.is_empty() {
            logs["http"] = serde_json::json!(outcome.http);
            logs["http_truncated"] =
                serde_json::json!(outcome.http_usage.requests > outcome.http.len() as u64);
        }
        logs.to_string()
    });
    JobCompletion {
        id: job.id.clone(),
        tenant: job.tenant.clone(),
        token: job.lease_token,
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
        usage_only: false,
        http: outcome.http_usage,
    }
}
