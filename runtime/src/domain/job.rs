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

/// Longest retry delay a policy may set: one day.
pub const MAX_RETRY_DELAY_MS: u64 = 24 * 3600 * 1000;

/// How a job waits before its next attempt after a retryable failure (an
/// alias's `retry`, pinned on its jobs at dispatch): attempt `n` (1-based,
/// the attempt that just failed) waits `base_ms * factor^(n-1)`, at most
/// `max_ms`, of which the fraction `jitter` is random (0: exactly that;
/// 0.5: between half and all of it; 1: anything up to it). Jitter spreads
/// the retries of jobs that failed together.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt, in ms (1..=86400000).
    #[serde(deserialize_with = "crate::domain::json_int::exact")]
    #[schema(minimum = 1, maximum = 86400000)]
    pub base_ms: u64,
    /// Longest delay, in ms (base_ms..=86400000).
    #[serde(deserialize_with = "crate::domain::json_int::exact")]
    #[schema(minimum = 1, maximum = 86400000)]
    pub max_ms: u64,
    /// Growth per attempt (1 = a constant delay; 2 doubles), 1..=10.
    #[schema(minimum = 1.0, maximum = 10.0)]
    pub factor: f64,
    /// Random fraction of each delay, 0..=1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub jitter: f64,
}

// Its floats are checked finite (`validate`) before any is kept: equality
// is total on them.
impl Eq for RetryPolicy {}

impl RetryPolicy {
    /// The server's default shape (`retry_base`, `retry_max`): doubling,
    /// half of each delay random.
    pub fn doubling(base: Duration, max: Duration) -> Self {
        Self { base_ms: base.as_millis() as u64, max_ms: max.as_millis() as u64, factor: 2.0, jitter: 0.5 }
    }

    /// Each field within its range; the error names the field
    /// (`retry.factor must be ...`).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_RETRY_DELAY_MS).contains(&self.base_ms) {
            return Err(format!(
                "retry.base_ms must be between 1 and {MAX_RETRY_DELAY_MS}, got {}",
                self.base_ms
            ));
        }
        if !(self.base_ms..=MAX_RETRY_DELAY_MS).contains(&self.max_ms) {
            return Err(format!(
                "retry.max_ms must be between retry.base_ms ({}) and {MAX_RETRY_DELAY_MS}, got {}",
                self.base_ms, self.max_ms
            ));
        }
        if !(1.0..=10.0).contains(&self.factor) {
            return Err(format!("retry.factor must be between 1 and 10, got {}", self.factor));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(format!("retry.jitter must be between 0 and 1, got {}", self.jitter));
        }
        Ok(())
    }

    /// The wait after failed attempt `attempt` (1-based), `unit_random` in
    /// [0, 1] drawing the jitter.
    pub fn delay(&self, attempt: u32, unit_random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let full = (self.base_ms as f64 * self.factor.powi(exponent)).min(self.max_ms as f64);
        let random = full * self.jitter * unit_random.clamp(0.0, 1.0);
        Duration::from_millis((full - random).round().max(0.0) as u64)
    }
}

/// Which job something is about, with what filters and tenant scoping look
/// at (the event stream's subject, a rescue's report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRef {
    /// Job id.
    #[serde(rename = "job")]
    pub id: String,
    /// Owner.
    pub tenant: super::TenantId,
    /// Alias it was dispatched to.
    pub alias: String,
    /// Queue.
    pub queue: String,
    /// Batch it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_policy_grows_caps_and_jitters() {
        let constant = RetryPolicy { base_ms: 1_000, max_ms: 1_000, factor: 1.0, jitter: 0.0 };
        assert_eq!(constant.delay(1, 0.7), Duration::from_secs(1));
        assert_eq!(constant.delay(9, 0.7), Duration::from_secs(1));
        let tripling = RetryPolicy { base_ms: 100, max_ms: 10_000, factor: 3.0, jitter: 0.0 };
        assert_eq!(tripling.delay(3, 0.0), Duration::from_millis(900));
        assert_eq!(tripling.delay(30, 0.0), Duration::from_secs(10), "capped, no overflow");
        let half = RetryPolicy { jitter: 0.5, ..tripling };
        assert_eq!(half.delay(2, 1.0), Duration::from_millis(150));
        assert_eq!(half.delay(2, 0.0), Duration::from_millis(300));
        // The server's default shape: doubling, between half and all of it.
        let doubling = RetryPolicy::doubling(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(doubling.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(doubling.delay(1, 1.0), Duration::from_millis(500));
        assert_eq!(doubling.delay(4, 0.0), Duration::from_secs(8));
        assert_eq!(doubling.delay(30, 0.0), Duration::from_secs(60));
        assert_eq!(doubling.delay(30, 1.0), Duration::from_secs(30));
        assert!(RetryPolicy { factor: 11.0, ..constant }.validate().unwrap_err().contains("retry.factor"));
        assert!(RetryPolicy { jitter: -0.1, ..constant }.validate().unwrap_err().contains("retry.jitter"));
        assert!(RetryPolicy { max_ms: 10, ..constant }.validate().unwrap_err().contains("retry.max_ms"));
        assert!(RetryPolicy { base_ms: 0, ..constant }.validate().unwrap_err().contains("retry.base_ms"));
        assert!(RetryPolicy { factor: f64::NAN, ..constant }.validate().is_err());
    }

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
}
