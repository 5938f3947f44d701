//! Backpressure: dispatches are refused with 429 while too many jobs wait.
//!
//! Counting waiting jobs costs a scan of the runnable index, too much for every
//! dispatch, so the count is cached for a short interval and the jobs accepted
//! since are added to it. The limit is therefore approximate (by at most one
//! interval's dispatches on other nodes), which is what backpressure needs.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{ApiError, ApiResult};
use crate::store::Store;

/// How long a counted figure is trusted.
const REFRESH: Duration = Duration::from_millis(250);

/// The queue-depth guard of one server. Its lock is taken over if poisoned
/// (the cached count stays valid), so one panicking request cannot fail later ones.
pub struct Backpressure {
    limit: u64,
    state: Mutex<Option<(Instant, u64)>>,
}

impl Backpressure {
    /// Refuse dispatches once `limit` jobs wait.
    pub fn new(limit: u64) -> Self {
        Self { limit, state: Mutex::new(None) }
    }

    /// Admits `n` new jobs, or answers 429 naming the limit.
    pub async fn admit(&self, store: &dyn Store, n: u64) -> ApiResult<()> {
        let cached = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let waiting = match cached {
            Some((at, count)) if at.elapsed() < REFRESH => count,
            _ => {
                let count = store.job_waiting().await?;
                *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), count));
                count
            }
        };
        if waiting + n > self.limit {
            return Err(ApiError::queue_full(format!(
                "queue is full: {waiting} jobs waiting, the limit is {} (max_queued_jobs); retry later",
                self.limit
            )));
        }
        if let Some((_, count)) = self.state.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            *count += n;
        }
        Ok(())
    }
}
