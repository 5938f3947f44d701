//! Alias secrets never leave the server: a real `wasmq serve` process logging
//! at debug level runs jobs that read a secret (succeeding and failing), with
//! callbacks to a local receiver and event streams open, and the secret's
//! text is then searched for in every API body, callback body, event stream
//! and log line, and in the database file. A command plugin gets a secret as
//! an environment variable; the job shows it only if the plugin prints it.

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

use super::capabilities_jobs::{KEY_HEX, OPERATOR, admin, alias, failed_naming, finished, options, run};
use super::{Receiver, TestApp, spawn_app};
use crate::support::{Serve, sqlite_file};

const SECRET_TEXT: &str = "wq-secret-9d1f7c3e-must-never-show";

/// The whole event stream of a job, as bytes (it ends after `end`).
async fn event_stream(app: &TestApp, token: &str, id: &str) -> String {
    let response =
        app.client.get(format!("{}/v1/jobs/{id}/events", app.url)).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes =
        tokio::time::timeout(Duration::from_secs(60), response.bytes()).await.expect("the stream ends");
    String::from_utf8(bytes.unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn a_secret_is_in_no_response_callback_event_or_log_line() {
    let server = Serve::new()
        .args(&["--callback-allow", "127.0.0.0/8"])
        .env("RUST_LOG", "debug")
        .env("WASMQ_OPERATOR_TOKEN", OPERATOR)
        .env("WASMQ_SECRETS_KEY", KEY_HEX)
        .start()
        .await;
    let app = TestApp::of_process(&server);
    let receiver = Receiver::start(0).await;
    let a = admin(&app, "tenant-a").await;
    alias(&app, &a, "probe", "capabilities-probe", json!({ "config": { "mode": "live" }, "kv_store": "s" }))
        .await;
    alias(&app, &a, "signer", "sign", json!({})).await;
    // Reads the secret for A_TOKEN, then fails on B_MISSING (a secret never set).
    let env = json!({ "A_TOKEN": "secret:token", "B_MISSING": "secret:absent" });
    alias(&app, &a, "env-fails", "env-command", json!({ "env": env })).await;
    let mut bodies: Vec<(String, String)> = Vec::new();
    for path in [
        "/v1/aliases/probe/secrets/token",
        "/v1/aliases/signer/secrets/key",
        "/v1/aliases/env-fails/secrets/token",
    ] {
        let got = app.call(&a, Method::PUT, path, Some(&json!({ "value": SECRET_TEXT }))).await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        bodies.push((format!("PUT {path}"), got.1.to_string()));
    }

    // Jobs that read the secret: two succeed, two fail; each with a callback
    // and its event stream read to the end.
    let callback = json!({ "url": receiver.url });
    let probe_ops = json!({ "ops": [{ "op": "secret", "key": "token" }, { "op": "config", "key": "mode" },
        { "op": "kv-set", "key": "k", "value": "v" }] });
    let jobs = [
        ("probe", probe_ops),
        ("signer", json!({ "message": "hello" })),
        ("signer", json!({ "not-a-message": 1 })),
        ("env-fails", json!({})),
    ];
    let batch = json!({ "jobs": jobs.iter().map(|(alias, payload)| json!({
        "alias": alias, "payload": payload, "max_attempts": 1, "callback": callback,
    })).collect::<Vec<_>>() });
    let (status, made) = app.call(&a, Method::POST, "/v1/batches", Some(&batch)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let batch_id = made["id"].as_str().unwrap().to_string();
    let (status, page) = app.call(&a, Method::GET, &format!("/v1/jobs?batch={batch_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<String> =
        page["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 4, "{page}");
    for id in &ids {
        bodies.push((format!("events of {id}"), event_stream(&app, &a, id).await));
    }
    let mut views = Vec::new();
    for id in &ids {
        views.push(finished(&app, &a, id).await);
    }
    let by_alias = |alias: &str, ok: bool| {
        views.iter().find(|v| v["alias"] == alias && (v["status"] == "succeeded") == ok).unwrap().clone()
    };
    let probe = by_alias("probe", true);
    assert_eq!(probe["result"]["results"][0], json!({ "ok": { "len": SECRET_TEXT.len() } }), "{probe}");
    assert_eq!(probe["result"]["results"][1], json!({ "ok": "live" }), "{probe}");
    assert_eq!(by_alias("signer", true)["result"]["algorithm"], "hmac-sha256");
    assert_eq!(by_alias("signer", false)["error"]["kind"], "plugin_error");
    failed_naming(&by_alias("env-fails", false), "env.B_MISSING of alias env-fails names secret:absent");
    for _ in 0..4 {
        let (_, body) = receiver.next_raw().await;
        bodies.push(("a callback".into(), String::from_utf8(body).unwrap()));
    }

    // Every read the API offers this tenant.
    let mut paths: Vec<String> = [
        "/v1/jobs",
        "/v1/aliases",
        "/v1/aliases/probe?limit=100",
        "/v1/aliases/signer?limit=100",
        "/v1/aliases/env-fails?limit=100",
        "/v1/aliases/probe/secrets",
        "/v1/aliases/signer/secrets",
        "/v1/status",
        "/v1/usage",
        "/v1/modules",
        "/v1/kv/s",
        "/v1/kv/s/k",
    ]
    .map(String::from)
    .into();
    paths.push(format!("/v1/batches/{batch_id}"));
    paths.extend(ids.iter().map(|id| format!("/v1/jobs/{id}")));
    for path in &paths {
        let (status, body) = app.call(&a, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        bodies.push((format!("GET {path}"), body.to_string()));
    }
    let (status, tenant) = app.call(OPERATOR, Method::GET, "/v1/tenants/tenant-a", None).await;
    assert_eq!(status, StatusCode::OK, "{tenant}");
    bodies.push(("the tenant".into(), tenant.to_string()));
    let (status, rolled) = app.call(&a, Method::POST, "/v1/aliases/probe/rollback", None).await;
    bodies.push((format!("rollback: {status}"), rolled.to_string()));
    for (what, body) in &bodies {
        assert!(!body.contains(SECRET_TEXT), "the secret shows in {what}: {body}");
    }
    assert!(
        bodies.iter().any(|(_, b)| b.contains("read secret token")),
        "the probe's log is in its job view"
    );

    // Stored sealed: in no row of the database file (SQLite) ...
    let database = server.database_url.clone().unwrap();
    let _dir = server.dir.clone(); // the database files outlive the process
    // ... and in no line the server logged, at debug level.
    let logs = server.stop().await.join("\n");
    assert!(logs.contains("/v1/aliases/probe/secrets/token"), "debug request logs were captured: {logs}");
    assert!(!logs.contains(SECRET_TEXT), "the secret is in the logs:\n{logs}");
    if let Some(file) = sqlite_file(&database) {
        for path in [file.clone(), format!("{}-wal", file.display()).into()] {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let found = bytes.windows(SECRET_TEXT.len()).any(|w| w == SECRET_TEXT.as_bytes());
            assert!(!found, "the secret is stored in the clear in {}", path.display());
        }
    }
}

/// A command plugin's environment holds the secret named on the alias; the
/// job view shows it only because `env-command` prints its environment as
/// its result: the server does not hide what a plugin chooses to output.
#[tokio::test]
async fn a_command_plugin_gets_a_secret_as_its_env_and_only_its_own_output_shows_it() {
    let app = spawn_app(options()).await;
    let a = admin(&app, "tenant-a").await;
    let env = json!({ "TOKEN": "secret:k", "REGION": "config:region" });
    let settings = json!({ "env": env, "config": { "region": "eu" } });
    alias(&app, &a, "env", "env-command", settings.clone()).await;
    alias(&app, &a, "env-p1", "env-command.p1", settings).await;
    alias(&app, &a, "no-env", "env-command", json!({ "config": { "region": "eu" } })).await;
    for name in ["env", "env-p1"] {
        let path = format!("/v1/aliases/{name}/secrets/k");
        let (status, body) = app.call(&a, Method::PUT, &path, Some(&json!({ "value": SECRET_TEXT }))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for name in ["env", "env-p1"] {
        let job = run(&app, &a, name, json!({})).await;
        assert_eq!(
            job["result"],
            json!({ "env": { "TOKEN": SECRET_TEXT, "REGION": "eu" } }),
            "{name}: {job}"
        );
        // Nothing but the result (the plugin's own stdout) carries it.
        let mut rest = job.clone();
        rest.as_object_mut().unwrap().remove("result");
        assert!(!rest.to_string().contains(SECRET_TEXT), "{name}: {rest}");
    }
    // An alias naming no env gives none: not even the secret set on another alias.
    let job = run(&app, &a, "no-env", json!({})).await;
    assert_eq!(job["result"], json!({ "env": {} }), "{job}");
    app.stop().await;
}
