//! OpenTelemetry traces: a job's dispatch, claim, run, completion and
//! callback as spans exported over OTLP/HTTP, one trace across two
//! instances (submit/response), and a caller's `traceparent` passed on by a
//! server that exports nothing.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;

use super::{Options, Receiver, TestApp, spawn_app_with};

/// One exported span, as the collector received it.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    /// `SpanKind` as OTLP numbers it (2 server, 3 client, 5 consumer).
    kind: i32,
    /// 2: error.
    status: i32,
    attributes: HashMap<String, String>,
    /// The exporting node (`service.instance.id`).
    node: String,
}

impl Span {
    fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).map(String::as_str).unwrap_or("")
    }
}

/// Every span in the OTLP requests `collector` received so far.
async fn spans(collector: &Receiver) -> Vec<Span> {
    let mut out = Vec::new();
    let received = *collector.count.lock().unwrap();
    for _ in 0..received {
        let (headers, body) = collector.next_raw().await;
        assert_eq!(headers["content-type"], "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf body");
        for resource in request.resource_spans {
            let node = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.instance.id")
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for s in scope.spans {
                    out.push(Span {
                        trace: hex::encode(&s.trace_id),
                        id: hex::encode(&s.span_id),
                        parent: hex::encode(&s.parent_span_id),
                        name: s.name,
                        kind: s.kind,
                        status: s.status.map_or(0, |st| st.code),
                        attributes: s.attributes.iter().map(|a| (a.key.clone(), text(&a.value))).collect(),
                        node: node.clone(),
                    });
                }
            }
        }
    }
    out
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(n)) => n.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// A server exporting its traces to `collector`.
async fn traced(collector: &Receiver, token: &str) -> TestApp {
    let endpoint = collector.url.trim_end_matches("/hook").to_string();
    spawn_app_with(Options { token: Some(token.into()), ..Options::default() }, move |s| {
        s.traces.endpoint = Some(endpoint);
    })
    .await
}

fn one<'a>(spans: &'a [Span], what: &str, pick: impl Fn(&Span) -> bool) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "one {what} in {spans:#?}");
    found[0]
}

#[tokio::test]
async fn a_job_is_one_trace_from_the_callers_dispatch_across_two_instances() {
    let collector = Receiver::start(0).await;
    let a = traced(&collector, "token-a").await;
    let b = traced(&collector, "token-b").await;
    a.register("collect", "echo").await;
    b.register("echo", "echo").await;
    b.register("fail", "fail").await;

    // The caller's own trace: B's dispatch continues it.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let callback = json!({
        "url": format!("{}/v1/dispatch/collect?context=from-b", a.url),
        "headers": {"authorization": "Bearer token-a"},
    });
    let request = b
        .raw(reqwest::Method::POST, "/v1/jobs")
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({"alias": "echo", "payload": {"q": 42}, "callback": callback}));
    let (status, job) = b.send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(b.wait(&id).await["status"], "succeeded");
    let arrived = loop {
        let (_, page) = a.get("/v1/jobs?context=from-b").await;
        if let Some(j) = page["jobs"].as_array().unwrap().first() {
            break j["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(a.wait(&arrived).await["status"], "succeeded");
    // A failing job: each attempt's run span is an error.
    let failing = b.dispatch("fail", json!({"mode": "retryable"}), json!({"max_attempts": 2})).await;
    let failing = failing["id"].as_str().unwrap().to_string();
    assert_eq!(b.wait(&failing).await["status"], "dead");
    // Stopping a server exports what it still holds.
    let (b_node, a_node) = (node_of(&b).await, node_of(&a).await);
    b.stop().await;
    a.stop().await;
    let spans = spans(&collector).await;

    // On B: the dispatch under the caller's span, then claim, run, complete
    // and callback under the dispatch, all naming the job.
    let dispatch = one(&spans, "B's dispatch", |s| {
        s.name == "wasmq.dispatch" && s.node == b_node && s.attr("wasmq.job.id") == id
    });
    assert_eq!(
        (dispatch.trace.as_str(), dispatch.parent.as_str(), dispatch.kind),
        (caller_trace, caller_span, 2)
    );
    assert_eq!(dispatch.attr("http.route"), "/v1/jobs");
    for name in ["wasmq.claim", "wasmq.run", "wasmq.complete", "wasmq.callback"] {
        let span = one(&spans, name, |s| s.name == name && s.attr("wasmq.job.id") == id);
        assert_eq!(
            (span.trace.as_str(), span.parent.as_str()),
            (caller_trace, dispatch.id.as_str()),
            "{span:?}"
        );
        assert_eq!(span.node, b_node, "{span:?}");
    }
    let run = one(&spans, "B's run", |s| s.name == "wasmq.run" && s.attr("wasmq.job.id") == id);
    assert_eq!(
        (run.attr("wasmq.alias"), run.attr("wasmq.job.status"), run.attr("wasmq.job.attempt")),
        ("echo", "succeeded", "1")
    );
    assert!(run.attr("wasmq.job.fuel_used").parse::<u64>().unwrap() > 0, "{run:?}");
    let delivery =
        one(&spans, "B's callback", |s| s.name == "wasmq.callback" && s.attr("wasmq.job.id") == id);
    assert_eq!(delivery.kind, 3, "a client span");

    // On A: the dispatch B's callback made continues B's callback span, and
    // A's job runs in the same trace.
    let on_a = one(&spans, "A's dispatch", |s| s.name == "wasmq.dispatch" && s.node == a_node);
    assert_eq!((on_a.trace.as_str(), on_a.parent.as_str()), (caller_trace, delivery.id.as_str()));
    assert_eq!(
        (on_a.attr("http.route"), on_a.attr("wasmq.job.id")),
        ("/v1/dispatch/{alias}", arrived.as_str())
    );
    let run_a = one(&spans, "A's run", |s| s.name == "wasmq.run" && s.attr("wasmq.job.id") == arrived);
    assert_eq!(
        (run_a.trace.as_str(), run_a.parent.as_str(), run_a.node.as_str()),
        (caller_trace, on_a.id.as_str(), a_node.as_str())
    );

    // The failing job: a new trace (no traceparent), two attempts, each run an error.
    let runs: Vec<&Span> =
        spans.iter().filter(|s| s.name == "wasmq.run" && s.attr("wasmq.job.id") == failing).collect();
    let mut attempts: Vec<&str> = runs.iter().map(|s| s.attr("wasmq.job.attempt")).collect();
    attempts.sort();
    assert_eq!(attempts, ["1", "2"], "{runs:#?}");
    assert!(runs.iter().all(|s| s.status == 2 && s.attr("error.type") == "plugin_error"), "{runs:#?}");
    assert!(runs.iter().all(|s| s.trace != caller_trace && s.trace == runs[0].trace));
    let statuses: Vec<&str> = runs.iter().map(|s| s.attr("wasmq.job.status")).collect();
    assert!(statuses.contains(&"failed") && statuses.contains(&"dead"), "{statuses:?}");
}

async fn node_of(app: &TestApp) -> String {
    let (_, nodes) = app.get("/v1/nodes").await;
    nodes["nodes"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn without_an_endpoint_a_callers_trace_context_reaches_the_callback_and_bad_ones_do_not() {
    let receiver = Receiver::start(0).await;
    let app = spawn_app_with(Options::default(), |_| {}).await;
    app.register("echo", "echo").await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    // (traceparent, tracestate headers sent) -> (what the callback carries)
    type Case<'a> = (Option<&'a str>, &'a [&'a str], Option<&'a str>, Option<&'a str>);
    let cases: [Case; 6] = [
        (Some(traceparent), &[], Some(traceparent), None),
        (Some(traceparent), &[state], Some(traceparent), Some(state)),
        // Two tracestate headers are one list, in their order.
        (Some(traceparent), &["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"], Some(traceparent), Some(state)),
        // A tracestate that is not one is dropped, the traceparent kept.
        (Some(traceparent), &["no state at all"], Some(traceparent), None),
        (Some("00-zz-00f067aa0ba902b7-01"), &[state], None, None),
        (None, &[state], None, None),
    ];
    for (sent, states, expected, expected_state) in cases {
        let mut request = app
            .raw(reqwest::Method::POST, "/v1/jobs")
            .json(&json!({"alias": "echo", "payload": {}, "callback": {"url": receiver.url}}));
        if let Some(header) = sent {
            request = request.header("traceparent", header);
        }
        for s in states {
            request = request.header("tracestate", *s);
        }
        let (status, job) = app.send(request).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        let (headers, body) = receiver.next().await;
        assert_eq!(body["job_id"], job["id"]);
        let got = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(got("traceparent").as_deref(), expected, "sent {sent:?} {states:?}");
        assert_eq!(got("tracestate").as_deref(), expected_state, "sent {sent:?} {states:?}");
    }
}

#[tokio::test]
async fn a_schedules_firing_is_the_root_of_its_jobs_trace() {
    let collector = Receiver::start(0).await;
    let app = traced(&collector, "token").await;
    app.register("echo", "echo").await;
    let body = json!({"alias": "echo", "payload": {"tick": true}, "every_ms": 1000});
    let (status, made) = app.put("/v1/schedules/tick", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = loop {
        let (_, view) = app.get("/v1/schedules/tick").await;
        if let Some(id) = view["last_job_id"].as_str() {
            break id.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(app.wait(&id).await["status"], "succeeded");
    app.stop().await;
    let spans = spans(&collector).await;
    let run = one(&spans, "the run", |s| s.name == "wasmq.run" && s.attr("wasmq.job.id") == id);
    let root = one(&spans, "its firing", |s| s.id == run.parent);
    assert_eq!(
        (root.name.as_str(), root.attr("wasmq.schedule"), root.parent.as_str()),
        ("wasmq.schedule", "tick", "")
    );
    assert_eq!(root.trace, run.trace);
    assert!(root.attr("wasmq.jobs").parse::<u32>().unwrap() >= 1, "{root:?}");
}

#[tokio::test]
async fn a_batch_callback_continues_the_batchs_dispatch_trace() {
    let collector = Receiver::start(0).await;
    let receiver = Receiver::start(0).await;
    let app = traced(&collector, "token").await;
    app.register("echo", "echo").await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let request = app
        .raw(reqwest::Method::POST, "/v1/batches")
        .header("traceparent", format!("00-{caller_trace}-00f067aa0ba902b7-01"))
        .header("tracestate", "congo=t61rcWkgMzE")
        .json(
            &json!({"jobs": [{"alias": "echo", "payload": {"n": 1}}, {"alias": "echo", "payload": {"n": 2}}],
                      "callback": {"url": receiver.url}}),
        );
    let (status, batch) = app.send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let batch_id = batch["id"].as_str().unwrap().to_string();
    let (headers, body) = receiver.next().await;
    assert_eq!(body["batch_id"], batch_id.as_str());
    let sent = headers["traceparent"].to_str().unwrap().to_string();
    // The caller's vendor state goes on with its trace, through every span.
    assert_eq!(headers["tracestate"].to_str().unwrap(), "congo=t61rcWkgMzE");
    app.stop().await;
    let spans = spans(&collector).await;
    let dispatch = one(&spans, "the batch's dispatch", |s| {
        s.name == "wasmq.dispatch" && s.attr("http.route") == "/v1/batches"
    });
    assert_eq!((dispatch.trace.as_str(), dispatch.attr("wasmq.jobs")), (caller_trace, "2"));
    let delivery = one(&spans, "the batch's callback", |s| {
        s.name == "wasmq.callback" && s.attr("wasmq.batch.id") == batch_id
    });
    assert_eq!((delivery.trace.as_str(), delivery.parent.as_str()), (caller_trace, dispatch.id.as_str()));
    assert_eq!(
        sent,
        format!("00-{caller_trace}-{}-01", delivery.id),
        "the request carries the delivery's span"
    );
    // Both jobs ran under the same dispatch.
    let runs = spans.iter().filter(|s| s.name == "wasmq.run" && s.parent == dispatch.id).count();
    assert_eq!(runs, 2, "{spans:#?}");
}
