//! The scheduler every node runs: it fires the schedules whose due time came
//! (`/v1/schedules`). No leader: every node looks, and the store settles who
//! fires each due time (`Store::schedule_fire`: a compare-and-set of the
//! schedule's next due time in the transaction that inserts its jobs, each
//! job also keyed `schedule:<name>:<due ms>`), so a due time makes one job
//! however many nodes race for it, and a node that dies mid-firing leaves
//! the due time to the next node that looks.
//!
//! A node sleeps until the soonest due time, at most [`LOOK_EVERY`] (a
//! schedule set through another node is seen that late at most). The jobs
//! go through the rules of every dispatch (`submit::prepare`: the alias
//! resolved and its module pinned, limits within the tenant's quotas), with
//! `run_at` the due time; they skip the dispatch rate and backpressure,
//! which answer clients, and no client waits here.

use std::time::Duration;

use super::AppState;
use super::schedules::recurrence;
use super::submit::{CallbackForm, JobOptions, Submission, prepare};
use crate::domain::{JobStatus, schedule, time::now_ms};
use crate::store::{Fired, NewJob, ScheduleFiring, ScheduleRecord};

/// Longest sleep between two looks at the schedules.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Schedules fired per look (a look that finds more looks again at once).
const PER_LOOK: u32 = 100;

/// Fires due schedules until shutdown.
pub async fn run(state: AppState) {
    loop {
        let more = match look(&state).await {
            Ok(more) => more,
            Err(e) => {
                tracing::warn!(error = %e, "reading the due schedules failed; trying again");
                false
            }
        };
        let wait = if more {
            Duration::ZERO
        } else {
            match state.store.schedule_next_due().await {
                Ok(Some(next)) => {
                    Duration::from_millis((next - now_ms()).clamp(0, LOOK_EVERY.as_millis() as i64) as u64)
                }
                _ => LOOK_EVERY,
            }
        };
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Fires every schedule due now; whether more are due than one look takes.
async fn look(state: &AppState) -> crate::store::StoreResult<bool> {
    let now = now_ms();
    let due = state.store.schedule_due(now, PER_LOOK).await?;
    let more = due.len() == PER_LOOK as usize;
    for record in due {
        let name = record.name.clone();
        if let Err(e) = fire(state, record, now).await {
            tracing::warn!(schedule = %name, error = %e, "firing a schedule failed; the next look tries again");
        }
    }
    Ok(more)
}

/// Fires one schedule's due times up to `now`.
async fn fire(state: &AppState, record: ScheduleRecord, now: i64) -> crate::store::StoreResult<()> {
    let Some(expected) = record.next_due_at else { return Ok(()) };
    let firing = match recurrence(&record.spec) {
        Ok(rec) => schedule::fire(&rec, record.spec.catch_up, expected, now),
        // Checked when it was put; a stored one that no longer parses stops.
        Err(e) => {
            tracing::warn!(schedule = %record.name, error = %e, "a stored schedule does not parse; it stops");
            schedule::Firing { due: vec![], next_due: None }
        }
    };
    let (mut jobs, error) = match jobs_of(state, &record, &firing.due, now).await {
        Ok(jobs) => (jobs, None),
        Err(message) => (Vec::new(), Some(message)),
    };
    // Each firing that makes jobs is the root of their trace.
    let span = (!jobs.is_empty()).then(|| state.queue.traces().schedule(&record.name));
    for job in &mut jobs {
        job.trace = span.as_ref().and_then(|s| s.trace()).map(str::to_string);
    }
    if let Some(message) = &error {
        tracing::warn!(schedule = %record.name, tenant = %record.tenant, error = %message, "a schedule's due time made no job");
    }
    let f = ScheduleFiring {
        tenant: record.tenant.clone(),
        name: record.name.clone(),
        expected_next_due: expected,
        next_due_at: firing.next_due,
        last_due_at: firing.due.last().copied(),
        jobs,
        error,
    };
    let fired = state.store.schedule_fire(f).await?;
    if let Fired::Fired(inserted) = &fired {
        if let Some(span) = span {
            let created: Vec<&str> =
                inserted.iter().filter(|i| i.created).map(|i| i.job.id.as_str()).collect();
            span.end(&created, None);
        }
        if inserted.iter().any(|i| i.created) {
            state.queue.announce_fired(inserted).await;
            state.queue.notify_dispatch();
        }
    }
    Ok(())
}

/// The jobs of a schedule's due times, through the rules of every dispatch;
/// a refusal (the alias deleted, a quota lowered) as its message.
async fn jobs_of(
    state: &AppState,
    record: &ScheduleRecord,
    due: &[i64],
    now: i64,
) -> Result<Vec<NewJob>, String> {
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let spec = &record.spec;
    let payload =
        serde_json::value::RawValue::from_string(spec.payload.clone()).map_err(|e| e.to_string())?;
    let quotas = state.quotas.of(state.store.as_ref(), &record.tenant).await.map_err(|e| e.message())?;
    let mut jobs = Vec::with_capacity(due.len());
    for &at in due {
        let options = JobOptions {
            priority: spec.priority.map(i64::from),
            queue: spec.queue.as_ref().map(|q| q.to_string()),
            idempotency_key: Some(format!("schedule:{}:{at}", record.name)),
            ..JobOptions::default()
        };
        let submission = Submission {
            alias: spec.alias.to_string(),
            payload: payload.clone(),
            options,
            form: CallbackForm::Body,
        };
        let mut job =
            prepare(state, &record.tenant, &quotas, submission, None, now).await.map_err(|e| e.message())?;
        job.run_at = at;
        job.status = JobStatus::Queued;
        jobs.push(job);
    }
    Ok(jobs)
}
