//! Dispatch rate per tenant: a token bucket each (`dispatch_rate {per_second,
//! burst}`), kept on this node. A submission takes one token per job (a
//! batch of 50 takes 50); short of tokens the answer is 429 `quota_exceeded`
//! with `Retry-After` in whole seconds (rounded up) until enough have
//! refilled. A submission larger than the burst could never pass: 400.

use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::{ApiError, ApiResult};
use crate::domain::{DispatchRate, TenantId};

/// The buckets of every tenant with a rate.
#[derive(Default)]
pub struct RateBuckets {
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

struct Bucket {
    rate: DispatchRate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * f64::from(self.rate.per_second);
        self.tokens = (self.tokens + gained).min(f64::from(self.rate.burst));
        self.at = now;
    }
}

impl RateBuckets {
    /// Takes `n` tokens of `tenant`'s bucket, or refuses (see the module doc).
    /// `rate` is the tenant's quota now (`None`: unlimited); a changed rate
    /// keeps the tokens saved, up to the new burst.
    pub fn take(&self, tenant: &TenantId, rate: Option<DispatchRate>, n: u64) -> ApiResult<()> {
        self.take_at(tenant, rate, n, Instant::now())
    }

    fn take_at(&self, tenant: &TenantId, rate: Option<DispatchRate>, n: u64, now: Instant) -> ApiResult<()> {
        let Some(rate) = rate else { return Ok(()) };
        if n > u64::from(rate.burst) {
            return Err(ApiError::quota_exceeded(
                StatusCode::BAD_REQUEST,
                format!(
                    "{n} jobs at once is over this tenant's dispatch_rate burst {}; submit at most {} at a time",
                    rate.burst, rate.burst
                ),
            ));
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(tenant.clone()).or_insert_with(|| Bucket {
            rate,
            tokens: f64::from(rate.burst),
            at: now,
        });
        bucket.refill(now);
        if bucket.rate != rate {
            bucket.rate = rate;
            bucket.tokens = bucket.tokens.min(f64::from(rate.burst));
        }
        let wanted = n as f64;
        if bucket.tokens + 1e-9 < wanted {
            let secs = ((wanted - bucket.tokens) / f64::from(rate.per_second)).ceil() as u64;
            return Err(ApiError::quota_exceeded(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "over this tenant's dispatch_rate of {} per second (burst {}); retry in {} s",
                    rate.per_second,
                    rate.burst,
                    secs.max(1)
                ),
            )
            .retry_after(secs));
        }
        bucket.tokens -= wanted;
        Ok(())
    }

    /// Gives back `n` tokens taken for a submission that was refused later
    /// (backpressure), up to the burst.
    pub fn refund(&self, tenant: &TenantId, n: u64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = buckets.get_mut(tenant) {
            b.tokens = (b.tokens + n as f64).min(f64::from(b.rate.burst));
        }
    }

    /// Forgets `tenant`'s bucket (the tenant is gone).
    pub fn forget(&self, tenant: &TenantId) {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner).remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn retry_after(e: ApiError) -> String {
        use axum::response::IntoResponse;
        let response = e.into_response();
        response.headers()["retry-after"].to_str().unwrap().to_string()
    }

    #[test]
    fn a_bucket_spends_its_burst_then_refills_at_its_rate() {
        let buckets = RateBuckets::default();
        let t = TenantId::default_tenant();
        let rate = Some(DispatchRate { per_second: 2, burst: 4 });
        let t0 = Instant::now();
        buckets.take_at(&t, rate, 3, t0).unwrap();
        buckets.take_at(&t, rate, 1, t0).unwrap();
        let e = buckets.take_at(&t, rate, 1, t0).unwrap_err();
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(format!("{e:?}").contains("dispatch_rate of 2 per second (burst 4); retry in 1 s"), "{e:?}");
        assert_eq!(retry_after(e), "1");
        // Three short need 1.5 s: rounded up to 2.
        let e = buckets.take_at(&t, rate, 3, t0).unwrap_err();
        assert!(format!("{e:?}").contains("retry in 2 s"), "{e:?}");
        assert_eq!(retry_after(e), "2");
        buckets.take_at(&t, rate, 1, t0 + Duration::from_millis(500)).unwrap();
        buckets.refund(&t, 10);
        buckets.take_at(&t, rate, 4, t0 + Duration::from_millis(500)).unwrap();
        assert!(buckets.take_at(&t, None, 1_000_000, t0).is_ok(), "no rate: unlimited");
    }

    #[test]
    fn a_submission_over_the_burst_is_a_400_and_a_lower_rate_applies_at_once() {
        let buckets = RateBuckets::default();
        let t = TenantId::default_tenant();
        let t0 = Instant::now();
        let e = buckets.take_at(&t, Some(DispatchRate { per_second: 1, burst: 5 }), 6, t0).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(format!("{e:?}").contains("dispatch_rate burst 5"), "{e:?}");
        buckets.take_at(&t, Some(DispatchRate { per_second: 1, burst: 100 }), 10, t0).unwrap();
        let lower = Some(DispatchRate { per_second: 1, burst: 2 });
        buckets.take_at(&t, lower, 2, t0).unwrap();
        assert!(buckets.take_at(&t, lower, 1, t0).is_err(), "saved tokens are capped by the new burst");
    }
}
