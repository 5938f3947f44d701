//! Faults found by reviewing issue 11 again as an adversary, each driven over
//! HTTP against a real server, which must still serve other clients after.

use reqwest::StatusCode;
use serde_json::json;

use super::{Options, TestApp, spawn_app};

/// Other clients get normal answers.
async fn still_serves(app: &TestApp) {
    let job = app.dispatch("echo", json!({"after": true}), json!({})).await;
    let done = app.wait(job["id"].as_str().unwrap()).await;
    assert_eq!((done["status"].as_str(), &done["result"]), (Some("succeeded"), &json!({"after": true})));
}

#[tokio::test]
async fn an_alias_setting_of_the_wrong_type_or_size_is_a_400_naming_the_field() {
    let app = spawn_app(Options::default()).await;
    let module = app.register("echo", "echo").await["module"].clone();
    for (field, value) in [
        ("priority", json!(9_223_372_036_854_775_808u64)),
        ("priority", json!(1e20)),
        ("priority", json!(-1)),
        ("max_attempts", json!(-1)),
        ("max_attempts", json!("3")),
        ("fuel", json!(18_446_744_073_709_551_616f64)),
        ("timeout_ms", json!(1.5)),
        ("memory_mb", json!(true)),
        ("queue", json!("no spaces")),
    ] {
        let (status, body) = app.put("/v1/aliases/atk", &json!({"module": module, field: value})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}: {body}");
        assert_eq!(body["error"]["code"], "invalid_field", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{field}:")), "{field}={value}: {message}");
    }
    // Nothing was stored, and a valid request still works.
    let (status, _) = app.get("/v1/aliases/atk").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.put("/v1/aliases/atk", &json!({"module": module, "priority": 7})).await;
    assert_eq!((status, &body["priority"]), (StatusCode::OK, &json!(7)), "{body}");
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_batch_conflict_names_the_job_that_reused_the_key_differently() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let job = |payload: serde_json::Value, key: &str| json!({"alias": "echo", "payload": payload, "idempotency_key": key});
    // Within one batch: the second use of the key asks for something else.
    let jobs = json!([job(json!({"a": 1}), "k1"), job(json!({"x": 0}), "other"), job(json!({"a": 2}), "k1")]);
    let (status, body) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_conflict"))
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("jobs[2]: idempotency_key \"k1\""), "{message}");
    // Against a stored job: the first use matches it, the second does not.
    app.dispatch("echo", json!({"a": 1}), json!({"idempotency_key": "k2"})).await;
    let jobs = json!([job(json!({"b": 0}), "b"), job(json!({"a": 1}), "k2"), job(json!({"a": 5}), "k2")]);
    let (status, body) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("jobs[2]: idempotency_key \"k2\""), "{message}");
    // The first use alone differs from the stored job: it is named.
    let jobs = json!([job(json!({"a": 9}), "k2")]);
    let (_, body) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
    assert!(body["error"]["message"].as_str().unwrap().starts_with("jobs[0]: "), "{body}");
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_priority_page_continues_after_a_cursor_whose_job_is_gone() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let mut ids = Vec::new();
    for priority in [900, 500, 100] {
        let job =
            app.dispatch("echo", json!(priority), json!({"priority": priority, "delay_ms": 600_000})).await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    // Pages of one, in priority order, visit every job once.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/jobs?order=priority&limit=1&cursor={c}"),
            None => "/v1/jobs?order=priority&limit=1".to_string(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // A cursor naming a job that no longer exists (pruned between pages)
    // still continues after its place: priority 500, an id past every job's.
    let gone = "500.01a2ffff-ffff-7fff-bfff-ffffffffffff";
    let (status, page) = app.get(&format!("/v1/jobs?order=priority&cursor={gone}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let rest: Vec<&str> =
        page["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(rest, [ids[2].as_str()], "{page}");
    // Anything but the form the server writes is a 400 naming the cursor.
    let bad_ones = [
        "zzz",
        "5000.01a2ffff-ffff-7fff-bfff-ffffffffffff",
        "01a2ffff-ffff-7fff-bfff-ffffffffffff",
        "+5.01a2ffff-ffff-7fff-bfff-ffffffffffff",
        "5.01A2FFFF-FFFF-7FFF-BFFF-FFFFFFFFFFFF",
    ];
    for bad in bad_ones {
        let (status, body) = app.get(&format!("/v1/jobs?order=priority&cursor={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("cursor "), "{body}");
    }
    // An empty cursor (a form's `cursor=`) is the first page, as schemathesis expects.
    let (status, page) = app.get("/v1/jobs?order=priority&cursor=").await;
    assert_eq!((status, page["jobs"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{page}");
    still_serves(&app).await;
    app.stop().await;
}
