//! Outbound HTTP on the engine: one run per case, checked by its answer and
//! by the requests the outcome records.

use serde_json::{Value, json};
use std::time::Duration;
use wasmq::domain::{
    HttpCall, HttpCeilings, HttpGrant, HttpLimits, HttpUsage, JobInfo, Limits, NetPolicy, Outcome, RunError,
};
use wasmq::sandbox::{CancelToken, Engine, EngineSettings, RunContext};

use super::Upstream;
use crate::support::{err, load, ok_json};

/// An engine whose address policy allows `allow` (e.g. `127.0.0.0/8`).
fn engine_allowing(allow: &str) -> Engine {
    let policy = NetPolicy::new(NetPolicy::parse_allow(allow).unwrap());
    Engine::new(EngineSettings { http_policy: policy, ..EngineSettings::default() }).unwrap()
}

fn granted(hosts: &[&str], limits: Option<HttpLimits>) -> Limits {
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let http = HttpGrant::of_alias(&hosts, limits.as_ref(), &HttpCeilings::default()).unwrap();
    Limits { http, ..Limits::default() }
}

async fn run_as(
    engine: &Engine,
    plugin: &str,
    payload: Value,
    limits: &Limits,
    cancel: CancelToken,
) -> Outcome {
    let plugin = load(engine, plugin).await;
    let ctx = RunContext {
        job: JobInfo { alias: "probe".into(), ..JobInfo::default() },
        cancel,
        ..RunContext::default()
    };
    engine.run(&plugin, &payload.to_string(), limits, ctx).await
}

async fn fetch(engine: &Engine, url: &str, limits: &Limits) -> Outcome {
    run_as(engine, "fetch", json!({ "url": url }), limits, CancelToken::new()).await
}

/// The one recorded request's error, which must name `parts`.
fn refused_with(outcome: &Outcome, parts: &[&str]) -> HttpCall {
    let message = err(outcome).to_string();
    assert!(message.contains("refused by wasmq"), "{message}");
    let call = outcome.http.last().expect("the refused request is recorded").clone();
    let error = call.error.clone().expect("recorded with its reason");
    for part in parts {
        assert!(error.contains(part), "{error:?} should name {part:?}");
    }
    assert_eq!(call.status, None);
    call
}

#[tokio::test]
async fn an_allowed_host_answers_and_the_request_is_recorded() {
    let up = Upstream::start().await;
    let engine = engine_allowing("127.0.0.0/8");
    let outcome = fetch(&engine, &up.url("/hello"), &granted(&[&up.origin()], None)).await;
    assert_eq!(ok_json(&outcome), json!({"status": 200, "content_type": "text/plain", "size": 12}));
    let [call] = outcome.http.as_slice() else { panic!("one request: {:?}", outcome.http) };
    assert_eq!((call.method.as_str(), call.origin.as_str()), ("GET", up.origin().as_str()));
    assert_eq!((call.status, call.error.as_deref(), call.received_bytes), (Some(200), None, 12));
    assert_eq!(outcome.http_usage, HttpUsage { requests: 1, sent_bytes: 0, received_bytes: 12 });

    // `localhost` resolves to 127.0.0.1, which the operator's range allows.
    let url = format!("http://localhost:{}/hello", up.addr.port());
    let limits = granted(&[&format!("http://localhost:{}", up.addr.port())], None);
    assert_eq!(ok_json(&fetch(&engine, &url, &limits).await)["status"], 200);
}

#[tokio::test]
async fn without_a_grant_or_outside_allowed_hosts_a_request_is_refused_before_any_connection() {
    let up = Upstream::start().await;
    let engine = engine_allowing("127.0.0.0/8");
    let url = up.url("/hello");
    let outcome = fetch(&engine, &url, &Limits::default()).await;
    refused_with(&outcome, &["outbound HTTP is not granted", "allowed_hosts of alias probe is empty"]);

    let outcome = fetch(&engine, &url, &granted(&["api.example.com", "*.example.com"], None)).await;
    refused_with(&outcome, &["host 127.0.0.1 is not in allowed_hosts of alias probe"]);
    // The right host on another port is another origin.
    let other_port = granted(&[&format!("http://127.0.0.1:{}", up.addr.port() ^ 1)], None);
    refused_with(&fetch(&engine, &url, &other_port).await, &["not in allowed_hosts"]);
}

#[tokio::test]
async fn a_private_address_or_a_name_for_loopback_is_refused_without_the_operators_range() {
    let up = Upstream::start().await;
    let engine = engine_allowing("10.99.0.0/16");
    let outcome = fetch(&engine, &up.url("/hello"), &granted(&[&up.origin()], None)).await;
    refused_with(&outcome, &["127.0.0.1, a non-public address (loopback)", "--http-allow"]);

    let origin = format!("http://localhost:{}", up.addr.port());
    let outcome = fetch(&engine, &format!("{origin}/hello"), &granted(&[&origin], None)).await;
    refused_with(&outcome, &["\"localhost\", a name for this machine (loopback)", "--http-allow"]);

    // Every spelling of an address is judged by what it is.
    let mapped = format!("http://[::ffff:127.0.0.1]:{}", up.addr.port());
    let outcome = fetch(&engine, &format!("{mapped}/hello"), &granted(&[&mapped], None)).await;
    refused_with(&outcome, &["a non-public address (loopback)"]);
}

#[tokio::test]
async fn a_redirect_is_a_new_request_and_checked_again() {
    let up = Upstream::start().await;
    let engine = engine_allowing("127.0.0.0/8");
    let limits = granted(&[&up.origin()], None);
    let inside = up.url(&format!("/redirect?to={}", up.url("/hello")));
    assert_eq!(ok_json(&fetch(&engine, &inside, &limits).await)["size"], 12);

    let elsewhere = format!("http://localhost:{}/hello", up.addr.port());
    let outcome = fetch(&engine, &up.url(&format!("/redirect?to={elsewhere}")), &limits).await;
    assert_eq!(outcome.http[0].status, Some(302));
    refused_with(&outcome, &["host localhost is not in allowed_hosts of alias probe"]);
}

#[tokio::test]
async fn requests_and_bytes_are_limited_per_job() {
    let up = Upstream::start().await;
    let engine = engine_allowing("127.0.0.0/8");
    let http =
        HttpLimits { max_requests: Some(2), max_request_bytes: Some(100), max_response_bytes: Some(1000) };
    let limits = granted(&[&up.origin()], Some(http));
    let requests = json!({"requests": [
        {"url": up.url("/hello")},
        {"url": up.url("/hello")},
        {"url": up.url("/hello")},
    ]});
    let outcome = run_as(&engine, "http-client", requests, &limits, CancelToken::new()).await;
    let answers = ok_json(&outcome);
    assert_eq!(answers[1], json!({"status": 200, "size": 12}));
    assert!(answers[2]["error"].as_str().unwrap().contains("refused by wasmq"), "{answers}");
    let third = outcome.http[2].error.clone().unwrap();
    assert!(
        third.contains("already sent 2 requests") && third.contains("http.max_requests of alias probe"),
        "{third}"
    );
    assert_eq!(outcome.http_usage.requests, 3);

    let big = json!({"requests": [{"url": up.url("/bytes/5000")}]});
    let outcome = run_as(&engine, "http-client", big, &limits, CancelToken::new()).await;
    let answer = ok_json(&outcome);
    assert!(answer[0]["error"].as_str().unwrap().contains("over the job's HTTP byte limit"), "{answer}");
    let error = outcome.http[0].error.clone().unwrap();
    assert!(
        error.contains("response bodies exceeded 1000 bytes (http.max_response_bytes of alias probe)"),
        "{error}"
    );
    assert_eq!(outcome.http[0].status, Some(200));
    assert!(outcome.http_usage.received_bytes <= 1000);

    let upload = json!({"requests": [
        {"url": up.url("/echo"), "method": "POST", "body_bytes": 60},
        {"url": up.url("/echo"), "method": "POST", "body_bytes": 60},
    ]});
    let outcome = run_as(&engine, "http-client", upload, &limits, CancelToken::new()).await;
    let answers = ok_json(&outcome);
    assert_eq!(answers[0], json!({"status": 200, "size": 2}));
    assert!(answers[1]["error"].is_string(), "{answers}");
    let error = outcome.http[1].error.clone().unwrap();
    assert!(
        error.contains("request bodies exceeded 100 bytes (http.max_request_bytes of alias probe)"),
        "{error}"
    );
    assert_eq!(outcome.http_usage.sent_bytes, 60);
}

#[tokio::test]
async fn a_hanging_server_is_stopped_by_the_time_limit_and_by_cancel() {
    let up = Upstream::start().await;
    let engine = engine_allowing("127.0.0.0/8");
    // Long enough to reach the request on a loaded machine; the hang is what ends it.
    let limits = Limits { timeout: Duration::from_secs(5), ..granted(&[&up.origin()], None) };
    let outcome = fetch(&engine, &up.url("/hang"), &limits).await;
    assert!(matches!(err(&outcome), RunError::Timeout { after_ms: 5000 }), "{:?}", outcome.error);
    let error = outcome.http[0].error.clone().unwrap();
    assert!(error.starts_with("interrupted"), "{error}");

    // A fresh upstream: the first hang left a stored `arrived` permit, which
    // would let the cancel below fire before this run's request is made.
    let up = Upstream::start().await;
    let limits = Limits { timeout: Duration::from_secs(3600), ..granted(&[&up.origin()], None) };
    let cancel = CancelToken::new();
    let run = run_as(&engine, "fetch", json!({"url": up.url("/hang")}), &limits, cancel.clone());
    let canceller = async {
        up.arrived.notified().await;
        cancel.cancel();
    };
    let (outcome, ()) = tokio::join!(run, canceller);
    assert_eq!(err(&outcome), &RunError::Cancelled);
    assert!(outcome.http[0].error.as_deref().unwrap().starts_with("interrupted"));
    assert_eq!(engine.active_runs(), 0);
}

#[tokio::test]
async fn https_goes_through_tls_and_a_server_that_does_not_speak_it_fails_the_request() {
    // The upstream speaks plain HTTP: the TLS handshake fails, and says so.
    let up = Upstream::start().await;
    let engine = engine_allowing("127.0.0.0/8");
    let origin = format!("https://{}", up.addr);
    let outcome = fetch(&engine, &format!("{origin}/hello"), &granted(&[&origin], None)).await;
    let message = err(&outcome).to_string();
    assert!(message.contains(&format!("GET {origin}/hello")), "{message}");
    let error = outcome.http[0].error.clone().unwrap();
    assert!(error.starts_with(&format!("request to {origin} failed: TLS: ")), "{error}");
}
