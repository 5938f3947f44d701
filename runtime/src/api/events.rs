//! `GET /v1/jobs/{id}/events`: a job's life as a server-sent event stream.
//!
//! Events: `status` (`{"status", "attempt"}`) whenever the status or attempt
//! changes, `progress` (`{"percent", "message"}`) whenever the progress
//! changes, and a final `end` carrying the whole job (as `GET /v1/jobs/{id}`)
//! once it is terminal; then the stream closes.
//!
//! While the job runs the stream follows its status and progress only: this
//! node pushes claims, progress, completions and cancels to it, and a slow
//! narrow poll (no payload, result or logs) catches changes made by other
//! nodes. The whole job is read once, for `end`. Progress is stored and pushed
//! at most every 250 ms per job, so that is the stream's finest grain.

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::StreamExt;
use futures_util::stream::Stream;
use serde_json::json;
use std::convert::Infallible;
use tokio::sync::OwnedSemaphorePermit;

use super::{ApiResult, AppState, JobView};
use crate::queue::Follow;
use crate::store::JobWatch;

/// Streams a job's status, progress and end (`text/event-stream`).
///
/// At most `max_event_streams` (server setting, default 1000) streams are open
/// at once; past that the answer is 503 `at_capacity` with `Retry-After`.
#[utoipa::path(get, path = "/v1/jobs/{id}/events",
    responses((status = 200, content_type = "text/event-stream", description = "status, progress and end events"),
              (status = 404, body = super::error::ErrorBody), (status = 503, body = super::error::ErrorBody)))]
pub(super) async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let slot = state.watch_caps.stream()?;
    // A missing job is a 404 before the stream starts.
    let follow = state.queue.follow(&state.tenant, &id).await?;
    let stream = JobStream { state, id, follow, _slot: slot, shown: None, ended: false };
    Ok(Sse::new(stream.into_stream()).keep_alive(KeepAlive::default()))
}

/// One open stream. Dropped when the client goes (or after `end`), which
/// unregisters it and frees its slot.
struct JobStream {
    state: AppState,
    id: String,
    follow: Follow,
    _slot: OwnedSemaphorePermit,
    /// What the client has been shown.
    shown: Option<JobWatch>,
    ended: bool,
}

impl JobStream {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        futures_util::stream::unfold(self, |mut s| async move {
            loop {
                if s.ended {
                    return None;
                }
                let events = s.news().await;
                if !events.is_empty() {
                    // One item per change: its events joined in order.
                    return Some((futures_util::stream::iter(events.into_iter().map(Ok)), s));
                }
                if s.follow.changed(None).await.is_err() {
                    // Pruned or unreadable: end the stream.
                    return None;
                }
            }
        })
        .flatten()
    }

    /// The events that bring the client from what it was shown to the view.
    async fn news(&mut self) -> Vec<Event> {
        let view = self.follow.view().clone();
        let shown = self.shown.replace(view.clone());
        let mut events = Vec::new();
        if shown.as_ref().map(|s| (s.status, s.attempt)) != Some((view.status, view.attempt)) {
            let data = json!({"status": view.status, "attempt": view.attempt});
            events.push(Event::default().event("status").data(data.to_string()));
        }
        if let Some((percent, message)) = &view.progress
            && shown.as_ref().and_then(|s| s.progress.as_ref()) != view.progress.as_ref()
        {
            let data = json!({"percent": percent, "message": message});
            events.push(Event::default().event("progress").data(data.to_string()));
        }
        if view.status.is_terminal() {
            self.ended = true;
            // The whole job, read once, for the end.
            match self.state.store.job_get(&self.state.tenant, &self.id).await {
                Ok(job) => match serde_json::to_string(&JobView::from(job)) {
                    Ok(data) => events.push(Event::default().event("end").data(data)),
                    Err(e) => {
                        tracing::error!(job = %self.id, error = %e, "could not encode the job for `end`")
                    }
                },
                // Pruned in between: the stream ends without `end`.
                Err(e) => tracing::debug!(job = %self.id, error = %e, "job gone before its `end` event"),
            }
        }
        events
    }
}
