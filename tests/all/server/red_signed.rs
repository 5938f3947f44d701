//! Hostile signed requests (issue 13's red-team pass): timestamps at the
//! integer extremes, headers with duplicated parts, oversized key ids,
//! signatures moved to another path or query order, bodies over the limit.
//! Each must be a clean 4xx saying why, never a 500 or an ambiguous accept.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wasmq::api::auth::signed::sign;
use wasmq::config::Secret;

use super::{Options, TestApp, spawn_app_with};

const SECRET: &str = "0123456789abcdef0123456789abcdef-red";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn app() -> TestApp {
    let opts = Options { token: Some("single-token".into()), ..Options::default() };
    let app = spawn_app_with(opts, |s| {
        s.signing_secret = Some(Secret::new(SECRET));
        s.max_body_bytes = 1024;
    })
    .await;
    app.register("echo", "echo").await;
    app
}

/// `method path` with `X-Wasmq-Key: key` and the signature header `signature` as given.
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    signature: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let r = app
        .client
        .request(method, format!("{}{path}", app.url))
        .header("x-wasmq-key", key)
        .header("x-wasmq-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_vec());
    app.send(r).await
}

fn refused_saying(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains(what), "{msg:?} should say {what:?}");
}

#[tokio::test]
async fn signed_timestamps_at_the_integer_extremes_are_refused_cleanly() {
    let app = app().await;
    // Correctly signed, so only the window can refuse them: i64::MIN used to
    // overflow the age computation (a panic, answered 500).
    for (t, why) in [(i64::MIN, "old"), (i64::MIN + 1, "old"), (-1, "old"), (0, "old"), (i64::MAX, "future")]
    {
        let sig = sign(SECRET.as_bytes(), t, "GET", "/v1/jobs", b"");
        let (status, body) = send_raw(&app, Method::GET, "/v1/jobs", "default", &sig, b"").await;
        refused_saying(status, &body, why);
    }
    // Not an i64, negative zero-padded, not a number at all: a malformed header.
    let tag = "0".repeat(64);
    for t in ["99999999999999999999", "-99999999999999999999", "1e9", "0x10", "", " "] {
        let (status, body) =
            send_raw(&app, Method::GET, "/v1/jobs", "default", &format!("t={t},v1={tag}"), b"").await;
        refused_saying(status, &body, "X-Wasmq-Signature must be");
    }
}

#[tokio::test]
async fn a_signature_header_with_a_part_twice_is_refused_as_ambiguous() {
    let app = app().await;
    let t = now();
    let good = sign(SECRET.as_bytes(), t, "GET", "/v1/jobs", b"");
    let v1 = good.split_once(",v1=").unwrap().1.to_string();
    let other = "0".repeat(64);
    for header in [
        format!("t={t},t={t},v1={v1}"),
        format!("t={},t={t},v1={v1}", t - 1000),
        format!("t={t},v1={v1},v1={v1}"),
        format!("t={t},v1={other},v1={v1}"),
    ] {
        let (status, body) = send_raw(&app, Method::GET, "/v1/jobs", "default", &header, b"").await;
        refused_saying(status, &body, "once");
    }
    // Uppercase hex is the same signature: accepted once, then a replay in any case.
    let upper = format!("t={t},v1={}", v1.to_uppercase());
    let (status, body) = send_raw(&app, Method::GET, "/v1/jobs", "default", &upper, b"").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send_raw(&app, Method::GET, "/v1/jobs", "default", &good, b"").await;
    refused_saying(status, &body, "replay");
    // An unknown part (a future version) is ignored, as before.
    let t = now();
    let sig = format!("{},v2=whatever", sign(SECRET.as_bytes(), t, "GET", "/v1/aliases", b""));
    let (status, body) = send_raw(&app, Method::GET, "/v1/aliases", "default", &sig, b"").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_huge_key_id_is_refused_without_being_echoed() {
    let app = app().await;
    let key = "k".repeat(10 * 1024);
    let sig = sign(SECRET.as_bytes(), now(), "GET", "/v1/jobs", b"");
    let (status, body) = send_raw(&app, Method::GET, "/v1/jobs", &key, &sig, b"").await;
    refused_saying(status, &body, "X-Wasmq-Key");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.len() < 300, "the answer stays small: {} bytes", msg.len());
    assert!(msg.contains("1 to 64 characters"), "{msg}");
}

#[tokio::test]
async fn a_signature_is_bound_to_its_path_query_and_method_and_the_body_limit_holds() {
    let app = app().await;
    let t = now();
    // Signed for one path, sent to another.
    let sig = sign(SECRET.as_bytes(), t, "GET", "/v1/aliases", b"");
    let (status, body) = send_raw(&app, Method::GET, "/v1/modules", "default", &sig, b"").await;
    refused_saying(status, &body, "does not match");
    // The query as sent is signed: reordered parameters do not match.
    let sig = sign(SECRET.as_bytes(), t, "GET", "/v1/jobs?limit=5&status=queued", b"");
    let (status, body) =
        send_raw(&app, Method::GET, "/v1/jobs?status=queued&limit=5", "default", &sig, b"").await;
    refused_saying(status, &body, "does not match");
    let (status, body) =
        send_raw(&app, Method::GET, "/v1/jobs?limit=5&status=queued", "default", &sig, b"").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Same path, other method.
    let sig = sign(SECRET.as_bytes(), t, "GET", "/v1/aliases/echo", b"");
    let (status, body) = send_raw(&app, Method::DELETE, "/v1/aliases/echo", "default", &sig, b"").await;
    refused_saying(status, &body, "does not match");
    // A body over the JSON limit (1 KiB here) is 413 before anything else.
    let big = serde_json::to_vec(&json!({ "alias": "echo", "payload": "x".repeat(4096) })).unwrap();
    let sig = sign(SECRET.as_bytes(), t, "POST", "/v1/jobs", &big);
    let (status, body) = send_raw(&app, Method::POST, "/v1/jobs", "default", &sig, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("1024 bytes"), "{body}");
    // A bearer token with a signature: refused, whichever would pass alone.
    let sig = sign(SECRET.as_bytes(), now(), "GET", "/v1/jobs", b"");
    let r = app
        .client
        .get(format!("{}/v1/jobs", app.url))
        .bearer_auth("single-token")
        .header("x-wasmq-key", "default")
        .header("x-wasmq-signature", sig);
    let (status, body) = app.send(r).await;
    refused_saying(status, &body, "not both");
}
