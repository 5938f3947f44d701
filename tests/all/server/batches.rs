//! `GET /v1/batches`: a tenant's batches newest first, in keyset pages.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Options, spawn_app};

#[tokio::test]
async fn batches_are_listed_newest_first_in_pages_with_their_state() {
    let app = spawn_app(Options {
        token: Some("tok".into()),
        operator_token: Some("op".into()),
        ..Options::default()
    })
    .await;
    app.register("echo", "echo").await;
    let mut made = Vec::new();
    for n in 0..3 {
        let jobs: Vec<Value> = (0..=n).map(|k| json!({"alias": "echo", "payload": {"k": k}})).collect();
        let (status, batch) = app.post("/v1/batches", &json!({"jobs": jobs})).await;
        assert_eq!(status, StatusCode::CREATED, "{batch}");
        made.push(batch["id"].as_str().unwrap().to_string());
    }
    // One scheduled far ahead: never done.
    let later = json!({"jobs": [{"alias": "echo", "payload": {}, "delay_ms": 3_600_000}],
                       "callback": {"url": "http://127.0.0.1:9/hook"}});
    let (status, open) = app.post("/v1/batches", &later).await;
    assert_eq!(status, StatusCode::CREATED, "{open}");
    let open = open["id"].as_str().unwrap().to_string();
    for id in &made {
        let (_, batch) = app.get(&format!("/v1/batches/{id}")).await;
        for job in batch_jobs(&app, id).await {
            app.wait(&job).await;
        }
        assert!(batch["total"].as_u64().unwrap() >= 1);
    }
    // Done is set by the commit that ended the last job: wait for it.
    let mut page = Value::Null;
    for _ in 0..200 {
        page = app.get("/v1/batches?limit=2").await.1;
        if page["batches"][1]["done"] == true {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let first = page["batches"].as_array().unwrap();
    assert_eq!(ids(first), [open.as_str(), made[2].as_str()], "newest first: {page}");
    assert_eq!((first[0]["done"].as_bool(), first[0]["done_at"].is_null()), (Some(false), true), "{page}");
    assert_eq!(first[0]["callback"]["state"], "pending", "{page}");
    assert_eq!(first[1]["total"], 3);
    assert_eq!(first[1]["done"], true, "{page}");
    assert!(first[1]["done_at"].as_str().unwrap() >= first[1]["created_at"].as_str().unwrap(), "{page}");
    assert!(first[1]["callback"].is_null());
    let cursor = page["next_cursor"].as_str().expect("more pages").to_string();
    let (status, rest) = app.get(&format!("/v1/batches?limit=2&cursor={cursor}")).await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(ids(rest["batches"].as_array().unwrap()), [made[1].as_str(), made[0].as_str()]);
    assert!(rest["next_cursor"].is_null(), "the last page: {rest}");
    let (_, all) = app.get("/v1/batches?cursor=").await;
    assert_eq!(all["batches"].as_array().unwrap().len(), 4, "an empty cursor is the first page");

    // Another tenant lists only its own.
    let (status, _) =
        app.call("op", reqwest::Method::POST, "/v1/tenants", Some(&json!({"id": "other"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, token) = app
        .call("op", reqwest::Method::POST, "/v1/tenants/other/tokens", Some(&json!({"scope": "read"})))
        .await;
    let (status, theirs) =
        app.call(token["token"].as_str().unwrap(), reqwest::Method::GET, "/v1/batches", None).await;
    assert_eq!((status, theirs), (StatusCode::OK, json!({"batches": [], "next_cursor": null})));

    for (query, says) in [
        ("limit=0", "limit must be between 1 and 1000, got 0"),
        ("limit=1001", "limit must be between 1 and 1000, got 1001"),
        ("cursor=nope", "cursor must be a batch id"),
        ("status=done", "status"),
    ] {
        let (status, body) = app.get(&format!("/v1/batches?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{query}: {body}");
    }
}

fn ids(batches: &[Value]) -> Vec<&str> {
    batches.iter().map(|b| b["id"].as_str().unwrap()).collect()
}

pub(super) async fn batch_jobs(app: &super::TestApp, batch: &str) -> Vec<String> {
    let (_, page) = app.get(&format!("/v1/jobs?batch={batch}")).await;
    page["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect()
}
