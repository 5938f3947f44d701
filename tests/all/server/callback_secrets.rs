//! Callback secrets at rest: a real `wasmq serve` process logging at debug
//! level signs with the secrets it was given, yet none of them (query
//! parameter, body field, header value) is in its logs or stored in the clear,
//! read back through the store on any backend and, on SQLite, in the database
//! file's bytes, whose key file sits beside it with mode 0600.

use reqwest::StatusCode;
use serde_json::{Value, json};
use wasmq::callbacks::{SIGNATURE_HEADER, verify};
use wasmq::domain::time::now_ms;

use super::Receiver;
use crate::support::{Serve, sqlite_file};

/// Every secret-looking string in the stored callback, read back through the
/// store (whatever the backend): its secret and header values, as stored.
fn stored_values(job: &wasmq::store::JobRecord) -> Vec<String> {
    let callback = job.callback.as_ref().unwrap_or_else(|| panic!("job {} kept its callback", job.id));
    callback.secret.iter().chain(callback.headers.values()).chain([&callback.url]).cloned().collect()
}

#[tokio::test]
async fn callback_secrets_stay_out_of_debug_logs_and_the_database_file() {
    let server =
        Serve::new().args(&["--callback-allow", "127.0.0.0/8"]).env("RUST_LOG", "debug").start().await;
    let url = server.url.clone();
    let client = reqwest::Client::new();
    crate::support::register_over_http(&client, &url, "echo", "echo").await;
    let receiver = Receiver::start(0).await;

    let query_secret = "query-secret-7f3a9c";
    // Near the 1024-byte bound: sealed it is longer, and must still sign.
    let body_secret = &format!("body-secret-5e1b2d-{}", "k".repeat(1000));
    // Header values carry credentials too; near the 4096-byte bound.
    let header_secret = &format!("Bearer header-secret-c0ffee-{}", "h".repeat(3900));
    let parked_secret = "Bearer parked-token-9d8e7f";
    let query = serde_urlencoded::to_string([
        ("callback_url", receiver.url.as_str()),
        ("callback_secret", query_secret),
    ])
    .unwrap();
    let id = |body: Value| body["id"].as_str().unwrap().to_string();
    let r =
        client.post(format!("{url}/v1/dispatch/echo?{query}")).json(&json!({"n": 1})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let from_query = id(r.json().await.unwrap());
    let r = client
        .post(format!("{url}/v1/jobs"))
        .json(&json!({"alias": "echo", "payload": {"n": 2},
            "callback": {"url": receiver.url, "secret": body_secret, "headers": {"Authorization": header_secret}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let from_body = id(r.json().await.unwrap());
    // Both deliveries are signed with the secret given (sealed, then opened).
    for _ in 0..2 {
        let (headers, body) = receiver.next_raw().await;
        let signature = headers.get(SIGNATURE_HEADER).unwrap().to_str().unwrap();
        let n = serde_json::from_slice::<Value>(&body).unwrap()["result"]["n"].as_u64().unwrap();
        let secret = if n == 1 { query_secret } else { body_secret };
        let authorization = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(authorization.as_deref(), (n == 2).then_some(header_secret.as_str()), "delivery {n}");
        assert!(verify(secret, signature, &body, now_ms() / 1000, 300), "delivery {n}: bad signature");
    }
    // A job that waits an hour keeps its callback (and header) stored. A
    // short value: a long one spills over SQLite pages, which the file scan
    // below would not find contiguous even in the clear.
    let parked = json!({"alias": "echo", "payload": {"n": 3}, "delay_ms": 3_600_000,
        "callback": {"url": receiver.url, "headers": {"Authorization": parked_secret}}});
    let r = client.post(format!("{url}/v1/jobs")).json(&parked).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let parked = id(r.json().await.unwrap());
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert!(health.status().is_success(), "the server still answers");

    // As stored: each secret and header is there, sealed, never in the clear.
    let secrets = [query_secret, body_secret, header_secret, parked_secret];
    let store = server.store().await;
    let tenant = wasmq::domain::TenantId::default_tenant();
    for (id, has_secret, has_header) in
        [(&from_query, true, false), (&from_body, true, true), (&parked, false, true)]
    {
        let job = store.job_get(&tenant, id).await.unwrap();
        let callback = job.callback.as_ref().unwrap();
        assert_eq!(
            (callback.secret.is_some(), callback.headers.len()),
            (has_secret, usize::from(has_header))
        );
        for value in stored_values(&job) {
            assert!(!secrets.iter().any(|s| value.contains(s)), "a secret is stored in the clear: {value}");
        }
    }
    drop(store);
    let database = server.database_url.clone().unwrap();
    let _dir = server.dir.clone(); // the database files outlive the process
    let logs = server.stop().await.join("\n");

    assert!(logs.contains("/v1/dispatch/echo"), "debug request logs were captured: {logs}");
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} is in the logs:\n{logs}");
    }
    // SQLite-specific: the database file's own bytes (and its write-ahead
    // log), and the key file beside it.
    let Some(file) = sqlite_file(&database) else {
        eprintln!("skipped the scan of the database file: {database} is not SQLite");
        return;
    };
    let beside = |suffix: &str| {
        let mut path = file.clone().into_os_string();
        path.push(suffix);
        std::path::PathBuf::from(path)
    };
    assert!(file.exists(), "{} holds the database", file.display());
    for secret in secrets {
        for path in [file.clone(), beside("-wal")] {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret} is stored in the clear in {}", path.display());
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::metadata(beside(".callback-key")).expect("a key file beside the database");
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}
