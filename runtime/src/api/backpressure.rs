//! Backpressure: dispatches are refused with 429 while too many jobs wait:
//! per tenant (its `max_waiting` quota: `quota_exceeded`, and other tenants
//! are unaffected) and on the whole server (`max_queued_jobs`: `queue_full`,
//! the database's safety net).
//!
//! Counting waiting jobs costs a scan of an index, too much for every
//! dispatch, so the counts (all tenants in one query) are cached for a short
//! interval and the jobs accepted since are added to them. One request counts
//! at a time (the others use the figures being refreshed), and a count that
//! took long is trusted for longer: with a backlog of a million jobs the scan
//! takes a good part of a second, and must not become the load itself. The limits are
//! therefore approximate (by at most one interval's dispatches on other
//! nodes), which is what backpressure needs. Nothing already queued is ever
//! dropped: only new dispatches are refused.

use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{ApiError, ApiResult};
use crate::domain::TenantId;
use crate::store::Store;

/// How long a counted figure is trusted, at least.
const REFRESH: Duration = Duration::from_millis(250);
/// ... and at least this many times as long as counting it took.
const REFRESH_PER_COST: u32 = 10;

/// Waiting jobs as last counted, plus those admitted since.
struct Counts {
    /// When the figures stop being trusted.
    until: Instant,
    total: u64,
    per_tenant: HashMap<TenantId, u64>,
}

/// The queue-depth guard of one server. Its lock is taken over if poisoned
/// (the cached counts stay valid), so one panicking request cannot fail later ones.
pub struct Backpressure {
    limit: u64,
    state: Mutex<Option<Counts>>,
    /// A request is counting (the others keep the figures they have).
    counting: AtomicBool,
}

impl Backpressure {
    /// Refuse dispatches once `limit` jobs wait on the whole server.
    pub fn new(limit: u64) -> Self {
        Self { limit, state: Mutex::new(None), counting: AtomicBool::new(false) }
    }

    /// Admits `n` new jobs of `tenant`, whose quota is `max_waiting` (`None`:
    /// only the server's limit), or answers 429 naming the limit.
    pub async fn admit(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        max_waiting: Option<u64>,
        n: u64,
    ) -> ApiResult<()> {
        let (fresh, known) = match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(c) => (Instant::now() < c.until, true),
            None => (false, false),
        };
        // The first count is waited for by all; later ones by the one request
        // that takes it on.
        if !fresh && (!known || !self.counting.swap(true, Ordering::AcqRel)) {
            // Released however the count ends, also when the request is
            // dropped mid-count (its client went away): a flag left set would
            // keep every later request on stale figures for good.
            let _counting = Counting(&self.counting);
            let counted = self.count(store).await?;
            *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Some(counted);
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = state.as_mut().ok_or_else(|| ApiError::internal("backpressure counts missing"))?;
        Self::check(self.limit, counts, tenant, max_waiting, n)?;
        counts.total += n;
        *counts.per_tenant.entry(tenant.clone()).or_default() += n;
        Ok(())
    }

    async fn count(&self, store: &dyn Store) -> ApiResult<Counts> {
        let started = Instant::now();
        let per_tenant: HashMap<TenantId, u64> = store.job_waiting().await?.into_iter().collect();
        let total = per_tenant.values().sum();
        let trusted = REFRESH.max(started.elapsed() * REFRESH_PER_COST);
        Ok(Counts { until: Instant::now() + trusted, total, per_tenant })
    }

    fn check(
        limit: u64,
        counts: &Counts,
        tenant: &TenantId,
        max_waiting: Option<u64>,
        n: u64,
    ) -> ApiResult<()> {
        let mine = counts.per_tenant.get(tenant).copied().unwrap_or(0);
        if let Some(max) = max_waiting
            && mine + n > max
        {
            return Err(ApiError::quota_exceeded(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{mine} jobs of this tenant wait to run, its max_waiting is {max}; retry later"),
            ));
        }
        if counts.total + n > limit {
            return Err(ApiError::queue_full(format!(
                "queue is full: {} jobs waiting, the limit is {limit} (max_queued_jobs); retry later",
                counts.total
            )));
        }
        Ok(())
    }
}

/// Clears the `counting` flag when dropped.
struct Counting<'a>(&'a AtomicBool);

impl Drop for Counting<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_tenant_is_refused_while_others_and_the_server_have_room() {
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let counts =
            Counts { until: Instant::now(), total: 10, per_tenant: HashMap::from([(a.clone(), 10)]) };
        let e = Backpressure::check(100, &counts, &a, Some(10), 1).unwrap_err();
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            format!("{e:?}").contains("quota_exceeded") && format!("{e:?}").contains("max_waiting is 10")
        );
        assert!(Backpressure::check(100, &counts, &b, Some(10), 10).is_ok());
        assert!(Backpressure::check(100, &counts, &a, None, 90).is_ok());
        let e = Backpressure::check(100, &counts, &b, None, 91).unwrap_err();
        assert!(format!("{e:?}").contains("max_queued_jobs"), "{e:?}");
    }
}
