//! Alias capabilities over real HTTP: configuration shown, secrets write-only
//! (their text in no body the API gives), key-value stores per tenant with
//! their limits and quota refused by code, usage exact.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Options, TestApp, spawn_app};

const OPERATOR: &str = "operator-secret";
const SECRET_TEXT: &str = "sk-live-7f3a9c-never-shown";
const KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn options() -> Options {
    Options {
        operator_token: Some(OPERATOR.into()),
        tweak: |s| {
            s.secrets_key = Some(wasmq::config::Secret::new(KEY_HEX));
            s.kv.max_value_bytes = 16;
        },
        ..Options::default()
    }
}

async fn admin(app: &TestApp, tenant: &str, quotas: Value) -> String {
    let body = json!({ "id": tenant, "quotas": quotas });
    let (status, made) = app.call(OPERATOR, Method::POST, "/v1/tenants", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let path = format!("/v1/tenants/{tenant}/tokens");
    let (status, made) = app.call(OPERATOR, Method::POST, &path, Some(&json!({ "scope": "admin" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["token"].as_str().unwrap().to_string()
}

fn refused(got: &(StatusCode, Value), status: StatusCode, code: &str, names: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    let message = got.1["error"]["message"].as_str().unwrap();
    assert!(message.contains(names), "{message}");
}

#[tokio::test]
async fn config_is_shown_secrets_never_and_kv_stays_with_its_tenant() {
    let app = spawn_app(options()).await;
    let a = admin(&app, "tenant-a", json!({ "max_kv_bytes": 40 })).await;
    let b = admin(&app, "tenant-b", json!({})).await;
    let upload = app
        .client
        .post(format!("{}/v1/modules", app.url))
        .bearer_auth(&a)
        .header("content-type", "application/wasm")
        .body(crate::support::plugin_bytes("echo"));
    let (status, module) = app.send(upload).await;
    assert_eq!(status, StatusCode::CREATED, "{module}");
    let alias = json!({
        "module": module["digest"],
        "config": { "region": "eu-west" },
        "kv_store": "shared",
        "env": { "REGION": "config:region", "API_KEY": "secret:api_key" },
    });
    let (status, view) = app.call(&a, Method::PUT, "/v1/aliases/signer", Some(&alias)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["config"], json!({ "region": "eu-west" }));
    assert_eq!(
        (view["kv_store"].as_str(), view["env"]["API_KEY"].as_str()),
        (Some("shared"), Some("secret:api_key"))
    );

    // Settings are checked, each error naming its field and limit.
    let mut bad = alias.clone();
    bad["env"] = json!({ "X": "config:missing" });
    let got = app.call(&a, Method::PUT, "/v1/aliases/signer", Some(&bad)).await;
    refused(&got, StatusCode::BAD_REQUEST, "invalid_field", "env.X names config:missing");
    bad["env"] = json!({ "1X": "config:region" });
    let got = app.call(&a, Method::PUT, "/v1/aliases/signer", Some(&bad)).await;
    refused(&got, StatusCode::BAD_REQUEST, "invalid_field", "env variable name must match");
    bad["env"] = json!({});
    bad["config"] = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>().into();
    let got = app.call(&a, Method::PUT, "/v1/aliases/signer", Some(&bad)).await;
    refused(&got, StatusCode::BAD_REQUEST, "invalid_field", "at most 64");

    // Secrets: set, listed by key only.
    let mut bodies: Vec<String> = Vec::new();
    let path = "/v1/aliases/signer/secrets/api_key";
    let (status, set) = app.call(&a, Method::PUT, path, Some(&json!({ "value": SECRET_TEXT }))).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["key"], "api_key");
    bodies.push(set.to_string());
    let (status, listed) = app.call(&a, Method::GET, "/v1/aliases/signer/secrets", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["key"], "api_key");
    bodies.push(listed.to_string());
    // Tenant B sees neither A's secrets nor A's alias.
    let got = app.call(&b, Method::GET, "/v1/aliases/signer/secrets", None).await;
    refused(&got, StatusCode::NOT_FOUND, "not_found", "alias signer");
    let got = app.call(&b, Method::PUT, path, Some(&json!({ "value": "x" }))).await;
    refused(&got, StatusCode::NOT_FOUND, "not_found", "alias signer");

    // Key-value through the API, per tenant.
    let (status, _) =
        app.call(&a, Method::PUT, "/v1/kv/shared/greeting", Some(&json!({ "value": "hello" }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, got) = app.call(&a, Method::GET, "/v1/kv/shared/greeting", None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!((got["value"].as_str(), got["size"].as_u64()), (Some("hello"), Some(5)));
    let (status, page) = app.call(&a, Method::GET, "/v1/kv/shared", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!((page["keys"].clone(), page["total_bytes"].as_u64()), (json!(["greeting"]), Some(13)));
    let got = app.call(&b, Method::GET, "/v1/kv/shared/greeting", None).await;
    refused(&got, StatusCode::NOT_FOUND, "not_found", "key \"greeting\" not found");
    let got = app.call(&b, Method::GET, "/v1/kv/shared", None).await;
    refused(&got, StatusCode::NOT_FOUND, "not_found", "key-value store shared not found");
    // The operator acts for a tenant with X-Wasmq-Tenant.
    let r = app
        .raw(Method::GET, "/v1/kv/shared/greeting")
        .bearer_auth(OPERATOR)
        .header("x-wasmq-tenant", "tenant-a");
    let (status, got) = app.send(r).await;
    assert_eq!((status, got["value"].as_str()), (StatusCode::OK, Some("hello")));

    // Limits: the value size (413) and the tenant's quota (409), by name.
    let got = app.call(&a, Method::PUT, "/v1/kv/shared/big", Some(&json!({ "value": "x".repeat(17) }))).await;
    refused(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "the value for key \"big\" is 17 bytes, over the per-value limit of 16 bytes (kv_max_value_size)",
    );
    let got = app.call(&a, Method::PUT, "/v1/kv/other/k", Some(&json!({ "value": "x".repeat(16) }))).await;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
    let got = app.call(&a, Method::PUT, "/v1/kv/other/k2", Some(&json!({ "value": "x".repeat(16) }))).await;
    refused(&got, StatusCode::CONFLICT, "quota_exceeded", "max_kv_bytes 40");
    let (status, _) = app.call(&a, Method::DELETE, "/v1/kv/other/k", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = app.call(&a, Method::DELETE, "/v1/kv/other/k", None).await;
    refused(&got, StatusCode::NOT_FOUND, "not_found", "key \"k\"");

    // Usage: exactly the three applied writes; 13 bytes stored at the end.
    let (status, usage) = app.call(&a, Method::GET, "/v1/usage", None).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let day = &usage["days"][0];
    assert_eq!(
        (day["kv_writes"].as_u64(), day["kv_bytes_max"].as_u64(), day["kv_bytes_end"].as_u64()),
        (Some(3), Some(30), Some(13))
    );
    bodies.push(usage.to_string());

    // A job of the alias, and every body that could carry the secret.
    let (status, job) = app
        .call(&a, Method::POST, "/v1/jobs", Some(&json!({ "alias": "signer", "payload": { "n": 1 } })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let (_, done) = app.call(&a, Method::GET, &format!("/v1/jobs/{id}/wait?timeout_ms=30000"), None).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    for path in ["/v1/aliases/signer", "/v1/aliases", "/v1/status", "/v1/jobs", &format!("/v1/jobs/{id}")] {
        let (status, body) = app.call(&a, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        bodies.push(body.to_string());
    }
    let (_, rolled) = app.call(&a, Method::POST, "/v1/aliases/signer/rollback", None).await;
    bodies.push(rolled.to_string());
    for body in &bodies {
        assert!(!body.contains(SECRET_TEXT), "the secret shows in {body}");
    }
    assert!(bodies.iter().any(|b| b.contains("eu-west")), "config is shown");
    app.stop().await;
}

#[tokio::test]
async fn without_a_secrets_key_setting_a_secret_is_refused_naming_the_setting() {
    let app = spawn_app(Options { operator_token: Some(OPERATOR.into()), ..Options::default() }).await;
    let a = admin(&app, "tenant-a", json!({})).await;
    let upload = app
        .client
        .post(format!("{}/v1/modules", app.url))
        .bearer_auth(&a)
        .header("content-type", "application/wasm")
        .body(crate::support::plugin_bytes("echo"));
    let (_, module) = app.send(upload).await;
    let (status, _) =
        app.call(&a, Method::PUT, "/v1/aliases/x", Some(&json!({ "module": module["digest"] }))).await;
    assert_eq!(status, StatusCode::OK);
    let got = app.call(&a, Method::PUT, "/v1/aliases/x/secrets/k", Some(&json!({ "value": "v" }))).await;
    refused(&got, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "WASMQ_SECRETS_KEY");
    app.stop().await;
}
