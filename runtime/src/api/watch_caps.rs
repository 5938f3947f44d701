//! Caps on the requests that stay open while they watch a job: `wait`
//! long-polls and event streams. Each holds a connection, a task and a
//! registration for as long as it lasts, so their number is bounded per node;
//! past a cap the answer is 503 `at_capacity` with `Retry-After`, naming the
//! setting, and a slot frees the moment a request ends.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{ApiError, ApiResult};

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

/// The caps on concurrent waits and event streams of this node.
pub struct WatchCaps {
    waits: Cap,
    streams: Cap,
}

impl WatchCaps {
    /// At most `max_waits` waits and `max_streams` event streams at once.
    pub fn new(max_waits: usize, max_streams: usize) -> Self {
        Self {
            waits: Cap::new(max_waits, "waits", "max_waits"),
            streams: Cap::new(max_streams, "event streams", "max_event_streams"),
        }
    }

    /// A slot for one wait, held until the permit is dropped.
    pub(super) fn wait(&self) -> ApiResult<OwnedSemaphorePermit> {
        self.waits.admit()
    }

    /// A slot for one event stream, held until the permit is dropped.
    pub(super) fn stream(&self) -> ApiResult<OwnedSemaphorePermit> {
        self.streams.admit()
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
        let (a, _b) = (caps.wait().unwrap(), caps.wait().unwrap());
        let err = caps.wait().unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let _s = caps.stream().unwrap();
        assert!(caps.stream().is_err());
        assert_eq!(caps.in_use(), (2, 1));
        drop(a);
        assert!(caps.wait().is_ok());
    }
}
