//! `GET /v1/events`: every job's life in order, filtered, scoped to the
//! caller's tenant, resumable with `Last-Event-ID`, and a stalled consumer
//! never holds the workers back.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

use super::capabilities_jobs::{OPERATOR, admin};
use super::sse::{Events, Frame};
use super::{Options, TestApp, spawn_app, spawn_app_with};

fn id(job: &Value) -> String {
    job["id"].as_str().unwrap().to_string()
}

/// Opens `/v1/events` with `query` as `token` (`None`: the app's own).
async fn open(app: &TestApp, token: Option<&str>, query: &str) -> Events {
    let request = app.raw(Method::GET, &format!("/v1/events{query}"));
    Events::request(match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    })
    .await
}

/// Frames until one satisfies `done` (which it includes).
async fn until(events: &mut Events, done: impl Fn(&Frame) -> bool) -> Vec<Frame> {
    let mut seen = Vec::new();
    loop {
        let frame = events.frame().await.expect("the stream stays open");
        let last = done(&frame);
        seen.push(frame);
        if last {
            return seen;
        }
    }
}

/// The frames about job `id`, as `(event, attempt)`.
fn life(frames: &[Frame], id: &str) -> Vec<(String, Option<u64>)> {
    frames
        .iter()
        .filter(|f| f.data["job"] == id)
        .map(|f| (f.event.clone(), f.data["attempt"].as_u64()))
        .collect()
}

fn ended(id: &str) -> impl Fn(&Frame) -> bool + '_ {
    move |f| f.data["job"] == id && ["job.succeeded", "job.dead", "job.cancelled"].contains(&f.event.as_str())
}

#[tokio::test]
async fn a_jobs_life_arrives_in_order_with_ids_that_resume_where_the_client_left() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    app.register("fail", "fail").await;
    let mut events = open(&app, None, "").await;
    let ok = id(&app.dispatch("echo", json!({"n": 1}), json!({})).await);
    let frames = until(&mut events, ended(&ok)).await;
    let life_ok = life(&frames, &ok);
    assert_eq!(
        life_ok,
        [("job.queued".into(), None), ("job.started".into(), Some(1)), ("job.succeeded".into(), Some(1))],
        "{frames:?}"
    );
    let done = frames.last().unwrap();
    assert_eq!((done.data["alias"].as_str(), done.data["queue"].as_str()), (Some("echo"), Some("default")));
    assert_eq!(done.data["tenant"], "default");
    assert!(
        done.data["duration_ms"].is_u64() && done.data["fuel_used"].as_u64().unwrap() > 0,
        "{}",
        done.data
    );
    assert_eq!(done.data["type"], "job.succeeded");
    assert!(done.data["at"].as_str().unwrap().ends_with('Z'));
    // Ids grow along the stream.
    let seqs: Vec<u64> = frames
        .iter()
        .map(|f| f.id.as_deref().unwrap().rsplit_once('-').unwrap().1.parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // A retryable failure: failed (with its retry time) and started again, then dead.
    let failing = id(&app.dispatch("fail", json!({"mode": "retryable"}), json!({"max_attempts": 2})).await);
    let frames = until(&mut events, ended(&failing)).await;
    assert_eq!(
        life(&frames, &failing),
        [
            ("job.queued".into(), None),
            ("job.started".into(), Some(1)),
            ("job.failed".into(), Some(1)),
            ("job.started".into(), Some(2)),
            ("job.dead".into(), Some(2)),
        ]
    );
    let failed = frames.iter().find(|f| f.event == "job.failed").unwrap();
    assert!(failed.data["retry_at"].is_string(), "{}", failed.data);
    assert_eq!(failed.data["error"], "plugin_error", "{}", failed.data);
    let last_id = frames.last().unwrap().id.clone().unwrap();
    drop(events);

    // Gone for a while: what happened meanwhile comes on reconnecting with
    // the last id seen, nothing twice.
    let meanwhile = id(&app.wait(&id(&app.dispatch("echo", json!(2), json!({})).await)).await);
    let request = app.raw(Method::GET, "/v1/events").header("last-event-id", &last_id);
    let mut resumed = Events::request(request).await;
    let frames = until(&mut resumed, ended(&meanwhile)).await;
    assert_eq!(frames.iter().filter(|f| f.data["job"] == failing).count(), 0, "nothing twice: {frames:?}");
    assert_eq!(life(&frames, &meanwhile).len(), 3, "{frames:?}");
    // The query parameter works as the header (EventSource cannot set headers).
    let mut by_query = open(&app, None, &format!("?last_event_id={last_id}")).await;
    let again = until(&mut by_query, ended(&meanwhile)).await;
    assert_eq!(again.len(), frames.len());
    app.stop().await;
}

#[tokio::test]
async fn a_resume_from_an_id_no_longer_held_or_never_given_says_it_lagged() {
    let app = spawn_app_with(Options::default(), |s| s.event_history = 8).await;
    app.register("echo", "echo").await;
    let mut events = open(&app, None, "").await;
    let first = id(&app.dispatch("echo", json!(0), json!({})).await);
    let seen = until(&mut events, ended(&first)).await;
    let last_id = seen.last().unwrap().id.clone().unwrap();
    drop(events);
    // Ten jobs (thirty events) while away: more than the eight held.
    let mut last = String::new();
    for n in 0..10 {
        last = id(&app.dispatch("echo", json!(n), json!({})).await);
        app.wait(&last).await;
    }
    let request = app.raw(Method::GET, "/v1/events").header("last-event-id", &last_id);
    let mut resumed = Events::request(request).await;
    let lagged = resumed.frame().await.unwrap();
    assert_eq!(lagged.event, "lagged");
    assert_eq!(lagged.data["missed"], 22, "30 events after the last seen, 8 still held");
    let rest = until(&mut resumed, ended(&last)).await;
    assert_eq!(rest.len(), 8, "then every event still held: {rest:?}");
    // An id this server never gave: lagged with an unknown count, then live.
    for bad in ["nonsense", "0123456789ab-5"] {
        let request = app.raw(Method::GET, "/v1/events").header("last-event-id", bad);
        let mut stream = Events::request(request).await;
        let lagged = stream.frame().await.unwrap();
        assert_eq!((lagged.event.as_str(), &lagged.data), ("lagged", &json!({"missed": null})), "{bad}");
        let next = id(&app.dispatch("echo", json!("live"), json!({})).await);
        let frames = until(&mut stream, ended(&next)).await;
        assert_eq!(frames[0].event, "job.queued", "{bad}: only what came after");
    }
    app.stop().await;
}

#[tokio::test]
async fn filters_narrow_the_stream_and_batches_say_when_they_are_done() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    app.register("other", "echo").await;
    let mut by_alias = open(&app, None, "?alias=other&types=job.succeeded").await;
    let mut by_queue = open(&app, None, "?queue=q2").await;
    let _echo = app.dispatch("echo", json!(1), json!({})).await;
    let other = id(&app.dispatch("other", json!(2), json!({})).await);
    let in_q2 = id(&app.dispatch("echo", json!(3), json!({"queue": "q2"})).await);
    let frame = by_alias.frame().await.unwrap();
    assert_eq!((frame.event.as_str(), frame.data["job"].as_str()), ("job.succeeded", Some(other.as_str())));
    let frames = until(&mut by_queue, ended(&in_q2)).await;
    assert!(frames.iter().all(|f| f.data["job"] == in_q2), "{frames:?}");
    // A batch's jobs, then its `batch.done`, and nothing of other jobs: its
    // id is known once it is created, so the stream resumes from before.
    let before = frames.last().unwrap().id.clone().unwrap();
    let jobs: Vec<Value> = (0..3).map(|n| json!({"alias": "echo", "payload": n})).collect();
    let (status, batch) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let batch_id = batch["id"].as_str().unwrap().to_string();
    app.dispatch("echo", json!("not in the batch"), json!({})).await;
    let mut by_batch = open(&app, None, &format!("?batch={batch_id}&last_event_id={before}")).await;
    let frames = until(&mut by_batch, |f| f.event == "batch.done").await;
    assert_eq!(frames.iter().filter(|f| f.event == "job.succeeded").count(), 3, "{frames:?}");
    assert!(frames.iter().all(|f| f.data["batch"] == batch_id.as_str()), "{frames:?}");
    assert_eq!(frames.last().unwrap().data["tenant"], "default");
    // Unknown types and parameters are refused, naming them.
    let (status, body) = app.get("/v1/events?types=job.finished").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("job.finished"), "{body}");
    let (status, body) = app.get("/v1/events?tenant=other").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app.get("/v1/events?timeout_ms=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("timeout_ms"), "{body}");
    // A stream asked to end does, on its own.
    let mut brief = open(&app, None, "?timeout_ms=200&alias=nobody").await;
    assert!(matches!(brief.frame_within(Duration::from_secs(10)).await, Ok(None)), "it ended");
    app.stop().await;
}

#[tokio::test]
async fn cancels_retries_and_progress_are_events_too() {
    let app = spawn_app(Options::default()).await;
    app.register("log-spam", "log-spam").await;
    app.register("fail", "fail").await;
    app.register("contract", "contract-v0-1").await;
    let mut events = open(&app, None, "").await;
    // Progress and a live log line of a running job.
    let logs = id(&app.dispatch("contract", json!({}), json!({})).await);
    let frames = until(&mut events, ended(&logs)).await;
    let log = frames.iter().find(|f| f.event == "job.log").expect("a job.log event");
    assert_eq!(
        (log.data["level"].as_str(), log.data["message"].as_str()),
        (Some("info"), Some("contract 0.1.0"))
    );
    // Progress reports until cancelled (its progress is stored, and shown,
    // once it has run 250 ms).
    let limits = json!({"fuel": 1_000_000_000_000_000u64, "timeout_ms": 300_000});
    let slow = id(&app.dispatch("log-spam", json!({}), limits).await);
    let frames = until(&mut events, |f| f.data["job"] == slow && f.event == "job.progress").await;
    assert!(frames.last().unwrap().data["percent"].is_u64());
    let (status, _) = app.post(&format!("/v1/jobs/{slow}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let frames = until(&mut events, ended(&slow)).await;
    assert_eq!(frames.last().unwrap().event, "job.cancelled");
    let dead = id(&app.dispatch("fail", json!({"mode": "error"}), json!({})).await);
    until(&mut events, ended(&dead)).await;
    let (status, _) = app.post(&format!("/v1/jobs/{dead}/retry"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let frames = until(&mut events, ended(&dead)).await;
    let queued = frames.iter().find(|f| f.data["job"] == dead && f.event == "job.queued").unwrap();
    assert_eq!(queued.data["reason"], "retried");
    app.stop().await;
}

/// Frames until every job of `ids` had an event `done` accepts.
async fn until_each(events: &mut Events, ids: &[String], done: impl Fn(&Frame) -> bool) -> Vec<Frame> {
    let mut left: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut seen = Vec::new();
    while !left.is_empty() {
        let frame = events.frame().await.expect("the stream stays open");
        if done(&frame) {
            left.remove(frame.data["job"].as_str().unwrap_or(""));
        }
        seen.push(frame);
    }
    seen
}

#[tokio::test]
async fn bulk_retries_and_cancels_announce_each_job_they_change() {
    let app = spawn_app(Options::default()).await;
    app.register("fail", "fail").await;
    app.register("echo", "echo").await;
    let mut events = open(&app, None, "").await;
    let mut dead = Vec::new();
    for _ in 0..3 {
        dead.push(id(&app.dispatch("fail", json!({"mode": "error"}), json!({})).await));
    }
    until_each(&mut events, &dead, |f| f.event == "job.dead").await;
    let (status, done) = app.post("/v1/jobs/retry", &json!({"status": ["dead"], "alias": "fail"})).await;
    assert_eq!((status, done), (StatusCode::OK, json!({"action": "retry", "affected": 3})));
    let frames = until_each(&mut events, &dead, |f| f.event == "job.queued").await;
    for job in &dead {
        let queued = frames.iter().find(|f| f.data["job"] == *job && f.event == "job.queued").unwrap();
        assert_eq!(
            (queued.data["reason"].as_str(), queued.data["status"].as_str(), queued.data["alias"].as_str()),
            (Some("retried"), Some("queued"), Some("fail")),
            "{}",
            queued.data
        );
    }
    // A batch held an hour ahead, cancelled in bulk: each job's end, then the batch's.
    let jobs = json!({"jobs": [{"alias": "echo", "payload": {}, "delay_ms": 3_600_000},
                               {"alias": "echo", "payload": {}, "delay_ms": 3_600_000}]});
    let (status, batch) = app.post("/v1/batches", &jobs).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let batch = batch["id"].as_str().unwrap().to_string();
    let held = super::batches::batch_jobs(&app, &batch).await;
    assert_eq!(held.len(), 2);
    let (status, done) = app.post("/v1/jobs/cancel", &json!({"alias": "echo"})).await;
    assert_eq!((status, done), (StatusCode::OK, json!({"action": "cancel", "affected": 2})));
    let frames = until(&mut events, |f| f.event == "batch.done" && f.data["batch"] == batch.as_str()).await;
    for job in &held {
        let ends: Vec<&Frame> =
            frames.iter().filter(|f| f.data["job"] == *job && f.event != "job.queued").collect();
        assert_eq!(ends.len(), 1, "{frames:?}");
        assert_eq!(
            (ends[0].event.as_str(), ends[0].data["batch"].as_str()),
            ("job.cancelled", Some(&*batch))
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn tenants_see_only_their_own_events_and_the_operator_sees_all() {
    let app = spawn_app(Options { operator_token: Some(OPERATOR.into()), ..Options::default() }).await;
    let (a, b) = (admin(&app, "tenant-a").await, admin(&app, "tenant-b").await);
    for token in [&a, &b] {
        super::capabilities_jobs::alias(&app, token, "echo", "echo", json!({})).await;
    }
    let mut of_a = open(&app, Some(&a), "").await;
    let mut everyone = open(&app, Some(OPERATOR), "").await;
    let dispatch = async |token: &str| {
        let body = json!({"alias": "echo", "payload": "private"});
        let (status, job) = app.call(token, Method::POST, "/v1/jobs", Some(&body)).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        id(&job)
    };
    let b_job = dispatch(&b).await;
    let a_job = dispatch(&a).await;
    let frames = until(&mut of_a, ended(&a_job)).await;
    assert!(frames.iter().all(|f| f.data["tenant"] == "tenant-a"), "{frames:?}");
    let all = until(&mut everyone, ended(&a_job)).await;
    let mut seen: Vec<&str> = all.iter().filter_map(|f| f.data["tenant"].as_str()).collect();
    seen.dedup();
    assert!(seen.contains(&"tenant-a") && all.iter().any(|f| f.data["job"] == b_job.as_str()), "{all:?}");
    // A tenant cannot ask for the node's events.
    let mut nodes = open(&app, Some(&a), "?types=node,worker").await;
    assert!(nodes.frame_within(Duration::from_millis(300)).await.is_err(), "nothing for a tenant");
    app.stop().await;
}

#[tokio::test]
async fn a_stalled_consumer_never_holds_the_workers_back() {
    let app = spawn_app_with(Options { workers: 4, ..Options::default() }, |s| s.event_history = 100).await;
    app.register("echo", "echo").await;
    // A stream nobody reads, and a filtered one that matches nothing.
    let stalled = open(&app, None, "").await;
    let _quiet = open(&app, None, "?alias=nobody").await;
    let jobs: Vec<Value> =
        (0..2_000).map(|n| json!({"alias": "echo", "payload": {"n": n, "pad": "x".repeat(200)}})).collect();
    let (status, batch) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let path = format!("/v1/batches/{}", batch["id"].as_str().unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, b) = app.get(&path).await;
        if b["done"] == true {
            assert_eq!(b["counts"]["succeeded"], 2_000, "{b}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the batch did not finish: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The stalled stream, read at last, learns how much it missed.
    let mut stalled = stalled;
    let mut lagged = None;
    while let Ok(Some(frame)) = stalled.frame_within(Duration::from_secs(5)).await {
        if frame.event == "lagged" {
            lagged = Some(frame);
            break;
        }
    }
    let lagged = lagged.expect("a lagged event");
    assert!(lagged.data["missed"].as_u64().unwrap() > 1_000, "{}", lagged.data);
    app.stop().await;
}
