//! Requests that watch jobs (`wait`, event streams) and list them: none leaves
//! anything behind, their number is capped, a large job does not make them
//! expensive, and list pages are bounded in bytes.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tokio::task::JoinSet;

use super::sse::Events;
use super::{Options, TestApp, spawn_app};

fn id(job: &Value) -> String {
    job["id"].as_str().unwrap().to_string()
}

/// `GET /v1/status`'s `watchers`.
async fn watchers(app: &TestApp) -> Value {
    let (status, body) = app.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["watchers"].clone()
}

/// Polls `GET /v1/status` until `watchers` is as expected (a request's end on
/// the server has no hook a client can wait on).
async fn until_watchers(app: &TestApp, expected: Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = watchers(app).await;
        if now == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "watchers stayed {now}, expected {expected}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn none_watching() -> Value {
    json!({"waits": 0, "event_streams": 0, "jobs": 0, "registered": 0})
}

/// A job that stays scheduled for ten minutes: something to watch.
async fn parked_job(app: &TestApp) -> String {
    id(&app.dispatch("echo", json!("parked"), json!({"delay_ms": 600_000})).await)
}

/// The other clients still get normal answers.
async fn still_serves(app: &TestApp) {
    let job = app.dispatch("echo", json!({"after": true}), json!({})).await;
    let done = app.wait(&id(&job)).await;
    assert_eq!((done["status"].as_str(), &done["result"]), (Some("succeeded"), &json!({"after": true})));
}

#[tokio::test]
async fn waits_on_unknown_and_finished_jobs_leave_no_waiter_behind() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let finished = id(&app.wait(&id(&app.dispatch("echo", json!(1), json!({})).await)).await);
    let app = std::sync::Arc::new(app);
    let mut set = JoinSet::new();
    for i in 0..4_000 {
        if set.len() == 32 {
            set.join_next().await.unwrap().unwrap();
        }
        let (app, finished) = (app.clone(), finished.clone());
        set.spawn(async move {
            if i % 2 == 0 {
                let (status, body) = app.get(&format!("/v1/jobs/{}/wait", uuid::Uuid::now_v7())).await;
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (StatusCode::NOT_FOUND, Some("not_found"))
                );
            } else {
                let (status, body) = app.get(&format!("/v1/jobs/{finished}/wait?timeout_ms=60000")).await;
                assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("succeeded")));
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    // Every wait has answered, so nothing may be registered any more.
    assert_eq!(watchers(&app).await, none_watching());
    still_serves(&app).await;
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test]
async fn a_client_that_disconnects_from_a_wait_or_a_stream_is_unregistered() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let job = parked_job(&app).await;

    let wait = app.raw(reqwest::Method::GET, &format!("/v1/jobs/{job}/wait?timeout_ms=300000")).send();
    let waiting = tokio::spawn(wait);
    until_watchers(&app, json!({"waits": 1, "event_streams": 0, "jobs": 1, "registered": 1})).await;
    waiting.abort(); // the client hangs up
    until_watchers(&app, none_watching()).await;

    let mut events = Events::open(&app, &job).await;
    let (name, data) = events.next().await.unwrap();
    assert_eq!((name.as_str(), &data), ("status", &json!({"status": "scheduled", "attempt": 0})));
    until_watchers(&app, json!({"waits": 0, "event_streams": 1, "jobs": 1, "registered": 1})).await;
    drop(events); // the client hangs up
    until_watchers(&app, none_watching()).await;

    let (status, body) = app.post(&format!("/v1/jobs/{job}/cancel"), &json!({})).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn an_event_stream_on_a_large_job_shows_status_progress_and_end_in_order() {
    let app = spawn_app(Options::default()).await;
    app.register("log-spam", "log-spam").await;
    // 15 MiB of payload the plugin ignores, and a second or two of progress reports.
    let pad = "p".repeat(15 << 20);
    let job = app
        .dispatch(
            "log-spam",
            json!({"iterations": 1_000_000, "pad": pad}),
            json!({"fuel": 1_000_000_000_000u64, "timeout_ms": 300_000}),
        )
        .await;
    let streams: Vec<Events> = {
        let mut v = Vec::new();
        for _ in 0..10 {
            v.push(Events::open(&app, &id(&job)).await);
        }
        v
    };
    let mut set = JoinSet::new();
    for s in streams {
        set.spawn(s.all());
    }
    while let Some(events) = set.join_next().await {
        let events = events.unwrap();
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"status"), "{names:?}");
        assert_eq!(names.last(), Some(&"end"), "{names:?}");
        assert_eq!(names.iter().filter(|n| **n == "end").count(), 1, "{names:?}");
        assert!(names.contains(&"progress"), "{names:?}");
        // Statuses move forward: (queued|scheduled) -> running -> succeeded.
        let statuses: Vec<&str> = events
            .iter()
            .filter(|(n, _)| n == "status")
            .map(|(_, d)| d["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses.last(), Some(&"succeeded"), "{statuses:?}");
        let rank = |s: &&str| ["queued", "running", "succeeded"].iter().position(|x| x == s).unwrap();
        assert!(statuses.windows(2).all(|w| rank(&w[0]) < rank(&w[1])), "{statuses:?}");
        // The last progress before the end is the final one, (1,000,000 - 1) % 101.
        let last_progress = events.iter().rev().find(|(n, _)| n == "progress").unwrap();
        assert_eq!(last_progress.1["percent"], 999_999 % 101);
        let (_, end) = events.last().unwrap();
        assert_eq!(
            (end["status"].as_str(), &end["result"]),
            (Some("succeeded"), &json!({"iterations": 1_000_000}))
        );
        assert_eq!(end["payload"]["pad"].as_str().map(str::len), Some(15 << 20), "the end carries the job");
    }
    assert_eq!(watchers(&app).await, none_watching());
    app.register("echo", "echo").await;
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_pretty_printed_payload_ends_the_stream_and_the_wait_as_valid_json() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let body = "{\n  \"alias\": \"echo\",\r\n  \"payload\": {\n    \"lines\": \"a\\nb\",\n    \"n\": [1,\n 2]\n  }\n}";
    let created =
        app.raw(reqwest::Method::POST, "/v1/jobs").header("content-type", "application/json").body(body);
    let (status, job) = app.send(created).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let expected = json!({"lines": "a\nb", "n": [1, 2]});
    let events = Events::open(&app, &id(&job)).await.all().await;
    let (name, end) = events.last().unwrap();
    assert_eq!((name.as_str(), &end["payload"], &end["result"]), ("end", &expected, &expected));
    let (status, waited) = app.get(&format!("/v1/jobs/{}/wait", id(&job))).await;
    assert_eq!((status, &waited["payload"]), (StatusCode::OK, &expected), "{waited}");
    app.stop().await;
}

#[tokio::test]
async fn a_wait_and_a_stream_on_another_node_see_the_job_end_through_the_fallback_poll() {
    // Two servers on one database: A runs jobs; B (no workers) only serves the
    // API, so nothing is pushed on B and its watchers must poll.
    let a = spawn_app(Options { workers: 1, ..Options::default() }).await;
    let b = spawn_app(Options { workers: 0, dir: Some(a.dir.clone()), ..Options::default() }).await;
    a.register("log-spam", "log-spam").await;
    let job = a.dispatch("log-spam", json!({"iterations": 200_000}), json!({"timeout_ms": 300_000})).await;
    let stream = Events::open(&b, &id(&job)).await;
    let (status, waited) = b.get(&format!("/v1/jobs/{}/wait?timeout_ms=120000", id(&job))).await;
    assert_eq!((status, waited["status"].as_str()), (StatusCode::OK, Some("succeeded")), "{waited}");
    let events = stream.all().await;
    let (name, end) = events.last().unwrap();
    assert_eq!((name.as_str(), &end["result"]), ("end", &json!({"iterations": 200_000})));
    assert_eq!(watchers(&b).await, none_watching());
    b.stop().await;
    a.register("echo", "echo").await;
    still_serves(&a).await;
    a.stop().await;
}

#[tokio::test]
async fn the_caps_on_waits_and_streams_answer_503_and_admit_again() {
    let app = spawn_app(Options {
        tweak: |s| {
            s.max_waits = 2;
            s.max_event_streams = 1;
        },
        ..Options::default()
    })
    .await;
    app.register("echo", "echo").await;
    let job = parked_job(&app).await;
    let wait_path = format!("/v1/jobs/{job}/wait?timeout_ms=300000");
    let mut waits = JoinSet::new();
    for _ in 0..2 {
        waits.spawn(app.raw(reqwest::Method::GET, &wait_path).send());
    }
    let mut stream = Events::open(&app, &job).await;
    assert_eq!(stream.next().await.unwrap().0, "status");
    until_watchers(&app, json!({"waits": 2, "event_streams": 1, "jobs": 1, "registered": 3})).await;

    let refused = app.raw(reqwest::Method::GET, &wait_path).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "at_capacity", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_waits") && message.contains("limit is 2"), "{message}");
    let refused = app.raw(reqwest::Method::GET, &format!("/v1/jobs/{job}/events")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("max_event_streams"), "{body}");
    // Unrelated requests are not capped.
    let (status, _) = app.get(&format!("/v1/jobs/{job}")).await;
    assert_eq!(status, StatusCode::OK);

    // The cancel ends the waits and the stream; their slots free up.
    let (status, _) = app.post(&format!("/v1/jobs/{job}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    while let Some(answer) = waits.join_next().await {
        let answer: Value = answer.unwrap().unwrap().json().await.unwrap();
        assert_eq!(answer["status"], "cancelled");
    }
    let rest = stream.all().await;
    assert_eq!(rest.first().map(|(_, d)| d["status"].clone()), Some(json!("cancelled")), "{rest:?}");
    assert_eq!(rest.last().unwrap().0, "end");
    until_watchers(&app, none_watching()).await;
    let (status, body) = app.get(&wait_path).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    let ended = Events::open(&app, &job).await.all().await;
    assert_eq!(ended.last().unwrap().0, "end");
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn list_pages_stay_within_the_byte_budget_and_the_cursor_visits_every_job_once() {
    const PAGE_BYTES: usize = 4 << 20;
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    // Parked, so only payloads count: 10 of 900 KB, one of 6 MiB (alone on its
    // page), and 40 small ones, interleaved.
    let mut dispatched = HashSet::new();
    for i in 0..51 {
        let payload = match i {
            25 => json!("b".repeat(6 << 20)),
            i if i % 5 == 0 => json!("m".repeat(900_000)),
            _ => json!({"small": i}),
        };
        let job = app.dispatch("echo", payload, json!({"delay_ms": 600_000, "priority": i * 7 % 11})).await;
        dispatched.insert(id(&job));
    }
    for order in ["created", "priority"] {
        for limit in [1000, 7] {
            let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
            loop {
                let mut path = format!("/v1/jobs?order={order}&limit={limit}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let response = app.raw(reqwest::Method::GET, &path).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let bytes = response.bytes().await.unwrap();
                let page: Value = serde_json::from_slice(&bytes).unwrap();
                let jobs = page["jobs"].as_array().unwrap();
                assert!(!jobs.is_empty() && jobs.len() <= limit, "{order} page {pages}: {} jobs", jobs.len());
                assert!(
                    jobs.len() == 1 || bytes.len() <= PAGE_BYTES,
                    "{order} page {pages}: {} jobs in {} bytes",
                    jobs.len(),
                    bytes.len()
                );
                seen.extend(jobs.iter().map(id));
                pages += 1;
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            assert_eq!(seen.len(), dispatched.len(), "{order}/{limit}: a job was visited twice or missed");
            assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), dispatched, "{order}/{limit}");
            assert!(pages >= 4, "{order}/{limit}: 15 MiB cannot fit in fewer than 4 pages of 4 MiB");
        }
    }
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_guest_flooding_host_log_ends_with_bounded_logs() {
    let app = spawn_app(Options::default()).await;
    app.register("log-spam", "log-spam").await;
    // No iteration count: it logs and reports progress until its fuel runs out.
    let job = app
        .dispatch(
            "log-spam",
            json!({}),
            json!({"fuel": 50_000_000, "max_attempts": 1, "timeout_ms": 300_000}),
        )
        .await;
    let done = app.wait(&id(&job)).await;
    assert_eq!(
        (done["status"].as_str(), done["error"]["kind"].as_str()),
        (Some("dead"), Some("fuel_exhausted"))
    );
    let logs = &done["logs"];
    assert_eq!(logs["log_truncated"], true, "{logs}");
    // Empty lines count 32 bytes each against the 64 KiB budget.
    let lines = logs["log"].as_array().unwrap();
    assert_eq!(lines.len(), (64 << 10) / 32);
    assert!(lines.iter().all(|l| l == &json!({"level": "debug", "message": ""})));
    assert!(logs.to_string().len() < 80 << 10, "stored logs: {} bytes", logs.to_string().len());
    assert!(done["progress"]["percent"].as_u64().unwrap() <= 100);
    app.register("echo", "echo").await;
    still_serves(&app).await;
    app.stop().await;
}
