//! Per-tenant callback ranges: on a server whose own policy refuses loopback,
//! the operator allows one tenant a range (or a host), and that tenant's
//! callbacks reach a receiver on 127.0.0.1 (checked at dispatch and on every
//! resolved address at delivery), while another tenant's are refused at
//! dispatch naming the address policy. A tenant cannot widen its own.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Options, Receiver, TestApp, spawn_app};
use crate::support::plugin_bytes;

const OPERATOR: &str = "operator-secret";

/// Makes tenant `id` with `allow`, an admin token for it, and its alias `echo`; returns the token.
async fn tenant(app: &TestApp, id: &str, allow: &[&str]) -> String {
    let (status, t) = app
        .call(OPERATOR, Method::POST, "/v1/tenants", Some(&json!({ "id": id, "callback_allow": allow })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let path = format!("/v1/tenants/{id}/tokens");
    let (status, made) = app.call(OPERATOR, Method::POST, &path, Some(&json!({ "scope": "admin" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["token"].as_str().unwrap().to_string();
    let r = app.client.post(format!("{}/v1/modules", app.url)).bearer_auth(&token);
    let (status, module) =
        app.send(r.header("content-type", "application/wasm").body(plugin_bytes("echo"))).await;
    assert!(status.is_success(), "{module}");
    let alias = json!({ "module": module["digest"] });
    let (status, body) = app.call(&token, Method::PUT, "/v1/aliases/echo", Some(&alias)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    token
}

fn job(url: &str, n: u64) -> Value {
    json!({ "alias": "echo", "payload": { "n": n }, "callback": { "url": url } })
}

#[tokio::test]
async fn a_tenants_extra_callback_range_works_for_it_and_not_for_another() {
    let opts = Options {
        operator_token: Some(OPERATOR.into()),
        callback_allow: String::new(),
        ..Options::default()
    };
    let app = spawn_app(opts).await;
    let receiver = Receiver::start(0).await;
    let allowed = tenant(&app, "allowed", &["127.0.0.0/8"]).await;
    let plain = tenant(&app, "plain", &[]).await;

    let (status, created) = app.call(&allowed, Method::POST, "/v1/jobs", Some(&job(&receiver.url, 1))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, delivered) = receiver.next().await;
    assert_eq!(
        (&delivered["job_id"], &delivered["result"]),
        (&created["id"], &json!({ "n": 1 })),
        "{delivered}"
    );

    // Another tenant, and the query form of the callback: refused at dispatch.
    let (status, err) = app.call(&plain, Method::POST, "/v1/jobs", Some(&job(&receiver.url, 2))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("callback.url must not target 127.0.0.1") && msg.contains("address policy"),
        "{msg}"
    );
    let url: String = form_urlencoded::byte_serialize(receiver.url.as_bytes()).collect();
    let path = format!("/v1/dispatch/echo?callback_url={url}");
    let (status, err) = app.call(&plain, Method::POST, &path, Some(&json!({ "n": 3 }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().starts_with("callback_url must not target"), "{err}");

    // A tenant cannot widen its own; the operator can, and narrow it again.
    let widen = json!({ "callback_allow": ["127.0.0.0/8"] });
    let (status, err) = app.call(&plain, Method::PATCH, "/v1/tenants/plain", Some(&widen)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    let (status, t) = app.call(OPERATOR, Method::PATCH, "/v1/tenants/plain", Some(&widen)).await;
    assert_eq!((status, &t["callback_allow"]), (StatusCode::OK, &json!(["127.0.0.0/8"])), "{t}");
    let (status, created) = app.call(&plain, Method::POST, "/v1/jobs", Some(&job(&receiver.url, 4))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, delivered) = receiver.next().await;
    assert_eq!(delivered["job_id"], created["id"], "{delivered}");
    let (status, _) =
        app.call(OPERATOR, Method::PATCH, "/v1/tenants/plain", Some(&json!({ "callback_allow": [] }))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = app.call(&plain, Method::POST, "/v1/jobs", Some(&job(&receiver.url, 5))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
}

#[tokio::test]
async fn a_tenants_allowed_host_is_reached_whatever_it_resolves_to_and_entries_are_checked() {
    let opts = Options {
        operator_token: Some(OPERATOR.into()),
        callback_allow: String::new(),
        ..Options::default()
    };
    let app = spawn_app(opts).await;
    let receiver = Receiver::start(0).await;
    let named = tenant(&app, "named", &["LOCALHOST."]).await;
    let (_, t) = app.call(OPERATOR, Method::GET, "/v1/tenants/named", None).await;
    assert_eq!(t["callback_allow"], json!(["localhost"]), "kept in its normal form: {t}");

    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let (status, created) = app.call(&named, Method::POST, "/v1/jobs", Some(&job(&by_name, 1))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, delivered) = receiver.next().await;
    assert_eq!(delivered["job_id"], created["id"], "{delivered}");
    // The name is allowed, not the addresses it has: the literal address is still refused.
    let (status, err) = app.call(&named, Method::POST, "/v1/jobs", Some(&job(&receiver.url, 2))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    // Entries are checked: each a range, an address or a host name.
    let (status, err) = app
        .call(
            OPERATOR,
            Method::POST,
            "/v1/tenants",
            Some(&json!({
                "id": "bad", "callback_allow": ["10.0.0.0/8", "not a host!"]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("callback_allow[1] must be") && msg.contains("not a host!"), "{msg}");
}
