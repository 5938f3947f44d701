//! Jobs: their status machine, their stored form, and the retry policy.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a job is in its life. Who moves it:
///
/// ```text
///              dispatch                     claim (worker)
///  (new) ──────────────> queued ──────────────────────────> running
///    │ delay_ms/run_at     ▲                                  │ │ │
///    └──────────> scheduled┘ (due: claimable as is)           │ │ └─ cancel ─> cancelled
///                                                             │ └─── success ─> succeeded
///   failed <── retryable failure, attempts left (backoff) ────┘
///     │ (due: claimed again)          non-retryable or last attempt ─> dead
///     └── cancel ─> cancelled       lease expired (crash) ─> queued (rescuer)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Runnable now; waiting for a free worker.
    Queued,
    /// Runnable from its `run_at` (delayed on dispatch).
    Scheduled,
    /// A worker holds its lease and runs it.
    Running,
    /// Finished with a result. Terminal.
    Succeeded,
    /// The last attempt failed with a retryable error; it runs again at `run_at`.
    Failed,
    /// Out of attempts, or failed with a non-retryable error. Terminal.
    Dead,
    /// Cancelled by a client. Terminal.
    Cancelled,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Scheduled,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored or requested status.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No further change happens to a terminal job (except an explicit retry).
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Dead | JobStatus::Cancelled)
    }
}

/// Where and how to report a job's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// `http` or `https` URL to POST the result to (at most 2048 bytes). Its
    /// host must be a public address unless the operator allowed its range
    /// (`--callback-allow`); stored normalized.
    #[schema(format = "uri", max_length = 2048, pattern = r"^[hH][tT][tT][pP][sS]?://[^/?#]")]
    pub url: String,
    /// Extra request headers (e.g. the receiver's own `Authorization`): at
    /// most 32, no control characters, none of the headers wasmq sets or that
    /// frame the request (`Host`, `Content-*`, `Transfer-Encoding`, `X-Wasmq-*`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// HMAC-SHA256 key for `X-Wasmq-Signature`; never shown by the API, and
    /// stored sealed (`callbacks::SecretBox`), so in a stored record this is
    /// the sealed form.
    // Skipped by a predicate rather than `skip_serializing`, which would also
    // drop it from the OpenAPI schema.
    #[serde(default, skip_serializing_if = "never_serialized")]
    #[schema(write_only, min_length = 1, max_length = 1024)]
    pub secret: Option<String>,
}

/// `Callback::secret` is read, never written out.
fn never_serialized(_: &Option<String>) -> bool {
    true
}

/// Delivery state of a job's callback.
// Also a batch's. Who moves it (a plain comment: the doc above is the
// OpenAPI description):
//
//  (new, with a callback) ─> pending      the store, on insert
//  pending ─> sending                     the store, when the job (every job of the batch) ends
//  sending ─> delivered                   the sender: the receiver answered 2xx
//  sending ─> sending (due again later)   the sender: an attempt failed, tries are left
//  sending ─> failed                      the sender: out of tries, or not retryable
//  any ─> pending                         the store, on `job_retry` (a job's callback only)
//
// `delivered` and `failed` are settled (`is_settled`): nothing delivers
// again, and retention may delete the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallbackState {
    /// Waiting for the job to end.
    Pending,
    /// The job ended; delivery is due or being retried.
    Sending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every delivery attempt failed.
    Failed,
}

impl CallbackState {
    /// Every state, in delivery order.
    pub const ALL: [CallbackState; 4] =
        [CallbackState::Pending, CallbackState::Sending, CallbackState::Delivered, CallbackState::Failed];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackState::Pending => "pending",
            CallbackState::Sending => "sending",
            CallbackState::Delivered => "delivered",
            CallbackState::Failed => "failed",
        }
    }

    /// Parses a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// No delivery is attempted again: the receiver took it, or every
    /// attempt failed.
    pub fn is_settled(self) -> bool {
        matches!(self, CallbackState::Delivered | CallbackState::Failed)
    }
}

/// Exponential backoff with full jitter for retries: attempt `n` (1-based, the
/// attempt that just failed) waits a random time in `[base*2^(n-1)/2, base*2^(n-1)]`,
/// capped at `max`. Jitter spreads retries of jobs that failed together.
pub fn retry_backoff(attempt: u32, base: Duration, max: Duration, unit_random: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(max);
    let half = ceiling / 2;
    half + half.mul_f64(unit_random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(JobStatus::parse("done"), None);
        assert!(JobStatus::Dead.is_terminal() && !JobStatus::Failed.is_terminal());
    }

    #[test]
    fn callback_states_round_trip() {
        for c in CallbackState::ALL {
            assert_eq!(CallbackState::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert_eq!(CallbackState::parse("sent"), None);
        assert!(CallbackState::Failed.is_settled() && !CallbackState::Sending.is_settled());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        assert_eq!(retry_backoff(1, base, max, 1.0), Duration::from_secs(1));
        assert_eq!(retry_backoff(1, base, max, 0.0), Duration::from_millis(500));
        assert_eq!(retry_backoff(4, base, max, 1.0), Duration::from_secs(8));
        assert_eq!(retry_backoff(30, base, max, 1.0), max);
        assert_eq!(retry_backoff(30, base, max, 0.0), max / 2);
    }
}
