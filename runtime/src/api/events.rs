//! `GET /v1/jobs/{id}/events`: a job's life as a server-sent event stream.
//!
//! Events: `status` (`{"status", "attempt"}`) whenever the status or attempt
//! changes, `progress` (`{"percent", "message"}`) whenever the stored progress
//! changes, and a final `end` carrying the whole job (as `GET /v1/jobs/{id}`)
//! once it is terminal; then the stream closes. Progress is stored at most
//! every 250 ms per job, so that is the stream's finest grain.

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::StreamExt;
use futures_util::stream::Stream;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;

use super::{ApiResult, AppState, JobView};

/// How often the stream re-reads the job between end-of-job wake-ups.
const POLL: Duration = Duration::from_millis(200);

/// Streams a job's status, progress and end (`text/event-stream`).
#[utoipa::path(get, path = "/v1/jobs/{id}/events",
    responses((status = 200, content_type = "text/event-stream", description = "status, progress and end events"),
              (status = 404, body = super::error::ErrorBody)))]
pub(super) async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // A missing job is a 404 before the stream starts.
    let first = state.store.job_get(&state.tenant, &id).await?;
    let shutdown = state.shutdown.clone().cancelled_owned();
    // The stream ends when the server shuts down (clients reconnect elsewhere).
    let stream = async_stream(state, id, first).take_until(shutdown);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn async_stream(
    state: AppState,
    id: String,
    first: crate::store::JobRecord,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(
        (state, id, Some(first), None::<(String, u32)>, None::<(u8, String)>, false),
        |(state, id, mut pending, mut status, mut progress, done)| async move {
            if done {
                return None;
            }
            loop {
                let job = match pending.take() {
                    Some(job) => job,
                    None => {
                        let ended = state.queue.events().subscribe(&id);
                        tokio::select! {
                            _ = ended => {}
                            () = tokio::time::sleep(POLL) => {}
                        }
                        match state.store.job_get(&state.tenant, &id).await {
                            Ok(job) => job,
                            // Pruned or unreadable: end the stream.
                            Err(_) => return None,
                        }
                    }
                };
                let now_status = (job.status.as_str().to_string(), job.attempt);
                let now_progress = job.progress.clone();
                let mut events = Vec::new();
                if status.as_ref() != Some(&now_status) {
                    events.push(
                        Event::default()
                            .event("status")
                            .data(json!({"status": now_status.0, "attempt": now_status.1}).to_string()),
                    );
                    status = Some(now_status);
                }
                if let Some((percent, message)) = now_progress.clone()
                    && progress != now_progress
                {
                    events.push(
                        Event::default()
                            .event("progress")
                            .data(json!({"percent": percent, "message": message}).to_string()),
                    );
                    progress = now_progress;
                }
                let terminal = job.status.is_terminal();
                if terminal {
                    let view = JobView::from(job);
                    let data = serde_json::to_string(&view).unwrap_or_else(|e| {
                        tracing::error!(error = %e, job = %view.id, "cannot serialize the job for its end event");
                        json!({"id": view.id, "status": view.status}).to_string()
                    });
                    events.push(Event::default().event("end").data(data));
                }
                if !events.is_empty() {
                    // One item per wake-up: several events joined in order.
                    let item = events.into_iter().map(Ok).collect::<Vec<_>>();
                    return Some((
                        futures_util::stream::iter(item),
                        (state, id, None, status, progress, terminal),
                    ));
                }
            }
        },
    )
    .flatten()
}
