//! Per-tenant quotas over HTTP: each refused with `quota_exceeded` and a
//! message naming the quota and its value; one tenant at its quota while
//! another still works; an operator's PATCH applies on the next request; jobs
//! already queued still run.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Options, TestApp, spawn_app};
use crate::support::plugin_bytes;

const OPERATOR: &str = "operator-secret";

/// Requests as one tenant, through the operator token and `X-Wasmq-Tenant`.
struct As<'a> {
    app: &'a TestApp,
    tenant: Option<&'a str>,
}

impl As<'_> {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.app.client.request(method, format!("{}{path}", self.app.url)).bearer_auth(OPERATOR);
        match self.tenant {
            Some(t) => r.header("x-wasmq-tenant", t),
            None => r,
        }
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.app.send(self.req(Method::GET, path)).await
    }
    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.app.send(self.req(Method::POST, path).json(body)).await
    }
    async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.app.send(self.req(Method::PUT, path).json(body)).await
    }
    async fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.app.send(self.req(Method::PATCH, path).json(body)).await
    }
    async fn upload(&self, plugin: &str) -> (StatusCode, Value) {
        let r = self.req(Method::POST, "/v1/modules").header("content-type", "application/wasm");
        self.app.send(r.body(plugin_bytes(plugin))).await
    }
    /// Uploads `plugin` and points alias `name` at it.
    async fn register(&self, name: &str, plugin: &str) {
        let (status, module) = self.upload(plugin).await;
        assert!(status.is_success(), "{module}");
        let (status, alias) =
            self.put(&format!("/v1/aliases/{name}"), &json!({ "module": module["digest"] })).await;
        assert_eq!(status, StatusCode::OK, "{alias}");
    }
    async fn dispatch(&self, alias: &str, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({ "alias": alias, "payload": {"n": 1} });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        self.post("/v1/jobs", &body).await
    }
    async fn wait(&self, id: &str) -> Value {
        let (status, job) = self.get(&format!("/v1/jobs/{id}/wait?timeout_ms=30000")).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        job
    }
}

/// An app with an operator, tenants `alpha` and `beta`, and `echo` registered as `e` for both.
async fn two_tenants(opts: Options) -> TestApp {
    let app = spawn_app(Options { operator_token: Some(OPERATOR.into()), ..opts }).await;
    for id in ["alpha", "beta"] {
        let (status, t) = op(&app).post("/v1/tenants", &json!({ "id": id })).await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        As { app: &app, tenant: Some(id) }.register("e", "echo").await;
    }
    app
}

fn op(app: &TestApp) -> As<'_> {
    As { app, tenant: None }
}

fn alpha(app: &TestApp) -> As<'_> {
    As { app, tenant: Some("alpha") }
}

fn beta(app: &TestApp) -> As<'_> {
    As { app, tenant: Some("beta") }
}

/// Sets alpha's own quotas (the whole set).
async fn quotas(app: &TestApp, quotas: Value) -> Value {
    let (status, t) = op(app).patch("/v1/tenants/alpha", &json!({ "quotas": quotas })).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    t
}

/// The answer is `quota_exceeded` with `status`, its message containing `text`.
fn refused(answer: &(StatusCode, Value), status: StatusCode, text: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains(text), "{msg:?} should contain {text:?}");
}

#[tokio::test]
async fn per_job_limits_over_the_tenants_quota_are_400_naming_the_quota_and_patch_applies_at_once() {
    let app = two_tenants(Options::default()).await;
    let (a, b) = (alpha(&app), beta(&app));
    // An alias default set before the quota counts like the job's own.
    let (_, module) = a.get("/v1/aliases/e").await;
    let (status, body) =
        a.put("/v1/aliases/costly", &json!({ "module": module["module"], "fuel": 2_000_000_000u64 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let t =
        quotas(&app, json!({ "max_fuel": 1_000_000_000u64, "max_timeout_ms": 5000, "max_memory_mb": 32 }))
            .await;
    assert_eq!(t["effective_quotas"]["max_fuel"], 1_000_000_000u64, "{t}");
    assert_eq!(t["effective_quotas"]["max_waiting"], 100_000, "the server's default shows through: {t}");
    let (_, shown) = op(&app).get("/v1/tenants/alpha").await;
    assert_eq!(shown["effective_quotas"]["max_memory_mb"], 32, "{shown}");
    let (_, status_view) = a.get("/v1/status").await;
    assert_eq!(status_view["quotas"]["max_timeout_ms"], 5000, "the tenant sees its quotas: {status_view}");

    refused(
        &a.dispatch("e", json!({ "fuel": 5_000_000_000u64 })).await,
        StatusCode::BAD_REQUEST,
        "fuel 5000000000 is over this tenant's max_fuel 1000000000",
    );
    refused(
        &a.dispatch("e", json!({ "timeout_ms": 6000 })).await,
        StatusCode::BAD_REQUEST,
        "timeout_ms 6000 is over this tenant's max_timeout_ms 5000",
    );
    refused(
        &a.dispatch("e", json!({ "memory_mb": 64 })).await,
        StatusCode::BAD_REQUEST,
        "memory_mb 64 is over this tenant's max_memory_mb 32",
    );
    refused(
        &a.dispatch("costly", json!({})).await,
        StatusCode::BAD_REQUEST,
        "fuel 2000000000 (the alias's default) is over this tenant's max_fuel 1000000000",
    );
    let batch = json!({ "jobs": [{ "alias": "e", "payload": 1 }, { "alias": "e", "payload": 2, "fuel": 2_000_000_000u64 }] });
    refused(
        &a.post("/v1/batches", &batch).await,
        StatusCode::BAD_REQUEST,
        "jobs[1]: fuel 2000000000 is over",
    );
    let (status, body) =
        a.put("/v1/aliases/costly", &json!({ "module": module["module"], "fuel": 3_000_000_000u64 })).await;
    refused(&(status, body), StatusCode::BAD_REQUEST, "max_fuel 1000000000");

    // Within the quota, or asking nothing (the server's 64 MiB default is
    // lowered to the quota), a job runs; the other tenant is not bounded.
    let (status, job) = a.dispatch("e", json!({ "fuel": 1_000_000_000u64 })).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let (status, job) = a.dispatch("e", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(a.wait(job["id"].as_str().unwrap()).await["status"], "succeeded");
    let (status, job) = b.dispatch("e", json!({ "fuel": 5_000_000_000u64, "memory_mb": 64 })).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");

    // The operator lifts it: the next request passes.
    quotas(&app, json!({})).await;
    let (status, job) = a.dispatch("e", json!({ "fuel": 5_000_000_000u64 })).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_at_max_waiting_gets_429_others_dispatch_and_its_queued_jobs_still_run() {
    let app = two_tenants(Options::default()).await;
    let (a, b) = (alpha(&app), beta(&app));
    quotas(&app, json!({ "max_waiting": 2 })).await;
    // Scheduled a few seconds ahead: waiting while the next dispatches are refused.
    let mut queued = Vec::new();
    for _ in 0..2 {
        let (status, job) = a.dispatch("e", json!({ "delay_ms": 3000 })).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        queued.push(job["id"].as_str().unwrap().to_string());
    }
    let answer = a.dispatch("e", json!({})).await;
    refused(&answer, StatusCode::TOO_MANY_REQUESTS, "its max_waiting is 2");
    let r =
        a.req(Method::POST, "/v1/jobs").json(&json!({ "alias": "e", "payload": 1 })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let (status, job) = b.dispatch("e", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "another tenant is unaffected: {job}");

    // Nothing alpha queued is lost: both run when due.
    for id in &queued {
        assert_eq!(a.wait(id).await["status"], "succeeded");
    }
    // A PATCH applies on the next request.
    quotas(&app, json!({ "max_waiting": 5 })).await;
    let (status, job) = a.dispatch("e", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    app.stop().await;
}

#[tokio::test]
async fn module_quotas_refuse_uploads_with_413_and_409() {
    let app = two_tenants(Options::default()).await;
    let (a, b) = (alpha(&app), beta(&app));
    let fail_size = plugin_bytes("fail").len() as u64;
    quotas(&app, json!({ "max_module_bytes": fail_size - 1 })).await;
    refused(
        &a.upload("fail").await,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("a module of {fail_size} bytes is over this tenant's max_module_bytes {}", fail_size - 1),
    );
    // alpha holds one module (echo).
    quotas(&app, json!({ "max_modules": 1 })).await;
    refused(&a.upload("fail").await, StatusCode::CONFLICT, "this tenant has 1 modules, its max_modules is 1");
    let (status, again) = a.upload("echo").await;
    assert_eq!(status, StatusCode::OK, "a module already stored takes no room: {again}");
    let echo_size = plugin_bytes("echo").len() as u64;
    quotas(&app, json!({ "max_module_storage_bytes": echo_size + 10 })).await;
    refused(&a.upload("fail").await, StatusCode::CONFLICT, "over its max_module_storage_bytes");
    let (status, other) = b.upload("fail").await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    quotas(&app, json!({})).await;
    let (status, other) = a.upload("fail").await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    app.stop().await;
}

#[tokio::test]
async fn the_dispatch_rate_is_a_token_bucket_answering_429_with_retry_after() {
    let app = two_tenants(Options::default()).await;
    let (a, b) = (alpha(&app), beta(&app));
    quotas(&app, json!({ "dispatch_rate": { "per_second": 1, "burst": 5 } })).await;
    let five = json!({ "jobs": (0..5).map(|i| json!({ "alias": "e", "payload": i })).collect::<Vec<_>>() });
    let (status, batch) = a.post("/v1/batches", &five).await;
    assert_eq!(status, StatusCode::CREATED, "a batch takes one token per job: {batch}");
    // The bucket is empty: another five need about five seconds.
    let r = a.req(Method::POST, "/v1/batches").json(&five).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&secs), "Retry-After {secs}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("dispatch_rate of 1 per second (burst 5)"));
    let six = json!({ "jobs": (0..6).map(|i| json!({ "alias": "e", "payload": i })).collect::<Vec<_>>() });
    refused(
        &a.post("/v1/batches", &six).await,
        StatusCode::BAD_REQUEST,
        "6 jobs at once is over this tenant's dispatch_rate burst 5",
    );
    let (status, job) = b.dispatch("e", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "another tenant is unaffected: {job}");
    quotas(&app, json!({})).await;
    let (status, batch) = a.post("/v1/batches", &five).await;
    assert_eq!(status, StatusCode::CREATED, "lifted at once: {batch}");
    app.stop().await;
}

#[tokio::test]
async fn waits_and_event_streams_are_bounded_per_tenant() {
    let app = two_tenants(Options { queue_limits: vec![("held", 0)], ..Options::default() }).await;
    let (a, b) = (alpha(&app), beta(&app));
    quotas(&app, json!({ "max_waits": 1, "max_event_streams": 1 })).await;
    let (_, held) = a.dispatch("e", json!({ "queue": "held" })).await;
    let id = held["id"].as_str().unwrap().to_string();
    let first = a.req(Method::GET, &format!("/v1/jobs/{id}/wait?timeout_ms=60000")).send();
    let first = tokio::spawn(first);
    // Poll until the first wait holds its slot.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, s) = a.get("/v1/status").await;
        if s["watchers"]["waits"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the first wait never opened: {s}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    refused(
        &a.get(&format!("/v1/jobs/{id}/wait?timeout_ms=0")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "this tenant has 1 waits open, its max_waits is 1",
    );
    let (_, theirs) = b.dispatch("e", json!({ "queue": "held" })).await;
    let theirs = theirs["id"].as_str().unwrap().to_string();
    let (status, job) = b.get(&format!("/v1/jobs/{theirs}/wait?timeout_ms=0")).await;
    assert_eq!(status, StatusCode::OK, "another tenant still waits: {job}");

    let stream = a.req(Method::GET, &format!("/v1/jobs/{id}/events")).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    refused(
        &a.get(&format!("/v1/jobs/{id}/events")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "its max_event_streams is 1",
    );
    let other = b.req(Method::GET, &format!("/v1/jobs/{theirs}/events")).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::OK, "another tenant still streams");

    // Ending the job ends the wait and the stream: the slots free.
    let (status, _) = a.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let ended = first.await.unwrap().unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    drop((stream, other));
    let (status, job) = a.get(&format!("/v1/jobs/{id}/wait?timeout_ms=0")).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    app.stop().await;
}

#[tokio::test]
async fn result_and_log_sizes_and_alias_history_are_bounded_per_tenant() {
    let app = two_tenants(Options::default()).await;
    let (a, b) = (alpha(&app), beta(&app));
    for who in [&a, &b] {
        who.register("out", "huge-output").await;
    }
    quotas(&app, json!({ "max_result_bytes": 100, "max_log_bytes": 64, "alias_history": 2 })).await;
    let (_, job) = a
        .post("/v1/jobs", &json!({ "alias": "out", "payload": { "result_bytes": 1000 }, "max_attempts": 1 }))
        .await;
    let done = a.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(done["error"]["kind"], "output_too_large", "{done}");
    let (_, job) = b
        .post("/v1/jobs", &json!({ "alias": "out", "payload": { "result_bytes": 1000 }, "max_attempts": 1 }))
        .await;
    assert_eq!(b.wait(job["id"].as_str().unwrap()).await["status"], "succeeded");
    let (_, job) = a.post("/v1/jobs", &json!({ "alias": "out", "payload": { "stdout_bytes": 1000 } })).await;
    let done = a.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["logs"]["stdout"]["truncated"], true, "logs past max_log_bytes are cut: {done}");

    // Versions kept: the tenant's 2, although the server keeps 100.
    let (_, module) = a.get("/v1/aliases/e").await;
    for fuel in 1..=4u64 {
        let (status, body) =
            a.put("/v1/aliases/e", &json!({ "module": module["module"], "fuel": fuel * 1_000_000 })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, alias) = a.get("/v1/aliases/e").await;
    assert_eq!(alias["history"].as_array().unwrap().len(), 2, "{alias}");
    app.stop().await;
}
