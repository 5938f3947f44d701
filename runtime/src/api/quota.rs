//! Per-tenant quotas at admission: what applies to a tenant (its own quotas
//! over the server's defaults), read through a short cache so a dispatch adds
//! no database round-trip, and the checks that refuse a request past them.
//! Every refusal is `quota_exceeded` naming the quota and its value (see
//! [`ApiError::quota_exceeded`] for the statuses).
//!
//! Where each quota is enforced: `max_fuel`, `max_timeout_ms`,
//! `max_memory_mb`, `max_result_bytes`, `max_log_bytes` in `submit::limits`
//! (the job's stored limits); `max_waiting` in `backpressure`;
//! `dispatch_rate` in `rate`; `max_waits` and `max_event_streams` in
//! `watch_caps`; `max_module_bytes`, `max_module_storage_bytes` and
//! `max_modules` in `modules`; `alias_history` in `aliases`; `max_running` in
//! the claim (fair scheduling).

use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::rate::RateBuckets;
use super::{ApiError, ApiResult};
use crate::domain::{TenantId, TenantQuotas};
use crate::store::{Store, StoreError};

/// How long a tenant's quotas are trusted. A PATCH clears the entry at once
/// on this node; another node applies it within this long.
const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most (cleared whole when full: it only costs lookups).
const MAX_ENTRIES: usize = 10_000;

/// The quotas of every tenant, as they apply now.
pub struct Quotas {
    defaults: TenantQuotas,
    cache: Mutex<Cache>,
    /// Dispatch-rate token buckets, one per tenant that has a rate.
    pub rates: RateBuckets,
}

#[derive(Default)]
struct Cache {
    map: HashMap<TenantId, (Arc<TenantQuotas>, Instant)>,
    /// Counts forgets: a read that began before a PATCH does not cache its
    /// (now stale) answer after it.
    generation: u64,
}

impl Quotas {
    /// `defaults` are the server's settings; `alias_history` (the server's)
    /// is both the default and the ceiling of every tenant's.
    pub fn new(mut defaults: TenantQuotas, alias_history: u32) -> Self {
        defaults.alias_history = Some(alias_history);
        Self { defaults, cache: Mutex::default(), rates: RateBuckets::default() }
    }

    /// What applies to a tenant whose own quotas are `own`.
    pub fn effective(&self, own: &TenantQuotas) -> TenantQuotas {
        let mut q = own.over(&self.defaults);
        q.alias_history = match (own.alias_history, self.defaults.alias_history) {
            (Some(own), Some(server)) => Some(own.min(server)),
            (own, server) => own.or(server),
        };
        q
    }

    /// What applies to `tenant` now: cached for [`TTL`], else read from the
    /// store (a tenant the store does not know gets the defaults).
    pub async fn of(&self, store: &dyn Store, tenant: &TenantId) -> ApiResult<Arc<TenantQuotas>> {
        let generation = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((q, at)) = cache.map.get(tenant)
                && at.elapsed() < TTL
            {
                return Ok(q.clone());
            }
            cache.generation
        };
        let own = match store.tenant_get(tenant).await {
            Ok(record) => record.quotas,
            Err(StoreError::NotFound(_)) => TenantQuotas::default(),
            Err(e) => return Err(e.into()),
        };
        let q = Arc::new(self.effective(&own));
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.generation == generation {
            if cache.map.len() >= MAX_ENTRIES {
                cache.map.clear();
            }
            cache.map.insert(tenant.clone(), (q.clone(), Instant::now()));
        }
        Ok(q)
    }

    /// Forgets what was read of `tenant` (its quotas changed, or it is gone).
    pub fn forget(&self, tenant: &TenantId) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.generation += 1;
        cache.map.remove(tenant);
    }
}

/// A 400 unless `value` (what the job asks, from `source`) is within the
/// tenant's `quota` (e.g. `fuel 5000000000 is over this tenant's max_fuel 1000000000`).
pub(super) fn within(
    field: &str,
    source: &str,
    value: u64,
    quota_name: &str,
    quota: Option<u64>,
) -> ApiResult<()> {
    match quota {
        Some(max) if value > max => Err(ApiError::quota_exceeded(
            StatusCode::BAD_REQUEST,
            format!("{field} {value}{source} is over this tenant's {quota_name} {max}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_alias_history_is_the_default_and_the_ceiling() {
        let quotas = Quotas::new(TenantQuotas { max_fuel: Some(10), ..TenantQuotas::default() }, 50);
        let q = quotas.effective(&TenantQuotas::default());
        assert_eq!((q.max_fuel, q.alias_history), (Some(10), Some(50)));
        let q = quotas.effective(&TenantQuotas { alias_history: Some(500), ..TenantQuotas::default() });
        assert_eq!(q.alias_history, Some(50));
        let q = quotas.effective(&TenantQuotas { alias_history: Some(5), ..TenantQuotas::default() });
        assert_eq!(q.alias_history, Some(5));
    }

    #[test]
    fn a_value_over_its_quota_is_refused_naming_both() {
        assert!(within("fuel", "", 10, "max_fuel", Some(10)).is_ok());
        assert!(within("fuel", "", 11, "max_fuel", None).is_ok());
        let e = within("fuel", " (from alias a)", 11, "max_fuel", Some(10)).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(
            format!("{e:?}").contains("fuel 11 (from alias a) is over this tenant's max_fuel 10"),
            "{e:?}"
        );
    }
}
