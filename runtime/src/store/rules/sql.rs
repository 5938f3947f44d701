//! The SQL fragments every backend's statements share, rendered from the
//! domain's stored enums ([`JobStatus`], [`CallbackState`]) so that no stored
//! name is spelled in a statement: sets as `('queued', 'scheduled', 'failed')`,
//! single values as `'running'`, and the claim order.
//!
//! They render as literals, not bound parameters, on purpose: a partial index
//! (`WHERE callback_state = 'sending'`) is used only by a statement whose
//! condition spells the same literal.

use std::fmt;

use crate::domain::{CallbackState, JobStatus};

/// A domain enum stored as its name.
pub(in crate::store) trait Stored: Copy + 'static {
    /// Every value, in the order sets list them.
    const EVERY: &'static [Self];
    /// The stored name (lowercase letters and `_` only, so it needs no escaping).
    fn name(self) -> &'static str;
}

impl Stored for JobStatus {
    const EVERY: &'static [Self] = &JobStatus::ALL;
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Stored for CallbackState {
    const EVERY: &'static [Self] = &CallbackState::ALL;
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// A set of stored values, shown as an SQL list in [`Stored::EVERY`] order:
/// `('queued', 'scheduled', 'failed')`.
pub(in crate::store) struct Set<T>(fn(T) -> bool);

impl<T: Stored> Set<T> {
    /// The values `member` holds for.
    pub(in crate::store) const fn of(member: fn(T) -> bool) -> Self {
        Self(member)
    }

    /// Whether `value` is in the set.
    pub(in crate::store) fn contains(&self, value: T) -> bool {
        (self.0)(value)
    }

    /// The members, in [`Stored::EVERY`] order.
    pub(in crate::store) fn members(&self) -> impl Iterator<Item = T> + '_ {
        T::EVERY.iter().copied().filter(|v| self.contains(*v))
    }
}

impl<T: Stored> fmt::Display for Set<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.members().map(|v| Lit(v).to_string()).collect();
        write!(f, "({})", names.join(", "))
    }
}

/// One stored value as an SQL literal: `'running'`.
pub(in crate::store) struct Lit<T>(pub(in crate::store) T);

impl<T: Stored> fmt::Display for Lit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.name())
    }
}

/// A set of job statuses.
pub(in crate::store) type StatusSet = Set<JobStatus>;

/// Statuses a claim picks from (when due and with an attempt left); the jobs
/// waiting to run, behind backpressure.
pub(in crate::store) const RUNNABLE: StatusSet =
    Set::of(|s| matches!(s, JobStatus::Queued | JobStatus::Scheduled | JobStatus::Failed));
/// Statuses waiting for a due time (`job_next_due`).
pub(in crate::store) const DELAYED: StatusSet =
    Set::of(|s| matches!(s, JobStatus::Scheduled | JobStatus::Failed));
/// Statuses that end a job ([`JobStatus::is_terminal`]).
pub(in crate::store) const TERMINAL: StatusSet = Set::of(JobStatus::is_terminal);
/// Statuses `job_retry` queues again.
pub(in crate::store) const RETRYABLE: StatusSet =
    Set::of(|s| matches!(s, JobStatus::Failed | JobStatus::Dead | JobStatus::Cancelled));

/// `'queued'`.
pub(in crate::store) const QUEUED: Lit<JobStatus> = Lit(JobStatus::Queued);
/// `'running'`.
pub(in crate::store) const RUNNING: Lit<JobStatus> = Lit(JobStatus::Running);
/// `'dead'`.
pub(in crate::store) const DEAD: Lit<JobStatus> = Lit(JobStatus::Dead);
/// `'cancelled'`.
pub(in crate::store) const CANCELLED: Lit<JobStatus> = Lit(JobStatus::Cancelled);

/// Callback states no delivery follows ([`CallbackState::is_settled`]):
/// retention deletes only records whose callback (if any) is in one.
pub(in crate::store) const CALLBACK_SETTLED: Set<CallbackState> = Set::of(CallbackState::is_settled);
/// `'pending'`: a callback waiting for its job (or batch) to end.
pub(in crate::store) const CALLBACK_PENDING: Lit<CallbackState> = Lit(CallbackState::Pending);
/// `'sending'`: a callback due, or being delivered.
pub(in crate::store) const CALLBACK_SENDING: Lit<CallbackState> = Lit(CallbackState::Sending);

/// The assignment that makes a job's callback (if it has one) due when the
/// job ends: `callback_state = CASE ... END, callback_next_at = ` (the
/// statement adds when).
pub(in crate::store) struct CallbackOnEnd;

impl fmt::Display for CallbackOnEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "callback_state = CASE WHEN callback IS NOT NULL THEN {CALLBACK_SENDING} ELSE NULL END, \
             callback_next_at = "
        )
    }
}

/// See [`CallbackOnEnd`].
pub(in crate::store) const CALLBACK_ON_END: CallbackOnEnd = CallbackOnEnd;

/// The error a rescue records, as an SQL assignment: the attempt whose
/// worker stopped renewing its lease (`||` concatenates in SQLite and
/// PostgreSQL alike).
pub(in crate::store) const LEASE_LOST: &str =
    "error_kind = 'lease_expired', error_message = 'the worker running attempt ' || attempt
    || ' of ' || max_attempts || ' stopped renewing its lease'";

/// A job list's status condition, the status written in as a literal (it
/// is one of `JobStatus`'s own names, never client text), so the planner
/// can use the partial index `jobs_tenant_ended_badly` (migrations: sqlite
/// 0020, postgres 0009) for failed, dead and cancelled jobs: a bound
/// parameter would hide the status from it, and SQLite uses a partial index
/// only when the query repeats the index's own condition, so that is added.
pub(in crate::store) fn status_is(status: JobStatus) -> String {
    let status = status.as_str();
    if ENDED_BADLY.contains(&status) {
        format!(" AND status = '{status}' AND status IN ('failed', 'dead', 'cancelled')")
    } else {
        format!(" AND status = '{status}'")
    }
}

/// The statuses `jobs_tenant_ended_badly` holds (its condition is
/// `status IN ('failed', 'dead', 'cancelled')`).
const ENDED_BADLY: [&str; 3] = ["failed", "dead", "cancelled"];

/// The order claims take runnable jobs in, as SQL: highest priority first,
/// then earliest due, then oldest id. `rules::claim_order` is the same order.
pub(in crate::store) const CLAIM_ORDER: &str = "priority DESC, run_at, id";

/// The queues the store holds governed (paused, or limited in concurrency or
/// rate): the first phase of a claim leaves their jobs out, whatever the
/// claiming node knows (see `rules::queues`).
pub(in crate::store) const GOVERNED_QUEUES: &str =
    "(SELECT name FROM queues WHERE paused OR concurrency IS NOT NULL OR rate_max IS NOT NULL)";

/// A job's alias as the name of the `queues` row that limits it
/// (`store::alias_limits_name`): `@<tenant>/<alias>`.
pub(in crate::store) const ALIAS_KEY: &str = "('@' || tenant || '/' || alias)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets_render_as_the_sql_lists_the_statements_always_used() {
        assert_eq!(RUNNABLE.to_string(), "('queued', 'scheduled', 'failed')");
        assert_eq!(TERMINAL.to_string(), "('succeeded', 'dead', 'cancelled')");
        assert_eq!(RETRYABLE.to_string(), "('failed', 'dead', 'cancelled')");
        assert_eq!(DELAYED.to_string(), "('scheduled', 'failed')");
        assert_eq!(RUNNING.to_string(), "'running'");
        for s in JobStatus::ALL {
            assert_eq!(TERMINAL.contains(s), s.is_terminal(), "{s:?}");
            assert!(!(RUNNABLE.contains(s) && TERMINAL.contains(s)), "{s:?} is runnable and terminal");
        }
    }

    #[test]
    fn callback_states_render_as_the_sql_the_statements_and_indexes_use() {
        assert_eq!(CALLBACK_SETTLED.to_string(), "('delivered', 'failed')");
        assert_eq!(CALLBACK_PENDING.to_string(), "'pending'");
        // The partial indexes `jobs_callback_due` and `batches_callback_due`
        // (migration 0001) are on `callback_state = 'sending'`.
        assert_eq!(CALLBACK_SENDING.to_string(), "'sending'");
        assert_eq!(
            CALLBACK_ON_END.to_string(),
            "callback_state = CASE WHEN callback IS NOT NULL THEN 'sending' ELSE NULL END, callback_next_at = "
        );
    }

    #[test]
    fn stored_names_need_no_escaping_in_a_literal() {
        let names =
            JobStatus::EVERY.iter().map(|s| s.name()).chain(CallbackState::EVERY.iter().map(|c| c.name()));
        for name in names {
            assert!(!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{name}");
        }
    }
}
