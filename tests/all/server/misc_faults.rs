//! Regression tests for issue 11's upload and bookkeeping faults: bounded,
//! remembered compiles with short reasons; idempotency conflicts; batch totals
//! with existing keys; bounded, paged alias history; deleting a module's
//! compiled code. Each test ends by checking the server still serves normally.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Options, Receiver, TestApp, spawn_app, spawn_app_with};
use crate::support::plugin_bytes;

/// A valid WASI command (core module) of its own digest: `n` changes the bytes.
fn unique_module(n: u64) -> Vec<u8> {
    wat::parse_str(format!(r#"(module (func (export "_start")) (func (result i64) i64.const {n}))"#)).unwrap()
}

/// A salt that makes modules unique to this run (artifact caches outlive runs).
fn salt() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

type Answer = (StatusCode, Option<String>, Value);

/// Sends a request; its status, `Retry-After` and JSON body.
async fn send_answer(request: reqwest::RequestBuilder) -> Answer {
    let resp = request.send().await.expect("request sent");
    let status = resp.status();
    let retry_after = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, resp.json().await.unwrap())
}

fn upload_request(app: &TestApp, bytes: Vec<u8>) -> reqwest::RequestBuilder {
    app.raw(Method::POST, "/v1/modules").header("content-type", "application/wasm").body(bytes)
}

async fn upload_bytes(app: &TestApp, bytes: Vec<u8>) -> Answer {
    send_answer(upload_request(app, bytes)).await
}

/// Sends every upload at once; the answers in the modules' order.
async fn upload_all(app: &TestApp, modules: &[Vec<u8>]) -> Vec<Answer> {
    let tasks: Vec<_> =
        modules.iter().map(|m| tokio::spawn(send_answer(upload_request(app, m.clone())))).collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

async fn compiler(app: &TestApp) -> Value {
    let (status, body) = app.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["compiler"].clone()
}

/// The server still serves: health, a dispatch that runs, and a listing.
async fn still_serves(app: &TestApp) {
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    app.register("still-echo", "echo").await;
    let job = app.dispatch("still-echo", json!({"still": true}), json!({})).await;
    let done = app.wait(job["id"].as_str().unwrap()).await;
    assert_eq!((done["status"].as_str(), &done["result"]), (Some("succeeded"), &json!({"still": true})));
    let (status, _) = app.get("/v1/jobs?limit=5").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_failed_compile_answers_a_short_reason_and_is_not_compiled_again() {
    let cache = tempfile::tempdir().unwrap();
    // Echo is compiled ahead (in-process, same engine settings) so the server
    // can still take it; every other module meets a compiler child with 1 MiB
    // of address space, which cannot even start compiling.
    let opts = Options::default();
    let dir = tempfile::tempdir().unwrap();
    let mut warm = super::settings(&opts, &dir).engine;
    warm.cache_dir = Some(cache.path().to_path_buf());
    warm.compile_mode = wasmq::sandbox::CompileMode::InProcess;
    wasmq::sandbox::Engine::new(warm).unwrap().load(plugin_bytes("echo")).await.unwrap();
    let app = spawn_app_with(opts, |s| {
        s.engine.cache_dir = Some(cache.path().to_path_buf());
        s.engine.compile_memory_bytes = 1 << 20;
    })
    .await;

    let bad = unique_module(salt());
    let (status, _, first) = upload_bytes(&app, bad.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{first}");
    assert_eq!(first["error"]["code"], "invalid_module", "{first}");
    let message = first["error"]["message"].as_str().unwrap();
    assert!(message.len() <= 600 && !message.contains('\n'), "not one short line: {message:?}");
    for leak in ["backtrace", "BACKTRACE", "panicked", "stack"] {
        assert!(!message.contains(leak), "compiler output leaked ({leak}): {message}");
    }
    assert!(message.contains("1 MiB memory"), "names the limit: {message}");
    let stats = compiler(&app).await;
    assert_eq!(
        (stats["started"].as_u64(), stats["failures_remembered"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );

    // The same bytes again: the same answer, without a compiler child.
    let (status, _, again) = upload_bytes(&app, bad).await;
    assert_eq!((status, &again), (StatusCode::BAD_REQUEST, &first));
    let stats = compiler(&app).await;
    assert_eq!(
        (stats["started"].as_u64(), stats["failures_replayed"].as_u64()),
        (Some(1), Some(1)),
        "{stats}"
    );

    still_serves(&app).await;
    assert_eq!(compiler(&app).await["started"].as_u64(), Some(1), "echo came from the artifact cache");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_uploads_never_run_more_compilers_than_the_bound() {
    let cache = tempfile::tempdir().unwrap();
    let app = spawn_app_with(Options::default(), |s| {
        s.engine.cache_dir = Some(cache.path().to_path_buf());
        s.engine.max_concurrent_compiles = 1;
        s.engine.compile_queue = 16;
    })
    .await;
    let base = salt();
    let modules: Vec<Vec<u8>> = (0..6).map(|i| unique_module(base + i)).collect();
    for (status, _, body) in upload_all(&app, &modules).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let stats = compiler(&app).await;
    assert_eq!(stats["slots"].as_u64(), Some(1), "{stats}");
    assert_eq!(stats["started"].as_u64(), Some(6), "{stats}");
    assert_eq!(stats["max_running"].as_u64(), Some(1), "{stats}");
    assert_eq!((stats["running"].as_u64(), stats["waiting"].as_u64()), (Some(0), Some(0)), "{stats}");
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn uploads_beyond_the_compile_queue_get_503_with_retry_after() {
    let cache = tempfile::tempdir().unwrap();
    let app = spawn_app_with(Options::default(), |s| {
        s.engine.cache_dir = Some(cache.path().to_path_buf());
        s.engine.max_concurrent_compiles = 1;
        s.engine.compile_queue = 0;
    })
    .await;
    let base = salt();
    let modules: Vec<Vec<u8>> = (0..8).map(|i| unique_module(base + i)).collect();
    let answers = upload_all(&app, &modules).await;
    // However the uploads interleave, each either compiled or was refused at
    // once with the project's error shape and a Retry-After; never more than
    // one compiler ran.
    let mut refused = Vec::new();
    for (i, (status, retry_after, body)) in answers.into_iter().enumerate() {
        match status {
            StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "busy", "{body}");
                assert!(body["error"]["message"].as_str().unwrap().contains("compiler is busy"), "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"));
                refused.push(i);
            }
            other => panic!("upload {i}: {other} {body}"),
        }
    }
    let stats = compiler(&app).await;
    assert_eq!(stats["max_running"].as_u64(), Some(1), "{stats}");
    assert_eq!(stats["refused_busy"].as_u64(), Some(refused.len() as u64), "{stats}");
    assert_eq!(stats["started"].as_u64(), Some(8 - refused.len() as u64), "{stats}");
    // A refused upload succeeds when retried.
    for i in refused {
        let (status, _, body) = upload_bytes(&app, modules[i].clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_request_is_a_conflict() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let job = |payload: Value, extra: Value| {
        let mut req = json!({ "alias": "echo", "payload": payload, "idempotency_key": "order-7" });
        req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        req
    };
    let (status, first) = app.post("/v1/jobs", &job(json!({"a": 1, "b": [1, 2]}), json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap();

    // The same request (keys in another order) answers the first job.
    let (status, again) = app.post("/v1/jobs", &job(json!({"b": [1, 2], "a": 1}), json!({}))).await;
    assert_eq!((status, again["id"].as_str()), (StatusCode::OK, Some(id)));
    let short = app
        .raw(Method::POST, "/v1/dispatch/echo?idempotency_key=order-7")
        .header("content-type", "application/json")
        .body(r#"{ "a" : 1, "b" : [1,2] }"#);
    let (status, body) = app.send(short).await;
    assert_eq!((status, body["id"].as_str()), (StatusCode::ACCEPTED, Some(id)), "{body}");

    // Another payload, or other options, with the key: 409 naming the key.
    for (payload, extra) in
        [(json!({"a": 2, "b": [1, 2]}), json!({})), (json!({"a": 1, "b": [1, 2]}), json!({"priority": 900}))]
    {
        let (status, body) = app.post("/v1/jobs", &job(payload, extra)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "idempotency_conflict", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("order-7"), "{body}");
    }
    let short = app.raw(Method::POST, "/v1/dispatch/echo?idempotency_key=order-7").body(r#"{"a":3}"#);
    let (status, body) = app.send(short).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_conflict"))
    );

    // In a batch, the conflict names the job; nothing of the batch is written.
    let batch = json!({"jobs": [
        {"alias": "echo", "payload": {"fresh": true}, "idempotency_key": "fresh-1"},
        {"alias": "echo", "payload": {"a": 9}, "idempotency_key": "order-7"},
    ]});
    let (status, body) = app.post("/v1/batches", &batch).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("jobs[1]: ") && message.contains("order-7"), "{message}");
    let (_, page) = app.get("/v1/jobs?limit=100").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "only the first job exists: {page}");

    let done = app.wait(id).await;
    assert_eq!(done["result"], json!({"a": 1, "b": [1, 2]}));
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_conflicting_dispatch_does_not_fail_the_dispatches_committed_with_it() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let first = app.dispatch("echo", json!({"v": 0}), json!({"idempotency_key": "dup"})).await;
    // Sent at once, these are group-committed together in whatever groups form:
    // each still gets its own answer.
    let mut requests = Vec::new();
    for i in 0..30 {
        let (body, expect) = match i % 3 {
            0 => (json!({"alias": "echo", "payload": {"fresh": i}}), StatusCode::CREATED),
            1 => (json!({"alias": "echo", "payload": {"v": 0}, "idempotency_key": "dup"}), StatusCode::OK),
            _ => (
                json!({"alias": "echo", "payload": {"v": i}, "idempotency_key": "dup"}),
                StatusCode::CONFLICT,
            ),
        };
        let request = app.raw(Method::POST, "/v1/jobs").json(&body);
        requests.push((expect, tokio::spawn(async move { send_answer(request).await })));
    }
    for (expect, task) in requests {
        let (status, _, body) = task.await.unwrap();
        assert_eq!(status, expect, "{body}");
        if status == StatusCode::OK {
            assert_eq!(body["id"], first["id"]);
        }
    }
    let (_, page) = app.get("/v1/jobs?limit=100").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 11, "10 fresh jobs and the keyed one");
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_batch_owns_only_the_jobs_it_created_and_still_finishes() {
    let app = spawn_app(Options::default()).await;
    let receiver = Receiver::start(0).await;
    app.register("echo", "echo").await;
    let earlier = app.dispatch("echo", json!({"n": 0}), json!({"idempotency_key": "n-0"})).await;
    let earlier_id = earlier["id"].as_str().unwrap().to_string();

    let batch = json!({
        "jobs": [
            {"alias": "echo", "payload": {"n": 0}, "idempotency_key": "n-0"},
            {"alias": "echo", "payload": {"n": 1}},
            {"alias": "echo", "payload": {"n": 2}, "idempotency_key": "n-2"},
            {"alias": "echo", "payload": {"n": 2}, "idempotency_key": "n-2"},
        ],
        "callback": {"url": receiver.url},
    });
    let (status, created) = app.post("/v1/batches", &batch).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["total"], 2, "{created}");
    assert_eq!(created["existing"], json!([earlier_id]), "{created}");
    let ids: Vec<&str> = created["job_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!((ids.len(), ids[0], ids[2] == ids[3]), (4, earlier_id.as_str(), true), "{created}");

    // The callback fires once its own two jobs end.
    let (_, body) = receiver.next().await;
    assert_eq!(
        (body["batch_id"].as_str(), body["total"].as_u64()),
        (created["id"].as_str(), Some(2)),
        "{body}"
    );
    assert_eq!(body["counts"]["succeeded"], 2, "{body}");
    let (_, view) = app.get(&format!("/v1/batches/{}", created["id"].as_str().unwrap())).await;
    assert_eq!((view["done"].as_bool(), view["total"].as_u64()), (Some(true), Some(2)), "{view}");

    // A batch of only existing jobs owns none: done, and its callback comes at once.
    let only_existing = json!({
        "jobs": [{"alias": "echo", "payload": {"n": 0}, "idempotency_key": "n-0"}],
        "callback": {"url": receiver.url},
    });
    let (status, created) = app.post("/v1/batches", &only_existing).await;
    assert_eq!((status, created["total"].as_u64()), (StatusCode::CREATED, Some(0)), "{created}");
    let (_, body) = receiver.next().await;
    assert_eq!(
        (body["batch_id"].as_str(), body["total"].as_u64()),
        (created["id"].as_str(), Some(0)),
        "{body}"
    );
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn alias_history_is_bounded_and_paged_and_rollback_still_works() {
    let app = spawn_app_with(Options::default(), |s| s.alias_history = 3).await;
    let digest = app.upload("echo").await;
    for fuel in 1..=6u64 {
        let (status, body) =
            app.put("/v1/aliases/echo", &json!({"module": digest, "fuel": fuel * 1_000_000})).await;
        assert_eq!((status, body["version"].as_u64()), (StatusCode::OK, Some(fuel)), "{body}");
    }
    let versions = |body: &Value| -> Vec<u64> {
        body["history"].as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect()
    };
    let (status, all) = app.get("/v1/aliases/echo").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(versions(&all), [6, 5, 4], "only the newest 3 are kept: {all}");
    assert!(all.get("history_next_cursor").is_none(), "{all}");

    let (_, page) = app.get("/v1/aliases/echo?limit=2").await;
    assert_eq!(versions(&page), [6, 5]);
    let cursor = page["history_next_cursor"].as_str().unwrap();
    let (_, rest) = app.get(&format!("/v1/aliases/echo?limit=2&cursor={cursor}")).await;
    assert_eq!(versions(&rest), [4]);
    assert!(rest.get("history_next_cursor").is_none(), "{rest}");
    // A page that ends exactly at the oldest kept version has no cursor either.
    let (_, exact) = app.get("/v1/aliases/echo?limit=3").await;
    assert_eq!(versions(&exact), [6, 5, 4]);
    assert!(exact.get("history_next_cursor").is_none(), "{exact}");

    for (query, field) in
        [("limit=0", "limit"), ("limit=101", "limit"), ("cursor=x", "cursor"), ("page=2", "page")]
    {
        let (status, body) = app.get(&format!("/v1/aliases/echo?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field), "{query}: {body}");
    }

    let (status, rolled) = app.post("/v1/aliases/echo/rollback", &json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_eq!((rolled["version"].as_u64(), rolled["fuel"].as_u64()), (Some(7), Some(5_000_000)));
    let (_, all) = app.get("/v1/aliases/echo").await;
    assert_eq!(versions(&all), [7, 6, 5]);
    let job = app.dispatch("echo", json!("after rollback"), json!({})).await;
    assert_eq!(app.wait(job["id"].as_str().unwrap()).await["status"], "succeeded");
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_module_removes_its_compiled_code() {
    let cache = tempfile::tempdir().unwrap();
    let app =
        spawn_app_with(Options::default(), |s| s.engine.cache_dir = Some(cache.path().to_path_buf())).await;
    let bytes = unique_module(salt());
    let (status, _, body) = upload_bytes(&app, bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let digest = body["digest"].as_str().unwrap().to_string();
    let hex = digest.strip_prefix("blake3:").unwrap().to_string();
    let artifacts = || -> Vec<String> {
        std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&hex))
            .collect()
    };
    assert_eq!(artifacts().len(), 1, "compiled once, cached on disk");
    assert_eq!(compiler(&app).await["started"].as_u64(), Some(1));

    let (status, body) = app.delete(&format!("/v1/modules/{digest}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(artifacts().is_empty(), "artifact left behind: {:?}", artifacts());
    // Neither memory nor disk holds it: uploading it again compiles again.
    let (status, _, body) = upload_bytes(&app, bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(compiler(&app).await["started"].as_u64(), Some(2));
    assert_eq!(artifacts().len(), 1);
    still_serves(&app).await;
    app.stop().await;
}
