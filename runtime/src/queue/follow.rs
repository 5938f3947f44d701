//! Following one job for one request: its status, attempt and progress, pushed
//! by this node through [`JobEvents`] and read narrowly from the store
//! (`job_watch`: no payload, result or logs) only when a push says "changed"
//! and on a slow fallback poll, which is how changes made by other nodes
//! sharing the database arrive.

use std::collections::VecDeque;
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
    /// Publications taken but not yet applied: the view moves one change at
    /// a time, so a request that reports each change (the event stream)
    /// misses none of them.
    pending: VecDeque<Step>,
    poll: Duration,
}

/// One change for the view to take, in order.
enum Step {
    /// A publication of this node.
    Push(News),
    /// The store's answer, taken as it is.
    Read(JobWatch),
    /// The store's answer behind pushes that arrived while it was read:
    /// taken only if it is a later phase than they showed.
    ReadBehind(JobWatch),
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
        Ok(Follow {
            watcher,
            store,
            tenant: tenant.clone(),
            id: id.to_string(),
            view,
            pending: VecDeque::new(),
            poll,
        })
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
    /// Changes this node published are taken one at a time, in order.
    pub async fn changed(&mut self, deadline: Option<Instant>) -> StoreResult<bool> {
        let before = self.view.clone();
        let mut next_poll = Instant::now() + self.poll;
        loop {
            while let Some(step) = self.pending.pop_front() {
                match step {
                    Step::Push(News::State(state)) => self.apply(state),
                    Step::Push(News::Reread) => self.read().await?,
                    Step::Read(state) => self.view = state,
                    // Pushes that arrived during the read are at least as
                    // new as it: it only moves the view to a later phase (it
                    // must not take progress back, e.g. 100% -> 60%).
                    Step::ReadBehind(state) => {
                        if rank(&state) > rank(&self.view) {
                            self.apply(state)
                        }
                    }
                }
                if self.view != before {
                    return Ok(true);
                }
            }
            let wake = deadline.map_or(next_poll, |d| d.min(next_poll));
            tokio::select! {
                biased;
                news = self.watcher.next() => self.pending.extend(news.into_iter().map(Step::Push)),
                () = tokio::time::sleep_until(wake) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(false);
                    }
                    self.read().await?;
                    next_poll = Instant::now() + self.poll;
                }
            }
        }
    }

    /// Reads the job from the store, to be taken after the pushes pending or
    /// arrived during the read: they were published under
    /// [`JobEvents::in_order`] before any later change was committed, so none
    /// is newer than the read, and the read must not hide them (a rescue's
    /// `queued` read after the next claim's `running`).
    async fn read(&mut self) -> StoreResult<()> {
        let state = self.store.job_watch(&self.tenant, &self.id).await?;
        self.pending.extend(self.watcher.try_next().into_iter().map(Step::Push));
        if self.pending.is_empty() {
            // Taken as it is (a retry moves a job back to attempt 0).
            self.pending.push_back(Step::Read(state));
        } else {
            self.pending.push_back(Step::ReadBehind(state));
        }
        Ok(())
    }

    /// Takes a pushed state unless it is older than the view. Pushes come
    /// after their writes, but a progress push can land after the completion
    /// of its attempt; the store's answer is taken as it is. A push without
    /// progress keeps the attempt's progress, as the store does.
    fn apply(&mut self, mut state: JobWatch) {
        if rank(&state) >= rank(&self.view) {
            if state.progress.is_none() && state.attempt == self.view.attempt {
                state.progress = self.view.progress.take();
            }
            self.view = state;
        }
    }
}

/// Order of a job's states: by attempt, then waiting < running < ended (a
/// failed attempt waiting for its retry counts as ended, and so does a job
/// waiting again after a started attempt: it was requeued when its worker
/// stopped renewing the lease).
fn rank(w: &JobWatch) -> (u32, u8) {
    let phase = match w.status {
        JobStatus::Queued | JobStatus::Scheduled if w.attempt == 0 => 0,
        JobStatus::Running => 1,
        _ => 2,
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
        // Requeued after its lease lapsed: attempt 1 ended, attempt 2 follows.
        assert!(rank(&w(JobStatus::Queued, 1)) > rank(&w(JobStatus::Running, 1)));
        assert!(rank(&w(JobStatus::Running, 2)) > rank(&w(JobStatus::Queued, 1)));
    }
}
