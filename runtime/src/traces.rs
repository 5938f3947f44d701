//! OpenTelemetry traces of a job's life, exported over OTLP/HTTP (protobuf)
//! when `--otlp-endpoint` names a collector, and off otherwise.
//!
//! One trace per dispatch request: its server span `wasmq.dispatch` (a child
//! of the request's `traceparent`, when it has one) is the parent of every
//! job the request created. Each job then adds, per attempt, `wasmq.claim`
//! (due until claimed), `wasmq.run` (the plugin's run on the node that
//! claimed it, with its outcome, fuel and attempt), `wasmq.complete` (until
//! the outcome is stored), and per callback delivery `wasmq.callback`, whose
//! request carries the span as its `traceparent`: the receiver (another
//! wasmq's dispatch, for submit/response) continues the same trace.
//!
//! The job's parent travels with the job as its W3C trace context (the
//! `trace` column: the `traceparent`, and the `tracestate` vendors keep
//! there, see [`Parent::trace`]), so a job claimed by another node, retried
//! or delivered later stays in its trace, and a caller's `tracestate` comes
//! back on the job's callbacks. Spans after the dispatch are built from the times the
//! queue recorded, when the step is over: no span stays open across tasks.
//!
//! With traces off nothing is built, and a `traceparent` a client sent is
//! kept as it is and passed on to the job's callbacks, so a trace crosses a
//! wasmq that exports nothing.
//!
//! Why these crates: `opentelemetry-otlp` speaks the protocol every collector
//! takes (Jaeger, Tempo, Honeycomb, the OpenTelemetry Collector) and the SDK
//! batches spans on its own thread, dropping rather than blocking when the
//! collector is slow. It sends through our `reqwest` (one HTTP stack, one TLS
//! setup); gRPC is left out, which would bring `tonic` into the build.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Tracer};

use crate::domain::JobStatus;

/// The W3C header a trace travels in.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header vendors keep their own trace state in.
pub const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` kept (what W3C Trace Context asks every platform
/// to pass on at least): past it, whole entries are dropped from its end,
/// the oldest, as the specification has it.
const MAX_TRACESTATE: usize = 512;

/// A request's trace context as a job stores it (see [`Parent::trace`]):
/// its one `traceparent` header (two of them are no context) and its
/// `tracestate` headers, joined as W3C Trace Context joins several. `None`
/// without a `traceparent`. Validated later, by [`Parent::parse`].
pub fn incoming(headers: &http::HeaderMap) -> Option<String> {
    let mut parents = headers.get_all(TRACEPARENT).iter();
    let traceparent = parents.next()?.to_str().ok()?;
    if parents.next().is_some() {
        return None;
    }
    let states: Vec<&str> = headers.get_all(TRACESTATE).iter().filter_map(|v| v.to_str().ok()).collect();
    let state = states.join(",");
    Some(join(traceparent, &state))
}

/// `traceparent`, then a newline and `tracestate` when it says anything (a
/// newline never occurs in a header value).
fn join(traceparent: &str, tracestate: &str) -> String {
    if tracestate.trim().is_empty() {
        traceparent.to_string()
    } else {
        format!("{traceparent}\n{tracestate}")
    }
}

/// What [`join`] joined: the `traceparent` and the `tracestate` (empty: none).
fn split(trace: &str) -> (&str, &str) {
    trace.split_once('\n').unwrap_or((trace, ""))
}

/// Where and how this node exports traces.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The collector's OTLP/HTTP base URL (`None`: off); spans go to
    /// `<endpoint>/v1/traces`.
    pub endpoint: Option<String>,
    /// Share of new traces kept, 0 to 1 (a dispatch with a `traceparent`
    /// follows its caller's decision).
    pub sample_ratio: f64,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self { endpoint: None, sample_ratio: 1.0 }
    }
}

/// This node's tracer; cheap to clone. [`Traces::off`] builds nothing.
#[derive(Clone, Default)]
pub struct Traces {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    provider: SdkTracerProvider,
    tracer: Tracer,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.inner.is_some() { "Traces(on)" } else { "Traces(off)" })
    }
}

impl Traces {
    /// No export: only `traceparent`s clients sent are passed on.
    pub fn off() -> Self {
        Self::default()
    }

    /// Exports to `settings.endpoint` (if any) as service `wasmq`, instance
    /// `node`. Must be called inside the Tokio runtime the exports use.
    pub fn start(settings: &TraceSettings, node: &str) -> anyhow::Result<Self> {
        let Some(endpoint) = &settings.endpoint else { return Ok(Self::off()) };
        let client = Exporting {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| anyhow::anyhow!("building the OTLP client: {e}"))?,
            runtime: tokio::runtime::Handle::current(),
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(traces_url(endpoint))
            .build()
            .map_err(|e| anyhow::anyhow!("otlp_endpoint {endpoint:?}: {e}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("wasmq")
            .with_attributes([
                KeyValue::new("service.instance.id", node.to_string()),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            ])
            .build();
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("wasmq");
        Ok(Self { inner: Some(Arc::new(Inner { provider, tracer })) })
    }

    /// Whether spans are exported.
    pub fn on(&self) -> bool {
        self.inner.is_some()
    }

    /// Exports what is left and stops; blocks (call it off the async threads).
    pub fn shutdown(&self) {
        if let Some(inner) = &self.inner
            && let Err(e) = inner.provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(error = %e, "exporting the last traces failed");
        }
    }

    /// Starts the span of a dispatch request (`route`, as the router names
    /// it) under the request's trace context ([`incoming`]), if any.
    pub fn dispatch(&self, incoming: Option<&str>, route: &'static str) -> Dispatch {
        let parent = incoming.and_then(Parent::parse);
        let Some(inner) = &self.inner else {
            return Dispatch { span: None, trace: parent.map(|p| p.trace()) };
        };
        let cx = parent.map_or_else(Context::new, |p| p.0);
        let span = inner
            .tracer
            .span_builder("wasmq.dispatch")
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("http.route", route),
            ])
            .start_with_context(&inner.tracer, &cx);
        let trace = Some(header_of(&span));
        Dispatch { span: Some(span), trace }
    }

    /// Starts the span of a schedule's firing (`wasmq.schedule`), the root
    /// of the trace of the jobs it makes.
    pub fn schedule(&self, name: &str) -> Dispatch {
        let Some(inner) = &self.inner else { return Dispatch { span: None, trace: None } };
        let span = inner
            .tracer
            .span_builder("wasmq.schedule")
            .with_kind(SpanKind::Internal)
            .with_attributes([KeyValue::new("wasmq.schedule", name.to_string())])
            .start_with_context(&inner.tracer, &Context::new());
        let trace = Some(header_of(&span));
        Dispatch { span: Some(span), trace }
    }

    /// The parent of a job's spans, from its stored trace context; `None`
    /// when traces are off, the job has none, or its trace was not sampled
    /// (its spans would all be dropped: none is built).
    pub fn parent(&self, trace: Option<&str>) -> Option<Parent> {
        self.inner.as_ref()?;
        Parent::parse(trace?).filter(Parent::sampled)
    }

    /// `wasmq.claim` and `wasmq.run` of an attempt that ended as `status`
    /// (`error`: kind and message): due at `due_ms`, claimed at
    /// `claimed_ms` (unix ms, as stored), run during `run`.
    pub fn attempt(
        &self,
        parent: &Parent,
        job: &JobSpan<'_>,
        (due_ms, claimed_ms): (i64, i64),
        run: Range<SystemTime>,
        status: JobStatus,
        error: Option<&(String, String)>,
    ) {
        let Some(inner) = &self.inner else { return };
        let claim = job.attributes(&[]);
        let mut span = inner
            .tracer
            .span_builder("wasmq.claim")
            .with_kind(SpanKind::Consumer)
            .with_start_time(at(due_ms.min(claimed_ms)))
            .with_attributes(claim)
            .start_with_context(&inner.tracer, &parent.0);
        span.end_with_timestamp(at(claimed_ms));
        let outcome = [
            KeyValue::new("wasmq.job.status", status.as_str()),
            KeyValue::new("wasmq.job.fuel_used", job.fuel_used.min(i64::MAX as u64) as i64),
        ];
        let mut span = inner
            .tracer
            .span_builder("wasmq.run")
            .with_kind(SpanKind::Internal)
            .with_start_time(run.start)
            .with_attributes(job.attributes(&outcome))
            .start_with_context(&inner.tracer, &parent.0);
        if let Some((kind, message)) = error {
            span.set_attribute(KeyValue::new("error.type", kind.clone()));
            span.set_status(Status::error(message.clone()));
        }
        span.end_with_timestamp(run.end);
    }

    /// `wasmq.complete`: the attempt's outcome waited from `ended` (its
    /// run's end) until its transaction committed (now).
    pub fn completed(&self, parent: &Parent, job_id: &str, attempt: u32, ended: SystemTime) {
        let Some(inner) = &self.inner else { return };
        let mut span = inner
            .tracer
            .span_builder("wasmq.complete")
            .with_kind(SpanKind::Internal)
            .with_start_time(ended)
            .with_attributes([
                KeyValue::new("wasmq.job.id", job_id.to_string()),
                KeyValue::new("wasmq.job.attempt", i64::from(attempt)),
            ])
            .start_with_context(&inner.tracer, &parent.0);
        span.end();
    }

    /// Starts the span of one callback delivery to `url` under the `trace`
    /// of the job or batch it reports (`of`: the attribute naming it and its
    /// id, `wasmq.job.id` or `wasmq.batch.id`). Its [`Delivery::traceparent`]
    /// and [`Delivery::tracestate`] go on the request; with traces off those
    /// are `trace`'s, passed on.
    pub fn callback(
        &self,
        trace: Option<&str>,
        (key, id): (&'static str, &str),
        url: &url::Url,
        attempt: u32,
    ) -> Delivery {
        let Some(inner) = &self.inner else {
            return Delivery { span: None, trace: trace.and_then(Parent::parse).map(|p| p.trace()) };
        };
        let Some(parent) = trace.and_then(Parent::parse) else {
            return Delivery { span: None, trace: None };
        };
        if !parent.sampled() {
            // Passed on as it is: the receiver keeps the caller's decision.
            return Delivery { span: None, trace: Some(parent.trace()) };
        }
        let mut attributes = vec![
            KeyValue::new(key, id.to_string()),
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("url.full", redacted(url)),
            KeyValue::new("wasmq.callback.attempt", i64::from(attempt)),
        ];
        if let Some(host) = url.host_str() {
            attributes.push(KeyValue::new("server.address", host.to_string()));
        }
        let span = inner
            .tracer
            .span_builder("wasmq.callback")
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&inner.tracer, &parent.0);
        let trace = Some(header_of(&span));
        Delivery { span: Some(span), trace }
    }
}

/// What a job's spans name it by.
pub struct JobSpan<'a> {
    /// Job id.
    pub id: &'a str,
    /// Alias it was dispatched to.
    pub alias: &'a str,
    /// Queue.
    pub queue: &'a str,
    /// Owner.
    pub tenant: &'a str,
    /// The attempt.
    pub attempt: u32,
    /// This node's name.
    pub node: &'a str,
    /// Fuel the attempt used.
    pub fuel_used: u64,
}

impl JobSpan<'_> {
    fn attributes(&self, more: &[KeyValue]) -> Vec<KeyValue> {
        let mut a = vec![
            KeyValue::new("wasmq.job.id", self.id.to_string()),
            KeyValue::new("wasmq.alias", self.alias.to_string()),
            KeyValue::new("wasmq.queue", self.queue.to_string()),
            KeyValue::new("wasmq.tenant", self.tenant.to_string()),
            KeyValue::new("wasmq.job.attempt", i64::from(self.attempt)),
            KeyValue::new("wasmq.node", self.node.to_string()),
        ];
        a.extend_from_slice(more);
        a
    }
}

/// A parsed trace context: the parent of a job's spans.
#[derive(Clone, Debug)]
pub struct Parent(Context);

impl Parent {
    /// `None` unless `trace` (as [`Parent::trace`] writes it) starts with a
    /// valid W3C `traceparent`; a `tracestate` after it that is not valid is
    /// dropped and the `traceparent` kept, as W3C Trace Context says.
    pub fn parse(trace: &str) -> Option<Parent> {
        let (traceparent, tracestate) = split(trace);
        let mut carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
        if !tracestate.is_empty() {
            carrier.insert(TRACESTATE.to_string(), tracestate.to_string());
        }
        let cx = TraceContextPropagator::new().extract(&carrier);
        cx.span().span_context().is_valid().then_some(Parent(cx))
    }

    /// Whether its trace is sampled (its spans are recorded).
    fn sampled(&self) -> bool {
        self.0.span().span_context().is_sampled()
    }

    /// The context, normalized, as a job stores it: the `traceparent`, then,
    /// when the caller's vendors keep state in it, a newline and the
    /// `tracestate` (at most 512 bytes of it).
    pub fn trace(&self) -> String {
        format(&self.0)
    }
}

/// A dispatch request's span (ended when dropped or by [`Dispatch::end`])
/// and the trace context its jobs store.
pub struct Dispatch {
    span: Option<opentelemetry_sdk::trace::Span>,
    trace: Option<String>,
}

impl Dispatch {
    /// What the request's jobs store as their parent (`None`: untraced).
    pub fn trace(&self) -> Option<&str> {
        self.trace.as_deref()
    }

    /// Ends the span: `jobs` were created (the first job's id as an
    /// attribute when there is one job), or the request failed with `error`.
    pub fn end(mut self, jobs: &[&str], error: Option<(u16, &str)>) {
        let Some(span) = &mut self.span else { return };
        span.set_attribute(KeyValue::new("wasmq.jobs", jobs.len() as i64));
        if let [one] = jobs {
            span.set_attribute(KeyValue::new("wasmq.job.id", one.to_string()));
        }
        if let Some((status, message)) = error {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
            if status >= 500 {
                span.set_status(Status::error(message.to_string()));
            }
        }
        span.end();
    }
}

/// One callback delivery's span.
pub struct Delivery {
    span: Option<opentelemetry_sdk::trace::Span>,
    /// The context it sends, as [`Parent::trace`] writes it.
    trace: Option<String>,
}

impl Delivery {
    /// The `traceparent` header the delivery sends, if any.
    pub fn traceparent(&self) -> Option<&str> {
        self.trace.as_deref().map(|t| split(t).0)
    }

    /// The `tracestate` header it sends with it, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.trace.as_deref().map(|t| split(t).1).filter(|state| !state.is_empty())
    }

    /// Ends the span: delivered, or failed with `error`.
    pub fn end(mut self, error: Option<&str>) {
        let Some(span) = &mut self.span else { return };
        match error {
            Some(error) => span.set_status(Status::error(error.to_string())),
            None => span.set_status(Status::Ok),
        }
        span.end();
    }
}

/// `<endpoint>/v1/traces`, as OTLP's `OTEL_EXPORTER_OTLP_ENDPOINT` means it.
fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

/// The context (as [`Parent::trace`] writes it) that makes `span` the
/// parent; a span keeps its parent's `tracestate`.
fn header_of(span: &opentelemetry_sdk::trace::Span) -> String {
    format(&Context::new().with_remote_span_context(span.span_context().clone()))
}

fn format(cx: &Context) -> String {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    let traceparent = carrier.remove(TRACEPARENT).unwrap_or_default();
    let mut tracestate = carrier.remove(TRACESTATE).unwrap_or_default();
    while tracestate.len() > MAX_TRACESTATE {
        tracestate.truncate(tracestate.rfind(',').unwrap_or(0));
    }
    join(&traceparent, &tracestate)
}

/// The URL without credentials, query or fragment: those may hold secrets.
fn redacted(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn at(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// The SDK's exports sent through our `reqwest` client. The SDK exports from
/// its own thread; each request runs on the server's runtime.
#[derive(Debug)]
struct Exporting {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Exporting {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            // The collector's answer is small (a partial-success note).
            let body = response.bytes().await?;
            Ok::<_, opentelemetry_http::HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_parsed_normalized_and_refused_when_invalid() {
        let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(Parent::parse(header).unwrap().trace(), header);
        for bad in [
            "",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        ] {
            assert!(Parent::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_tracestate_is_kept_with_its_traceparent_dropped_when_invalid_and_cut_at_512_bytes() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let trace = format!("{parent}\nrojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        assert_eq!(Parent::parse(&trace).unwrap().trace(), trace);
        assert_eq!(Parent::parse(&format!("{parent}\nnot a state")).unwrap().trace(), parent);
        assert!(Parent::parse("garbage\nrojo=1").is_none());
        // 32 entries of 20 bytes: whole entries go from the end until it fits.
        let long: Vec<String> = (0..32).map(|i| format!("vendor{i:02}=0123456789ab")).collect();
        let kept = Parent::parse(&format!("{parent}\n{}", long.join(","))).unwrap().trace();
        let (_, state) = kept.split_once('\n').unwrap();
        assert!(state.len() <= MAX_TRACESTATE, "{}", state.len());
        assert_eq!(state, long[..state.split(',').count()].join(","));
        assert!(state.split(',').count() >= 20, "{state}");
    }

    #[test]
    fn a_requests_context_is_its_one_traceparent_and_its_tracestates_joined() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut headers = http::HeaderMap::new();
        assert_eq!(incoming(&headers), None);
        headers.append(TRACESTATE, "rojo=1".parse().unwrap());
        assert_eq!(incoming(&headers), None, "no traceparent, no context");
        headers.append(TRACEPARENT, parent.parse().unwrap());
        headers.append(TRACESTATE, "congo=2".parse().unwrap());
        assert_eq!(incoming(&headers).unwrap(), format!("{parent}\nrojo=1,congo=2"));
        headers.append(TRACEPARENT, parent.parse().unwrap());
        assert_eq!(incoming(&headers), None, "two traceparents are none");
    }

    #[test]
    fn with_traces_off_a_callers_traceparent_is_passed_on_and_nothing_else() {
        let off = Traces::off();
        let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let dispatch = off.dispatch(Some(header), "/v1/jobs");
        assert_eq!(dispatch.trace(), Some(header));
        assert_eq!(off.dispatch(Some("garbage"), "/v1/jobs").trace(), None);
        assert_eq!(off.dispatch(None, "/v1/jobs").trace(), None);
        assert!(off.parent(Some(header)).is_none(), "no spans are built");
        let url = url::Url::parse("http://example.com/hook").unwrap();
        assert_eq!(off.callback(Some(header), ("wasmq.job.id", "j"), &url, 1).traceparent(), Some(header));
        assert_eq!(off.callback(None, ("wasmq.job.id", "j"), &url, 1).traceparent(), None);
        let with_state = format!("{header}\nrojo=00f067aa0ba902b7");
        let delivery = off.callback(Some(&with_state), ("wasmq.job.id", "j"), &url, 1);
        assert_eq!(
            (delivery.traceparent(), delivery.tracestate()),
            (Some(header), Some("rojo=00f067aa0ba902b7"))
        );
    }

    #[tokio::test]
    async fn an_unsampled_trace_builds_no_span_but_still_travels() {
        let settings = TraceSettings { endpoint: Some("http://127.0.0.1:9".into()), sample_ratio: 0.0 };
        let on = Traces::start(&settings, "node-test").unwrap();
        let dispatch = on.dispatch(None, "/v1/jobs");
        let trace = dispatch.trace().expect("a new trace, not sampled").to_string();
        assert!(trace.starts_with("00-") && trace.ends_with("-00"), "{trace}");
        dispatch.end(&["j"], None);
        assert!(on.parent(Some(&trace)).is_none(), "no span is built under it");
        let url = url::Url::parse("http://example.com/hook").unwrap();
        assert_eq!(
            on.callback(Some(&trace), ("wasmq.job.id", "j"), &url, 1).traceparent(),
            Some(trace.as_str())
        );
        // A caller's sampled trace is followed whatever the ratio.
        let sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let followed = on.dispatch(Some(sampled), "/v1/jobs");
        let child = followed.trace().unwrap().to_string();
        assert!(
            child.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && child.ends_with("-01"),
            "{child}"
        );
        assert!(on.parent(Some(&child)).is_some());
        followed.end(&[], Some((400, "bad")));
        let shut = on.clone();
        tokio::task::spawn_blocking(move || shut.shutdown()).await.unwrap();
    }

    #[test]
    fn the_endpoint_gets_the_traces_path_and_urls_lose_their_secrets() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        let u = url::Url::parse("https://user:pw@example.com/hook?token=s#f").unwrap();
        assert_eq!(redacted(&u), "https://example.com/hook");
    }
}
