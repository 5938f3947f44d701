//! `GET /v1/jobs/{id}/events`: a job's life as a server-sent event stream.
//!
//! Events: `status` (`{"status", "attempt"}`) whenever the status or attempt
//! changes, `progress` (`{"percent", "message"}`) whenever the progress
//! changes, and a final `end` carrying the whole job (as `GET /v1/jobs/{id}`)
//! once it is terminal; then the stream closes. Each attempt shows one
//! `running` and then one status saying how it ended: `failed` (a retry is
//! due), `queued` (its worker stopped renewing the lease: it runs again), or
//! the job's final status, even when the next attempt starts at once (for
//! changes made on this node; another node's are seen by the slow poll, which
//! may skip intermediate states). A comment line every 15 s
//! keeps idle connections open.
//!
//! While the job runs the stream follows its status and progress only: this
//! node pushes claims, progress, completions and cancels to it, and a slow
//! narrow poll (no payload, result or logs) catches changes made by other
//! nodes. The whole job is read once, for `end`, and that read and its JSON
//! are shared by every stream and wait on the job that ends at the same time;
//! the frames are written by hand (three lines of SSE) so that shared JSON goes
//! to every client without a copy. Progress is stored and pushed at most every
//! 250 ms per job, so that is the stream's finest grain.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use std::convert::Infallible;
use std::time::Duration;

use super::auth::{Read, Tenant};
use super::{ApiError, ApiResult, AppState, JobView};
use crate::domain::TenantId;
use crate::queue::Follow;
use crate::store::JobWatch;

/// One server-sent event of the stream, as SSE parsers hand it over.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used: the frames are written by hand
pub struct JobEvent {
    /// `status`, `progress` or `end`.
    #[schema(value_type = String, pattern = "^(status|progress|end)$")]
    event: &'static str,
    /// JSON, on one line: `{"status", "attempt"}`, `{"percent", "message"}`,
    /// or the whole job (as `GET /v1/jobs/{id}`) for `end`.
    data: String,
}

/// Idle time after which a comment line is sent (proxies close silent connections).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Streams a job's status, progress and end (`text/event-stream`).
///
/// At most `max_event_streams` (server setting, default 1000) streams are open
/// at once; past that the answer is 503 `at_capacity` with `Retry-After`. A
/// tenant past its own `max_event_streams` quota gets 429 `quota_exceeded`.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs", operation_id = "streamJobEvents",
    params(("id" = String, Path, description = "The job's id (a UUIDv7).")),
    responses((status = 200, content_type = "text/event-stream", body = JobEvent,
               description = "`status`, `progress` and a final `end` event with the job, as server-sent events."),
              (status = 404, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody), (status = 503, body = super::error::ErrorBody)))]
pub(super) async fn events(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let quotas = state.quotas.of(state.store.as_ref(), &tenant).await?;
    let slot = state.watch_caps.stream(&tenant, quotas.max_event_streams)?;
    // A missing job is a 404 before the stream starts.
    let follow = state.queue.follow(&tenant, &id).await?;
    // The stream ends when the server shuts down (clients reconnect elsewhere).
    let shutdown = state.shutdown.clone().cancelled_owned();
    let stream = JobStream { state, tenant: tenant.0, id, follow, _slot: slot, shown: None, ended: false };
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, Body::from_stream(stream.into_stream().take_until(shutdown))).into_response())
}

/// The whole job as one line of JSON, read and encoded once for all the
/// watchers of the job that need it now (`follow` must have seen it end).
pub(super) async fn final_job(
    state: &AppState,
    tenant: &TenantId,
    follow: &Follow,
    id: &str,
) -> ApiResult<Bytes> {
    follow
        .shared_end(|| async {
            let job = state.store.job_get(tenant, id).await?;
            JobView::from(job).one_line_json().map_err(ApiError::internal)
        })
        .await
}

/// One open stream. Dropped when the client goes (or after `end`), which
/// unregisters it and frees its slot.
struct JobStream {
    state: AppState,
    tenant: TenantId,
    id: String,
    follow: Follow,
    _slot: super::watch_caps::WatchSlot,
    /// What the client has been shown.
    shown: Option<JobWatch>,
    ended: bool,
}

impl JobStream {
    fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
        futures_util::stream::unfold(self, |mut s| async move {
            loop {
                if s.ended {
                    return None;
                }
                let frames = s.news().await;
                if !frames.is_empty() {
                    // One item per change: its events in order.
                    return Some((futures_util::stream::iter(frames.into_iter().map(Ok)), s));
                }
                match s.follow.changed(Some(tokio::time::Instant::now() + KEEP_ALIVE)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let keep_alive = vec![Bytes::from_static(b":\n\n")];
                        return Some((futures_util::stream::iter(keep_alive.into_iter().map(Ok)), s));
                    }
                    // Pruned or unreadable: end the stream.
                    Err(_) => return None,
                }
            }
        })
        .flatten()
    }

    /// The frames that bring the client from what it was shown to the view.
    async fn news(&mut self) -> Vec<Bytes> {
        let view = self.follow.view().clone();
        let shown = self.shown.replace(view.clone());
        let mut frames = Vec::new();
        if shown.as_ref().map(|s| (s.status, s.attempt)) != Some((view.status, view.attempt)) {
            frames.push(frame("status", json!({"status": view.status, "attempt": view.attempt})));
        }
        if let Some((percent, message)) = &view.progress
            && shown.as_ref().and_then(|s| s.progress.as_ref()) != view.progress.as_ref()
        {
            frames.push(frame("progress", json!({"percent": percent, "message": message})));
        }
        if view.status.is_terminal() {
            self.ended = true;
            match final_job(&self.state, &self.tenant, &self.follow, &self.id).await {
                Ok(job) => frames.extend([
                    Bytes::from_static(b"event: end\ndata: "),
                    job,
                    Bytes::from_static(b"\n\n"),
                ]),
                // Pruned in between, or the store failed (logged): no `end`.
                Err(e) => tracing::debug!(job = %self.id, status = %e.status(), "no `end` event"),
            }
        }
        frames
    }
}

/// One event. `serde_json` escapes line breaks inside strings, so the data is
/// one line.
fn frame(event: &str, data: serde_json::Value) -> Bytes {
    format!("event: {event}\ndata: {data}\n\n").into()
}
