//! Signing keys from the command line: the operator's `wasmq key`, and the
//! client commands signing their requests with `WASMQ_KEY_ID` and
//! `WASMQ_SECRET` (no token), against servers that take signed requests, one
//! of them nothing else.

use reqwest::StatusCode;
use serde_json::{Value, json};
use wasmq::api::auth::signed::sign;
use wasmq::config::Secret;

use super::{field, job_line, ok, ok_json, plugin, row, stderr, stdout, wasmq_with};
use crate::server::{Options, TestApp, spawn_app, spawn_app_with};

const OPERATOR: &str = "operator-secret";
/// The server's own secret (`WASMQ_SECRET`): the key `default`.
const SECRET: &str = "0123456789abcdef0123456789abcdef-server";

/// `wasmq <args>` as the operator.
async fn op(app: &TestApp, args: &[&str]) -> std::process::Output {
    wasmq_with(&app.url, args, &[("WASMQ_OPERATOR_TOKEN", OPERATOR)], None).await
}

/// `wasmq <args>`, signing with `key` (id, secret) and no token.
async fn signed(app: &TestApp, key: (&str, &str), args: &[&str]) -> std::process::Output {
    signed_in(app, key, args, None).await
}

async fn signed_in(
    app: &TestApp,
    key: (&str, &str),
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    let env = [("WASMQ_KEY_ID", key.0), ("WASMQ_SECRET", key.1), ("WASMQ_OPERATOR_TOKEN", "")];
    wasmq_with(&app.url, args, &env, stdin).await
}

/// `GET path` as the operator acting for `tenant` (over HTTP, not the CLI).
async fn as_tenant(app: &TestApp, tenant: &str, path: &str) -> Value {
    let r =
        app.client.get(format!("{}{path}", app.url)).bearer_auth(OPERATOR).header("x-wasmq-tenant", tenant);
    let (status, body) = app.send(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn key_commands_print_the_secret_once_and_signed_commands_act_for_its_tenant() {
    let app = spawn_app(Options { operator_token: Some(OPERATOR.into()), ..Options::default() }).await;
    ok(&op(&app, &["tenant", "create", "acme"]).await);
    let made = op(&app, &["key", "create", "acme", "--scope", "admin", "--name", "ci"]).await;
    // The secret alone on stdout, for `SECRET=$(wasmq key create ...)`; the rest on stderr.
    let secret = ok(&made).trim_end().to_string();
    assert!(secret.starts_with("wqs_") && secret.len() == 68, "{secret:?}");
    let notes = stderr(&made);
    let id =
        notes.lines().next().unwrap().strip_prefix("key ").unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(notes.lines().next().unwrap(), format!("key {id} for tenant acme: scope admin"));
    assert!(notes.contains(&format!("WASMQ_KEY_ID={id} and WASMQ_SECRET=")), "{notes}");
    assert!(notes.contains("this secret will not be shown again"), "{notes}");

    // Listed without its secret.
    let list = ok(&op(&app, &["key", "list", "acme"]).await);
    assert_eq!(row(&list, "ID")[1..], ["SCOPE".to_string(), "NAME".into(), "CREATED".into()]);
    assert_eq!(row(&list, &id)[1..3], ["admin".to_string(), "ci".into()], "{list}");
    assert!(!list.contains(&secret[4..]));
    let json = ok_json(&op(&app, &["key", "list", "acme", "--json"]).await);
    assert_eq!((json[0]["id"].as_str(), json[0].get("secret")), (Some(id.as_str()), None), "{json}");

    // Every command signs with it, as acme: an upload (binary body), a
    // dispatch (JSON body), a wait and a list (query strings), an event stream.
    let key = (id.as_str(), secret.as_str());
    let out = ok(&signed(&app, key, &["push", &plugin("echo"), "--alias", "echo"]).await);
    assert_eq!(field(&out, "alias"), "echo (version 1)");
    assert_eq!(as_tenant(&app, "acme", "/v1/aliases").await[0]["name"], "echo");
    assert_eq!(as_tenant(&app, "default", "/v1/aliases").await, json!([]));
    let out = signed_in(&app, key, &["dispatch", "echo", "-", "--wait"], Some(r#"{"n":1}"#)).await;
    assert_eq!(ok(&out), "{\"n\":1}\n");
    let job = job_line(&stderr(&out));
    let page = ok_json(&signed(&app, key, &["jobs", "list", "--status", "succeeded", "--json"]).await);
    assert_eq!(page["jobs"][0]["id"].as_str(), Some(job.as_str()), "{page}");
    let followed = ok(&signed(&app, key, &["jobs", "follow", &job]).await);
    assert!(followed.ends_with("{\"n\":1}\n"), "{followed}");
    let usage = ok_json(&signed(&app, key, &["usage", "--json"]).await);
    assert!(usage.to_string().contains("acme"), "{usage}");

    // A key of a smaller scope signs, and is refused what its scope does not allow.
    let read = ok(&op(&app, &["key", "create", "acme", "--scope", "read"]).await).trim_end().to_string();
    let read_id =
        ok_json(&op(&app, &["key", "list", "acme", "--json"]).await)[1]["id"].as_str().unwrap().to_string();
    let out = signed(&app, (&read_id, &read), &["dispatch", "echo", "{}"]).await;
    assert!(
        stderr(&out).starts_with("error (403 forbidden): ") && stderr(&out).contains("`dispatch`"),
        "{}",
        stderr(&out)
    );
    ok(&signed(&app, (&read_id, &read), &["jobs", "show", &job]).await);

    // The operator may choose the secret; the server bounds it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    let chosen = "a-shared-secret-of-the-dispatcher-0123456789";
    std::fs::write(&file, format!("{chosen}\n")).unwrap();
    let file = file.to_str().unwrap();
    let made = ok_json(
        &op(&app, &["key", "create", "acme", "--scope", "dispatch", "--secret-file", file, "--json"]).await,
    );
    assert_eq!(made["secret"], chosen);
    let chosen_id = made["id"].as_str().unwrap();
    let out = signed(&app, (chosen_id, chosen), &["dispatch", "echo", r#"{"n":2}"#, "--wait"]).await;
    assert_eq!(ok(&out), "{\"n\":2}\n");
    std::fs::write(dir.path().join("short"), "too-short").unwrap();
    let short = dir.path().join("short");
    let out =
        op(&app, &["key", "create", "acme", "--scope", "read", "--secret-file", short.to_str().unwrap()])
            .await;
    assert_eq!(
        stderr(&out),
        "error (400 invalid_field): secret must be 32 to 1024 bytes without control characters, got 9 bytes\n"
    );

    // Revoked: refused from the next request on.
    let out = ok(&op(&app, &["key", "revoke", "acme", &id]).await);
    assert_eq!(out, format!("revoked signing key {id} of tenant acme\n"));
    let out = signed(&app, key, &["status"]).await;
    assert_eq!(stderr(&out), format!("error (401 unauthorized): unknown signing key {id:?}\n"));
    let out = op(&app, &["key", "revoke", "acme", &id]).await;
    assert!(stderr(&out).starts_with("error (404 not_found): "), "{}", stderr(&out));

    // The key commands are the operator's.
    let out = signed(&app, (chosen_id, chosen), &["key", "list", "acme"]).await;
    assert!(stderr(&out).starts_with("error (401 unauthorized): "), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("hint: tenant, token and key commands need the operator token"),
        "{}",
        stderr(&out)
    );
    let out = op(&app, &["key", "create", "acme", "--scope", "root"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("expected read, dispatch or admin"), "{}", stderr(&out));
    app.stop().await;
}

#[tokio::test]
async fn dispatch_works_against_a_server_that_takes_only_signed_requests() {
    let app = spawn_app_with(Options::default(), |s| s.signing_secret = Some(Secret::new(SECRET))).await;
    let key = ("default", SECRET);

    // Nothing configured: 401, and the hint names both ways in.
    let out = wasmq_with(&app.url, &["status"], &[("WASMQ_KEY_ID", ""), ("WASMQ_SECRET", "")], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error (401 unauthorized): "), "{}", stderr(&out));
    assert!(stderr(&out).contains("WASMQ_KEY_ID and WASMQ_SECRET"), "{}", stderr(&out));
    // WASMQ_SECRET alone is the server's own setting: it does not sign.
    let out =
        wasmq_with(&app.url, &["status"], &[("WASMQ_KEY_ID", ""), ("WASMQ_SECRET", SECRET)], None).await;
    assert!(stderr(&out).starts_with("error (401 unauthorized): "), "{}", stderr(&out));
    // A key id without a secret is a mistake, caught before any request.
    let out =
        wasmq_with(&app.url, &["status"], &[("WASMQ_KEY_ID", "default"), ("WASMQ_SECRET", "")], None).await;
    assert_eq!(
        stderr(&out),
        "error: WASMQ_KEY_ID is set but WASMQ_SECRET is not: signed requests need both\n"
    );
    // The wrong secret: the server says the signature does not match.
    let out = signed(&app, ("default", "not-the-secret-0123456789abcdef0123"), &["status"]).await;
    assert!(stderr(&out).contains("the signature does not match"), "{}", stderr(&out));

    ok(&signed(&app, key, &["push", &plugin("echo"), "--alias", "echo"]).await);
    // The same dispatch twice in a row: identical requests, maybe within one
    // second, so the same signature; the second is re-signed, not lost.
    for _ in 0..2 {
        assert_eq!(
            ok(&signed(&app, key, &["dispatch", "echo", r#"{"same":true}"#, "--wait"]).await),
            "{\"same\":true}\n"
        );
    }
    let page = ok_json(&signed(&app, key, &["jobs", "list", "--json"]).await);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2, "{page}");

    // Signatures of `GET /v1/status` for this second and the next ones are
    // used up: the CLI's first signatures are replays, and it signs again later.
    let t = now();
    for t in t - 1..t + 4 {
        let r = app
            .client
            .get(format!("{}/v1/status", app.url))
            .header("x-wasmq-key", "default")
            .header("x-wasmq-signature", sign(SECRET.as_bytes(), t, "GET", "/v1/status", b""));
        let (status, body) = app.send(r).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let out = signed(&app, key, &["status", "--json"]).await;
    assert_eq!(ok_json(&out)["jobs"]["succeeded"], 2, "{}", stdout(&out));
    app.stop().await;
}
