//! The dashboard in a real browser: Debian's Chromium, driven by
//! playwright-core from npm (`tests/dashboard/drive.mjs`, installed by
//! `.ci/run`). The script signs in, watches a job appear and finish live,
//! opens it, retries a dead job, cancels a running one, checks that a
//! dispatch token is offered no admin action, and that nothing shows without
//! a token; it saves screenshots (`docs/screenshots/` with
//! `WASMQ_UPDATE_SCREENSHOTS=1`, for the README). Skipped, saying so, where
//! Chromium or the script's packages are missing, except under `CI=true`.

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::path::{Path, PathBuf};

use super::capabilities_jobs::{OPERATOR, alias};
use super::{Options, TestApp, spawn_app};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("WASMQ_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    path.exists().then_some(path)
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/dashboard")
}

async fn token(app: &TestApp, tenant: &str, scope: &str) -> String {
    let path = format!("/v1/tenants/{tenant}/tokens");
    let (status, made) = app.call(OPERATOR, Method::POST, &path, Some(&json!({ "scope": scope }))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    let ready = chromium().zip(script_dir().join("node_modules/playwright-core").exists().then_some(()));
    let Some((chromium, ())) = ready else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Chromium (/usr/bin/chromium) and tests/dashboard's packages (npm ci) are required under CI=true"
        );
        eprintln!("SKIPPED: no Chromium or no `npm ci` in tests/dashboard");
        return;
    };
    let app =
        spawn_app(Options { operator_token: Some(OPERATOR.into()), workers: 2, ..Options::default() }).await;
    let (status, made) =
        app.call(OPERATOR, Method::POST, "/v1/tenants", Some(&json!({ "id": "acme" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (admin, dispatch) = (token(&app, "acme", "admin").await, token(&app, "acme", "dispatch").await);
    for (name, plugin) in [("echo", "echo"), ("fail", "fail"), ("sleepy", "bench-job")] {
        alias(&app, &admin, name, plugin, json!({ "max_attempts": 1 })).await;
    }
    // A second version, so the alias has something to roll back to.
    alias(&app, &admin, "echo", "echo", json!({ "max_attempts": 2 })).await;
    // The README's screenshots are refreshed on request only.
    let shots = match std::env::var("WASMQ_UPDATE_SCREENSHOTS").as_deref() {
        Ok("1") => Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"),
        _ => crate::support::artifacts_dir().join("dashboard"),
    };
    let output = tokio::process::Command::new("node")
        .arg(script_dir().join("drive.mjs"))
        .env("WASMQ_URL", &app.url)
        .env("ADMIN_TOKEN", &admin)
        .env("DISPATCH_TOKEN", &dispatch)
        .env("OPERATOR_TOKEN", OPERATOR)
        .env("CHROMIUM", &chromium)
        .env("SHOTS", &shots)
        .output()
        .await
        .expect("node runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser run failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("every step passed"), "{stdout}");
    app.stop().await;
}
