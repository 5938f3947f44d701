//! Tenants over HTTP: the operator makes tenants and tokens; each tenant sees
//! only its own records (another's answer 404 with the body of a missing
//! one); scopes, revoke and expiry are enforced on the next request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Options, TestApp, spawn_app};
use crate::support::plugin_bytes;

const OPERATOR: &str = "operator-secret";

/// Requests with one bearer token (and maybe `X-Wasmq-Tenant`).
struct As<'a> {
    app: &'a TestApp,
    token: String,
    tenant: Option<&'a str>,
}

impl As<'_> {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.app.client.request(method, format!("{}{path}", self.app.url)).bearer_auth(&self.token);
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
    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.app.send(self.req(Method::DELETE, path)).await
    }
    async fn upload(&self, plugin: &str) -> (StatusCode, Value) {
        let r = self.req(Method::POST, "/v1/modules").header("content-type", "application/wasm");
        self.app.send(r.body(plugin_bytes(plugin))).await
    }
}

fn operator(app: &TestApp) -> As<'_> {
    As { app, token: OPERATOR.into(), tenant: None }
}

/// Makes a token for `tenant` with `scope` (and `extra` fields); returns the secret.
async fn token(app: &TestApp, tenant: &str, scope: &str, extra: Value) -> (String, String) {
    let mut body = json!({ "scope": scope, "name": format!("{tenant} {scope}") });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, made) = operator(app).post(&format!("/v1/tenants/{tenant}/tokens"), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("wq_") && secret.len() >= 46, "{secret}");
    (secret, made["id"].as_str().unwrap().to_string())
}

fn forbidden_naming(body: &Value, what: &str) {
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains(what), "{msg} should name {what}");
}

#[tokio::test]
async fn tenants_are_walled_off_and_tokens_are_scoped() {
    let opts = Options {
        operator_token: Some(OPERATOR.into()),
        queue_limits: vec![("held", 0)],
        ..Options::default()
    };
    let app = spawn_app(opts).await;
    let op = operator(&app);
    for id in ["alpha", "beta"] {
        let (status, t) = op.post("/v1/tenants", &json!({ "id": id, "weight": 2 })).await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
        assert_eq!((t["id"].as_str(), t["weight"].as_u64()), (Some(id), Some(2)));
    }
    let (status, dup) = op.post("/v1/tenants", &json!({ "id": "alpha" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{dup}");
    let (_, list) = op.get("/v1/tenants").await;
    let ids: Vec<_> = list.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alpha", "beta", "default"]);

    let (a_admin, _) = token(&app, "alpha", "admin", json!({})).await;
    let (b_admin, _) = token(&app, "beta", "admin", json!({})).await;
    let a = As { app: &app, token: a_admin, tenant: None };
    let b = As { app: &app, token: b_admin, tenant: None };

    // Both upload the same module and point `thumbnail` at it; each runs its own job.
    let mut jobs = Vec::new();
    for who in [&a, &b] {
        let (status, module) = who.upload("echo").await;
        assert_eq!(status, StatusCode::CREATED, "a new record per tenant: {module}");
        let digest = module["digest"].as_str().unwrap().to_string();
        let (status, alias) = who.put("/v1/aliases/thumbnail", &json!({ "module": digest })).await;
        assert_eq!((status, alias["version"].as_u64()), (StatusCode::OK, Some(1)), "{alias}");
        let (status, job) = who.post("/v1/jobs", &json!({ "alias": "thumbnail", "payload": {"n": 1} })).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        let id = job["id"].as_str().unwrap().to_string();
        let (status, done) = who.get(&format!("/v1/jobs/{id}/wait?timeout_ms=30000")).await;
        assert_eq!((status, done["status"].as_str()), (StatusCode::OK, Some("succeeded")), "{done}");
        jobs.push((id, digest));
    }
    let (a_job, digest) = jobs[0].clone();
    let (status, batch) =
        a.post("/v1/batches", &json!({ "jobs": [{ "alias": "thumbnail", "payload": 1 }] })).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let a_batch = batch["id"].as_str().unwrap().to_string();

    // B on A's records: exactly the 404 of a record that does not exist.
    let missing_job = "01900000-0000-7000-8000-000000000000";
    let pairs = [
        (format!("/v1/jobs/{a_job}"), format!("/v1/jobs/{missing_job}")),
        (format!("/v1/jobs/{a_job}/wait?timeout_ms=0"), format!("/v1/jobs/{missing_job}/wait?timeout_ms=0")),
        (format!("/v1/batches/{a_batch}"), format!("/v1/batches/{missing_job}")),
    ];
    for (theirs, missing) in &pairs {
        let (s1, b1) = b.get(theirs).await;
        let (s2, b2) = b.get(missing).await;
        assert_eq!(s1, StatusCode::NOT_FOUND, "{theirs}: {b1}");
        assert_eq!((s1, b1["error"]["code"].clone()), (s2, b2["error"]["code"].clone()), "{theirs}");
        assert_eq!(
            b1["error"]["message"].as_str().unwrap().replace(&a_job, "ID").replace(&a_batch, "ID"),
            b2["error"]["message"].as_str().unwrap().replace(missing_job, "ID"),
        );
    }
    let (status, _) = b.post(&format!("/v1/jobs/{a_job}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = b.post(&format!("/v1/jobs/{a_job}/retry"), &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Same alias and digest: B reaches its own, never A's; deleting B's leaves A's.
    let (_, a_alias) = a.get("/v1/aliases/thumbnail").await;
    b.delete("/v1/aliases/thumbnail").await;
    let (status, _) = b.get("/v1/aliases/thumbnail").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, still) = a.get("/v1/aliases/thumbnail").await;
    assert_eq!((status, &still), (StatusCode::OK, &a_alias));
    let (status, gone) = b.delete(&format!("/v1/modules/{digest}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{gone}");
    let (status, _) = b.get(&format!("/v1/modules/{digest}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, job) = a.post("/v1/jobs", &json!({ "alias": "thumbnail", "payload": 2 })).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let (_, done) = a.get(&format!("/v1/jobs/{}/wait?timeout_ms=30000", job["id"].as_str().unwrap())).await;
    assert_eq!(done["status"], "succeeded", "B's delete does not break A's runs: {done}");
    let (_, listed) = b.get("/v1/jobs").await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1, "B lists only its own job: {listed}");

    // Scopes: read cannot dispatch, dispatch cannot upload; a tenant token
    // cannot manage tenants; the operator must name a tenant.
    let (read, _) = token(&app, "alpha", "read", json!({})).await;
    let read = As { app: &app, token: read, tenant: None };
    let (status, ok) = read.get(&format!("/v1/jobs/{a_job}")).await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    let (status, body) = read.post("/v1/jobs", &json!({ "alias": "thumbnail", "payload": 3 })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    forbidden_naming(&body, "`dispatch`");
    forbidden_naming(&body, "`read`");
    let (dispatch, _) = token(&app, "alpha", "dispatch", json!({})).await;
    let dispatch = As { app: &app, token: dispatch, tenant: None };
    let (status, body) = dispatch.upload("echo").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    forbidden_naming(&body, "`admin`");
    let (status, body) = a.get("/v1/tenants").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    forbidden_naming(&body, "operator token required");
    let (status, body) = op.get("/v1/jobs").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    forbidden_naming(&body, "X-Wasmq-Tenant");
    let as_alpha = As { app: &app, token: OPERATOR.into(), tenant: Some("alpha") };
    let (status, seen) = as_alpha.get(&format!("/v1/jobs/{a_job}")).await;
    assert_eq!(status, StatusCode::OK, "the operator acts for the tenant it names: {seen}");

    // A job that stays queued keeps the tenant from being deleted.
    let (status, held) =
        dispatch.post("/v1/jobs", &json!({ "alias": "thumbnail", "payload": 4, "queue": "held" })).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let (status, body) = op.delete("/v1/tenants/alpha").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) =
        dispatch.post(&format!("/v1/jobs/{}/cancel", held["id"].as_str().unwrap()), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = op.delete("/v1/tenants/default").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = op.delete("/v1/tenants/alpha").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = a.get(&format!("/v1/jobs/{a_job}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the deleted tenant's tokens stop at once");
    app.stop().await;
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused_and_listed_without_secrets() {
    let opts =
        Options { operator_token: Some(OPERATOR.into()), token: Some("single".into()), ..Options::default() };
    let app = spawn_app(opts).await;
    let op = operator(&app);
    let (status, _) = op.post("/v1/tenants", &json!({ "id": "gamma" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let (secret, id) = token(&app, "gamma", "read", json!({ "expires_in_s": 3600 })).await;
    let user = As { app: &app, token: secret.clone(), tenant: None };
    let (status, body) = user.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, listed) = op.get("/v1/tenants/gamma/tokens").await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["id"].as_str(), listed[0]["scope"].as_str()), (Some(id.as_str()), Some("read")));
    assert!(listed[0]["expires_at"].is_string());
    let text = serde_json::to_string(listed).unwrap();
    assert!(
        !text.contains(&secret[3..]) && listed[0].get("token").is_none() && listed[0].get("hash").is_none()
    );

    let (status, _) = op.delete(&format!("/v1/tenants/gamma/tokens/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = user.get("/v1/status").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));

    // Expiry: a time in the past is refused at creation, and a token past its
    // time is refused at use (made to expire by the store's clock, one ms on).
    let (status, body) = op
        .post("/v1/tenants/gamma/tokens", &json!({ "scope": "read", "expires_at": "2001-01-01T00:00:00Z" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("expires_at"), "{body}");
    let (status, body) = op
        .post("/v1/tenants/gamma/tokens", &json!({ "scope": "read", "expires_in_s": 400_000_000u64 }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("expires_in_s"), "{body}");
    let (status, body) = op.post("/v1/tenants/gamma/tokens", &json!({ "scope": "root" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (short, _) = token(&app, "gamma", "read", json!({ "expires_in_s": 1 })).await;
    let short = As { app: &app, token: short, tenant: None };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = short.get("/v1/status").await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(std::time::Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The single token still acts as the admin of `default`; no token is 401.
    let single = As { app: &app, token: "single".into(), tenant: None };
    let (status, _) = single.upload("echo").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = single.get("/v1/tenants").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app.send(app.client.get(format!("{}/v1/status", app.url))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}
