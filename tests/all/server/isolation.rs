//! Tenant isolation and scopes, proven on every operation of the server's own
//! OpenAPI document rather than a hand-kept list of routes: a route added later
//! is called here too, and one this file cannot populate (a new path
//! parameter, a required query parameter or body field, a content type, an
//! operation whose scope is not in [`need`]) fails the test with a message
//! saying what to teach it, never skipped.
//!
//! Tenant A makes one of each record; tenant B's admin token calls every
//! operation on A's records and gets exactly the 404 of a record that does not
//! exist (a fixed missing id and a random one give the same body), the
//! operator's routes answer 403, and the rest show B nothing of A's.

mod doc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Options, Receiver, TestApp, spawn_app};
use doc::{Need, Records, need, operations};

const OPERATOR: &str = "operator-secret";
/// Strings only tenant A's records hold.
const A_PAYLOAD: &str = "a-private-payload";
const A_CONTEXT: &str = "a-private-context";
const A_QUEUE: &str = "a-private-queue";

fn options() -> Options {
    Options {
        operator_token: Some(OPERATOR.into()),
        tweak: |s| {
            let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
            s.secrets_key = Some(wasmq::config::Secret::new(key));
        },
        ..Options::default()
    }
}

/// Creates `tenant` and returns a token of each scope asked for, with its id.
async fn tenant(app: &TestApp, tenant: &str, scopes: &[&str]) -> Vec<(String, String)> {
    let (status, body) =
        app.call(OPERATOR, Method::POST, "/v1/tenants", Some(&json!({ "id": tenant }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut tokens = Vec::new();
    for scope in scopes {
        let path = format!("/v1/tenants/{tenant}/tokens");
        let (status, made) = app.call(OPERATOR, Method::POST, &path, Some(&json!({ "scope": scope }))).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        tokens.push((made["token"].as_str().unwrap().to_string(), made["id"].as_str().unwrap().to_string()));
    }
    tokens
}

/// Tenant A's records: a module, an alias on it, a finished job with a
/// context and a queue of its own, a batch, a schedule, and a token.
async fn a_records(app: &TestApp, admin: &str, token_id: String) -> Records {
    let upload = app
        .client
        .post(format!("{}/v1/modules", app.url))
        .bearer_auth(admin)
        .header("content-type", "application/wasm")
        .body(crate::support::plugin_bytes("echo"));
    let (status, module) = app.send(upload).await;
    assert_eq!(status, StatusCode::CREATED, "{module}");
    let digest = module["digest"].as_str().unwrap().to_string();
    let alias = "a-private-alias".to_string();
    let (status, body) = app
        .call(admin, Method::PUT, &format!("/v1/aliases/{alias}"), Some(&json!({ "module": digest })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job =
        json!({ "alias": alias, "payload": { "secret": A_PAYLOAD }, "context": A_CONTEXT, "queue": A_QUEUE });
    let (status, job) = app.call(admin, Method::POST, "/v1/jobs", Some(&job)).await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    let job = job["id"].as_str().unwrap().to_string();
    let (_, done) =
        app.call(admin, Method::GET, &format!("/v1/jobs/{job}/wait?timeout_ms=30000"), None).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let batch =
        json!({ "jobs": [{ "alias": alias, "payload": { "secret": A_PAYLOAD }, "context": A_CONTEXT }] });
    let (status, batch) = app.call(admin, Method::POST, "/v1/batches", Some(&batch)).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let batch = batch["id"].as_str().unwrap().to_string();
    let path = format!("/v1/aliases/{alias}/secrets/api_key");
    let (status, body) = app.call(admin, Method::PUT, &path, Some(&json!({ "value": A_PAYLOAD }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kv = json!({ "value": A_PAYLOAD });
    let (status, body) =
        app.call(admin, Method::PUT, "/v1/kv/a-private-store/a-private-key", Some(&kv)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Due once a year: its view stays the same while the test runs.
    let schedule = json!({ "alias": alias, "payload": { "secret": A_PAYLOAD }, "cron": "0 0 1 1 *" });
    let (status, body) =
        app.call(admin, Method::PUT, "/v1/schedules/a-private-schedule", Some(&schedule)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Records { tenant: "tenant-a".into(), digest, alias, job, batch, token: token_id }
}

/// What A's records look like to A, to show B's calls changed nothing.
async fn snapshot(app: &TestApp, admin: &str, a: &Records) -> Vec<(StatusCode, Value)> {
    let mut seen = Vec::new();
    for path in [
        format!("/v1/modules/{}", a.digest),
        format!("/v1/aliases/{}", a.alias),
        format!("/v1/jobs/{}", a.job),
        format!("/v1/aliases/{}/secrets", a.alias),
        "/v1/kv/a-private-store/a-private-key".to_string(),
        "/v1/schedules/a-private-schedule".to_string(),
        "/v1/schedules".to_string(),
    ] {
        seen.push(app.call(admin, Method::GET, &path, None).await);
    }
    let (_, tokens) =
        app.call(OPERATOR, Method::GET, &format!("/v1/tenants/{}/tokens", a.tenant), None).await;
    seen.push((
        StatusCode::OK,
        json!(tokens.as_array().unwrap().iter().map(|t| &t["id"]).collect::<Vec<_>>()),
    ));
    seen
}

/// Every string of A's that B must never see.
fn a_markers(a: &Records) -> Vec<String> {
    let hex = a.digest.trim_start_matches("blake3:").to_string();
    [hex, a.alias.clone(), a.job.clone(), a.batch.clone(), a.token.clone(), a.tenant.clone()]
        .into_iter()
        .chain([A_PAYLOAD, A_CONTEXT, A_QUEUE].map(String::from))
        .collect()
}

#[tokio::test]
async fn every_operation_in_the_document_keeps_tenants_apart() {
    let app = spawn_app(options()).await;
    let a_tokens = tenant(&app, "tenant-a", &["admin", "read", "dispatch", "read"]).await;
    let b_tokens = tenant(&app, "tenant-b", &["admin"]).await;
    let (a_admin, b_admin) = (&a_tokens[0].0, &b_tokens[0].0);
    let a = a_records(&app, a_admin, a_tokens[3].1.clone()).await;
    let (missing, random) = (Records::missing(), Records::random());
    let before = snapshot(&app, a_admin, &a).await;
    let (status, document) = app.send(app.client.get(format!("{}/openapi.json", app.url))).await;
    assert_eq!(status, StatusCode::OK);
    let ops = operations(&document);
    assert!(ops.len() >= 30, "the document lists every route: {}", ops.len());

    let markers = a_markers(&a);
    let mut shown_to_a = 0;
    for op in &ops {
        let theirs = op.call(&app, b_admin, &a).await;
        let label = format!("{} {} ({}) by tenant B", op.method, op.path, op.id);
        if need(&op.id) == Need::Operator {
            assert_eq!(theirs.0, StatusCode::FORBIDDEN, "{label}: {}", theirs.1);
            assert_eq!(
                theirs.1,
                format!("{{\"error\":{{\"code\":\"forbidden\",\"message\":\"operator token required\"}}}}")
            );
        }
        if op.refers_to_records() {
            // Exactly what a record that does not exist answers.
            // A store's name is the caller's own namespace: B's write lands
            // in B's store (the snapshot shows A's untouched); any other
            // operation on A's names answers 404.
            if need(&op.id) != Need::Operator && op.id != "setKv" {
                assert_eq!(theirs.0, StatusCode::NOT_FOUND, "{label} on A's records: {}", theirs.1);
            }
            for other in [&missing, &random] {
                let (status, body) = op.call(&app, b_admin, other).await;
                assert_eq!(
                    (theirs.0, a.normalize(&theirs.1)),
                    (status, other.normalize(&body)),
                    "{label}: A's records answer differently from missing ones"
                );
            }
        } else {
            // Lists, status, uploads: nothing of A's, though A sees its own there.
            for m in &markers {
                assert!(!theirs.1.contains(m.as_str()), "{label} shows A's {m:?}: {}", theirs.1);
            }
            if op.method == Method::GET {
                let (_, own) = op.call(&app, a_admin, &a).await;
                shown_to_a += usize::from(markers.iter().any(|m| own.contains(m.as_str())));
            }
        }
    }
    assert!(
        shown_to_a >= 4,
        "A's lists and status show A's records ({shown_to_a}), so the checks above bite"
    );
    assert_eq!(snapshot(&app, a_admin, &a).await, before, "B's calls changed nothing of A's");

    // Scopes, from the same document: a read and a dispatch token of A's get
    // 403 exactly where their scope is short, naming the scope needed.
    for op in &ops {
        let needed = need(&op.id);
        for (scope, token) in [(Need::Read, &a_tokens[1].0), (Need::Dispatch, &a_tokens[2].0)] {
            let (status, body) = op.call(&app, token, &a).await;
            let label = format!("{} {} ({}) with a {scope:?} token", op.method, op.path, op.id);
            if needed == Need::Operator {
                assert_eq!(status, StatusCode::FORBIDDEN, "{label}: {body}");
                assert!(body.contains("operator token required"), "{label}: {body}");
            } else if needed > scope {
                assert_eq!(status, StatusCode::FORBIDDEN, "{label}: {body}");
                let named = format!(
                    "needs a token with scope `{}`; this token has `{}`",
                    needed.name(),
                    scope.name()
                );
                assert!(body.contains(&named), "{label}: {body}");
            } else {
                assert!(
                    !matches!(status, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED)
                        && !status.is_server_error(),
                    "{label}: {status} {body}"
                );
            }
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn events_waits_and_callbacks_carry_only_the_tenants_own_data() {
    let app = spawn_app(options()).await;
    let a = tenant(&app, "tenant-a", &["admin"]).await.remove(0).0;
    let b = tenant(&app, "tenant-b", &["admin"]).await.remove(0).0;
    let (ra, rb) = (Receiver::start(0).await, Receiver::start(0).await);
    // Both name an alias `shared` and send callbacks; A also a batch.
    let mut jobs = Vec::new();
    for (token, receiver, secret) in [(&a, &ra, A_PAYLOAD), (&b, &rb, "b-private-payload")] {
        let upload = app
            .client
            .post(format!("{}/v1/modules", app.url))
            .bearer_auth(token)
            .header("content-type", "application/wasm")
            .body(crate::support::plugin_bytes("echo"));
        let (_, module) = app.send(upload).await;
        let (status, _) = app
            .call(token, Method::PUT, "/v1/aliases/shared", Some(&json!({ "module": module["digest"] })))
            .await;
        assert_eq!(status, StatusCode::OK);
        let job = json!({ "alias": "shared", "payload": { "secret": secret }, "callback": { "url": receiver.url } });
        let (status, job) = app.call(token, Method::POST, "/v1/jobs", Some(&job)).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        jobs.push(job["id"].as_str().unwrap().to_string());
    }
    let batch = json!({ "jobs": [{ "alias": "shared", "payload": { "secret": A_PAYLOAD } }], "callback": { "url": ra.url } });
    let (status, batch) = app.call(&a, Method::POST, "/v1/batches", Some(&batch)).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let a_batch = batch["id"].as_str().unwrap().to_string();
    let (a_job, b_job) = (&jobs[0], &jobs[1]);

    // B's wait and event stream on A's job: the 404 of a job that does not exist.
    let missing = Records::missing().job;
    for path in ["/v1/jobs/{}/events", "/v1/jobs/{}/wait?timeout_ms=1000"] {
        let (status, theirs) = app.call(&b, Method::GET, &path.replace("{}", a_job), None).await;
        let (_, none) = app.call(&b, Method::GET, &path.replace("{}", &missing), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {theirs}");
        assert_eq!(
            theirs.to_string().replace(a_job, "ID"),
            none.to_string().replace(&missing, "ID"),
            "{path}"
        );
    }
    // A's own stream ends with A's job, and nothing of B's.
    let stream = app.client.get(format!("{}/v1/jobs/{a_job}/events", app.url)).bearer_auth(&a).send();
    let text = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        stream.await.unwrap().text().await.unwrap()
    })
    .await
    .expect("the stream of a finished job ends");
    assert!(text.contains("event: end") && text.contains(a_job.as_str()), "{text}");
    for theirs in [b_job.as_str(), "b-private-payload", "tenant-b"] {
        assert!(!text.contains(theirs), "A's stream shows B's {theirs}: {text}");
    }

    // Each receiver gets its tenant's callbacks, and nothing of the other's.
    let mut bodies = vec![ra.next().await.1, ra.next().await.1];
    bodies.sort_by_key(|b| b["job_id"].is_null());
    assert_eq!(
        (bodies[0]["job_id"].as_str(), bodies[0]["result"]["secret"].as_str()),
        (Some(a_job.as_str()), Some(A_PAYLOAD))
    );
    assert_eq!(bodies[1]["batch_id"].as_str(), Some(a_batch.as_str()), "{}", bodies[1]);
    for body in &bodies {
        for theirs in [b_job.as_str(), "b-private-payload", "tenant-b"] {
            assert!(!body.to_string().contains(theirs), "A's callback shows B's {theirs}: {body}");
        }
    }
    let (_, theirs) = rb.next().await;
    assert_eq!(theirs["job_id"].as_str(), Some(b_job.as_str()), "{theirs}");
    for ours in [a_job.as_str(), a_batch.as_str(), A_PAYLOAD, "tenant-a"] {
        assert!(!theirs.to_string().contains(ours), "B's callback shows A's {ours}: {theirs}");
    }
    app.stop().await;
}
