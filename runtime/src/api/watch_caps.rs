//! Caps on the requests that stay open while they watch a job: `wait`
//! long-polls and event streams. Each holds a connection, a task and a
//! registration for as long as it lasts, so their number is bounded per node
//! and per tenant on the node. Past the server's cap the answer is 503
//! `at_capacity` naming the setting; past the tenant's quota (`max_waits`,
//! `max_event_streams`) 429 `quota_exceeded` naming it, so one tenant holding
//! its share open does not touch another. Both carry `Retry-After`, and a
//! slot frees the moment a request ends.

use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{ApiError, ApiResult};
use crate::domain::TenantId;

/// One cap: a semaphore and the setting it comes from.
struct Cap {
    slots: Arc<Semaphore>,
    max: usize,
    what: &'static str,
    setting: &'static str,
}

impl Cap {
    fn new(max: usize, what: &'static str, setting: &'static str) -> Self {
        let max = max.min(Semaphore::MAX_PERMITS);
        Self { slots: Arc::new(Semaphore::new(max)), max, what, setting }
    }

    fn admit(&self) -> ApiResult<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            ApiError::at_capacity(format!(
                "too many concurrent {}: the limit is {} ({}); retry later",
                self.what, self.max, self.setting
            ))
        })
    }

    fn in_use(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

/// Which kind of watch a slot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Wait,
    Stream,
}

/// Slots in use per tenant and kind.
type TenantCounts = Arc<Mutex<HashMap<(TenantId, Kind), u64>>>;

/// One open watch: its server slot and its tenant's, both freed on drop.
#[derive(Debug)]
pub struct WatchSlot {
    _server: OwnedSemaphorePermit,
    /// `None` for the operator's all-tenant stream (no tenant's quota).
    _tenant: Option<TenantSlot>,
}

/// One slot of a tenant's count, given back on drop.
#[derive(Debug)]
struct TenantSlot {
    counts: TenantCounts,
    key: (TenantId, Kind),
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// The caps on concurrent waits and event streams of this node.
pub struct WatchCaps {
    waits: Cap,
    streams: Cap,
    tenants: TenantCounts,
}

impl WatchCaps {
    /// At most `max_waits` waits and `max_streams` event streams at once.
    pub fn new(max_waits: usize, max_streams: usize) -> Self {
        Self {
            waits: Cap::new(max_waits, "waits", "max_waits"),
            streams: Cap::new(max_streams, "event streams", "max_event_streams"),
            tenants: TenantCounts::default(),
        }
    }

    /// A slot for one wait of `tenant` (whose quota is `max`), held until dropped.
    pub(super) fn wait(&self, tenant: &TenantId, max: Option<u64>) -> ApiResult<WatchSlot> {
        self.admit(&self.waits, Kind::Wait, tenant, max)
    }

    /// A slot for one event stream of `tenant` (whose quota is `max`), held until dropped.
    pub(super) fn stream(&self, tenant: &TenantId, max: Option<u64>) -> ApiResult<WatchSlot> {
        self.admit(&self.streams, Kind::Stream, tenant, max)
    }

    fn admit(&self, cap: &Cap, kind: Kind, tenant: &TenantId, max: Option<u64>) -> ApiResult<WatchSlot> {
        let key = (tenant.clone(), kind);
        {
            let mut counts = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
            let open = counts.get(&key).copied().unwrap_or(0);
            if let Some(max) = max
                && open >= max
            {
                let quota = match kind {
                    Kind::Wait => "max_waits",
                    Kind::Stream => "max_event_streams",
                };
                return Err(ApiError::quota_exceeded(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("this tenant has {open} {} open, its {quota} is {max}; retry later", cap.what),
                ));
            }
            *counts.entry(key.clone()).or_default() += 1;
        }
        // Given back however this ends, also when the server's cap refuses.
        let tenant = TenantSlot { counts: self.tenants.clone(), key };
        Ok(WatchSlot { _server: cap.admit()?, _tenant: Some(tenant) })
    }

    /// A slot for one event stream of the operator over every tenant: the
    /// server's cap only.
    pub(super) fn operator_stream(&self) -> ApiResult<WatchSlot> {
        Ok(WatchSlot { _server: self.streams.admit()?, _tenant: None })
    }

    /// Waits and event streams open now.
    pub fn in_use(&self) -> (usize, usize) {
        (self.waits.in_use(), self.streams.in_use())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_refuses_past_its_limit_and_admits_again_when_a_slot_frees() {
        let caps = WatchCaps::new(2, 1);
        let t = TenantId::default_tenant();
        let (a, _b) = (caps.wait(&t, None).unwrap(), caps.wait(&t, None).unwrap());
        let err = caps.wait(&t, None).unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        let _s = caps.stream(&t, None).unwrap();
        assert!(caps.stream(&t, None).is_err());
        assert_eq!(caps.in_use(), (2, 1));
        drop(a);
        assert!(caps.wait(&t, None).is_ok());
    }

    #[test]
    fn a_tenant_at_its_quota_is_refused_while_another_is_admitted() {
        let caps = WatchCaps::new(10, 10);
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let first = caps.stream(&a, Some(1)).unwrap();
        let err = caps.stream(&a, Some(1)).unwrap_err();
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(format!("{err:?}").contains("its max_event_streams is 1"), "{err:?}");
        let _other = caps.stream(&b, Some(1)).unwrap();
        assert!(caps.wait(&a, Some(1)).is_ok(), "waits count apart from streams");
        drop(first);
        assert!(caps.stream(&a, Some(1)).is_ok(), "the slot freed with the request");
        // A refusal by the server's cap leaves no tenant count behind.
        let full = WatchCaps::new(1, 1);
        let _held = full.wait(&b, Some(5)).unwrap();
        assert!(full.wait(&a, Some(1)).is_err());
        assert!(full.tenants.lock().unwrap().get(&(a.clone(), Kind::Wait)).is_none());
    }
}
