//! Usage over HTTP: the figures of real runs (succeeded, failed, out of fuel,
//! timed out, cancelled while running) are exact, survive a restart, and each
//! tenant sees only its own while the operator sees every tenant's.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use wasmq::domain::{Day, time::now_ms};

use super::{Options, Receiver, TestApp, spawn_app};
use crate::support::plugin_bytes;

const OPERATOR: &str = "usage-operator-secret";

/// Requests under one bearer token.
struct As<'a> {
    app: &'a TestApp,
    token: String,
}

impl As<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let r = self.app.client.request(method, format!("{}{path}", self.app.url)).bearer_auth(&self.token);
        self.app
            .send(match body {
                Some(b) => r.json(&b),
                None => r,
            })
            .await
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, got) = self.send(Method::POST, path, Some(body)).await;
        assert!(status.is_success(), "POST {path}: {status} {got}");
        got
    }
    /// Uploads `plugin`, points alias `name` at it; returns the module's size.
    async fn register(&self, name: &str, plugin: &str) -> u64 {
        let r = self.app.client.post(format!("{}/v1/modules", self.app.url)).bearer_auth(&self.token);
        let r = r.header("content-type", "application/wasm").body(plugin_bytes(plugin));
        let (status, module) = self.app.send(r).await;
        assert_eq!(status, StatusCode::CREATED, "{module}");
        let alias = json!({ "module": module["digest"] });
        let (status, body) = self.send(Method::PUT, &format!("/v1/aliases/{name}"), Some(alias)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        module["size"].as_u64().unwrap()
    }
    async fn dispatch(&self, alias: &str, payload: Value, extra: Value) -> String {
        let mut req = json!({ "alias": alias, "payload": payload });
        req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        self.post("/v1/jobs", req).await["id"].as_str().unwrap().to_string()
    }
    async fn wait(&self, id: &str) -> Value {
        for _ in 0..20 {
            let (status, job) = self.get(&format!("/v1/jobs/{id}/wait?timeout_ms=30000")).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if ["succeeded", "dead", "cancelled"].contains(&job["status"].as_str().unwrap()) {
                return job;
            }
        }
        panic!("job {id} did not end");
    }
    /// The usage report of yesterday and today (a run near midnight may land on either).
    async fn usage(&self, extra: &str) -> (StatusCode, Value) {
        let today = Day::of_ms(now_ms());
        let yesterday = Day::of_ms(now_ms() - 86_400_000);
        self.get(&format!("/v1/usage?from={yesterday}&to={today}{extra}")).await
    }
}

/// A tenant's figures summed over the report's days (module bytes: the last day's).
fn totals(report: &Value, tenant: &str) -> Value {
    let mut sum = serde_json::Map::new();
    for day in report["days"].as_array().unwrap().iter().filter(|d| d["tenant"] == tenant) {
        for (k, v) in day.as_object().unwrap() {
            let Some(n) = v.as_u64() else { continue };
            let keep = if k.starts_with("module_bytes") {
                n
            } else {
                sum.get(k).and_then(Value::as_u64).unwrap_or(0) + n
            };
            sum.insert(k.clone(), keep.into());
        }
    }
    Value::Object(sum)
}

/// Polls `who`'s usage until `done` holds for `tenant`'s totals (background
/// writes: a callback's record, a cancelled run's fenced completion).
async fn usage_until(who: &As<'_>, tenant: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, report) = who.usage("").await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let t = totals(&report, tenant);
        if done(&t) {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "usage of {tenant} never got there: {t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn tenant_token(op: &As<'_>, tenant: &str, scope: &str) -> String {
    op.post("/v1/tenants", json!({ "id": tenant })).await;
    let made = op.post(&format!("/v1/tenants/{tenant}/tokens"), json!({ "scope": scope })).await;
    made["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn usage_is_exact_per_tenant_and_survives_a_restart() {
    let opts = Options { operator_token: Some(OPERATOR.into()), ..Options::default() };
    let app = spawn_app(opts.clone()).await;
    let op = As { app: &app, token: OPERATOR.into() };
    let alpha = As { app: &app, token: tenant_token(&op, "alpha", "admin").await };
    let beta = As { app: &app, token: tenant_token(&op, "beta", "admin").await };

    // Alpha: a success (with a callback), a failure, one out of fuel, one timed out.
    let mut stored = 0;
    for (alias, plugin) in [("echo", "echo"), ("fail", "fail"), ("loop", "infinite-loop")] {
        stored += alpha.register(alias, plugin).await;
    }
    let receiver = Receiver::start(0).await;
    let once = json!({ "max_attempts": 1 });
    let ids = [
        alpha.dispatch("echo", json!({"n": 1}), json!({ "callback": { "url": receiver.url } })).await,
        alpha.dispatch("fail", json!({"mode": "error"}), once.clone()).await,
        alpha.dispatch("loop", json!({}), json!({ "max_attempts": 1, "fuel": 2_000_000 })).await,
        alpha
            .dispatch(
                "loop",
                json!({}),
                json!({ "max_attempts": 1, "fuel": 1_000_000_000_000u64, "timeout_ms": 300 }),
            )
            .await,
    ];
    let mut jobs = Vec::new();
    for id in &ids {
        jobs.push(alpha.wait(id).await);
    }
    let ends: Vec<(&str, Option<&str>)> =
        jobs.iter().map(|j| (j["status"].as_str().unwrap(), j["error"]["kind"].as_str())).collect();
    assert_eq!(
        ends,
        [
            ("succeeded", None),
            ("dead", Some("plugin_error")),
            ("dead", Some("fuel_exhausted")),
            ("dead", Some("timeout"))
        ]
    );
    let fuel: u64 = jobs.iter().map(|j| j["fuel_used"].as_u64().unwrap()).sum();
    let run_ms: u64 = jobs.iter().map(|j| j["duration_ms"].as_u64().unwrap()).sum();
    receiver.next().await;
    let t = usage_until(&alpha, "alpha", |t| t["callbacks_delivered"] == 1).await;
    let want = json!({
        "runs": 4, "succeeded": 1, "failed": 0, "dead": 3, "cancelled": 0, "timed_out": 1,
        "fuel_used": fuel, "run_ms": run_ms, "module_bytes_max": stored, "module_bytes_end": stored,
        "callbacks_sent": 1, "callbacks_delivered": 1, "kv_writes": 0, "kv_bytes_max": 0, "kv_bytes_end": 0,
        "http_requests": 0, "http_bytes_sent": 0, "http_bytes_received": 0,
    });
    assert_eq!(t, want);

    // Cancelled while running: its run's fuel and time count, though its
    // completion is fenced off (the job keeps no fuel figure of it).
    let running = alpha
        .dispatch("loop", json!({}), json!({ "fuel": 1_000_000_000_000u64, "timeout_ms": 600_000 }))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while alpha.get(&format!("/v1/jobs/{running}")).await.1["status"] != "running" {
        assert!(tokio::time::Instant::now() < deadline, "the job never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, cancelled) =
        alpha.send(Method::POST, &format!("/v1/jobs/{running}/cancel"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let t = usage_until(&alpha, "alpha", |t| t["runs"] == 5).await;
    assert_eq!((t["cancelled"].as_u64(), t["dead"].as_u64()), (Some(1), Some(3)), "{t}");
    assert!(t["fuel_used"].as_u64().unwrap() >= fuel && t["run_ms"].as_u64().unwrap() >= run_ms, "{t}");
    assert_eq!(alpha.wait(&running).await["status"], "cancelled");

    // Beta: one job of its own.
    let echo = beta.register("echo", "echo").await;
    let id = beta.dispatch("echo", json!(2), json!({})).await;
    let job = beta.wait(&id).await;
    let (status, own) = beta.usage("").await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert!(own["days"].as_array().unwrap().iter().all(|d| d["tenant"] == "beta"), "{own}");
    let b = totals(&own, "beta");
    assert_eq!(
        (b["runs"].as_u64(), b["succeeded"].as_u64(), b["module_bytes_end"].as_u64()),
        (Some(1), Some(1), Some(echo))
    );
    assert_eq!(b["fuel_used"], job["fuel_used"]);
    // Another tenant's usage answers as a tenant that does not exist.
    let (status, body) = beta.usage("&tenant=alpha").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{body}"
    );

    // The operator sees both, or the one it names.
    let (_, every) = op.usage("").await;
    let alpha_before = totals(&every, "alpha");
    assert_eq!((alpha_before["runs"].as_u64(), totals(&every, "beta")), (Some(5), b.clone()));
    let (_, only) = op.usage("&tenant=beta").await;
    assert_eq!(only["days"], own["days"]);

    // Bad ranges name the parameter.
    for (query, names) in
        [("from=2024-02-30&to=2024-03-01", "from"), ("from=2023-01-01&to=2024-12-31", "366")]
    {
        let (status, body) = op.get(&format!("/v1/usage?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(names), "{body}");
    }

    // A restart on the same database: the same figures.
    let dir = app.stop().await;
    let app = spawn_app(Options { dir: Some(dir), ..opts }).await;
    let op = As { app: &app, token: OPERATOR.into() };
    let (status, again) = op.usage("").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["days"], every["days"]);
    app.stop().await;
}

/// Runs `wasmq <args>` against `app` (off the async threads: the server runs on them).
async fn wasmq(app: &TestApp, args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env = vec![("WASMQ_URL".to_string(), app.url.clone())];
    tokio::task::spawn_blocking(move || crate::support::run_wasmq(&args, &env, None)).await.unwrap()
}

#[tokio::test]
async fn wasmq_usage_shows_the_days_and_a_total_per_tenant() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    for n in 0..2 {
        let job = app.dispatch("echo", json!(n), json!({})).await;
        app.wait(job["id"].as_str().unwrap()).await;
    }
    let today = Day::of_ms(now_ms()).to_string();
    let out = wasmq(&app, &["usage", "--from", &today, "--to", &today, "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let days = report["days"].as_array().unwrap();
    assert_eq!(
        (days.len(), days[0]["tenant"].as_str(), days[0]["runs"].as_u64()),
        (1, Some("default"), Some(2))
    );

    let out = wasmq(&app, &["usage", "--from", &today, "--to", &today, "--tenant", "default"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let cells = |prefix: &str| -> Vec<String> {
        let line =
            text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in {text}"));
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(cells("TENANT")[..4], ["TENANT", "DAY", "RUNS", "SUCCEEDED"]);
    assert_eq!(cells(&format!("default  {today}"))[2..4], ["2", "2"]);
    assert_eq!(cells("default  total")[2..4], ["2", "2"]);

    // A date that does not exist is a usage error, before any request.
    let out = wasmq(&app, &["usage", "--from", "2024-02-30"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2024-02-30"));
    app.stop().await;
}

#[tokio::test]
async fn wasmq_usage_takes_the_operator_token_from_the_environment_when_no_tenant_token_is_set() {
    let app = spawn_app(Options { operator_token: Some("op-usage".into()), ..Options::default() }).await;
    let today = Day::of_ms(now_ms()).to_string();
    let args: Vec<String> =
        ["usage", "--from", &today, "--to", &today, "--json"].iter().map(|s| s.to_string()).collect();
    let run = |env: Vec<(String, String)>| {
        let args = args.clone();
        tokio::task::spawn_blocking(move || crate::support::run_wasmq(&args, &env, None))
    };
    let url = ("WASMQ_URL".to_string(), app.url.clone());
    let out = run(vec![url.clone(), ("WASMQ_OPERATOR_TOKEN".into(), "op-usage".into())]).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["days"].is_array(), "{report}");
    // Without any token the server refuses, and the CLI says so.
    let out = run(vec![url]).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    app.stop().await;
}
