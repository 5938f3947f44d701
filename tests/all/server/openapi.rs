//! What the third-party checkers of `scripts/api-conformance.sh` found where
//! the server and its OpenAPI document disagreed, each fixed at its cause and
//! pinned here: the document's JSON Schema rules are the server's rules.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Options, spawn_app};

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn integers_are_accepted_in_every_json_spelling() {
    let app = spawn_app(Options::default()).await;
    let digest = app.upload("echo").await;
    // `2.0` and `2e0` are the integer 2 in JSON and in the document's schema.
    let alias = json!({"module": digest, "max_attempts": 2.0, "priority": 7e0, "memory_mb": 16.0});
    let (status, body) = app.put("/v1/aliases/echo", &alias).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["max_attempts"].as_u64(), body["priority"].as_u64()), (Some(2), Some(7)), "{body}");
    let job = json!({"alias": "echo", "payload": [1, 2], "priority": 10.0, "timeout_ms": 5e3});
    let (status, body) = app.post("/v1/jobs", &job).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["priority"], 10, "{body}");
    // A fraction is not an integer, and the message names the field.
    let (status, body) = app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "fuel": 2.5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("fuel: "), "{body}");
    // The server still answers normally.
    let id = app.dispatch("echo", json!([3]), json!({})).await["id"].as_str().unwrap().to_string();
    assert_eq!(app.wait(&id).await["result"], json!([3]));
    app.stop().await;
}

#[tokio::test]
async fn text_limits_count_characters_as_max_length_does() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    // 200 characters of 2 bytes each: within `maxLength: 200`.
    let context = "é".repeat(200);
    let (status, body) =
        app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "context": context})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) =
        app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "context": "é".repeat(201)})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("context must be at most 200 characters"), "{body}");
    let (status, _) = app.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn the_document_states_the_rules_the_server_enforces() {
    let app = spawn_app(Options::default()).await;
    let (_, doc) = app.get("/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    // A flattened config is merged into one object: the request is closed
    // (unknown fields are refused) and the view open, neither an `allOf`.
    let request = &schemas["AliasRequest"];
    assert_eq!(request["additionalProperties"], false, "{request}");
    assert!(
        request["properties"]["module"]["pattern"].is_string() && request["properties"]["fuel"].is_object()
    );
    let view = &schemas["AliasView"];
    assert!(view["allOf"].is_null() && view["additionalProperties"].is_null(), "{view}");
    assert!(view["properties"]["name"].is_object() && view["properties"]["queue"].is_object(), "{view}");
    app.register("echo", "echo").await;
    // delay_ms and run_at exclude each other, as the server says.
    assert_eq!(schemas["JobRequest"]["not"]["required"], json!(["delay_ms", "run_at"]));
    let (status, body) = app
        .post(
            "/v1/jobs",
            &json!({"alias": "echo", "payload": 1, "delay_ms": 1, "run_at": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // memory_mb's maximum is this server's memory ceiling.
    let max_mb = schemas["JobRequest"]["properties"]["memory_mb"]["maximum"].as_u64().unwrap();
    let (status, body) =
        app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "memory_mb": max_mb})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) =
        app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "memory_mb": max_mb + 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("memory_mb"), "{body}");
    // The callback secret is documented (write-only) with the bounds the server checks.
    let secret = &schemas["Callback"]["properties"]["secret"];
    assert_eq!(
        (secret["minLength"].as_u64(), secret["maxLength"].as_u64()),
        (Some(1), Some(1024)),
        "{secret}"
    );
    app.stop().await;
}

#[tokio::test]
async fn run_at_states_its_form_and_its_one_year_bound() {
    use wasmq::domain::time::{now_ms, rfc3339};
    const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;
    let app = spawn_app(Options::default()).await;
    let (_, doc) = app.get("/openapi.json").await;
    let run_at = &doc["components"]["schemas"]["JobRequest"]["properties"]["run_at"];
    assert_eq!(run_at["format"], "date-time", "{run_at}");
    let pattern = run_at["pattern"].as_str().unwrap_or_default();
    assert!(pattern.starts_with("^(19[7-9][0-9]|") && pattern.ends_with("(Z|\\+00:00)$"), "{run_at}");
    let description = run_at["description"].as_str().unwrap_or_default().replace('\n', " ");
    assert!(description.contains("at most one year (31536000000 ms"), "{run_at}");
    // The delay_ms maximum the description refers to.
    let delay = &doc["components"]["schemas"]["JobRequest"]["properties"]["delay_ms"];
    assert_eq!(delay["maximum"].as_u64(), Some(YEAR_MS as u64), "{delay}");

    app.register("echo", "echo").await;
    // Both UTC spellings the pattern allows are read, within the year.
    let soon = rfc3339(now_ms() + 3_600_000);
    let offset = soon.replace('Z', "+00:00");
    for at in [&soon, &offset] {
        let (status, body) =
            app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "run_at": at})).await;
        assert_eq!(status, StatusCode::CREATED, "{at}: {body}");
        assert_eq!(
            (body["status"].as_str(), body["run_at"].as_str()),
            (Some("scheduled"), Some(soon.as_str()))
        );
    }
    // Past the year: the form is the document's, the bound is refused by name,
    // for a job alone and for a job of a batch alike.
    let late = rfc3339(now_ms() + YEAR_MS + 3_600_000);
    let (status, body) = app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "run_at": late})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("run_at must be at most one year ahead"), "{body}");
    let batch =
        json!({"jobs": [{"alias": "echo", "payload": 1}, {"alias": "echo", "payload": 2, "run_at": late}]});
    let (status, body) = app.post("/v1/batches", &batch).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("jobs[1]: run_at must be at most one year ahead"), "{body}");
    // Another offset is outside the pattern, and the server refuses it too.
    let (status, body) = app
        .post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "run_at": "2026-01-31T12:00:00+01:00"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("run_at must be an RFC 3339 time"), "{body}");
    app.stop().await;
}
