//! Signed requests (`X-Wasmq-Key` + `X-Wasmq-Signature`) over HTTP: valid
//! ones act as their key's tenant and scope; stale, future, replayed,
//! altered, wrongly keyed and revoked ones get 401 saying why. And
//! `wasmq secret generate`, which writes the server's own key to `.env`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wasmq::api::auth::signed::sign;
use wasmq::config::Secret;

use super::{Options, TestApp, spawn_app_with};

const OPERATOR: &str = "operator-secret";
const TOKEN: &str = "single-token";
const SECRET: &str = "0123456789abcdef0123456789abcdef-server";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A request to `path` signed with `secret` as `key` at `t` (the signature
/// covers `signed_body`; `body` is what is sent).
fn signed(
    app: &TestApp,
    method: Method,
    path: &str,
    (key, secret): (&str, &str),
    t: i64,
    signed_body: &[u8],
    body: &[u8],
) -> reqwest::RequestBuilder {
    let signature = sign(secret.as_bytes(), t, method.as_str(), path, signed_body);
    app.client
        .request(method, format!("{}{path}", app.url))
        .header("x-wasmq-key", key)
        .header("x-wasmq-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_vec())
}

async fn send_signed(
    app: &TestApp,
    method: Method,
    path: &str,
    key: (&str, &str),
    body: &Value,
) -> (StatusCode, Value) {
    let bytes = if body.is_null() { Vec::new() } else { serde_json::to_vec(body).unwrap() };
    app.send(signed(app, method, path, key, now(), &bytes, &bytes)).await
}

fn unauthorized_saying(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains(what), "{msg:?} should say {what:?}");
}

async fn signed_app() -> TestApp {
    let opts =
        Options { token: Some(TOKEN.into()), operator_token: Some(OPERATOR.into()), ..Options::default() };
    let app = spawn_app_with(opts, |s| s.signing_secret = Some(Secret::new(SECRET))).await;
    app.register("echo", "echo").await;
    app
}

#[tokio::test]
async fn a_signed_request_is_accepted_once_within_the_window() {
    let app = signed_app().await;
    let key = ("default", SECRET);
    let body = serde_json::to_vec(&json!({ "alias": "echo", "payload": { "n": 1 } })).unwrap();
    let t = now();
    let (status, job) = app.send(signed(&app, Method::POST, "/v1/jobs", key, t, &body, &body)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert_eq!(app.wait(job["id"].as_str().unwrap()).await["result"], json!({ "n": 1 }));

    // The same signature again: a replay.
    let (status, err) = app.send(signed(&app, Method::POST, "/v1/jobs", key, t, &body, &body)).await;
    unauthorized_saying(status, &err, "replay");

    // Signed reads, with a query string (signed too).
    let path = format!("/v1/jobs/{}", job["id"].as_str().unwrap());
    let (status, shown) = send_signed(&app, Method::GET, &path, key, &Value::Null).await;
    assert_eq!((status, &shown["status"]), (StatusCode::OK, &json!("succeeded")), "{shown}");
    let (status, page) = send_signed(&app, Method::GET, "/v1/jobs?limit=1", key, &Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{page}");
}

#[tokio::test]
async fn stale_future_altered_and_wrongly_keyed_signatures_are_refused_saying_why() {
    let app = signed_app().await;
    let key = ("default", SECRET);
    let body = serde_json::to_vec(&json!({ "alias": "echo", "payload": 1 })).unwrap();
    let post = |key, t, signed_body: &[u8], sent: &[u8]| {
        signed(&app, Method::POST, "/v1/jobs", key, t, signed_body, sent)
    };

    let (status, err) = app.send(post(key, now() - 412, &body, &body)).await;
    unauthorized_saying(status, &err, "s old; the window is 300 s");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("signature timestamp is 41"), "{msg}");

    let (status, err) = app.send(post(key, now() + 400, &body, &body)).await;
    unauthorized_saying(status, &err, "in the future; the window is 300 s");

    let other = serde_json::to_vec(&json!({ "alias": "echo", "payload": 2 })).unwrap();
    let (status, err) = app.send(post(key, now(), &body, &other)).await;
    unauthorized_saying(status, &err, "does not match");

    // Signed for another path, or another method, than the one sent.
    let t = now();
    let sig = sign(SECRET.as_bytes(), t, "GET", "/v1/jobs", b"");
    let r = app.client.get(format!("{}/v1/jobs?limit=1", app.url));
    let (status, err) = app.send(r.header("x-wasmq-key", "default").header("x-wasmq-signature", &sig)).await;
    unauthorized_saying(status, &err, "does not match");
    let r = app.client.delete(format!("{}/v1/jobs", app.url));
    let (status, err) = app.send(r.header("x-wasmq-key", "default").header("x-wasmq-signature", &sig)).await;
    unauthorized_saying(status, &err, "does not match");

    let (status, err) =
        app.send(post(("default", "another-secret-of-forty-bytes-0123456789"), now(), &body, &body)).await;
    unauthorized_saying(status, &err, "does not match");
    let (status, err) = app.send(post(("nobody", SECRET), now(), &body, &body)).await;
    unauthorized_saying(status, &err, "unknown signing key");

    // Half a signature, a malformed one, or a signature and a bearer token.
    let r = app.client.get(format!("{}/v1/jobs", app.url)).header("x-wasmq-key", "default");
    let (status, err) = app.send(r).await;
    unauthorized_saying(status, &err, "X-Wasmq-Signature");
    let r = app.client.get(format!("{}/v1/jobs", app.url));
    let (status, err) =
        app.send(r.header("x-wasmq-key", "default").header("x-wasmq-signature", "t=1,v1=zz")).await;
    unauthorized_saying(status, &err, "t=<unix seconds>,v1=");
    let (status, err) = app.send(post(key, now(), &body, &body).bearer_auth(TOKEN)).await;
    unauthorized_saying(status, &err, "not both");

    // None of those created a job.
    let (status, page) = app.get("/v1/jobs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(0), "{page}");
}

#[tokio::test]
async fn tenant_keys_sign_with_their_scope_are_never_listed_and_revoke_at_once() {
    let app = signed_app().await;
    let op = |r: reqwest::RequestBuilder| r.bearer_auth(OPERATOR);
    let (status, t) =
        app.send(op(app.client.post(format!("{}/v1/tenants", app.url))).json(&json!({ "id": "acme" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let keys_url = format!("{}/v1/tenants/acme/keys", app.url);

    let (status, err) = app
        .send(op(app.client.post(&keys_url)).json(&json!({ "scope": "read", "secret": "too short" })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("secret must be 32 to 1024 bytes"), "{err}");

    let (status, made) =
        app.send(op(app.client.post(&keys_url)).json(&json!({ "scope": "read", "name": "reader" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (id, secret) =
        (made["id"].as_str().unwrap().to_string(), made["secret"].as_str().unwrap().to_string());
    assert!(secret.starts_with("wqs_") && secret.len() == 68, "{secret}");
    let chosen = "a-secret-the-operator-chose-0123456789";
    let (status, dispatcher) = app
        .send(op(app.client.post(&keys_url)).json(&json!({ "scope": "dispatch", "secret": chosen })))
        .await;
    assert_eq!((status, dispatcher["secret"].as_str()), (StatusCode::CREATED, Some(chosen)), "{dispatcher}");

    // Listed without secrets; stored sealed.
    let (status, list) = app.send(op(app.client.get(&keys_url))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(!list.to_string().contains(&secret) && list[0].get("secret").is_none(), "{list}");
    let grant = app.store().await.key_lookup(&id).await.unwrap().unwrap();
    assert!(!grant.sealed.contains(&secret[4..]), "the secret is sealed at rest");

    // The read key reads acme's records, and may not dispatch.
    let key = (id.as_str(), secret.as_str());
    let (status, page) = send_signed(&app, Method::GET, "/v1/jobs", key, &Value::Null).await;
    assert_eq!((status, page["jobs"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{page}");
    let (status, err) =
        send_signed(&app, Method::POST, "/v1/jobs", key, &json!({ "alias": "echo", "payload": 1 })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("`dispatch`"), "{err}");
    // acme has no alias `echo` (the default tenant's): the dispatch key gets 404.
    let dkey = (dispatcher["id"].as_str().unwrap(), chosen);
    let (status, err) =
        send_signed(&app, Method::POST, "/v1/jobs", dkey, &json!({ "alias": "echo", "payload": 1 })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    // Tenant keys are the operator's to manage.
    let (status, err) = send_signed(&app, Method::GET, "/v1/tenants/acme/keys", dkey, &Value::Null).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");

    let (status, _) = app.send(op(app.client.delete(format!("{keys_url}/{id}")))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = send_signed(&app, Method::GET, "/v1/jobs", key, &Value::Null).await;
    unauthorized_saying(status, &err, "unknown signing key");
    let (status, err) = app.send(op(app.client.delete(format!("{keys_url}/{id}")))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, err) = app.send(op(app.client.get(format!("{}/v1/tenants/nope/keys", app.url)))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
}

/// `wasmq secret generate` in `dir` with `args` (and `WASMQ_ENV`, if given).
fn generate(dir: &std::path::Path, args: &[&str], wasmq_env: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wasmq"));
    cmd.current_dir(dir).arg("secret").arg("generate").args(args).env_remove("WASMQ_ENV");
    if let Some(e) = wasmq_env {
        cmd.env("WASMQ_ENV", e);
    }
    cmd.output().unwrap()
}

#[test]
fn secret_generate_writes_a_private_env_file_and_keeps_its_other_lines() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");

    let out = generate(dir.path(), &[], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "printed only with --show");
    assert_eq!(std::fs::metadata(&env).unwrap().permissions().mode() & 0o777, 0o600);
    let first = std::fs::read_to_string(&env).unwrap();
    let value = first.trim().strip_prefix("WASMQ_SECRET=").unwrap().to_string();
    assert!(value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()), "{value}");

    std::fs::write(&env, format!("OTHER=1\n{first}# a comment\n")).unwrap();
    let out = generate(dir.path(), &["--show", "--length", "40"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(shown.len(), 40);
    assert_ne!(shown, value);
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        format!("OTHER=1\nWASMQ_SECRET={shown}\n# a comment\n")
    );
    assert_eq!(std::fs::metadata(&env).unwrap().permissions().mode() & 0o777, 0o600);

    let out = generate(dir.path(), &["--no-replace"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not replacing it (--no-replace)"));
    assert!(std::fs::read_to_string(&env).unwrap().contains(&shown), "left as it was");

    for bad in ["31", "1025", "x"] {
        let out = generate(dir.path(), &["--length", bad], None);
        assert!(!out.status.success(), "--length {bad} accepted");
    }
}

#[test]
fn secret_generate_refuses_to_run_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(dir.path(), &["--show"], Some("production"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WASMQ_ENV=production"));
    assert!(out.stdout.is_empty() && !dir.path().join(".env").exists());
}
