//! Unique jobs over HTTP: a matching dispatch answers 200 with the existing
//! job, in batches too; once the job ended the next one is made; concurrent
//! unique dispatches make one job; bad options are refused naming the field.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Options, spawn_app};

#[tokio::test]
async fn a_matching_dispatch_answers_the_existing_job() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    app.register("slow", "bench-job").await;
    let slow =
        |payload: Value| json!({"alias": "slow", "payload": payload, "unique": {}, "delay_ms": 60_000});
    let (status, first) = app.post("/v1/jobs", &slow(json!({"a": 1, "b": 2}))).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // The same payload spelled otherwise is the same job.
    let (status, again) = app.post("/v1/jobs", &slow(json!({"b": 2, "a": 1}))).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (status, other) = app.post("/v1/jobs", &slow(json!({"a": 2}))).await;
    assert_eq!(status, StatusCode::CREATED, "another payload: {other}");
    // By alias only: any payload matches the delayed job of that alias.
    let by_alias = json!({"alias": "slow", "payload": 7, "delay_ms": 60_000, "unique": {"by": ["alias"]}});
    let (status, made) = app.post("/v1/jobs", &by_alias).await;
    assert_eq!(status, StatusCode::CREATED, "the set of fields is part of the key: {made}");
    let other_payload = json!({"alias": "slow", "payload": 8, "unique": {"by": ["alias"]}});
    let (status, same) = app.post("/v1/jobs", &other_payload).await;
    assert_eq!((status, &same["id"]), (StatusCode::OK, &made["id"]));
    // Another queue is another job unless the queue is left out of `by`.
    let queued = |q: &str, by: Value| json!({"alias": "slow", "payload": {"a": 1, "b": 2}, "queue": q, "delay_ms": 60_000, "unique": {"by": by}});
    let (status, _) = app.post("/v1/jobs", &queued("q2", json!(["alias", "payload", "queue"]))).await;
    assert_eq!(status, StatusCode::CREATED);

    // A batch: one job per key, the matches answered in place.
    let jobs: Vec<Value> =
        (0..4).map(|i| json!({"alias": "echo", "payload": {"n": i % 2}, "unique": {}})).collect();
    let (status, batch) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let ids: Vec<&str> = batch["job_ids"].as_array().unwrap().iter().map(|j| j.as_str().unwrap()).collect();
    assert_eq!(ids[0], ids[2]);
    assert_eq!(ids[1], ids[3]);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(batch["total"], 2, "the batch owns the two it made: {batch}");

    // Once it ended, the next dispatch makes a job (default states), unless
    // the states name how it ended, within the period.
    let echo = |unique: Value| json!({"alias": "echo", "payload": {"x": 1}, "unique": unique});
    let (_, done) = app.post("/v1/jobs", &echo(json!({}))).await;
    let id = done["id"].as_str().unwrap();
    let (_, ended) = app.get(&format!("/v1/jobs/{id}/wait?timeout_ms=30000")).await;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    let (status, next) = app.post("/v1/jobs", &echo(json!({"states": ["queued", "running"]}))).await;
    assert_eq!(status, StatusCode::CREATED, "{next}");
    app.wait(next["id"].as_str().unwrap()).await;
    // Both succeeded: the newest match is answered.
    let (status, seen) =
        app.post("/v1/jobs", &echo(json!({"states": ["succeeded"], "period_ms": 600_000}))).await;
    assert_eq!((status, &seen["id"]), (StatusCode::OK, &next["id"]));
}

#[tokio::test]
async fn concurrent_unique_dispatches_make_one_job() {
    let app = spawn_app(Options::default()).await;
    app.register("slow", "bench-job").await;
    let body = json!({"alias": "slow", "payload": {"sleep_ms": 1}, "delay_ms": 60_000,
                      "unique": {"by": ["alias", "payload"]}});
    let answers = futures_util::future::join_all((0..50).map(|_| app.post("/v1/jobs", &body))).await;
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{answers:?}");
    let id = &answers.iter().find(|(s, _)| *s == StatusCode::CREATED).unwrap().1["id"];
    assert!(
        answers.iter().all(|(s, b)| matches!(*s, StatusCode::OK | StatusCode::CREATED) && b["id"] == *id)
    );
    let (_, status) = app.get("/v1/status").await;
    assert_eq!(status["jobs"]["scheduled"], 1, "{status}");
}

#[tokio::test]
async fn bad_unique_options_are_refused_naming_the_field() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let cases = [
        (json!({"by": []}), "unique.by"),
        (json!({"states": []}), "unique.states"),
        (json!({"period_ms": 0}), "unique.period_ms must be between 1 and"),
        (json!({"period_ms": 31_536_000_001_u64}), "unique.period_ms must be between 1 and"),
        (json!({"by": ["tenant"]}), "unique.by"),
        (json!({"states": ["done"]}), "unique.states"),
        (json!({"per": 1}), "per"),
    ];
    for (unique, names) in cases {
        let (status, body) =
            app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "unique": unique})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{unique}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{unique}: {message}");
    }
}
