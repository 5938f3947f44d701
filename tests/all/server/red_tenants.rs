//! A hostile tenant and a careless operator (issue 13's red-team pass):
//! borrowed tenant headers, tokens that outlive their tenant, quotas at the
//! integer extremes, tenant ids and callback ranges at their bounds, usage
//! ranges at the calendar's ends, and records of one tenant named by another.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Options, TestApp, spawn_app};

const OPERATOR: &str = "operator-secret";

/// A request with bearer `token` and, if given, `X-Wasmq-Tenant`.
fn req(
    app: &TestApp,
    token: &str,
    tenant: Option<&str>,
    method: Method,
    path: &str,
) -> reqwest::RequestBuilder {
    let r = app.client.request(method, format!("{}{path}", app.url)).bearer_auth(token);
    match tenant {
        Some(t) => r.header("x-wasmq-tenant", t),
        None => r,
    }
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let r = req(app, token, None, method, path);
    app.send(match body {
        Some(b) => r.json(&b),
        None => r,
    })
    .await
}

async fn op(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    call(app, OPERATOR, method, path, body).await
}

async fn operator_app() -> TestApp {
    spawn_app(Options { operator_token: Some(OPERATOR.into()), ..Options::default() }).await
}

/// Creates tenant `id` with an admin token and an `echo` alias; returns the token.
async fn tenant_with_echo(app: &TestApp, id: &str) -> String {
    let (status, body) = op(app, Method::POST, "/v1/tenants", Some(json!({ "id": id }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, made) =
        op(app, Method::POST, &format!("/v1/tenants/{id}/tokens"), Some(json!({ "scope": "admin" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["token"].as_str().unwrap().to_string();
    let upload = req(app, &token, None, Method::POST, "/v1/modules")
        .header("content-type", "application/wasm")
        .body(crate::support::plugin_bytes("echo"));
    let (status, module) = app.send(upload).await;
    assert!(status.is_success(), "{module}");
    let alias = json!({ "module": module["digest"] });
    let (status, body) = call(app, &token, Method::PUT, "/v1/aliases/echo", Some(alias)).await;
    assert!(status.is_success(), "{body}");
    token
}

fn error_saying(status: StatusCode, body: &Value, want: StatusCode, what: &str) {
    assert_eq!(status, want, "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_else(|| panic!("an error body: {body}"));
    assert!(msg.contains(what), "{msg:?} should say {what:?}");
}

#[tokio::test]
async fn a_tenant_token_cannot_borrow_another_tenant_with_the_operator_header() {
    let app = operator_app().await;
    let (a, b) = (tenant_with_echo(&app, "alpha").await, tenant_with_echo(&app, "beta").await);
    let (status, job) =
        call(&app, &b, Method::POST, "/v1/jobs", Some(json!({ "alias": "echo", "payload": 1 }))).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let b_job = job["id"].as_str().unwrap().to_string();
    // alpha's token naming beta: the header is ignored, alpha still acts as alpha.
    let (status, body) =
        app.send(req(&app, &a, Some("beta"), Method::GET, &format!("/v1/jobs/{b_job}"))).await;
    error_saying(status, &body, StatusCode::NOT_FOUND, "not found");
    let (status, list) = app.send(req(&app, &a, Some("beta"), Method::GET, "/v1/jobs")).await;
    assert_eq!((status, list["jobs"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{list}");
    let made =
        req(&app, &a, Some("beta"), Method::POST, "/v1/jobs").json(&json!({ "alias": "echo", "payload": 2 }));
    let (status, job) = app.send(made).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let (status, _) =
        call(&app, &a, Method::GET, &format!("/v1/jobs/{}", job["id"].as_str().unwrap()), None).await;
    assert_eq!(status, StatusCode::OK, "the job went to alpha, the token's own tenant");
    let (status, body) =
        call(&app, &b, Method::GET, &format!("/v1/jobs/{}", job["id"].as_str().unwrap()), None).await;
    error_saying(status, &body, StatusCode::NOT_FOUND, "not found");
    // Nor can it reach the operator's routes, header or not.
    let (status, body) = app.send(req(&app, &a, Some("beta"), Method::GET, "/v1/tenants")).await;
    error_saying(status, &body, StatusCode::FORBIDDEN, "operator token required");
    // Usage of another tenant, named in the query: as if it did not exist.
    let (status, body) = call(&app, &a, Method::GET, "/v1/usage?tenant=beta", None).await;
    error_saying(status, &body, StatusCode::NOT_FOUND, "tenant beta not found");
    // Idempotency keys are per tenant: the same key makes one job each.
    let keyed = |n: i64| Some(json!({ "alias": "echo", "payload": n, "idempotency_key": "shared-key" }));
    let (sa, ja) = call(&app, &a, Method::POST, "/v1/jobs", keyed(1)).await;
    let (sb, jb) = call(&app, &b, Method::POST, "/v1/jobs", keyed(2)).await;
    assert_eq!((sa, sb), (StatusCode::CREATED, StatusCode::CREATED), "{ja} {jb}");
    assert_ne!(ja["id"], jb["id"]);
    // Events of another tenant's job: 404 before any stream starts.
    let (status, body) = call(&app, &a, Method::GET, &format!("/v1/jobs/{b_job}/events"), None).await;
    error_saying(status, &body, StatusCode::NOT_FOUND, "not found");
    // Another tenant's batch id as a list filter: nothing, not its jobs.
    let batch = json!({ "jobs": [{ "alias": "echo", "payload": 1 }] });
    let (status, made) = call(&app, &b, Method::POST, "/v1/batches", Some(batch)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let batch_id = made["id"].as_str().or(made["batch_id"].as_str()).unwrap().to_string();
    let (status, body) = call(&app, &a, Method::GET, &format!("/v1/batches/{batch_id}"), None).await;
    error_saying(status, &body, StatusCode::NOT_FOUND, "not found");
    let (status, list) = call(&app, &a, Method::GET, &format!("/v1/jobs?batch={batch_id}"), None).await;
    assert_eq!((status, list["jobs"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{list}");
}

#[tokio::test]
async fn a_deleted_tenants_token_alias_and_name_do_not_come_back_with_a_new_tenant_of_the_same_id() {
    let app = operator_app().await;
    let old = tenant_with_echo(&app, "gamma").await;
    // Warm every cache: the token lookup, the alias, the quotas.
    let (status, job) =
        call(&app, &old, Method::POST, "/v1/jobs", Some(json!({ "alias": "echo", "payload": 1 }))).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    app.send(req(&app, &old, None, Method::GET, &format!("/v1/jobs/{}/wait", job["id"].as_str().unwrap())))
        .await;
    let (status, body) = op(&app, Method::DELETE, "/v1/tenants/gamma", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // The operator naming the deleted tenant: 404 naming it, not an act on nothing.
    let (status, body) = app.send(req(&app, OPERATOR, Some("gamma"), Method::GET, "/v1/jobs")).await;
    error_saying(status, &body, StatusCode::NOT_FOUND, "gamma");
    let (status, body) = op(&app, Method::POST, "/v1/tenants", Some(json!({ "id": "gamma" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(&app, &old, Method::GET, "/v1/jobs", None).await;
    error_saying(status, &body, StatusCode::UNAUTHORIZED, "");
    // The old alias is gone with its tenant, cached or not.
    let as_new = |m, p: &str| req(&app, OPERATOR, Some("gamma"), m, p);
    let (status, body) =
        app.send(as_new(Method::POST, "/v1/jobs").json(&json!({ "alias": "echo", "payload": 1 }))).await;
    error_saying(status, &body, StatusCode::NOT_FOUND, "echo");
    let (status, list) = app.send(as_new(Method::GET, "/v1/jobs")).await;
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(0), "{status} {list}");
}

#[tokio::test]
async fn malformed_tokens_are_refused_and_surrounding_whitespace_is_not_a_second_token() {
    let app = operator_app().await;
    let token = tenant_with_echo(&app, "delta").await;
    for bad in [format!("{token}x"), token.to_uppercase(), token[..token.len() - 1].to_string(), "wq_".into()]
    {
        let (status, body) = call(&app, &bad, Method::GET, "/v1/jobs", None).await;
        error_saying(status, &body, StatusCode::UNAUTHORIZED, "");
    }
    // Non-ASCII bytes in the header value: 401, not a 500.
    let r = app
        .client
        .get(format!("{}/v1/jobs", app.url))
        .header("authorization", reqwest::header::HeaderValue::from_bytes("Bearer wq_é".as_bytes()).unwrap());
    let (status, body) = app.send(r).await;
    error_saying(status, &body, StatusCode::UNAUTHORIZED, "");
    // Lower-case scheme and no scheme: refused.
    for header in [format!("bearer {token}"), token.clone()] {
        let r = app.client.get(format!("{}/v1/jobs", app.url)).header("authorization", header);
        let (status, body) = app.send(r).await;
        error_saying(status, &body, StatusCode::UNAUTHORIZED, "");
    }
}

#[tokio::test]
async fn quotas_at_the_integer_extremes_are_kept_exactly_or_refused_naming_the_field() {
    let app = operator_app().await;
    tenant_with_echo(&app, "eps").await;
    let patch = |q: Value| op(&app, Method::PATCH, "/v1/tenants/eps", Some(json!({ "quotas": q })));
    let (status, t) = patch(json!({
        "max_fuel": u64::MAX, "max_timeout_ms": u64::MAX, "max_memory_mb": u64::MAX,
        "max_waiting": u64::MAX, "max_modules": u64::MAX, "max_module_storage_bytes": u64::MAX,
        "max_waits": u64::MAX, "max_event_streams": u64::MAX, "max_running": u64::MAX,
        "dispatch_rate": { "per_second": u32::MAX, "burst": u32::MAX },
    }))
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["quotas"]["max_fuel"], json!(u64::MAX), "kept exactly, not as a float: {t}");
    let (_, again) = op(&app, Method::GET, "/v1/tenants/eps", None).await;
    assert_eq!(again["quotas"], t["quotas"]);
    // Still dispatches: the server's own limits apply below the tenant's.
    let as_eps = |m, p: &str| req(&app, OPERATOR, Some("eps"), m, p);
    let (status, job) =
        app.send(as_eps(Method::POST, "/v1/jobs").json(&json!({ "alias": "echo", "payload": 3 }))).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let wait =
        as_eps(Method::GET, &format!("/v1/jobs/{}/wait?timeout_ms=30000", job["id"].as_str().unwrap()));
    let (status, done) = app.send(wait).await;
    assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("succeeded")), "{done}");
    for (q, what) in [
        (json!({ "max_fuel": -1 }), "max_fuel"),
        (json!({ "max_fuel": 1e30 }), "max_fuel"),
        (json!({ "max_fuel": "10" }), "max_fuel"),
        (json!({ "max_fuel": 0 }), "max_fuel"),
        (json!({ "dispatch_rate": { "per_second": 0, "burst": 5 } }), "dispatch_rate"),
        (json!({ "dispatch_rate": { "per_second": 5, "burst": 0 } }), "dispatch_rate"),
        (json!({ "dispatch_rate": { "per_second": 4294967296u64, "burst": 1 } }), "per_second"),
        (json!({ "max_result_bytes": u64::MAX }), "max_result_bytes"),
        (json!({ "alias_history": 1 }), "alias_history"),
        (json!({ "nonsense": 1 }), "nonsense"),
    ] {
        let (status, body) = patch(q.clone()).await;
        error_saying(status, &body, StatusCode::BAD_REQUEST, what);
    }
    // One past u64::MAX, as JSON text (no client library would send it).
    let r = req(&app, OPERATOR, None, Method::PATCH, "/v1/tenants/eps")
        .header("content-type", "application/json")
        .body(r#"{"quotas":{"max_fuel":18446744073709551616}}"#);
    let (status, body) = app.send(r).await;
    error_saying(status, &body, StatusCode::BAD_REQUEST, "max_fuel");
    // A batch of exactly the burst passes; one more job is a 400 naming the burst.
    let (status, t) = patch(json!({ "dispatch_rate": { "per_second": 1, "burst": 3 } })).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let jobs = |n: usize| json!({ "jobs": vec![json!({ "alias": "echo", "payload": 1 }); n] });
    let (status, body) = app.send(as_eps(Method::POST, "/v1/batches").json(&jobs(4))).await;
    error_saying(status, &body, StatusCode::BAD_REQUEST, "burst 3");
    let (status, body) = app.send(as_eps(Method::POST, "/v1/batches").json(&jobs(3))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A tenant's own admin token cannot change its quotas, up or down.
    let (_, made) = op(&app, Method::POST, "/v1/tenants/eps/tokens", Some(json!({ "scope": "admin" }))).await;
    let own = made["token"].as_str().unwrap();
    for q in [json!({ "max_fuel": 1 }), json!({})] {
        let (status, body) =
            call(&app, own, Method::PATCH, "/v1/tenants/eps", Some(json!({ "quotas": q }))).await;
        error_saying(status, &body, StatusCode::FORBIDDEN, "operator token required");
    }
}

#[tokio::test]
async fn max_waiting_refuses_a_batch_that_would_pass_it_whole_and_keeps_what_was_queued() {
    let app = spawn_app(Options {
        operator_token: Some(OPERATOR.into()),
        queue_limits: vec![("held", 0)],
        ..Options::default()
    })
    .await;
    tenant_with_echo(&app, "zeta").await;
    let q = json!({ "quotas": { "max_waiting": 5 } });
    assert_eq!(op(&app, Method::PATCH, "/v1/tenants/zeta", Some(q)).await.0, StatusCode::OK);
    let as_z = |m, p: &str| req(&app, OPERATOR, Some("zeta"), m, p);
    let jobs =
        |n: usize| json!({ "jobs": vec![json!({ "alias": "echo", "payload": 1, "queue": "held" }); n] });
    let (status, body) = app.send(as_z(Method::POST, "/v1/batches").json(&jobs(3))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // 3 wait; 3 more would make 6 > 5: refused whole, none of the 3 inserted.
    let (status, body) = app.send(as_z(Method::POST, "/v1/batches").json(&jobs(3))).await;
    error_saying(status, &body, StatusCode::TOO_MANY_REQUESTS, "max_waiting is 5");
    assert_eq!(body["error"]["code"], "quota_exceeded", "{body}");
    let (_, list) = app.send(as_z(Method::GET, "/v1/jobs?queue=held")).await;
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(3), "nothing lost, nothing added: {list}");
    let (status, body) = app.send(as_z(Method::POST, "/v1/batches").json(&jobs(2))).await;
    assert_eq!(status, StatusCode::CREATED, "exactly at the quota passes: {body}");
}

#[tokio::test]
async fn tenant_ids_weights_and_callback_ranges_are_bounded() {
    let app = operator_app().await;
    let create = |body: Value| op(&app, Method::POST, "/v1/tenants", Some(body));
    for id in ["Alpha", "..", ".a", "a/b", "a b", "", "é", &"a".repeat(65), "-a", "_a"] {
        let (status, body) = create(json!({ "id": id })).await;
        error_saying(status, &body, StatusCode::BAD_REQUEST, "[a-z0-9][a-z0-9._-]{0,63}");
    }
    let (status, body) = create(json!({ "id": "a".repeat(64) })).await;
    assert_eq!(status, StatusCode::CREATED, "64 characters is the most: {body}");
    let (status, body) = create(json!({ "id": "default" })).await;
    error_saying(status, &body, StatusCode::CONFLICT, "default");
    let (status, body) = op(&app, Method::DELETE, "/v1/tenants/default", None).await;
    error_saying(status, &body, StatusCode::CONFLICT, "default");
    // Path ids are checked the same way (no traversal into another record).
    for path in ["/v1/tenants/..%2Fdefault", "/v1/tenants/DEFAULT", "/v1/tenants/%2e%2e"] {
        let (status, body) = op(&app, Method::GET, path, None).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{path}: {status} {body}"
        );
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    for w in [json!(0), json!(1001), json!(u64::MAX), json!(-1), json!(1.5)] {
        let (status, body) = create(json!({ "id": "w", "weight": w })).await;
        error_saying(status, &body, StatusCode::BAD_REQUEST, "weight");
    }
    let many: Vec<String> = (0..10_000).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
    let (status, body) = create(json!({ "id": "wide", "callback_allow": many })).await;
    error_saying(status, &body, StatusCode::BAD_REQUEST, "at most 100");
    // Ranges that switch the address policy off for a tenant are refused:
    // a careless `0.0.0.0/0` would open the metadata service and loopback.
    for entry in ["0.0.0.0/0", "::/0", "0.0.0.0/1", "::ffff:0.0.0.0/96", "::/8"] {
        let (status, body) = create(json!({ "id": "wide", "callback_allow": [entry] })).await;
        error_saying(status, &body, StatusCode::BAD_REQUEST, "callback_allow[0]");
    }
    // Narrow entries are the operator's to give, in normal form.
    let (status, t) = create(
        json!({ "id": "narrow", "callback_allow": ["10.1.0.0/16", "169.254.169.254", "Hooks.Example.COM."] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["callback_allow"], json!(["10.1.0.0/16", "169.254.169.254/32", "hooks.example.com"]));
}

#[tokio::test]
async fn usage_ranges_at_the_calendars_ends_are_answered_or_refused_naming_the_field() {
    let app = operator_app().await;
    for (q, what) in [
        ("from=2024-03-02&to=2024-03-01", "is after to"),
        ("from=0000-01-01&to=2024-01-02", "from must be a date"),
        ("from=1969-12-31&to=1970-01-01", "from must be a date"),
        ("from=2024-01-01&to=0000-01-01", "to must be a date"),
        ("to=10000-01-01", "to must be a date"),
        ("from=9999-01-01&to=9999-12-31T00:00:00Z", "to must be a date"),
        ("from=2024-01-01&to=2025-12-31", "at most 366"),
        ("tenant=../default", "tenant"),
        ("from=2024-01-01&from=2024-01-02", "from"),
    ] {
        let (status, body) = op(&app, Method::GET, &format!("/v1/usage?{q}"), None).await;
        error_saying(status, &body, StatusCode::BAD_REQUEST, what);
    }
    for q in ["from=9999-01-01&to=9999-12-31", "from=1970-01-01&to=1970-01-01", "tenant=nobody"] {
        let (status, body) = op(&app, Method::GET, &format!("/v1/usage?{q}"), None).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(body["days"], json!([]), "{q}: {body}");
    }
}
