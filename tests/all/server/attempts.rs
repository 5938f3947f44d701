//! A job's event stream shows each attempt start and end, in order, even when
//! the next attempt is claimed the moment the previous one ends (a watcher
//! woken once for several changes still sees each of them).

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

use super::{Options, spawn_app};

/// The `status` events of started attempts as `(attempt, status)`.
fn attempts(events: &[(String, Value)]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|(e, d)| e == "status" && d["attempt"].as_u64() > Some(0))
        .map(|(_, d)| (d["attempt"].as_u64().unwrap(), d["status"].as_str().unwrap().to_string()))
        .collect()
}

/// Every event of a stream until it ends.
async fn all_events(mut response: reqwest::Response) -> Vec<(String, Value)> {
    let (mut events, mut buffer) = (Vec::new(), String::new());
    while let Some(chunk) =
        tokio::time::timeout(Duration::from_secs(120), response.chunk()).await.expect("an event").unwrap()
    {
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(at) = buffer.find("\n\n") {
            let block: String = buffer.drain(..at + 2).collect();
            let field =
                |key: &str| block.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string());
            if let (Some(name), Some(data)) = (field("event:"), field("data:")) {
                events.push((name, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn retries_claimed_at_once_still_show_each_attempt_ending() {
    // No backoff: each retry is due the moment its failure is stored. One
    // slot on the `gate` queue, held by a spinning job until the stream is open.
    let app = spawn_app(Options {
        retry_base: Duration::ZERO,
        queue_limits: vec![("gate", 1)],
        ..Options::default()
    })
    .await;
    app.register("fail", "fail").await;
    app.register("busy-spin", "busy-spin").await;
    // Fuel for far longer than the test: a blocker that ran out of its
    // default fuel on a loaded machine was dead before the cancel below.
    let limits = json!({"queue": "gate", "timeout_ms": 600_000, "fuel": 1_000_000_000_000_000u64});
    let blocker = app.dispatch("busy-spin", json!({}), limits).await;
    let blocker = blocker["id"].as_str().unwrap().to_string();
    app.until_status(&blocker, "running").await;
    let job =
        app.dispatch("fail", json!({"mode": "retryable"}), json!({"queue": "gate", "max_attempts": 4})).await;
    let job = job["id"].as_str().unwrap().to_string();
    let stream = app.raw(reqwest::Method::GET, &format!("/v1/jobs/{job}/events")).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let events = tokio::spawn(all_events(stream));
    let (status, body) = app.post(&format!("/v1/jobs/{blocker}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let events = events.await.unwrap();
    let mut expected = Vec::new();
    for attempt in 1..=4 {
        expected.push((attempt, "running".to_string()));
        expected.push((attempt, if attempt < 4 { "failed" } else { "dead" }.to_string()));
    }
    assert_eq!(attempts(&events), expected, "{events:?}");
    let ends: Vec<&Value> = events.iter().filter(|(e, _)| e == "end").map(|(_, d)| d).collect();
    assert_eq!(ends.len(), 1, "{events:?}");
    assert_eq!((ends[0]["status"].as_str(), ends[0]["attempt"].as_u64()), (Some("dead"), Some(4)));

    // Other clients are served normally.
    app.register("echo", "echo").await;
    let done =
        app.wait(app.dispatch("echo", json!({"after": 1}), json!({})).await["id"].as_str().unwrap()).await;
    assert_eq!((done["status"].as_str(), &done["result"]), (Some("succeeded"), &json!({"after": 1})));
    app.stop().await;
}
