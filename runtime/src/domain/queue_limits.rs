//! What an operator sets on a queue: a concurrency limit and a rate limit,
//! both holding across every node, and the token bucket the rate is kept by.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most jobs a rate may allow per window.
pub const MAX_RATE: u64 = 1_000_000_000;
/// Longest rate window: one day.
pub const MAX_RATE_WINDOW_MS: u64 = 86_400_000;

/// Starts allowed per window: `max` jobs per `per_ms` milliseconds, as a
/// token bucket refilled evenly (`max` tokens per window) that holds at most
/// `burst` tokens: after a quiet spell, up to `burst` jobs start at once,
/// then one every `per_ms / max`. The default burst is a tenth of `max` (at
/// least 1), so the starts in any window stay close to `max` (at most
/// `max + burst`), as "100 per second" reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Jobs per window (1..=1,000,000,000).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "super::json_int::exact")]
    pub max: u64,
    /// The window in milliseconds (1..=86,400,000).
    #[schema(minimum = 1, maximum = 86_400_000)]
    #[serde(deserialize_with = "super::json_int::exact")]
    pub per_ms: u64,
    /// Most jobs started at once after a quiet spell (1..=max; absent: a
    /// tenth of `max`, at least 1).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::json_int::opt")]
    pub burst: Option<u64>,
}

impl Rate {
    /// The most tokens the bucket holds: `burst`, or a tenth of `max`.
    pub fn capacity(&self) -> u64 {
        self.burst.unwrap_or(self.max / 10).max(1)
    }
}

/// A queue's limits; absent fields: no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueLimits {
    /// Most of the queue's jobs running at once on all nodes together
    /// (0 holds the queue's jobs, like a pause).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "super::json_int::opt")]
    pub concurrency: Option<u64>,
    /// Most of the queue's jobs started per window on all nodes together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

impl QueueLimits {
    /// Checks the ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(rate) = &self.rate {
            if !(1..=MAX_RATE).contains(&rate.max) {
                return Err(format!("rate.max must be 1..={MAX_RATE}, got {}", rate.max));
            }
            if !(1..=MAX_RATE_WINDOW_MS).contains(&rate.per_ms) {
                return Err(format!("rate.per_ms must be 1..={MAX_RATE_WINDOW_MS}, got {}", rate.per_ms));
            }
            if let Some(burst) = rate.burst
                && !(1..=rate.max).contains(&burst)
            {
                return Err(format!("rate.burst must be 1..=rate.max ({}), got {burst}", rate.max));
            }
        }
        Ok(())
    }

    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.concurrency.is_some() || self.rate.is_some()
    }
}

/// A rate's bucket as stored: tokens left at `refilled_at` (unix ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens (starts allowed) left; at most the rate's `max`.
    pub tokens: f64,
    /// When `tokens` was computed.
    pub refilled_at: i64,
}

impl Bucket {
    /// A full bucket: a new rate allows its burst at once.
    pub fn full(rate: &Rate, now: i64) -> Self {
        Self { tokens: rate.capacity() as f64, refilled_at: now }
    }

    /// The bucket at `now`: refilled at `max / per_ms` tokens per ms since
    /// `refilled_at`, up to the rate's capacity. A clock that went back
    /// refills nothing.
    pub fn at(self, rate: &Rate, now: i64) -> Self {
        let elapsed = now.saturating_sub(self.refilled_at).max(0) as f64;
        let refill = elapsed * rate.max as f64 / rate.per_ms as f64;
        let tokens = (self.tokens + refill).min(rate.capacity() as f64).max(0.0);
        Self { tokens, refilled_at: now.max(self.refilled_at) }
    }

    /// Whole starts the bucket allows now.
    pub fn allows(&self) -> u64 {
        // A hair below a whole token (float error) counts as the token.
        (self.tokens + 1e-9).floor().max(0.0) as u64
    }

    /// The bucket after `n` starts.
    pub fn spend(self, n: u64) -> Self {
        Self { tokens: (self.tokens - n as f64).max(0.0), ..self }
    }

    /// Milliseconds until the bucket allows one start (0: now).
    pub fn wait_ms(&self, rate: &Rate) -> u64 {
        if self.allows() > 0 {
            return 0;
        }
        let missing = 1.0 - self.tokens;
        (missing * rate.per_ms as f64 / rate.max as f64).ceil().max(1.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUNDRED_PER_S: Rate = Rate { max: 100, per_ms: 1000, burst: Some(100) };

    #[test]
    fn a_bucket_refills_evenly_up_to_its_burst() {
        let b = Bucket::full(&HUNDRED_PER_S, 0).spend(100);
        assert_eq!(b.allows(), 0);
        assert_eq!(b.wait_ms(&HUNDRED_PER_S), 10);
        assert_eq!(b.at(&HUNDRED_PER_S, 10).allows(), 1);
        assert_eq!(b.at(&HUNDRED_PER_S, 505).allows(), 50);
        assert_eq!(b.at(&HUNDRED_PER_S, 60_000).allows(), 100);
        let smooth = Rate { burst: None, ..HUNDRED_PER_S };
        assert_eq!(Bucket::full(&smooth, 0).allows(), 10, "a tenth of max by default");
        assert_eq!(Bucket::full(&smooth, 0).spend(10).at(&smooth, 60_000).allows(), 10);
        assert_eq!(Rate { max: 5, per_ms: 60_000, burst: None }.capacity(), 1);
    }

    #[test]
    fn a_clock_going_back_refills_nothing() {
        let b = Bucket { tokens: 3.5, refilled_at: 1000 };
        let back = b.at(&HUNDRED_PER_S, 500);
        assert_eq!(back.allows(), 3);
        assert_eq!(back.refilled_at, 1000);
    }

    #[test]
    fn huge_rates_and_long_gaps_stay_finite() {
        let rate = Rate { max: MAX_RATE, per_ms: 1, burst: Some(MAX_RATE) };
        let b = Bucket { tokens: 0.0, refilled_at: i64::MIN }.at(&rate, i64::MAX);
        assert_eq!(b.allows(), MAX_RATE);
        let slow = Rate { max: 1, per_ms: MAX_RATE_WINDOW_MS, burst: None };
        assert_eq!(Bucket::full(&slow, 0).spend(1).wait_ms(&slow), MAX_RATE_WINDOW_MS);
    }

    #[test]
    fn limits_name_the_field_out_of_range() {
        let bad = QueueLimits { concurrency: None, rate: Some(Rate { max: 0, per_ms: 1000, burst: None }) };
        assert!(bad.validate().unwrap_err().contains("rate.max"));
        let bad = QueueLimits { concurrency: Some(1), rate: Some(Rate { max: 1, per_ms: 0, burst: None }) };
        assert!(bad.validate().unwrap_err().contains("rate.per_ms"));
        let bad = QueueLimits { concurrency: None, rate: Some(Rate { max: 5, per_ms: 1, burst: Some(6) }) };
        assert!(bad.validate().unwrap_err().contains("rate.burst"));
        assert!(QueueLimits::default().validate().is_ok());
        assert!(!QueueLimits::default().any());
    }
}
