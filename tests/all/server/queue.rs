//! Queue semantics over HTTP: priority, delay, retries, cancellation, volume.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;

use super::{Options, TestApp, spawn_app};

fn id(job: &Value) -> &str {
    job["id"].as_str().unwrap()
}

async fn all_jobs(app: &TestApp, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/jobs?limit=1000{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.extend(page["jobs"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn higher_priority_runs_first_then_oldest() {
    // One worker, held by a blocker while the others queue up in one batch.
    let app = spawn_app(Options { workers: 1, ..Options::default() }).await;
    app.register("spin", "busy-spin").await;
    app.register("primes", "primes").await;
    let blocker = app
        .dispatch(
            "spin",
            json!({}),
            // Long enough that a loaded machine still sees it running; it is
            // cancelled once the batch is queued (no race against its timeout).
            json!({"fuel": 1_000_000_000_000u64, "timeout_ms": 120_000, "max_attempts": 1}),
        )
        .await;
    app.until_status(id(&blocker), "running").await;
    let priorities = [100, 900, 500, 900, 0, 500];
    let jobs: Vec<Value> = priorities
        .iter()
        // Each takes a few milliseconds, so start times are distinct.
        .map(|p| json!({"alias": "primes", "payload": {"limit": 1_000_000}, "priority": p}))
        .collect();
    let (status, batch) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let ids: Vec<String> =
        batch["job_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
    let (status, cancelled) = app.post(&format!("/v1/jobs/{}/cancel", id(&blocker)), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let mut started = Vec::new();
    for (i, job_id) in ids.iter().enumerate() {
        let job = app.wait(job_id).await;
        assert_eq!(job["status"], "succeeded");
        started.push((job["started_at"].as_str().unwrap().to_string(), i));
    }
    started.sort();
    let order: Vec<usize> = started.iter().map(|(_, i)| *i).collect();
    // 900s first (older first), then 500s, then 100, then 0.
    assert_eq!(order, vec![1, 3, 2, 5, 0, 4]);
    let blocked = app.wait(id(&blocker)).await;
    assert_eq!(blocked["status"], "cancelled");
    app.stop().await;
}

#[tokio::test]
async fn a_delayed_job_waits_for_its_time() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let job = app.dispatch("echo", json!("later"), json!({"delay_ms": 400})).await;
    assert_eq!(job["status"], "scheduled");
    let done = app.wait(id(&job)).await;
    assert_eq!(done["status"], "succeeded");
    let run_at = done["run_at"].as_str().unwrap();
    let started = done["started_at"].as_str().unwrap();
    assert!(started >= run_at, "started {started} before its time {run_at}");
    assert!(run_at > job["created_at"].as_str().unwrap());
    app.stop().await;
}

#[tokio::test]
async fn retryable_failures_retry_with_backoff_then_die() {
    let app = spawn_app(Options::default()).await;
    app.register("fail", "fail").await;
    let job = app.dispatch("fail", json!({"mode": "retryable"}), json!({"max_attempts": 3})).await;
    let done = app.wait(id(&job)).await;
    assert_eq!(done["status"], "dead");
    assert_eq!(done["attempt"], 3);
    assert_eq!(done["error"], json!({"kind": "plugin_error", "message": "try again later"}));

    // Not retryable: dead after one attempt. Fuel exhaustion is not retried either.
    let job = app.dispatch("fail", json!({"mode": "error"}), json!({"max_attempts": 5})).await;
    let done = app.wait(id(&job)).await;
    assert_eq!((done["status"].as_str(), done["attempt"].as_u64()), (Some("dead"), Some(1)));
    app.register("loop", "infinite-loop").await;
    let job = app.dispatch("loop", json!({}), json!({"max_attempts": 5, "fuel": 100000})).await;
    let done = app.wait(id(&job)).await;
    assert_eq!((done["status"].as_str(), done["attempt"].as_u64()), (Some("dead"), Some(1)));
    assert_eq!(done["error"]["kind"], "fuel_exhausted");

    // A dead job can be retried by hand, with a fresh budget.
    let (status, again) = app.post(&format!("/v1/jobs/{}/retry", id(&job)), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!((again["status"].as_str(), again["attempt"].as_u64()), (Some("queued"), Some(0)));
    let done = app.wait(id(&job)).await;
    assert_eq!(done["attempt"], 1);
    app.stop().await;
}

#[tokio::test]
async fn cancelling_a_running_infinite_loop_interrupts_it() {
    let app = spawn_app(Options::default()).await;
    app.register("loop", "infinite-loop").await;
    let job =
        app.dispatch("loop", json!({}), json!({"fuel": 1_000_000_000_000u64, "timeout_ms": 600000})).await;
    app.until_status(id(&job), "running").await;
    let (status, cancelled) = app.post(&format!("/v1/jobs/{}/cancel", id(&job)), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let done = app.wait(id(&job)).await;
    assert_eq!(done["status"], "cancelled");
    // The worker slot is free again: another job runs.
    app.register("echo", "echo").await;
    let next = app.dispatch("echo", json!(1), json!({})).await;
    assert_eq!(app.wait(id(&next)).await["status"], "succeeded");
    let (_, status) = app.get("/v1/status").await;
    assert_eq!(status["workers"]["busy"], 0, "{status}");
    assert_eq!(status["jobs"]["cancelled"], 1);
    app.stop().await;
}

#[tokio::test]
async fn a_thousand_jobs_through_two_workers_all_correct() {
    let app = spawn_app(Options { workers: 2, ..Options::default() }).await;
    app.register("echo", "echo").await;
    let jobs: Vec<Value> = (0..1000)
        .map(|i| json!({"alias": "echo", "payload": {"n": i, "s": format!("job-{i}")}, "context": "bulk"}))
        .collect();
    let (status, batch) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    assert_eq!(batch["total"], 1000);
    let ids = batch["job_ids"].as_array().unwrap();
    app.wait(ids.last().unwrap().as_str().unwrap()).await;
    for job_id in ids {
        app.wait(job_id.as_str().unwrap()).await;
    }
    let (_, b) = app.get(&format!("/v1/batches/{}", batch["id"].as_str().unwrap())).await;
    assert_eq!(b["done"], true, "{b}");
    assert_eq!(b["counts"]["succeeded"], 1000);
    let all = all_jobs(&app, "&context=bulk").await;
    assert_eq!(all.len(), 1000);
    let mut seen = HashMap::new();
    for job in &all {
        assert_eq!(job["status"], "succeeded");
        assert_eq!(job["result"], job["payload"], "{job}");
        assert_eq!(job["attempt"], 1);
        seen.insert(job["payload"]["n"].as_u64().unwrap(), ());
    }
    assert_eq!(seen.len(), 1000);
    app.stop().await;
}

#[tokio::test]
async fn a_full_queue_answers_429_until_it_drains() {
    let held = Options { queue_limits: vec![("held", 0)], max_queued: 3, ..Options::default() };
    let app = spawn_app(held).await;
    app.register("echo", "echo").await;
    for i in 0..3 {
        app.dispatch("echo", json!(i), json!({"queue": "held"})).await;
    }
    let (status, body) = app.post("/v1/jobs", &json!({"alias": "echo", "payload": 4})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "queue_full");
    assert!(body["error"]["message"].as_str().unwrap().contains("the limit is 3"), "{body}");
    let (status, _) = app.post("/v1/batches", &json!({"jobs": [{"alias": "echo", "payload": 1}]})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

#[tokio::test]
async fn the_event_stream_shows_status_progress_and_the_end() {
    let app = spawn_app(Options::default()).await;
    app.register("primes", "primes").await;
    // About half a second of sieving, reporting progress every 10%.
    let job =
        app.dispatch("primes", json!({"limit": 150_000_000}), json!({"fuel": 1_000_000_000_000u64})).await;
    let body = app.raw(reqwest::Method::GET, &format!("/v1/jobs/{}/events", id(&job))).send().await.unwrap();
    assert_eq!(body.status(), StatusCode::OK);
    assert!(body.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let text = body.text().await.unwrap(); // the stream ends after `end`
    let mut events: Vec<(String, Value)> = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ").or(line.strip_prefix("event:")) {
                name = Some(n.trim().to_string());
            } else if let Some(d) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
                data = Some(serde_json::from_str::<Value>(d.trim()).unwrap());
            }
        }
        if let (Some(n), Some(d)) = (name, data) {
            events.push((n, d));
        }
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"status"), "{names:?}");
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    let percents: Vec<u64> =
        events.iter().filter(|(n, _)| n == "progress").map(|(_, d)| d["percent"].as_u64().unwrap()).collect();
    assert!(!percents.is_empty(), "no progress events: {names:?}");
    assert!(percents.windows(2).all(|w| w[0] < w[1]), "{percents:?}");
    let (_, end) = events.last().unwrap();
    assert_eq!(end["status"], "succeeded");
    assert_eq!(end["result"]["count"], 8_444_396, "pi(1.5e8)");
    let (status, body) = app.get("/v1/jobs/missing/events").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    app.stop().await;
}

#[tokio::test]
async fn a_cancel_through_another_node_stops_the_run() {
    // Two servers on one database: A runs jobs, B (no workers) only serves the API.
    let runner = Options { workers: 1, lease: std::time::Duration::from_millis(900), ..Options::default() };
    let a = spawn_app(runner.clone()).await;
    let b = spawn_app(Options { workers: 0, dir: Some(a.dir.clone()), ..runner }).await;
    a.register("loop", "infinite-loop").await;
    let job =
        b.dispatch("loop", json!({}), json!({"fuel": 1_000_000_000_000u64, "timeout_ms": 600000})).await;
    a.until_status(id(&job), "running").await;
    let (status, cancelled) = b.post(&format!("/v1/jobs/{}/cancel", id(&job)), &json!({})).await;
    assert_eq!((status, cancelled["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    // A learns at its next lease renewal (every lease/3) and frees its worker.
    let mut busy = Value::Null;
    for _ in 0..300 {
        busy = a.get("/v1/status").await.1["workers"]["busy"].clone();
        if busy == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(busy, 0, "A still runs the cancelled job");
    assert_eq!(a.wait(id(&job)).await["status"], "cancelled");
    b.stop().await;
    a.stop().await;
}

/// An alias's retry policy is pinned on its jobs: a constant 1.5 s wait
/// between attempts here, where the server's own backoff (20 ms in these
/// tests) applies to the jobs of an alias without one.
#[tokio::test]
async fn an_alias_retry_policy_sets_the_wait_between_attempts() {
    let app = spawn_app(Options::default()).await;
    app.register("fail", "fail").await;
    let (_, fail) = app.get("/v1/aliases/fail").await;
    let policy = json!({"base_ms": 1500, "max_ms": 1500, "factor": 1.0, "jitter": 0.0});
    let body = json!({"module": fail["module"], "retry": policy});
    let (status, alias) = app.put("/v1/aliases/patient", &body).await;
    assert_eq!(status, StatusCode::OK, "{alias}");
    assert_eq!(alias["retry"], policy);
    let ms = |v: &Value| wasmq::domain::time::parse_rfc3339(v.as_str().unwrap()).unwrap();
    let job = app.dispatch("patient", json!({"mode": "retryable"}), json!({"max_attempts": 2})).await;
    let waiting = app.until_status(id(&job), "failed").await;
    let wait = ms(&waiting["run_at"]) - ms(&waiting["started_at"]);
    assert!((1_500..2_500).contains(&wait), "the alias's 1.5 s: {wait} ms: {waiting}");
    let done = app.wait(id(&job)).await;
    assert_eq!((done["status"].as_str(), done["attempt"].as_u64()), (Some("dead"), Some(2)));

    let job = app.dispatch("fail", json!({"mode": "retryable"}), json!({"max_attempts": 2})).await;
    let done = app.wait(id(&job)).await;
    assert_eq!(done["attempt"], 2);
    let took = ms(&done["finished_at"]) - ms(&done["created_at"]);
    assert!(took < 1_500, "the server's backoff, not the other alias's: {took} ms");

    for (policy, names) in [
        (json!({"base_ms": 0, "max_ms": 10, "factor": 2, "jitter": 0}), "retry.base_ms"),
        (json!({"base_ms": 100, "max_ms": 10, "factor": 2, "jitter": 0}), "retry.max_ms"),
        (json!({"base_ms": 100, "max_ms": 1000, "factor": 0.5, "jitter": 0}), "retry.factor"),
        (json!({"base_ms": 100, "max_ms": 1000, "factor": 2, "jitter": 2}), "retry.jitter"),
        (json!({"base_ms": 100, "max_ms": 1000, "factor": 2}), "jitter"),
    ] {
        let (status, answer) =
            app.put("/v1/aliases/patient", &json!({"module": fail["module"], "retry": policy})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{policy}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(names), "{policy}: {answer}");
    }
}
