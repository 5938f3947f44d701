//! Upload, alias, dispatch and wait through the API; every bad input answered
//! with its 4xx and code.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Options, spawn_app};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an API error: {body}"))
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap()
}

#[tokio::test]
async fn every_example_plugin_runs_through_the_api() {
    let app = spawn_app(Options::default()).await;
    for (alias, plugin) in
        [("echo", "echo"), ("words", "wordcount"), ("primes", "primes"), ("hello", "hello-command")]
    {
        app.register(alias, plugin).await;
    }
    app.register("thumbnail", "thumbnail").await;
    let cases = [
        ("echo", json!({"x": [1, 2]}), json!({"x": [1, 2]})),
        ("words", json!({"text": "a b a", "top": 1}), json!({"top_words": [{"word": "a", "count": 2}]})),
        ("primes", json!({"limit": 1000}), json!({"count": 168, "largest": 997})),
        ("hello", json!({"name": "api"}), json!({"greeting": "hello, api"})),
    ];
    for (alias, payload, expected) in cases {
        let job = app.dispatch(alias, payload, json!({})).await;
        // Workers idle: claimed in its insert, it is running when the 201 answers.
        assert_eq!((&job["status"], &job["attempt"]), (&json!("running"), &json!(1)), "{job}");
        let done = app.wait(job["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "succeeded", "{alias}: {done}");
        for (k, v) in expected.as_object().unwrap() {
            assert_eq!(&done["result"][k], v, "{alias}: {done}");
        }
        assert!(done["fuel_used"].as_u64().unwrap() > 0);
        assert_eq!(done["attempt"], 1);
    }
    // A real image through the thumbnail plugin.
    let png = base64::engine::general_purpose::STANDARD.encode(crate::plugins::gradient_png());
    let job = app.dispatch("thumbnail", json!({"image": png, "width": 8, "height": 8}), json!({})).await;
    let done = app.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["result"]["width"].as_u64(), done["result"]["height"].as_u64()),
        (Some(8), Some(4)),
        "{done}"
    );
    assert_eq!(done["progress"]["percent"], 100);
    app.stop().await;
}

#[tokio::test]
async fn modules_are_content_addressed_and_aliases_versioned() {
    let app = spawn_app(Options::default()).await;
    let (status, first) = app
        .send(
            app.raw(Method::POST, "/v1/modules")
                .header("content-type", "application/wasm")
                .body(crate::support::plugin_bytes("echo")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first["kind"], "job");
    let (status, again) = app
        .send(
            app.raw(Method::POST, "/v1/modules")
                .header("content-type", "application/wasm")
                .body(crate::support::plugin_bytes("echo")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["digest"], first["digest"]);
    let echo = first["digest"].as_str().unwrap().to_string();
    let hello = app.upload("hello-command").await;
    let (_, list) = app.get("/v1/modules").await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    let (_, v1) = app.put("/v1/aliases/tool", &json!({"module": echo, "priority": 900})).await;
    assert_eq!(v1["version"], 1);
    // A job queued now keeps echo's digest, whatever the alias does next.
    let pinned = app.dispatch("tool", json!({"pinned": true}), json!({"delay_ms": 200})).await;
    let (_, v2) = app.put("/v1/aliases/tool", &json!({"module": hello})).await;
    assert_eq!(v2["version"], 2);
    let (status, v3) = app.post("/v1/aliases/tool/rollback", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v3}");
    assert_eq!((v3["version"].as_i64(), v3["module"].as_str()), (Some(3), Some(echo.as_str())));
    assert_eq!(v3["priority"], 900);
    let (_, shown) = app.get("/v1/aliases/tool").await;
    let versions: Vec<i64> =
        shown["history"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, vec![3, 2, 1]);
    let done = app.wait(pinned["id"].as_str().unwrap()).await;
    assert_eq!(done["module"], echo.as_str());
    assert_eq!(done["result"], json!({"pinned": true}));
    assert_eq!(done["priority"], 900, "alias default priority applies");

    let (status, body) = app.delete(&format!("/v1/modules/{echo}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(message(&body).contains("used by alias tool"), "{body}");
    let (status, _) = app.delete("/v1/aliases/tool").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&format!("/v1/modules/{echo}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/v1/modules/{echo}")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    app.stop().await;
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_job() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let req = json!({"alias": "echo", "payload": {"n": 1}, "idempotency_key": "order-42"});
    let (s1, first) = app.post("/v1/jobs", &req).await;
    let (s2, second) = app.post("/v1/jobs", &req).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["payload"], json!({"n": 1}));
    // The key with another payload is not the same request (see misc_faults.rs).
    let (s3, third) = app
        .post("/v1/jobs", &json!({"alias": "echo", "payload": {"n": 2}, "idempotency_key": "order-42"}))
        .await;
    assert_eq!((s3, code(&third)), (StatusCode::CONFLICT, "idempotency_conflict"), "{third}");
    let (_, page) = app.get("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_short_form_dispatch_takes_the_payload_as_body() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let (status, body) = app
        .send(app.raw(Method::POST, "/v1/dispatch/echo?priority=10&context=short").json(&json!([1, "two"])))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job = app.wait(body["id"].as_str().unwrap()).await;
    assert_eq!(job["result"], json!([1, "two"]));
    assert_eq!((job["priority"].as_i64(), job["context"].as_str()), (Some(10), Some("short")));
    let (_, page) = app.get("/v1/jobs?context=short").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_its_4xx_and_code() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str, &str)> = vec![
        (app.raw(Method::POST, "/v1/jobs").header("content-type", "application/json").body("{not json"), StatusCode::BAD_REQUEST, "malformed_json", "key must be a string"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": 1, "priority": 5000})), StatusCode::BAD_REQUEST, "invalid_field", "priority must be between 0 and 1000, got 5000"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": 1, "priority": "high"})), StatusCode::BAD_REQUEST, "invalid_field", "priority: invalid type"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo"})), StatusCode::BAD_REQUEST, "invalid_field", "missing field `payload`"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "Echo!", "payload": 1})), StatusCode::BAD_REQUEST, "invalid_field", "alias must match"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": 1, "queue": "A B"})), StatusCode::BAD_REQUEST, "invalid_field", "queue must match"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": 1, "max_attempts": 0})), StatusCode::BAD_REQUEST, "invalid_field", "max_attempts must be between 1 and 100"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": 1, "memory_mb": 100000})), StatusCode::BAD_REQUEST, "invalid_field", "memory_mb must be between 1 and 1024, got 100000"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": 1, "delay_ms": 5, "run_at": "2030-01-01T00:00:00Z"})), StatusCode::BAD_REQUEST, "invalid_field", "delay_ms and run_at cannot both be given"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": 1, "run_at": "tomorrow"})), StatusCode::BAD_REQUEST, "invalid_field", "run_at must be an RFC 3339 time"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "echo", "payload": 1, "callback": {"url": "ftp://x"}})), StatusCode::BAD_REQUEST, "invalid_field", "callback.url must be an http or https URL"),
        (app.raw(Method::POST, "/v1/jobs").json(&json!({"alias": "missing", "payload": 1})), StatusCode::NOT_FOUND, "not_found", "alias missing not found"),
        (app.raw(Method::POST, "/v1/jobs").header("content-type", "text/plain").body("{}"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "application/json"),
        (app.raw(Method::GET, "/v1/jobs/nope"), StatusCode::NOT_FOUND, "not_found", "job nope not found"),
        (app.raw(Method::GET, "/v1/jobs?status=done"), StatusCode::BAD_REQUEST, "invalid_field", "status must be one of"),
        (app.raw(Method::GET, "/v1/jobs?limit=0"), StatusCode::BAD_REQUEST, "invalid_field", "limit must be between 1 and 1000"),
        (app.raw(Method::GET, "/v1/jobs?limit=ten"), StatusCode::BAD_REQUEST, "invalid_field", "query parameter limit"),
        (app.raw(Method::POST, "/v1/modules").header("content-type", "application/wasm").body(b"not wasm".to_vec()), StatusCode::BAD_REQUEST, "invalid_module", "bad magic number"),
        (app.raw(Method::POST, "/v1/modules").header("content-type", "application/wasm").body(vec![0u8; 40 << 20]), StatusCode::PAYLOAD_TOO_LARGE, "too_large", "limit"),
        (app.raw(Method::POST, "/v1/modules").header("content-type", "text/plain").body("x"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "application/wasm"),
        (app.raw(Method::GET, "/v1/modules/sha1:abc"), StatusCode::BAD_REQUEST, "invalid_field", "digest must be"),
        (app.raw(Method::PUT, "/v1/aliases/x").json(&json!({"module": format!("blake3:{}", "0".repeat(64))})), StatusCode::NOT_FOUND, "not_found", "module blake3:000"),
        (app.raw(Method::POST, "/v1/aliases/echo/rollback"), StatusCode::CONFLICT, "conflict", "has no version before 1"),
        (app.raw(Method::POST, "/v1/dispatch/echo").header("content-type", "application/json").body("[1,"), StatusCode::BAD_REQUEST, "malformed_json", "EOF"),
        (app.raw(Method::POST, "/v1/batches").json(&json!({"jobs": []})), StatusCode::BAD_REQUEST, "invalid_field", "jobs must hold between 1 and 10000 jobs"),
        (app.raw(Method::POST, "/v1/batches").json(&json!({"jobs": [{"alias": "echo", "payload": 1}, {"alias": "echo", "payload": 1, "priority": -1}]})), StatusCode::BAD_REQUEST, "invalid_field", "jobs[1]: priority must be between 0 and 1000"),
        (app.raw(Method::GET, "/v1/nothing"), StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    ];
    for (request, status, expected_code, fragment) in cases {
        let (got, body) = app.send(request).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(code(&body), expected_code, "{body}");
        assert!(message(&body).contains(fragment), "{fragment:?} not in {body}");
    }
    // A finished job cannot be cancelled; a queued one cannot be retried.
    let job = app.dispatch("echo", json!(1), json!({})).await;
    let id = job["id"].as_str().unwrap();
    app.wait(id).await;
    let (status, body) = app.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict"));
    assert!(message(&body).contains("already succeeded"), "{body}");
    let (status, body) = app.post(&format!("/v1/jobs/{id}/retry"), &json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_token_guards_the_api_but_not_health() {
    let app = spawn_app(Options { token: Some("t0ken".into()), ..Options::default() }).await;
    let client = reqwest::Client::new();
    for auth in [None, Some("Bearer wrong"), Some("t0ken")] {
        let mut r = client.get(format!("{}/v1/status", app.url));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(code(&body), "unauthorized");
    }
    let (status, body) = app.get("/v1/status").await; // the helper sends the right token
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["workers"], json!({"max": 2, "busy": 0, "free": 2}));
    let health = client.get(format!("{}/healthz", app.url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn listening_beyond_loopback_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = super::settings(&Options::default(), &dir);
    settings.listen = "0.0.0.0:0".parse().unwrap();
    let err = wasmq::app::App::build(settings).await.err().expect("refused");
    assert!(err.to_string().contains("without a token"), "{err}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app(Options::default()).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/modules",
        "/v1/aliases/{name}",
        "/v1/jobs",
        "/v1/jobs/{id}/wait",
        "/v1/dispatch/{alias}",
        "/v1/batches",
        "/v1/status",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    let job_schema = &doc["components"]["schemas"]["JobRequest"]["properties"];
    assert!(job_schema["priority"].is_object() && job_schema["idempotency_key"].is_object(), "{job_schema}");
    assert_eq!(
        (job_schema["priority"]["minimum"].as_u64(), job_schema["priority"]["maximum"].as_u64()),
        (Some(0), Some(1000))
    );
    // Every operation: a unique readable id, a resource tag, a description on
    // every response; the bearer token (and its 401) on `/v1` and `/metrics` only.
    let mut ids = std::collections::HashSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_string()), "{method} {path}: duplicate operationId {id}");
            assert!(id.chars().all(char::is_alphanumeric), "{method} {path}: {id}");
            assert!(!op["tags"][0].as_str().unwrap().contains("::"), "{method} {path}: {}", op["tags"]);
            for (status, response) in op["responses"].as_object().unwrap() {
                let description = response["description"].as_str().unwrap_or("");
                assert!(!description.is_empty(), "{method} {path} {status}: no description");
            }
            let secured = op["security"].is_array();
            let behind_token = path.starts_with("/v1/") || path == "/metrics";
            assert_eq!(secured, behind_token, "{method} {path}: security {}", op["security"]);
            assert_eq!(op["responses"]["401"].is_object(), secured, "{method} {path}: 401");
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let expected = if path.contains(&format!("{{{name}}}")) {
                    "path"
                } else if name == "Last-Event-ID" {
                    "header" // what EventSource sends on reconnecting
                } else {
                    "query"
                };
                assert_eq!(p["in"], expected, "{method} {path}: {p}");
            }
        }
    }
    assert!(ids.contains("createJob") && ids.contains("waitJob") && ids.contains("uploadModule"), "{ids:?}");
    let upload = &doc["paths"]["/v1/modules"]["post"]["requestBody"]["content"]["application/wasm"]["schema"];
    let upload = &doc["components"]["schemas"][upload["$ref"].as_str().unwrap().rsplit('/').next().unwrap()];
    assert_eq!(
        (upload["type"].as_str(), upload["format"].as_str()),
        (Some("string"), Some("binary")),
        "{upload}"
    );
    let callback = &doc["components"]["schemas"]["Callback"]["properties"]["secret"];
    assert_eq!(callback["writeOnly"], true, "{callback}");
    // The payload is any JSON value, not only an object.
    assert!(doc["components"]["schemas"]["JobView"]["properties"]["payload"].get("type").is_none());
    // /healthz needs no token, as documented.
    let health = reqwest::get(format!("{}/healthz", app.url)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (status, _) = app.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

/// Contract compatibility through the server: a plugin built against the
/// frozen 0.1.0 runs unchanged next to 0.2.0 ones, with its job facts.
#[tokio::test]
async fn a_plugin_built_against_contract_0_1_0_runs_through_the_server() {
    let app = spawn_app(Options::default()).await;
    app.register("old", "contract-v0-1").await;
    app.register("new", "echo").await;
    let old = app.dispatch("old", json!({"n": 1}), json!({})).await;
    let new = app.dispatch("new", json!({"n": 2}), json!({})).await;
    let done = app.wait(old["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["contract"], "0.1.0");
    assert_eq!(done["result"]["input"], json!({"n": 1}));
    assert_eq!(done["result"]["job"]["id"], old["id"]);
    assert_eq!(done["result"]["job"]["alias"], "old");
    assert_eq!(done["result"]["job"]["attempt"], 1);
    assert_eq!(done["progress"]["percent"], 50);
    let done = app.wait(new["id"].as_str().unwrap()).await;
    assert_eq!(done["result"], json!({"n": 2}));
    app.stop().await;
}

/// `/docs`: the interactive reference, served from the binary (every asset
/// relative, none from a CDN), reading this server's `/openapi.json`, with
/// the token kept across reloads; no token needed to load it.
#[tokio::test]
async fn the_reference_page_is_served_from_the_binary() {
    let app = spawn_app(Options { token: Some("docs-token-0123456789".into()), ..Options::default() }).await;
    let no_redirects =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let moved = no_redirects.get(format!("{}/docs", app.url)).send().await.unwrap();
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    assert_eq!(moved.headers()["location"], "/docs/");
    let page = reqwest::get(format!("{}/docs/", app.url)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"src="./swagger-ui-bundle.js""#), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"), "{html}");
    let init =
        reqwest::get(format!("{}/docs/swagger-initializer.js", app.url)).await.unwrap().text().await.unwrap();
    for setting in
        [r#""url": "/openapi.json""#, r#""persistAuthorization": true"#, r#""validatorUrl": "none""#]
    {
        assert!(init.contains(setting), "{setting}: {init}");
    }
    let bundle = reqwest::get(format!("{}/docs/swagger-ui-bundle.js", app.url)).await.unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(bundle.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
    // The document it reads names the token scheme its Authorize button sets.
    let doc: Value = reqwest::get(format!("{}/openapi.json", app.url)).await.unwrap().json().await.unwrap();
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}
