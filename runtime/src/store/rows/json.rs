//! The rows a statement takes many of at once, as the objects of one JSON
//! array (one bound parameter, however many rows): new jobs, completions and
//! claims. Each backend reads the same fields (SQLite with `json_each`,
//! PostgreSQL with `jsonb_to_recordset`).

use super::{callback_json, compact_limits};
use crate::domain::CallbackState;
use crate::store::{JobCompletion, JobRecord, Lease, NewJob};

/// The row of a new job: `record` is `record_of(job)` (a job inserted under
/// a lease is stored as its claim would leave it). Its idempotency key and
/// fingerprint are null here; a keyed insert sets them (`keyed`).
pub(in crate::store) fn insert_row(job: &NewJob, record: &JobRecord) -> serde_json::Value {
    let mut row = serde_json::json!({
        "id": job.id, "tenant": job.tenant.as_str(), "alias": job.alias.as_str(),
        "module": job.module.to_string(), "status": record.status.as_str(), "priority": job.priority,
        "queue": job.queue.as_str(), "context": job.context, "payload": job.payload,
        "max_attempts": job.max_attempts,
        "limits": compact_limits(&job.limits),
        "run_at": job.run_at, "created_at": job.created_at, "idempotency_key": null,
        "idempotency_fingerprint": null,
        "batch_id": job.batch_id, "callback": callback_json(&job.callback),
        "callback_state": record.callback_state.map(CallbackState::as_str),
        "attempt": record.attempt, "lease_token": record.lease_token, "started_at": record.started_at,
        "lease_owner": record.lease_owner, "lease_expires_at": job.lease.as_ref().map(|l| l.expires_at),
        "unique_key": job.unique.as_ref().map(|u| &u.key),
    });
    // Most jobs are untraced: an absent field reads as NULL.
    if let Some(trace) = &job.trace {
        row["trace"] = trace.as_str().into();
    }
    row
}

/// [`insert_row`] with the job's idempotency key and fingerprint.
pub(in crate::store) fn keyed(mut row: serde_json::Value, job: &NewJob) -> serde_json::Value {
    row["idempotency_key"] = job.idempotency_key.as_ref().map(|k| k.as_str()).into();
    row["idempotency_fingerprint"] = job.idempotency_fingerprint.clone().into();
    row
}

/// The completions whose outcome is to be applied, as the JSON array the
/// completion statement reads.
pub(in crate::store) fn completions_json(applying: &[&JobCompletion]) -> String {
    let rows: Vec<serde_json::Value> = applying
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id, "token": c.token, "owner": c.owner, "status": c.status.as_str(),
                "terminal": c.status.is_terminal(),
                "result": c.result, "error_kind": c.error.as_ref().map(|e| &e.0),
                "error_message": c.error.as_ref().map(|e| &e.1), "fuel_used": c.fuel_used,
                "duration_ms": c.duration_ms, "logs": c.logs,
                "progress_percent": c.progress.as_ref().map(|p| p.0),
                "progress_message": c.progress.as_ref().map(|p| &p.1),
                "started_at": c.started_at, "finished_at": c.finished_at, "run_at": c.run_at,
            })
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// Claims as the JSON array `[{"id", "token"}]`.
pub(in crate::store) fn leases_json(leases: &[Lease]) -> String {
    serde_json::Value::Array(
        leases.iter().map(|l| serde_json::json!({"id": l.id, "token": l.token})).collect(),
    )
    .to_string()
}
