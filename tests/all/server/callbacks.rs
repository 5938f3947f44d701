//! Callbacks: signed, retried while the receiver fails, batch callbacks fire
//! once, and two instances hand work back and forth (submit/response).

use serde_json::json;
use wasmq::callbacks::{SIGNATURE_HEADER, verify};
use wasmq::domain::time::now_ms;

use super::{Options, Receiver, spawn_app};

#[tokio::test]
async fn callbacks_are_signed_and_retried_until_delivered() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let receiver = Receiver::start(2).await; // answers 500 twice, then 200
    let job = app
        .dispatch(
            "echo",
            json!({"hello": "hook"}),
            json!({"context": "ctx-1", "callback": {"url": receiver.url, "secret": "s3cret", "headers": {"x-team": "blue"}}}),
        )
        .await;
    assert!(job["callback"]["url"].is_string());
    assert!(job["callback"].get("secret").is_none(), "the secret must never be shown: {job}");
    let id = job["id"].as_str().unwrap();
    for attempt in 1..=3 {
        let (headers, body) = receiver.next_raw().await;
        let signature = headers.get(SIGNATURE_HEADER).expect("signed").to_str().unwrap();
        assert!(verify("s3cret", signature, &body, now_ms() / 1000, 300), "attempt {attempt}: bad signature");
        assert!(!verify("wrong", signature, &body, now_ms() / 1000, 300));
        assert_eq!(headers.get("x-team").unwrap(), "blue");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["job_id"], id);
        assert_eq!(body["status"], "succeeded");
        assert_eq!(body["result"], json!({"hello": "hook"}));
        assert_eq!(body["alias"], "echo");
        assert!(body["fuel_used"].as_u64().unwrap() > 0);
    }
    // The third answer was 200: the job shows the delivery.
    let mut shown = serde_json::Value::Null;
    for _ in 0..200 {
        let (_, job) = app.get(&format!("/v1/jobs/{id}")).await;
        if job["callback"]["state"] == "delivered" {
            shown = job;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(shown["callback"]["attempts"], 3, "{shown}");
    assert_eq!(shown["callback"]["last_error"], serde_json::Value::Null);
    assert_eq!(*receiver.count.lock().unwrap(), 3);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_callback_fires_once_when_every_job_ended() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    app.register("fail", "fail").await;
    let receiver = Receiver::start(0).await;
    let jobs = json!([
        {"alias": "echo", "payload": 1},
        {"alias": "echo", "payload": 2},
        {"alias": "fail", "payload": {"mode": "error"}},
    ]);
    let (status, batch) =
        app.post("/v1/batches", &json!({"jobs": jobs, "callback": {"url": receiver.url}})).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{batch}");
    let (_, body) = receiver.next().await;
    assert_eq!(body["batch_id"], batch["id"]);
    assert_eq!(body["total"], 3);
    assert_eq!(body["counts"]["succeeded"], 2);
    assert_eq!(body["counts"]["dead"], 1);
    let mut shown = serde_json::Value::Null;
    for _ in 0..200 {
        shown = app.get(&format!("/v1/batches/{}", batch["id"].as_str().unwrap())).await.1;
        if shown["callback"]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(shown["done"], true);
    assert_eq!(shown["callback"]["state"], "delivered", "{shown}");
    assert_eq!(shown["callback"]["attempts"], 1, "{shown}");
    // Exactly once: no second delivery arrives even after more work completes.
    let more = app.dispatch("echo", json!(3), json!({})).await;
    app.wait(more["id"].as_str().unwrap()).await;
    assert_eq!(*receiver.count.lock().unwrap(), 1);
    app.stop().await;
}

#[tokio::test]
async fn two_instances_submit_and_respond() {
    // A asks B to run `echo`; B's callback lands on A's short-form dispatch as a
    // new job of A's alias `collect`, carrying B's outcome.
    let a = spawn_app(Options { token: Some("token-a".into()), ..Options::default() }).await;
    let b = spawn_app(Options { token: Some("token-b".into()), ..Options::default() }).await;
    a.register("collect", "echo").await;
    b.register("echo", "echo").await;
    let callback = json!({
        "url": format!("{}/v1/dispatch/collect?context=from-b", a.url),
        "headers": {"authorization": "Bearer token-a"},
    });
    let job = b.dispatch("echo", json!({"question": 42}), json!({"callback": callback})).await;
    let on_b = b.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(on_b["status"], "succeeded");
    let mut arrived = None;
    for _ in 0..500 {
        let (_, page) = a.get("/v1/jobs?context=from-b").await;
        if let Some(j) = page["jobs"].as_array().unwrap().first() {
            arrived = Some(j.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let arrived = arrived.expect("B's callback reached A");
    let done = a.wait(arrived["id"].as_str().unwrap()).await;
    assert_eq!(done["alias"], "collect");
    assert_eq!(done["result"]["job_id"], job["id"]);
    assert_eq!(done["result"]["result"], json!({"question": 42}));
    assert_eq!(done["result"]["status"], "succeeded");
    a.stop().await;
    b.stop().await;
}
