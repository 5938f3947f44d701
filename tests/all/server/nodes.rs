//! `GET /v1/nodes` on one node: the node registers itself at start, shows
//! its slots and busy workers as its beats renew them, and is marked stopped
//! by a clean shutdown; only the operator (or, without an operator token, the
//! `default` tenant's admin) may list the cluster's machines.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::{Options, TestApp, spawn_app};

const OPERATOR: &str = "operator-secret";

async fn listed(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.call(token, Method::GET, "/v1/nodes", None).await
}

#[tokio::test]
async fn a_node_registers_itself_shows_its_busy_workers_and_is_marked_stopped() {
    let app = spawn_app(Options { token: Some("single".into()), ..Options::default() }).await;
    let (status, body) = listed(&app, "single").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let nodes = body["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{body}");
    let me = &nodes[0];
    assert_eq!((&me["role"], &me["status"], &me["slots"]), (&json!("server"), &json!("up"), &json!(2)));
    assert_eq!(me["pid"], std::process::id());
    assert_eq!(me["addr"], app.url.trim_start_matches("http://"));
    assert!(me.get("queues").is_none() && me.get("stopped_at").is_none(), "{me}");
    assert!(me["heartbeat_age_ms"].as_i64().unwrap() < 7_000, "{me}");

    // A running job shows as busy by the next beat (every 2 s).
    let client = app.client.clone();
    let upload = client
        .post(format!("{}/v1/modules", app.url))
        .bearer_auth("single")
        .header("content-type", "application/wasm")
        .body(crate::support::plugin_bytes("bench-job"));
    let (_, module) = app.send(upload).await;
    let alias = json!({"module": module["digest"]});
    let (status, _) = app.call("single", Method::PUT, "/v1/aliases/bench", Some(&alias)).await;
    assert_eq!(status, StatusCode::OK);
    let job = json!({"alias": "bench", "payload": {"sleep_ms": 60_000}});
    let (status, made) = app.call("single", Method::POST, "/v1/jobs", Some(&job)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = listed(&app, "single").await;
        if body["nodes"][0]["busy"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the running job never showed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = made["id"].as_str().unwrap();
    let (status, _) = app.call("single", Method::POST, &format!("/v1/jobs/{id}/cancel"), None).await;
    assert_eq!(status, StatusCode::OK);

    let store = app.store().await;
    let node_id = me["id"].as_str().unwrap().to_string();
    app.stop().await;
    let rows = store.node_list().await.unwrap();
    let row = rows.iter().find(|n| n.beat.id == node_id).expect("its row stays");
    assert!(row.stopped_at.is_some(), "a clean shutdown marks it stopped: {row:?}");
}

#[tokio::test]
async fn only_the_operator_sees_the_nodes_of_a_shared_server() {
    let opts =
        Options { operator_token: Some(OPERATOR.into()), token: Some("single".into()), ..Options::default() };
    let app = spawn_app(opts).await;
    let (status, body) = listed(&app, OPERATOR).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["nodes"].as_array().unwrap().len(), 1);
    // Even the default tenant's admin is a tenant here, like any other.
    let (status, body) = listed(&app, "single").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("operator token"), "{body}");
    let (status, _) = app.call(OPERATOR, Method::POST, "/v1/tenants", Some(&json!({"id": "acme"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let made = json!({"scope": "admin"});
    let (_, token) = app.call(OPERATOR, Method::POST, "/v1/tenants/acme/tokens", Some(&made)).await;
    let (status, _) = listed(&app, token["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.send(app.client.get(format!("{}/v1/nodes", app.url))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}
