//! `wasmq alias set --allow-host ... --http-max-*`: the alias's outbound HTTP
//! grant from the command line, shown back in its settings.

use super::{field, job_line, ok, ok_json, push, stderr, wasmq};
use crate::outbound::Upstream;
use crate::server::{Options, spawn_app, spawn_app_with};
use wasmq::domain::NetPolicy;

#[tokio::test]
async fn alias_set_grants_hosts_and_http_limits() {
    let app = spawn_app(Options::default()).await;
    let digest = push(&app, "fetch", "fetch").await;
    let out = ok(&wasmq(
        &app,
        &[
            "alias",
            "set",
            "fetch",
            &digest,
            "--allow-host",
            "API.example.com",
            "--allow-host",
            "*.example.org",
            "--http-max-requests",
            "3",
            "--http-max-response-size",
            "1MiB",
        ],
    )
    .await);
    assert_eq!(
        field(&out, "settings"),
        "allow_host=api.example.com,*.example.org http_max_requests=3 http_max_response_size=1048576"
    );
    let alias = ok_json(&wasmq(&app, &["alias", "show", "fetch", "--json"]).await);
    assert_eq!(alias["allowed_hosts"], serde_json::json!(["api.example.com", "*.example.org"]));
    assert_eq!(alias["http"], serde_json::json!({"max_requests": 3, "max_response_bytes": 1048576}));

    let out = wasmq(&app, &["alias", "set", "fetch", &digest, "--allow-host", "ftp://x.example.com"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error (400 invalid_field): allowed_hosts: \"ftp://x.example.com\""), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn jobs_logs_lists_the_requests_a_job_sent() {
    let up = Upstream::start().await;
    let app = spawn_app_with(Options::default(), |s| {
        s.engine.http_policy = NetPolicy::new(NetPolicy::parse_allow("127.0.0.0/8").unwrap());
    })
    .await;
    let digest = push(&app, "fetch", "fetch").await;
    ok(&wasmq(&app, &["alias", "set", "fetch", &digest, "--allow-host", &up.origin()]).await);
    let payload = serde_json::json!({"url": up.url("/hello")}).to_string();
    let out = wasmq(&app, &["dispatch", "fetch", &payload, "--wait"]).await;
    let result: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(result["size"], 12, "{result}");
    let id = job_line(&stderr(&out));
    let out = ok(&wasmq(&app, &["jobs", "logs", &id]).await);
    let line = format!("  GET {} 200 (sent 0 B, received 12 B, ", up.origin());
    assert!(out.contains("http:\n") && out.contains(&line), "{out}");
    app.stop().await;
}
