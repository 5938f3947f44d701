//! One request never breaks the server for others: numbers and times are
//! bounded at the edge, stored records always render, a panicking handler
//! answers a JSON 500, and `/readyz` tells whether the node can work.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

use super::{Options, TestApp, spawn_app};
use crate::support::sqlite_file;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

/// What `delay_ms: 300000000000000` turned into before dispatches were bounded.
const HUGE_DELAY: u64 = 300_000_000_000_000;

/// Another client, unaffected: a job dispatched now runs and succeeds.
async fn serves_others_normally(app: &TestApp) {
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = app.dispatch("echo", json!({"other": "client"}), json!({})).await;
    let done = app.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"other": "client"}));
    let (status, page) = app.get("/v1/jobs?limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{page}");
}

#[tokio::test]
async fn a_huge_delay_is_refused_on_every_form_naming_the_field() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let dispatch = format!("/v1/dispatch/echo?delay_ms={HUGE_DELAY}");
    let cases: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (
            app.raw(Method::POST, "/v1/jobs")
                .json(&json!({"alias": "echo", "payload": {}, "delay_ms": HUGE_DELAY})),
            "delay_ms must be between 0 and 31536000000 (one year), got 300000000000000",
        ),
        (app.raw(Method::POST, &dispatch).json(&json!({})), "delay_ms must be between 0 and 31536000000"),
        (
            app.raw(Method::POST, "/v1/batches").json(&json!({"jobs": [
                {"alias": "echo", "payload": 1},
                {"alias": "echo", "payload": 1, "delay_ms": HUGE_DELAY},
            ]})),
            "jobs[1]: delay_ms must be between 0 and 31536000000",
        ),
        (
            app.raw(Method::POST, "/v1/jobs")
                .json(&json!({"alias": "echo", "payload": {}, "delay_ms": u64::MAX})),
            "delay_ms must be between",
        ),
        (
            app.raw(Method::POST, "/v1/dispatch/echo?delay_ms=18446744073709551616").json(&json!({})),
            "query parameter delay_ms",
        ),
        (
            app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": {}, "delay_ms": -1})),
            "delay_ms: invalid value",
        ),
        (
            app.raw(Method::POST, "/v1/jobs")
                .json(&json!({"alias": "echo", "payload": {}, "run_at": "9999-12-31T23:59:59Z"})),
            "run_at must be at most one year ahead",
        ),
        (
            app.raw(Method::POST, "/v1/batches")
                .json(&json!({"jobs": [{"alias": "echo", "payload": 1, "run_at": "3026-01-01T00:00:00Z"}]})),
            "jobs[0]: run_at must be at most one year ahead",
        ),
    ];
    for (request, fragment) in cases {
        let (status, body) = app.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&body), "invalid_field", "{body}");
        assert!(message(&body).contains(fragment), "{fragment:?} not in {body}");
    }
    // Nothing was stored.
    let (_, page) = app.get("/v1/jobs").await;
    assert_eq!(page["jobs"], json!([]), "{page}");
    // A year ahead is still fine.
    let job = app.dispatch("echo", json!(1), json!({"delay_ms": 365u64 * 24 * 3600 * 1000})).await;
    assert_eq!(job["status"], "scheduled", "{job}");
    serves_others_normally(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn every_number_from_a_client_is_bounded_with_a_400_naming_it() {
    let app = spawn_app(Options::default()).await;
    let digest = app.upload("echo").await;
    app.register("echo", "echo").await;
    let job = |extra: Value| {
        let mut req = json!({"alias": "echo", "payload": 1});
        req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        app.raw(Method::POST, "/v1/jobs").json(&req)
    };
    let alias = |extra: Value| {
        let mut req = json!({"module": digest});
        req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        app.raw(Method::PUT, "/v1/aliases/bounded").json(&req)
    };
    let cases: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (job(json!({"timeout_ms": 0})), "timeout_ms must be between 1 and 86400000, got 0"),
        (job(json!({"timeout_ms": u64::MAX})), "timeout_ms must be between 1 and 86400000"),
        (job(json!({"fuel": 0})), "fuel must be between 1 and 9223372036854775807, got 0"),
        (job(json!({"fuel": u64::MAX})), "fuel must be between 1 and 9223372036854775807"),
        (job(json!({"memory_mb": 1u64 << 50})), "memory_mb must be between 1 and 1024"),
        (job(json!({"memory_mb": 0})), "memory_mb must be between 1 and 1024, got 0"),
        (job(json!({"priority": i64::MAX})), "priority must be between 0 and 1000"),
        (job(json!({"max_attempts": 101})), "max_attempts must be between 1 and 100, got 101"),
        (job(json!({"max_attempts": u64::MAX})), "max_attempts: invalid value"),
        (
            app.raw(Method::POST, "/v1/dispatch/echo?memory_mb=1125899906842624").json(&json!({})),
            "memory_mb must be between 1 and 1024",
        ),
        (
            app.raw(Method::POST, "/v1/dispatch/echo?timeout_ms=99999999999").json(&json!({})),
            "timeout_ms must be between 1 and 86400000",
        ),
        (
            app.raw(Method::POST, "/v1/dispatch/echo?priority=-5").json(&json!({})),
            "priority must be between 0 and 1000",
        ),
        (alias(json!({"memory_mb": 1u64 << 50})), "memory_mb must be between 1 and 1024"),
        (alias(json!({"timeout_ms": 0})), "timeout_ms must be between 1 and 86400000"),
        (alias(json!({"fuel": 0})), "fuel must be between 1 and"),
        (alias(json!({"priority": 1001})), "priority must be between 0 and 1000, got 1001"),
        (alias(json!({"max_attempts": 0})), "max_attempts must be between 1 and 100, got 0"),
        (
            app.raw(Method::GET, "/v1/jobs/x/wait?timeout_ms=300001"),
            "timeout_ms must be between 0 and 300000",
        ),
        (app.raw(Method::GET, "/v1/jobs?limit=4294967296"), "query parameter limit"),
        (app.raw(Method::GET, "/v1/jobs?limit=1001"), "limit must be between 1 and 1000, got 1001"),
    ];
    for (request, fragment) in cases {
        let (status, body) = app.send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&body), "invalid_field", "{body}");
        assert!(message(&body).contains(fragment), "{fragment:?} not in {body}");
    }
    let (status, body) = app.get("/v1/aliases/bounded").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no bad alias was stored: {body}");
    serves_others_normally(&app).await;
    app.stop().await;
}

/// Reads server-sent events from `resp` until one named `until` arrives (or
/// the stream ends); returns them as (name, data).
async fn read_events(resp: &mut reqwest::Response, until: &str) -> Vec<(String, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    loop {
        while let Some(at) = text.find("\n\n") {
            let block: String = text.drain(..at + 2).collect();
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str::<Value>(d.trim()).unwrap());
                }
            }
            if let (Some(n), Some(d)) = (name, data) {
                let done = n == until;
                events.push((n, d));
                if done {
                    return events;
                }
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
            .await
            .expect("an event arrives")
            .expect("the stream reads");
        match chunk {
            Some(bytes) => text.push_str(std::str::from_utf8(&bytes).unwrap()),
            None => return events,
        }
    }
}

#[tokio::test]
async fn a_job_stored_with_a_huge_run_at_still_renders_everywhere() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    // Two scheduled jobs, planted through the store as an older server stored
    // them: due at `now + 300000000000000` and at the saturated `i64::MAX`.
    let now = wasmq::domain::time::now_ms();
    let store = app.store().await;
    let module: wasmq::domain::Digest = app.upload("echo").await.parse().unwrap();
    let planted = |payload: Value, run_at: i64| wasmq::store::NewJob {
        max_attempts: 3,
        ..crate::support::planted_job(
            &wasmq::domain::TenantId::default_tenant(),
            "echo",
            module,
            payload.to_string(),
            now,
            run_at,
        )
    };
    let far = planted(json!({"far": 1}), now + HUGE_DELAY as i64);
    let max = planted(json!({"max": 1}), i64::MAX);
    let (far_id, max_id) = (far.id.clone(), max.id.clone());
    let inserted = store.job_insert(vec![far, max], None).await.unwrap();
    assert!(inserted.iter().all(|i| i.created), "{inserted:?}");
    drop(store);
    let (far, max) = (far_id, max_id);
    const SHOWN: &str = "9999-12-31T23:59:59.999Z";

    let (status, page) = app.get("/v1/jobs").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let shown: Vec<&str> =
        page["jobs"].as_array().unwrap().iter().map(|j| j["run_at"].as_str().unwrap()).collect();
    assert_eq!(shown, [SHOWN, SHOWN], "{page}");
    for id in [&far, &max] {
        let (status, job) = app.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!((status, job["run_at"].as_str()), (StatusCode::OK, Some(SHOWN)), "{job}");
        let (status, job) = app.get(&format!("/v1/jobs/{id}/wait?timeout_ms=10")).await;
        assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("scheduled")), "{job}");
        assert_eq!(job["run_at"], SHOWN);
    }
    // A stream opened before the cancel sees the status, then the end.
    let mut stream = app.raw(Method::GET, &format!("/v1/jobs/{far}/events")).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let first = read_events(&mut stream, "status").await;
    assert_eq!(first.last().unwrap().1["status"], "scheduled", "{first:?}");
    let (status, job) = app.post(&format!("/v1/jobs/{far}/cancel"), &json!({})).await;
    assert_eq!((status, job["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{job}");
    assert_eq!(job["run_at"], SHOWN);
    let rest = read_events(&mut stream, "end").await;
    let end = &rest.last().expect("an end event").1;
    assert_eq!(
        (end["status"].as_str(), end["run_at"].as_str()),
        (Some("cancelled"), Some(SHOWN)),
        "{rest:?}"
    );
    // A stream opened after the end gets it at once, and closes.
    let (status, job) = app.post(&format!("/v1/jobs/{max}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    let mut stream = app.raw(Method::GET, &format!("/v1/jobs/{max}/events")).send().await.unwrap();
    let all = read_events(&mut stream, "end").await;
    assert_eq!(all.last().unwrap().1["run_at"], SHOWN, "{all:?}");
    let (status, job) = app.get(&format!("/v1/jobs/{max}/wait")).await;
    assert_eq!((status, job["run_at"].as_str()), (StatusCode::OK, Some(SHOWN)), "{job}");
    serves_others_normally(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_answers_a_logged_json_500_and_the_server_goes_on() {
    use axum::routing::get;
    async fn boom() -> &'static str {
        panic!("secret detail of the failure")
    }
    // The production layers and serving loop around a handler that panics
    // (no route of the API panics on purpose; this one does).
    let routes = axum::Router::new().route("/boom", get(boom)).route("/ok", get(|| async { "ok" }));
    let router = wasmq::api::guard(routes, Duration::from_secs(5));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let settings = wasmq::api::HttpSettings::default();
        wasmq::api::server::serve(listener, router, &settings, Duration::from_secs(5), async {
            let _ = stopped.await;
        })
        .await
    });
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let resp = client.get(format!("{url}/boom")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(code(&body), "internal", "{body}");
        assert!(!message(&body).contains("secret"), "the panic message leaked: {body}");
        // The same client (and its kept-alive connection) is served next.
        let resp = client.get(format!("{url}/ok")).send().await.unwrap();
        assert_eq!((resp.status(), resp.text().await.unwrap().as_str()), (StatusCode::OK, "ok"));
    }
    let other = reqwest::Client::new().get(format!("{url}/ok")).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn readyz_reports_the_database_while_healthz_stays_up() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let client = reqwest::Client::new(); // no token needed, like /healthz
    let ready = client.get(format!("{}/readyz", app.url)).send().await.unwrap();
    assert_eq!((ready.status(), ready.text().await.unwrap().as_str()), (StatusCode::OK, "ready"));
    let (_, doc) = app.get("/openapi.json").await;
    assert!(doc["paths"]["/readyz"]["get"]["responses"]["503"].is_object(), "{}", doc["paths"]["/readyz"]);

    // SQLite-specific: the database file (and its directory) goes away under
    // the server.
    let Some(file) = sqlite_file(&app.database_url) else {
        eprintln!("skipped removing the database file: {} is not SQLite", app.database_url);
        app.stop().await;
        return;
    };
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
    let resp = client.get(format!("{}/readyz", app.url)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "unavailable", "{body}");
    assert!(message(&body).contains("not ready: the database"), "{body}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(message(&body).contains(name), "{body}");
    let health = client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // The process still answers its other clients.
    let (status, body) = app.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}
