//! The errors a backend reports, worded once: what is missing, and why a
//! cancel or a retry is refused. The API shows these messages as they are.

use super::RETRYABLE;
use crate::domain::{AliasName, Digest, JobStatus, TenantId};
use crate::store::StoreError;

/// No such job for the tenant.
pub(in crate::store) fn job_missing(id: &str) -> StoreError {
    StoreError::NotFound(format!("job {id}"))
}

/// No such batch for the tenant.
pub(in crate::store) fn batch_missing(id: &str) -> StoreError {
    StoreError::NotFound(format!("batch {id}"))
}

/// No such module for the tenant.
pub(in crate::store) fn module_missing(digest: &Digest) -> StoreError {
    StoreError::NotFound(format!("module {digest}"))
}

/// No such alias for the tenant.
pub(in crate::store) fn alias_missing(name: &AliasName) -> StoreError {
    StoreError::NotFound(format!("alias {name}"))
}

/// No such schedule.
pub(in crate::store) fn schedule_missing(name: &str) -> StoreError {
    StoreError::NotFound(format!("schedule {name}"))
}

/// No such tenant.
pub(in crate::store) fn tenant_missing(id: &TenantId) -> StoreError {
    StoreError::NotFound(format!("tenant {id}"))
}

/// A tenant by that id exists already.
pub(in crate::store) fn tenant_exists(id: &TenantId) -> StoreError {
    StoreError::Conflict(format!("tenant {id} exists already"))
}

/// The `default` tenant is kept (the single-token and no-token modes act as it).
pub(in crate::store) fn default_tenant_kept() -> StoreError {
    StoreError::Conflict("the default tenant cannot be deleted".into())
}

/// A tenant delete found `unfinished` jobs of the tenant.
pub(in crate::store) fn tenant_busy(id: &TenantId, unfinished: i64) -> StoreError {
    StoreError::Conflict(format!(
        "tenant {id} has {unfinished} unfinished jobs (queued, scheduled, running or retrying): \
         cancel them or let them finish first"
    ))
}

/// No such token for the tenant.
pub(in crate::store) fn token_missing(id: &str) -> StoreError {
    StoreError::NotFound(format!("token {id}"))
}

/// No such signing key for the tenant.
pub(in crate::store) fn key_missing(id: &str) -> StoreError {
    StoreError::NotFound(format!("signing key {id}"))
}

/// A signing key by that id exists already.
pub(in crate::store) fn key_exists(id: &str) -> StoreError {
    StoreError::Conflict(format!("signing key {id} exists already"))
}

/// A cancel found the job already finished (`status`).
pub(in crate::store) fn cancel_refused(id: &str, status: JobStatus) -> StoreError {
    StoreError::Conflict(format!("job {id} is already {}", status.as_str()))
}

/// A retry found the job in a `status` it does not queue again (see
/// [`RETRYABLE`], which the message lists).
pub(in crate::store) fn retry_refused(id: &str, status: JobStatus) -> StoreError {
    let names: Vec<&str> = RETRYABLE.members().map(JobStatus::as_str).collect();
    let allowed = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    };
    StoreError::Conflict(format!("job {id} is {}; only {allowed} jobs can be retried", status.as_str()))
}

/// A deletion found the job not ended, or its callback still due.
pub(in crate::store) fn delete_refused(id: &str, status: JobStatus) -> StoreError {
    if status.is_terminal() {
        StoreError::Conflict(format!(
            "job {id} is {} but its callback is still being delivered",
            status.as_str()
        ))
    } else {
        StoreError::Conflict(format!(
            "job {id} is {}: only an ended job can be deleted (cancel it first)",
            status.as_str()
        ))
    }
}

/// A batch deletion found `unsettled` jobs of the batch not ended (or with
/// callbacks still due), or the batch's own callback still due.
pub(in crate::store) fn batch_busy(id: &str, unsettled: i64, callback_settled: bool) -> StoreError {
    if unsettled > 0 {
        StoreError::Conflict(format!(
            "batch {id} has {unsettled} jobs not ended or with callbacks still being delivered: only a finished \
             batch can be deleted"
        ))
    } else {
        debug_assert!(!callback_settled);
        StoreError::Conflict(format!("batch {id}'s callback is still being delivered"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_job_its_status_and_what_is_allowed() {
        assert_eq!(cancel_refused("j1", JobStatus::Dead).to_string(), "job j1 is already dead");
        assert_eq!(
            retry_refused("j1", JobStatus::Running).to_string(),
            "job j1 is running; only failed, dead or cancelled jobs can be retried"
        );
        assert_eq!(job_missing("j1").to_string(), "job j1 not found");
    }
}
