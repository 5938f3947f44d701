//! Following one job for one request: its status, attempt and progress, pushed
//! by this node through [`JobEvents`] and read narrowly from the store
//! (`job_watch`: no payload, result or logs) only when a push says "changed"
//! and on a slow fallback poll, which is how changes made by other nodes
//! sharing the database arrive.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::events::{JobEvents, News, Watcher};
use crate::domain::{JobStatus, TenantId};
use crate::store::{JobWatch, Store, StoreResult};

/// A request's view of one job; registered with [`JobEvents`] while it lives.
pub struct Follow {
    watcher: Watcher,
    store: Arc<dyn Store>,
    tenant: TenantId,
    id: String,
    view: JobWatch,
    poll: Duration,
}

impl Follow {
    /// Registers, then reads the job's state: a missing job is `NotFound` and
    /// leaves nothing registered.
    pub(super) async fn start(
        events: &JobEvents,
        store: Arc<dyn Store>,
        tenant: &TenantId,
        id: &str,
        poll: Duration,
    ) -> StoreResult<Follow> {
        let watcher = events.watch(id);
        let view = store.job_watch(tenant, id).await?;
        Ok(Follow { watcher, store, tenant: tenant.clone(), id: id.to_string(), view, poll })
    }

    /// The job as last seen.
    pub fn view(&self) -> &JobWatch {
        &self.view
    }

    /// The job's final answer, rendered once for all watchers of the job that
    /// ask at the same time (see [`Watcher::shared_end`]). Only for an ended
    /// job: everyone sharing the rendering must want the same answer.
    pub async fn shared_end<E, F, Fut>(&self, render: F) -> Result<bytes::Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<bytes::Bytes, E>>,
    {
        debug_assert!(self.view.status.is_terminal());
        self.watcher.shared_end(render).await
    }

    /// Waits until the view changes (true) or `deadline` passes (false).
    pub async fn changed(&mut self, deadline: Option<Instant>) -> StoreResult<bool> {
        let before = self.view.clone();
        let mut next_poll = Instant::now() + self.poll;
        loop {
            let wake = deadline.map_or(next_poll, |d| d.min(next_poll));
            tokio::select! {
                news = self.watcher.next() => match news {
                    News::State(state) => self.apply(state),
                    News::Reread(state) => {
                        self.view = self.store.job_watch(&self.tenant, &self.id).await?;
                        if let Some(state) = state {
                            self.apply(state);
                        }
                    }
                },
                () = tokio::time::sleep_until(wake) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(false);
                    }
                    self.view = self.store.job_watch(&self.tenant, &self.id).await?;
                    next_poll = Instant::now() + self.poll;
                }
            }
            if self.view != before {
                return Ok(true);
            }
        }
    }

    /// Takes a pushed state unless it is older than the view. Pushes come
    /// after their writes, but a progress push can land after the completion
    /// of its attempt; the store's answer is taken as it is.
    fn apply(&mut self, state: JobWatch) {
        if rank(&state) >= rank(&self.view) {
            self.view = state;
        }
    }
}

/// Order of a job's states: by attempt, then waiting < running < ended (a
/// failed attempt waiting for its retry counts as ended).
fn rank(w: &JobWatch) -> (u32, u8) {
    let phase = match w.status {
        JobStatus::Queued | JobStatus::Scheduled => 0,
        JobStatus::Running => 1,
        JobStatus::Failed | JobStatus::Succeeded | JobStatus::Dead | JobStatus::Cancelled => 2,
    };
    (w.attempt, phase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(status: JobStatus, attempt: u32) -> JobWatch {
        JobWatch { status, attempt, progress: None }
    }

    #[test]
    fn later_states_rank_higher() {
        assert!(rank(&w(JobStatus::Running, 1)) > rank(&w(JobStatus::Queued, 0)));
        assert!(rank(&w(JobStatus::Failed, 1)) > rank(&w(JobStatus::Running, 1)));
        assert!(rank(&w(JobStatus::Running, 2)) > rank(&w(JobStatus::Failed, 1)));
        assert!(rank(&w(JobStatus::Succeeded, 1)) > rank(&w(JobStatus::Running, 1)));
        assert_eq!(rank(&w(JobStatus::Running, 1)), rank(&w(JobStatus::Running, 1)));
    }
}
