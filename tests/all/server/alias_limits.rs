//! An alias's limits over HTTP: set with `PUT /v1/aliases/{name}/limits`,
//! shown on the alias (not among the queues), holding its jobs to one at a
//! time while another alias's run beside them, and gone with the alias.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Options, spawn_app};

fn ms(v: &Value) -> i64 {
    wasmq::domain::time::parse_rfc3339(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn an_alias_limit_runs_its_jobs_one_at_a_time() {
    let app = spawn_app(Options { workers: 4, ..Options::default() }).await;
    app.register("slow", "bench-job").await;
    app.register("other", "bench-job").await;
    let (status, set) = app.put("/v1/aliases/slow/limits", &json!({"concurrency": 1})).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set, json!({"alias": "slow", "limits": {"concurrency": 1}}));
    let (_, alias) = app.get("/v1/aliases/slow").await;
    assert_eq!(alias["limits"], json!({"concurrency": 1}), "{alias}");
    let (_, queues) = app.get("/v1/queues").await;
    assert!(!queues.to_string().contains("@"), "an alias's limits are not a queue: {queues}");

    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(app.dispatch("slow", json!({"sleep_ms": 150}), json!({})).await);
    }
    let mut other = Vec::new();
    for _ in 0..3 {
        other.push(app.dispatch("other", json!({"sleep_ms": 150}), json!({})).await);
    }
    let mut spans = Vec::new();
    for job in &slow {
        let done = app.wait(job["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        spans.push((ms(&done["started_at"]), ms(&done["finished_at"])));
    }
    spans.sort();
    assert!(spans.windows(2).all(|w| w[1].0 >= w[0].1), "one at a time: {spans:?}");
    let mut others = Vec::new();
    for job in &other {
        let done = app.wait(job["id"].as_str().unwrap()).await;
        others.push(ms(&done["started_at"]));
    }
    assert!(others.iter().any(|s| *s < spans[1].0), "the other alias ran beside: {others:?} {spans:?}");

    for (body, names) in [
        (json!({"concurrency": -1}), "concurrency"),
        (json!({"rate": {"max": 0, "per_ms": 1000}}), "rate.max"),
        (json!({"per": 1}), "per"),
    ] {
        let (status, answer) = app.put("/v1/aliases/slow/limits", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(names), "{answer}");
    }
    let (status, _) = app.put("/v1/aliases/nope/limits", &json!({"concurrency": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Deleted and made again: no limits.
    let (status, _) = app.delete("/v1/aliases/slow").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.register("slow", "bench-job").await;
    let (_, alias) = app.get("/v1/aliases/slow").await;
    assert!(alias.get("limits").is_none(), "{alias}");
}
