//! The errors a backend reports, worded once: what is missing, and why a
//! cancel or a retry is refused. The API shows these messages as they are.

use super::RETRYABLE;
use crate::domain::{AliasName, Digest, JobStatus};
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
