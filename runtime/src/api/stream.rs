//! `GET /v1/events`: the node's event stream (see [`crate::bus`]) as
//! server-sent events, filtered and scoped to the caller.
//!
//! Each frame is `id: <id>`, `event: <type>` and `data: <one line of JSON>`
//! (the event's type, time, subject and detail in one flat object). A client
//! that reconnects with `Last-Event-ID` (or `?last_event_id=`, for clients
//! that cannot set headers) resumes after that event if this node still
//! holds it; if it does not (dropped from the bounded history, given by
//! another node or before a restart), the stream starts with a `lagged` event
//! (`{"missed": n}`, or `{"missed": null}` when unknown) and goes on from the
//! oldest event held or from now: the client must re-read what it shows.
//!
//! Scope: a tenant's token sees its tenant's job and batch events; the
//! operator (and, on a server without an operator token, the `default`
//! tenant's admin) sees every tenant's and the `worker.*` and `node.*`
//! events. A comment line every 15 s keeps idle connections open.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::IntoParams;

use super::auth::Caller;
use super::extract::ApiQuery;
use super::{ApiError, ApiResult, AppState};
use crate::bus::{Delivery, Event, Kind, Stamped, Subject, Subscription};
use crate::domain::{Scope, TenantId};

/// A comment line goes out this often (proxies close silent connections).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Most events taken from the ring per write.
const BATCH: usize = 256;

/// `GET /v1/events` filters; all given must match (an empty one is none).
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events of jobs of this alias.
    pub alias: Option<String>,
    /// Only events of jobs in this queue.
    pub queue: Option<String>,
    /// Only events of this job.
    pub job: Option<String>,
    /// Only events of this batch's jobs and its `batch.done`.
    pub batch: Option<String>,
    /// Only these types, comma-separated: names (`job.succeeded`) or
    /// families (`job`, `batch`, `worker`, `node`).
    #[param(
        pattern = r"^((job(\.(queued|started|progress|log|succeeded|failed|dead|cancelled))?|batch(\.done)?|worker(\.(started|stopped))?|node(\.(joined|lost))?)(,(job(\.(queued|started|progress|log|succeeded|failed|dead|cancelled))?|batch(\.done)?|worker(\.(started|stopped))?|node(\.(joined|lost))?))*)?$"
    )]
    pub types: Option<String>,
    /// Resume after this event id (as the `Last-Event-ID` header, which wins).
    pub last_event_id: Option<String>,
    /// End the stream after this many milliseconds, 1..=3600000 (absent:
    /// open until the client leaves or the server shuts down).
    #[param(minimum = 1, maximum = 3_600_000)]
    pub timeout_ms: Option<u64>,
}

/// One server-sent event of the stream, as SSE parsers hand it over.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used: the frames are written by hand
pub struct StreamEvent {
    /// `<incarnation>-<seq>`: pass it back as `Last-Event-ID` to resume
    /// (absent on `lagged`).
    id: Option<String>,
    /// `job.queued`, `job.started`, `job.progress`, `job.log`, `job.succeeded`,
    /// `job.failed`, `job.dead`, `job.cancelled`, `batch.done`, `worker.started`,
    /// `worker.stopped`, `node.joined`, `node.lost`, or `lagged`.
    #[schema(
        pattern = r"^(job\.(queued|started|progress|log|succeeded|failed|dead|cancelled)|batch\.done|worker\.(started|stopped)|node\.(joined|lost)|lagged)$"
    )]
    event: String,
    /// One line of JSON: `{"type", "at", ...}` with the job's `job`, `tenant`,
    /// `alias`, `queue`, `batch`, and what the type adds (`attempt`, `node`,
    /// `percent`, `message`, `level`, `error`, `duration_ms`, `fuel_used`,
    /// `retry_at`, `status`, `run_at`, `reason`); for `lagged`, `{"missed"}`.
    data: String,
}

/// Whose events a stream may carry.
#[derive(Debug, Clone)]
struct Reach {
    /// `None`: every tenant's.
    tenant: Option<TenantId>,
    /// The `worker.*` and `node.*` events too.
    cluster: bool,
}

impl Reach {
    fn of(caller: &Caller, state: &AppState) -> ApiResult<Reach> {
        Ok(match caller {
            Caller::Operator { acting_as } => Reach { tenant: acting_as.clone(), cluster: true },
            Caller::Tenant { tenant, scope } if scope.allows(Scope::Read) => Reach {
                tenant: Some(tenant.clone()),
                cluster: caller.sees_cluster(state.auth.has_operator()),
            },
            Caller::Tenant { scope, .. } => {
                return Err(ApiError::forbidden(format!(
                    "this operation needs a token with scope `read`; this token has `{scope}`"
                )));
            }
        })
    }
}

/// What one stream shows.
struct Filter {
    reach: Reach,
    alias: Option<String>,
    queue: Option<String>,
    job: Option<String>,
    batch: Option<String>,
    /// `None`: every type.
    kinds: Option<Vec<Kind>>,
}

impl Filter {
    fn new(reach: Reach, q: EventQuery) -> ApiResult<Filter> {
        let kinds = match q.types.as_deref() {
            None | Some("") => None,
            Some(list) => Some(parse_kinds(list)?),
        };
        // An empty value is no filter (as from a form left blank).
        let given = |v: Option<String>| v.filter(|v| !v.is_empty());
        Ok(Filter {
            reach,
            alias: given(q.alias),
            queue: given(q.queue),
            job: given(q.job),
            batch: given(q.batch),
            kinds,
        })
    }

    fn shows(&self, e: &Event) -> bool {
        if self.kinds.as_ref().is_some_and(|k| !k.contains(&e.kind)) {
            return false;
        }
        match &e.subject {
            Subject::Job(j) => {
                self.reach.tenant.as_ref().is_none_or(|t| *t == j.tenant)
                    && self.alias.as_ref().is_none_or(|a| *a == j.alias)
                    && self.queue.as_ref().is_none_or(|q| *q == j.queue)
                    && self.job.as_ref().is_none_or(|id| *id == j.id)
                    && self.batch.as_ref().is_none_or(|b| j.batch.as_ref() == Some(b))
            }
            Subject::Batch { tenant, id } => {
                self.reach.tenant.as_ref().is_none_or(|t| t == tenant)
                    && self.alias.is_none()
                    && self.queue.is_none()
                    && self.job.is_none()
                    && self.batch.as_ref().is_none_or(|b| b == id)
            }
            Subject::Node { .. } => {
                self.reach.cluster
                    && self.alias.is_none()
                    && self.queue.is_none()
                    && self.job.is_none()
                    && self.batch.is_none()
            }
        }
    }
}

/// `types`: names or families, comma-separated.
fn parse_kinds(list: &str) -> ApiResult<Vec<Kind>> {
    let mut kinds = Vec::new();
    for name in list.split(',') {
        match Kind::parse(name) {
            Some(kind) => kinds.push(kind),
            None => {
                let family: Vec<Kind> = Kind::ALL
                    .into_iter()
                    .filter(|k| k.as_str().split_once('.').is_some_and(|(f, _)| f == name))
                    .collect();
                if family.is_empty() {
                    let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                    return Err(ApiError::invalid(format!(
                        "types: unknown event type {name:?}; known: {} (or a family: job, batch, worker, node)",
                        known.join(", ")
                    )));
                }
                kinds.extend(family);
            }
        }
    }
    Ok(kinds)
}

/// Streams the node's events (`text/event-stream`), scoped and filtered.
///
/// At most `max_event_streams` (server setting, default 1000) streams, this
/// one and `/v1/jobs/{id}/events` together, are open at once; past that the
/// answer is 503 `at_capacity` with `Retry-After`. A tenant past its own
/// `max_event_streams` quota gets 429 `quota_exceeded`.
#[utoipa::path(get, path = "/v1/events", tag = "jobs", operation_id = "streamEvents", params(EventQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (sent by EventSource on reconnect).")),
    responses((status = 200, content_type = "text/event-stream", body = StreamEvent,
               description = "The events, as server-sent events."),
              (status = 400, body = super::error::ErrorBody), (status = 429, body = super::error::ErrorBody),
              (status = 503, body = super::error::ErrorBody)))]
pub(super) async fn events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiQuery(mut q): ApiQuery<EventQuery>,
) -> ApiResult<Response> {
    let reach = Reach::of(&caller, &state)?;
    let last = headers
        .get("last-event-id")
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| ApiError::invalid("Last-Event-ID must be visible ASCII"))?
        .or(q.last_event_id.take())
        // An empty id is no id (as the SSE specification has it).
        .filter(|id| !id.is_empty());
    let limit = match q.timeout_ms {
        Some(ms) if !(1..=3_600_000).contains(&ms) => {
            return Err(ApiError::invalid(format!("timeout_ms must be between 1 and 3600000, got {ms}")));
        }
        ms => ms.map(Duration::from_millis),
    };
    let filter = Filter::new(reach, q)?;
    let slot = match &filter.reach.tenant {
        Some(tenant) => {
            let quotas = state.quotas.of(state.store.as_ref(), tenant).await?;
            state.watch_caps.stream(tenant, quotas.max_event_streams)?
        }
        None => state.watch_caps.operator_stream()?,
    };
    let bus = state.queue.bus().clone();
    let subscription = bus.subscribe(bus.resume_from(last.as_deref()));
    // Ends when the server shuts down (clients reconnect elsewhere) or the
    // client's time is up.
    let shutdown = state.shutdown.clone().cancelled_owned();
    let end = async move {
        match limit {
            Some(limit) => tokio::select! {
                () = shutdown => {}
                () = tokio::time::sleep(limit) => {}
            },
            None => shutdown.await,
        }
    };
    let open = futures_util::stream::once(async { Ok(Bytes::from_static(b": connected\n\n")) });
    let keep_alive = Box::pin(tokio::time::sleep(KEEP_ALIVE));
    let stream = Stream { bus, subscription, filter, _slot: slot, keep_alive }.into_stream();
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, Body::from_stream(open.chain(stream).take_until(end))).into_response())
}

/// One open stream; dropping it (client gone) frees its slot.
struct Stream {
    bus: crate::bus::Bus,
    subscription: Subscription,
    filter: Filter,
    _slot: super::watch_caps::WatchSlot,
    /// When the next keep-alive comment is due: one timer for the stream's
    /// life, pushed back when it fires (a busy stream sends one too, three
    /// bytes every 15 s), not a timer made and dropped at every wake-up.
    keep_alive: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Stream {
    fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
        futures_util::stream::unfold(self, |mut s| async move {
            loop {
                let delivery = tokio::select! {
                    biased;
                    delivery = s.subscription.next(BATCH) => delivery,
                    () = s.keep_alive.as_mut() => {
                        s.keep_alive.as_mut().reset(tokio::time::Instant::now() + KEEP_ALIVE);
                        return Some((Ok(Bytes::from_static(b":\n\n")), s));
                    }
                };
                let chunk = match delivery {
                    Delivery::Lagged { missed } => {
                        let data = serde_json::json!({ "missed": missed });
                        Bytes::from(format!("event: lagged\ndata: {data}\n\n"))
                    }
                    Delivery::Events(events) => match s.frames(&events) {
                        Some(chunk) => chunk,
                        None => continue, // none of them for this stream
                    },
                };
                return Some((Ok(chunk), s));
            }
        })
    }

    /// The frames of the events this stream shows, as one write.
    fn frames(&self, events: &[std::sync::Arc<Stamped>]) -> Option<Bytes> {
        // Sized once for the lot: an event's JSON and its frame's lines.
        let shown: Vec<&Stamped> =
            events.iter().filter(|e| self.filter.shows(&e.event)).map(|e| &**e).collect();
        let size = shown.iter().map(|e| e.json().len() + 80).sum();
        let mut out = Vec::with_capacity(size);
        for stamped in shown {
            out.extend_from_slice(b"id: ");
            self.bus.write_id(&mut out, stamped.seq);
            out.extend_from_slice(b"\nevent: ");
            out.extend_from_slice(stamped.event.kind.as_str().as_bytes());
            out.extend_from_slice(b"\ndata: ");
            out.extend_from_slice(stamped.json());
            out.extend_from_slice(b"\n\n");
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_take_names_and_families_and_name_what_is_wrong() {
        assert_eq!(parse_kinds("job.succeeded,batch").unwrap(), [Kind::JobSucceeded, Kind::BatchDone]);
        assert!(parse_kinds("job, batch").is_err(), "names as the pattern has them, no spaces");
        assert_eq!(parse_kinds("node").unwrap(), [Kind::NodeJoined, Kind::NodeLost]);
        let e = format!("{:?}", parse_kinds("job.finished").unwrap_err());
        assert!(e.contains("job.finished"), "{e}");
    }
}
