//! The operator's commands, `wasmq tenant` and `wasmq token`, against a
//! server with an operator token: what they print, what they change on the
//! server, and what a missing operator token looks like.

use serde_json::{Value, json};

use super::{field, ok, ok_json, plugin, row, stderr, stdout, wasmq_with};
use crate::server::{Options, TestApp, spawn_app};

const OPERATOR: &str = "operator-secret";

/// `wasmq <args>` as the operator.
async fn op(app: &TestApp, args: &[&str]) -> std::process::Output {
    wasmq_with(&app.url, args, &[("WASMQ_OPERATOR_TOKEN", OPERATOR)], None).await
}

/// `wasmq <args>` with a tenant's token.
async fn with_token(app: &TestApp, token: &str, args: &[&str]) -> std::process::Output {
    wasmq_with(&app.url, args, &[("WASMQ_TOKEN", token), ("WASMQ_OPERATOR_TOKEN", "")], None).await
}

/// The tenant as the server has it (read over HTTP, not through the CLI).
async fn tenant(app: &TestApp, id: &str) -> Value {
    let r = app.client.get(format!("{}/v1/tenants/{id}", app.url)).bearer_auth(OPERATOR);
    let (status, body) = app.send(r).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body
}

fn app_options() -> Options {
    Options { operator_token: Some(OPERATOR.into()), ..Options::default() }
}

#[tokio::test]
async fn tenant_commands_create_list_show_change_quotas_and_delete() {
    let app = spawn_app(app_options()).await;
    let made =
        op(&app, &["tenant", "create", "acme", "--weight", "3", "--max-waiting", "100", "--max-fuel", "1e9"])
            .await;
    let out = ok(&made);
    assert_eq!((field(&out, "id"), field(&out, "weight")), ("acme".into(), "3".into()));
    assert_eq!(field(&out, "quotas"), "max-waiting=100 max-fuel=1000000000");
    assert!(stderr(&made).contains("wasmq token create acme --scope admin"), "{}", stderr(&made));
    assert_eq!(
        tenant(&app, "acme").await["quotas"],
        json!({ "max_waiting": 100, "max_fuel": 1_000_000_000u64 })
    );

    let dup = op(&app, &["tenant", "create", "acme"]).await;
    assert_eq!(dup.status.code(), Some(1));
    assert!(stderr(&dup).starts_with("error (409 "), "{}", stderr(&dup));

    let list = ok(&op(&app, &["tenant", "list"]).await);
    assert!(list.starts_with("ID"), "{list}");
    let acme = row(&list, "acme");
    assert_eq!((acme[1].as_str(), acme[3].as_str()), ("3", "max-waiting=100"), "{list}");
    assert_eq!(row(&list, "default")[3..], ["server".to_string(), "defaults".into()]);
    let ids: Vec<Value> = ok_json(&op(&app, &["tenant", "list", "--json"]).await)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [json!("acme"), json!("default")]);

    // Flags replace what they name (in dispatch's units), `default` drops a
    // limit, the rest stays.
    let out = ok(&op(
        &app,
        &[
            "tenant",
            "quota",
            "acme",
            "--max-fuel",
            "default",
            "--max-timeout",
            "5s",
            "--max-memory",
            "64MiB",
            "--max-module-size",
            "10MiB",
            "--dispatch-rate",
            "5",
        ],
    )
    .await);
    assert_eq!(
        field(&out, "quotas"),
        "max-waiting=100 max-timeout=5s max-memory=64MiB max-module-size=10MiB dispatch-rate=5 dispatch-burst=5"
    );
    assert_eq!(
        tenant(&app, "acme").await["quotas"],
        json!({
            "max_waiting": 100, "max_timeout_ms": 5000, "max_memory_mb": 64, "max_module_bytes": 10u64 << 20,
            "dispatch_rate": { "per_second": 5, "burst": 5 },
        })
    );
    let v = ok_json(&op(&app, &["tenant", "quota", "acme", "--clear", "--max-running", "2", "--json"]).await);
    assert_eq!((v["id"].as_str(), &v["quotas"]), (Some("acme"), &json!({ "max_running": 2 })));
    assert_eq!(field(&ok(&op(&app, &["tenant", "show", "acme"]).await), "quotas"), "max-running=2");

    // Units are required, as for dispatch; the server's own checks name the field.
    let out = op(&app, &["tenant", "quota", "acme", "--max-timeout", "5000"]).await;
    assert_eq!(out.status.code(), Some(2), "a usage error: {}", stderr(&out));
    assert!(stderr(&out).contains("add a unit, e.g. 5000s or 5000ms"), "{}", stderr(&out));
    let out = op(&app, &["tenant", "create", "zeta", "--weight", "0"]).await;
    assert_eq!(stderr(&out), "error (400 invalid_field): weight must be between 1 and 1000, got 0\n");
    let out = op(&app, &["tenant", "quota", "nosuch", "--max-running", "1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error (404 not_found): "), "{}", stderr(&out));

    let out = ok(&op(&app, &["tenant", "delete", "acme"]).await);
    assert_eq!(out, "deleted tenant acme and everything it owned\n");
    let out = op(&app, &["tenant", "show", "acme"]).await;
    assert!(stderr(&out).starts_with("error (404 not_found): "), "{}", stderr(&out));
    app.stop().await;
}

#[tokio::test]
async fn tenant_update_changes_the_weight_and_callback_ranges_and_nothing_else() {
    let app = spawn_app(app_options()).await;
    ok(&op(&app, &["tenant", "create", "acme", "--max-waiting", "7", "--callback-allow", "10.1.0.0/16"])
        .await);
    let out = ok(&op(&app, &["tenant", "update", "acme", "--weight", "5"]).await);
    assert_eq!((field(&out, "weight"), field(&out, "callback allow")), ("5".into(), "10.1.0.0/16".into()));
    assert_eq!(field(&out, "quotas"), "max-waiting=7");

    // The list given replaces the whole list; the weight stays.
    let out = ok(&op(
        &app,
        &[
            "tenant",
            "update",
            "acme",
            "--callback-allow",
            "10.2.0.0/16",
            "--callback-allow",
            "hooks.example.com",
        ],
    )
    .await);
    assert_eq!(field(&out, "callback allow"), "10.2.0.0/16 hooks.example.com");
    let t = tenant(&app, "acme").await;
    assert_eq!(
        (&t["weight"], &t["callback_allow"]),
        (&json!(5), &json!(["10.2.0.0/16", "hooks.example.com"]))
    );
    assert_eq!(t["quotas"], json!({ "max_waiting": 7 }));

    let v = ok_json(&op(&app, &["tenant", "update", "acme", "--no-callback-allow", "--json"]).await);
    assert_eq!((&v["callback_allow"], &v["weight"]), (&json!([]), &json!(5)));

    // Nothing to change, or contradicting flags: usage errors; bad values: the server's words.
    for args in [
        &["tenant", "update", "acme"][..],
        &["tenant", "update", "acme", "--no-callback-allow", "--callback-allow", "10.0.0.0/8"],
    ] {
        let out = op(&app, args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = op(&app, &["tenant", "update", "acme", "--weight", "1001"]).await;
    assert_eq!(stderr(&out), "error (400 invalid_field): weight must be between 1 and 1000, got 1001\n");
    let out = op(&app, &["tenant", "update", "acme", "--callback-allow", "not a range"]).await;
    assert!(stderr(&out).starts_with("error (400 invalid_field): callback_allow[0] "), "{}", stderr(&out));
    let out = op(&app, &["tenant", "update", "nosuch", "--weight", "2"]).await;
    assert!(stderr(&out).starts_with("error (404 not_found): "), "{}", stderr(&out));
    app.stop().await;
}

#[tokio::test]
async fn token_commands_print_the_secret_once_and_revoke_it() {
    let app = spawn_app(app_options()).await;
    ok(&op(&app, &["tenant", "create", "acme"]).await);
    let made =
        op(&app, &["token", "create", "acme", "--scope", "dispatch", "--name", "ci", "--expires-in", "1h"])
            .await;
    // The secret alone on stdout, for `TOKEN=$(wasmq token create ...)`; the rest on stderr.
    let secret = ok(&made).trim_end().to_string();
    assert!(secret.starts_with("wq_") && !secret.contains(char::is_whitespace), "{secret:?}");
    let notes = stderr(&made);
    assert!(notes.contains("scope dispatch") && notes.contains("expires "), "{notes}");
    assert!(notes.contains("this token will not be shown again"), "{notes}");

    // It works, within its scope.
    let status = with_token(&app, &secret, &["status", "--json"]).await;
    assert!(ok_json(&status)["workers"].is_object(), "{}", stdout(&status));
    let push = with_token(&app, &secret, &["push", &plugin("echo")]).await;
    assert_eq!(push.status.code(), Some(1));
    assert!(stderr(&push).starts_with("error (403 forbidden): ") && stderr(&push).contains("`admin`"));

    // Listed without its secret.
    let json = ok_json(&op(&app, &["token", "list", "acme", "--json"]).await);
    assert!(json[0].get("token").is_none() && !json.to_string().contains(&secret[3..]), "{json}");
    let token_id = json[0]["id"].as_str().unwrap().to_string();
    assert!(notes.starts_with(&format!("token {token_id} for tenant acme: ")), "{notes}");
    let list = ok(&op(&app, &["token", "list", "acme"]).await);
    let line = row(&list, &token_id);
    assert_eq!((line[1].as_str(), line[2].as_str()), ("dispatch", "ci"), "{list}");
    assert_ne!(line[4], "-", "an expiry: {list}");
    assert!(!list.contains(&secret[3..]));
    let made = ok_json(&op(&app, &["token", "create", "acme", "--scope", "read", "--json"]).await);
    assert!(made["token"].as_str().unwrap().starts_with("wq_") && made["expires_at"].is_null(), "{made}");

    let out = ok(&op(&app, &["token", "revoke", "acme", &token_id]).await);
    assert_eq!(out, format!("revoked token {token_id} of tenant acme\n"));
    let refused = with_token(&app, &secret, &["status"]).await;
    assert!(stderr(&refused).starts_with("error (401 unauthorized): "), "{}", stderr(&refused));
    let out = op(&app, &["token", "create", "acme", "--scope", "root"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected read, dispatch or admin"), "{}", stderr(&out));
    app.stop().await;
}

#[tokio::test]
async fn the_operator_token_comes_from_the_environment_or_a_file_never_a_tenant_token() {
    let app = spawn_app(app_options()).await;
    ok(&op(&app, &["tenant", "create", "acme"]).await);
    let admin = ok(&op(&app, &["token", "create", "acme", "--scope", "admin"]).await).trim_end().to_string();

    // None configured: 401 and a hint naming the operator token.
    let out = wasmq_with(&app.url, &["tenant", "list"], &[("WASMQ_OPERATOR_TOKEN", "")], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error (401 unauthorized): "), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("hint: tenant, token and key commands need the operator token"),
        "{}",
        stderr(&out)
    );
    // A tenant's token in WASMQ_TOKEN is not sent to the operator's routes.
    let out = with_token(&app, &admin, &["tenant", "list"]).await;
    assert!(stderr(&out).starts_with("error (401 unauthorized): "), "{}", stderr(&out));
    // ... and in a file it is sent, and refused: the routes are the operator's.
    let file = app.dir.path().join("tenant-token");
    std::fs::write(&file, &admin).unwrap();
    let file = file.to_str().unwrap();
    let out = with_token(&app, "", &["tenant", "list", "--token-file", file]).await;
    assert_eq!(stderr(&out), "error (403 forbidden): operator token required\n");

    // The operator token from a file: --token-file, or WASMQ_OPERATOR_TOKEN_FILE as the server reads it.
    let op_file = app.dir.path().join("operator-token");
    std::fs::write(&op_file, format!("{OPERATOR}\n")).unwrap();
    let op_file = op_file.to_str().unwrap();
    let out = with_token(&app, "", &["tenant", "list", "--token-file", op_file]).await;
    assert!(row(&ok(&out), "acme").len() >= 3);
    let env = [("WASMQ_OPERATOR_TOKEN", ""), ("WASMQ_OPERATOR_TOKEN_FILE", op_file)];
    let out = wasmq_with(&app.url, &["token", "list", "acme"], &env, None).await;
    assert_eq!(row(&ok(&out), "ID")[1], "SCOPE");
    app.stop().await;
}
