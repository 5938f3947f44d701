//! `/metrics`: after a job ran, a callback was delivered and requests were
//! answered, the text format shows them with their labels; the queue depth
//! is read from the database; a tenant's token on a shared server gets 403.

use reqwest::StatusCode;
use serde_json::json;

use super::{Options, Receiver, spawn_app};

#[tokio::test]
async fn metrics_show_jobs_callbacks_requests_and_queues() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let receiver = Receiver::start(0).await;
    let job = app.dispatch("echo", json!({"n": 1}), json!({"callback": {"url": receiver.url}})).await;
    app.wait(job["id"].as_str().unwrap()).await;
    receiver.next().await;
    app.dispatch("echo", json!({}), json!({"delay_ms": 60_000, "queue": "later"})).await;
    let (status, _) = app.get("/v1/no-such-route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let response = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let text = response.text().await.unwrap();
    for line in [
        r#"wasmq_job_attempts_total{tenant="default",alias="echo",status="succeeded"} 1"#,
        r#"wasmq_job_run_duration_seconds_count{tenant="default",alias="echo"} 1"#,
        r#"wasmq_job_fuel_used_count{tenant="default",alias="echo"} 1"#,
        r#"wasmq_job_instantiate_duration_seconds_count{tenant="default",alias="echo"} 1"#,
        r#"wasmq_callback_deliveries_total{outcome="delivered"} 1"#,
        r#"wasmq_http_requests_total{method="POST",route="/v1/jobs",status="201"} 2"#,
        r#"wasmq_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"wasmq_queue_jobs{queue="later",status="scheduled"} 1"#,
        "wasmq_workers 2",
        "wasmq_module_compile_duration_seconds_count 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(text.contains(r#"route="/v1/jobs/{id}/wait""#), "routes, not paths: {text}");
    assert!(!text.contains(job["id"].as_str().unwrap()), "no job id is a label value");
}

#[tokio::test]
async fn metrics_are_the_operators_on_a_shared_server() {
    let app =
        spawn_app(Options { operator_token: Some("op-token-0123456789abcdef".into()), ..Options::default() })
            .await;
    let anonymous = app.client.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let operator = app
        .client
        .get(format!("{}/metrics", app.url))
        .bearer_auth("op-token-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), StatusCode::OK);
}
