//! Outbound HTTP through the API: an alias grants hosts and limits, its jobs'
//! requests show in the job view and in the tenant's usage, and a cancel
//! interrupts a request in flight.

use reqwest::StatusCode;
use serde_json::{Value, json};
use wasmq::domain::time::now_ms;
use wasmq::domain::{Day, NetPolicy};

use super::Upstream;
use crate::server::{Options, TestApp, spawn_app_with};

/// A server whose plugins may reach 127.0.0.0/8 (`--http-allow`), where the
/// test upstreams listen.
async fn app() -> TestApp {
    spawn_app_with(Options::default(), |s| {
        s.engine.http_policy = NetPolicy::new(NetPolicy::parse_allow("127.0.0.0/8").unwrap());
    })
    .await
}

async fn grant(app: &TestApp, alias: &str, digest: &str, extra: Value) -> (StatusCode, Value) {
    let mut body = json!({ "module": digest });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.put(&format!("/v1/aliases/{alias}"), &body).await
}

#[tokio::test]
async fn an_alias_grants_hosts_and_the_jobs_requests_show_in_the_job_and_the_usage() {
    let up = Upstream::start().await;
    let app = app().await;
    let digest = app.upload("fetch").await;

    for (extra, names) in [
        (json!({"allowed_hosts": ["ftp://x.example.com"]}), "allowed_hosts"),
        (json!({"allowed_hosts": ["a.com"], "http": {"max_requests": 1000}}), "--http-max-requests"),
        (json!({"allowed_hosts": ["a.com"], "http": {"max_response_bytes": 0}}), "http.max_response_bytes"),
        (json!({"http": {"max_requests": 1, "surprise": 1}}), "surprise"),
    ] {
        let (status, body) = grant(&app, "fetch", &digest, extra.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{extra}: {message}");
    }

    let origin = up.origin().to_uppercase().replace("HTTP://", "http://");
    let (status, alias) =
        grant(&app, "fetch", &digest, json!({"allowed_hosts": [origin], "http": {"max_requests": 3}})).await;
    assert_eq!(status, StatusCode::OK, "{alias}");
    assert_eq!(alias["allowed_hosts"], json!([up.origin()]));
    assert_eq!(alias["http"], json!({"max_requests": 3}));

    let job = app.dispatch("fetch", json!({"url": up.url("/hello")}), json!({})).await;
    let job = app.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"status": 200, "content_type": "text/plain", "size": 12}));
    let calls = &job["logs"]["http"];
    assert_eq!(calls.as_array().unwrap().len(), 1, "{job}");
    assert_eq!((&calls[0]["method"], &calls[0]["status"]), (&json!("GET"), &json!(200)));
    assert_eq!((&calls[0]["origin"], &calls[0]["received_bytes"]), (&json!(up.origin()), &json!(12)));
    assert_eq!(job["logs"]["http_truncated"], false);

    // Another host: the job fails, and its record says which setting refused it.
    let other = format!("http://localhost:{}/hello", up.addr.port());
    let job = app.dispatch("fetch", json!({"url": other}), json!({"max_attempts": 1})).await;
    let job = app.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert!(job["error"]["message"].as_str().unwrap().contains("refused by wasmq"), "{job}");
    let error = job["logs"]["http"][0]["error"].as_str().unwrap();
    assert!(error.contains("host localhost is not in allowed_hosts of alias fetch"), "{error}");

    let today = Day::of_ms(now_ms()).to_string();
    let (status, usage) = app.get(&format!("/v1/usage?from={today}&to={today}")).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let day = &usage["days"][0];
    assert_eq!((&day["http_requests"], &day["http_bytes_received"]), (&json!(2), &json!(12)), "{usage}");
    assert_eq!(day["http_bytes_sent"], 0);
    app.stop().await;
}

#[tokio::test]
async fn a_cancel_interrupts_a_request_in_flight() {
    let up = Upstream::start().await;
    let app = app().await;
    let digest = app.upload("fetch").await;
    let (status, body) = grant(&app, "fetch", &digest, json!({"allowed_hosts": [up.origin()]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = app.dispatch("fetch", json!({"url": up.url("/hang")}), json!({"timeout_ms": 3_600_000})).await;
    let id = job["id"].as_str().unwrap();
    up.arrived.notified().await;
    let (status, body) = app.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = app.wait(id).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    // The run itself ended (it reports its usage when it does), its one
    // request counted, although the upstream never answered.
    let today = Day::of_ms(now_ms()).to_string();
    for _ in 0..1000 {
        let (_, usage) = app.get(&format!("/v1/usage?from={today}&to={today}")).await;
        if usage["days"][0]["runs"] == 1 {
            assert_eq!(usage["days"][0]["http_requests"], 1, "{usage}");
            app.stop().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the cancelled run never reported its end");
}
