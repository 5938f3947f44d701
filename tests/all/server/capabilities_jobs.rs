//! Contract 0.2.0 through the server: real plugins (`counter`, `sign`) run as
//! jobs of aliases whose capabilities were set over the API, so the alias
//! settings, the secrets API, the key-value store and the executor's
//! `Capabilities` are tested together.

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Options, TestApp, spawn_app};

pub(super) const OPERATOR: &str = "operator-secret";
pub(super) const KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A server with an operator token and a secrets key, and enough workers
/// that many jobs of one alias run at the same time.
pub(super) fn options() -> Options {
    Options {
        workers: 8,
        operator_token: Some(OPERATOR.into()),
        tweak: |s| s.secrets_key = Some(wasmq::config::Secret::new(KEY_HEX)),
        ..Options::default()
    }
}

/// Creates `tenant` and returns an admin token of it.
pub(super) async fn admin(app: &TestApp, tenant: &str) -> String {
    let body = json!({ "id": tenant });
    let (status, made) = app.call(OPERATOR, Method::POST, "/v1/tenants", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let path = format!("/v1/tenants/{tenant}/tokens");
    let (status, made) = app.call(OPERATOR, Method::POST, &path, Some(&json!({ "scope": "admin" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["token"].as_str().unwrap().to_string()
}

/// Uploads `plugin` as `token`'s tenant and sets alias `name` to it with
/// `settings` (config, kv_store, env) merged in.
pub(super) async fn alias(app: &TestApp, token: &str, name: &str, plugin: &str, settings: Value) {
    let upload = app
        .client
        .post(format!("{}/v1/modules", app.url))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(crate::support::plugin_bytes(plugin));
    let (status, module) = app.send(upload).await;
    assert!(status.is_success(), "{status} {module}");
    let mut body = json!({ "module": module["digest"] });
    body.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
    let (status, view) = app.call(token, Method::PUT, &format!("/v1/aliases/{name}"), Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
}

/// Dispatches a job of `alias` as `token`; its id.
pub(super) async fn dispatch(app: &TestApp, token: &str, alias: &str, payload: Value) -> String {
    let body = json!({ "alias": alias, "payload": payload });
    let (status, job) = app.call(token, Method::POST, "/v1/jobs", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    job["id"].as_str().unwrap().to_string()
}

/// Waits until the job is terminal; its view.
pub(super) async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..20 {
        let path = format!("/v1/jobs/{id}/wait?timeout_ms=30000");
        let (status, job) = app.call(token, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if ["succeeded", "dead", "cancelled"].contains(&job["status"].as_str().unwrap()) {
            return job;
        }
    }
    panic!("job {id} did not end");
}

/// Runs one job to its end; its view.
pub(super) async fn run(app: &TestApp, token: &str, alias: &str, payload: Value) -> Value {
    let id = dispatch(app, token, alias, payload).await;
    finished(app, token, &id).await
}

/// The job failed as a plugin error whose message contains `names`.
pub(super) fn failed_naming(job: &Value, names: &str) {
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["error"]["kind"], "plugin_error", "{job}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains(names), "{message}");
}

async fn kv_value(app: &TestApp, token: &str, store: &str, key: &str) -> Value {
    let (status, got) = app.call(token, Method::GET, &format!("/v1/kv/{store}/{key}"), None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    got["value"].clone()
}

#[tokio::test]
async fn counter_is_exact_under_100_concurrent_jobs_and_stores_are_per_tenant() {
    let app = spawn_app(options()).await;
    let a = admin(&app, "tenant-a").await;
    let b = admin(&app, "tenant-b").await;
    alias(&app, &a, "count", "counter", json!({ "kv_store": "shared" })).await;
    alias(&app, &a, "count-too", "counter", json!({ "kv_store": "shared" })).await;
    alias(&app, &a, "count-none", "counter", json!({})).await;
    alias(&app, &b, "count", "counter", json!({ "kv_store": "shared" })).await;

    // 100 jobs dispatched at once: every increment lands, each job sees its own value.
    let mut dispatched = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (url, client, a) = (app.url.clone(), app.client.clone(), a.clone());
        dispatched.spawn(async move {
            let body = json!({ "alias": "count", "payload": {} });
            let resp =
                client.post(format!("{url}/v1/jobs")).bearer_auth(&a).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
            resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        });
    }
    let ids = dispatched.join_all().await;
    let mut values = Vec::new();
    for id in &ids {
        let job = finished(&app, &a, id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["result"]["key"], "count", "{job}");
        values.push(job["result"]["value"].as_i64().unwrap());
    }
    values.sort_unstable();
    assert_eq!(values, (1..=100).collect::<Vec<i64>>());
    assert_eq!(kv_value(&app, &a, "shared", "count").await, "100");

    // A second alias naming the same store shares it.
    let job = run(&app, &a, "count-too", json!({ "by": 5 })).await;
    assert_eq!(job["result"], json!({ "key": "count", "value": 105 }), "{job}");
    assert_eq!(kv_value(&app, &a, "shared", "count").await, "105");

    // The same plugin behind an alias without a store fails, naming the setting.
    let job = run(&app, &a, "count-none", json!({})).await;
    failed_naming(&job, "count-none grants no key-value store: set its kv_store");

    // Another tenant's store of the same name is its own.
    let job = run(&app, &b, "count", json!({})).await;
    assert_eq!(job["result"], json!({ "key": "count", "value": 1 }), "{job}");
    assert_eq!(kv_value(&app, &b, "shared", "count").await, "1");
    assert_eq!(kv_value(&app, &a, "shared", "count").await, "105");
    app.stop().await;
}

fn hmac_hex(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn sign_uses_the_secret_set_through_the_api_and_its_rotation() {
    let app = spawn_app(options()).await;
    let a = admin(&app, "tenant-a").await;
    alias(&app, &a, "signer", "sign", json!({})).await;
    let secret = "/v1/aliases/signer/secrets/key";
    let message = json!({ "message": "pay 10 EUR to bob" });

    // Without the secret: a clear failure naming it.
    let job = run(&app, &a, "signer", message.clone()).await;
    failed_naming(&job, "the alias has no secret \"key\"");

    let (status, body) = app.call(&a, Method::PUT, secret, Some(&json!({ "value": "first-key" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = run(&app, &a, "signer", message.clone()).await;
    assert_eq!(
        job["result"],
        json!({ "algorithm": "hmac-sha256", "signature": hmac_hex("first-key", "pay 10 EUR to bob") }),
        "{job}"
    );

    // Rotated: the next job signs with the new secret.
    let (status, body) = app.call(&a, Method::PUT, secret, Some(&json!({ "value": "second-key" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = run(&app, &a, "signer", message.clone()).await;
    assert_eq!(job["result"]["signature"], hmac_hex("second-key", "pay 10 EUR to bob"), "{job}");

    // Deleted: back to the failure.
    let (status, body) = app.call(&a, Method::DELETE, secret, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let job = run(&app, &a, "signer", message).await;
    failed_naming(&job, "the alias has no secret \"key\"");
    app.stop().await;
}
