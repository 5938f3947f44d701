//! Nothing accepted is lost: across a graceful restart, and across `kill -9`.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use super::{Options, spawn_app};
use crate::support::{Serve, ServeProcess};

#[tokio::test]
async fn queued_jobs_survive_a_restart() {
    // A queue with concurrency 0 holds its jobs, across the restart too
    // (limits are the database's); lifting it then runs them.
    let held = Options { queue_limits: vec![("held", 0)], ..Options::default() };
    let app = spawn_app(held).await;
    app.register("echo", "echo").await;
    let mut ids = Vec::new();
    for i in 0..50 {
        let job = app.dispatch("echo", json!({"i": i}), json!({"queue": "held"})).await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let (_, status) = app.get("/v1/status").await;
    assert_eq!(status["queues"]["held"]["queued"], 50, "{status}");
    let dir = app.stop().await;

    let app = spawn_app(Options { dir: Some(dir), ..Options::default() }).await;
    let (_, status) = app.get("/v1/status").await;
    assert_eq!(status["queues"]["held"]["queued"], 50, "still held: {status}");
    let (status, queue) = app.put("/v1/queues/held/limits", &json!({})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{queue}");
    for (i, id) in ids.iter().enumerate() {
        let job = app.wait(id).await;
        assert_eq!(job["status"], "succeeded");
        assert_eq!(job["result"], json!({"i": i}));
    }
    app.stop().await;
}

/// A `wasmq serve` process with a 1 s lease, on a fresh database or (a
/// restart) on the one `dir` holds.
async fn serve(dir: Option<Arc<tempfile::TempDir>>) -> ServeProcess {
    let serve = Serve::new().args(&["--lease", "1s", "--workers", "2"]);
    match dir {
        Some(dir) => serve.dir(dir).start().await,
        None => serve.start().await,
    }
}

/// Registers `primes` on a process server, dispatches a sieve up to `limit`
/// with unlimited fuel, and returns its id once a worker is running it.
async fn running_primes_job(server: &ServeProcess, limit: u64) -> String {
    let client = reqwest::Client::new();
    crate::support::register_over_http(&client, &server.url, "primes", "primes").await;
    let request = json!({"alias": "primes", "payload": {"limit": limit}, "fuel": 1_000_000_000_000u64, "timeout_ms": 120000});
    let job: serde_json::Value = client
        .post(format!("{}/v1/jobs", server.url))
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    loop {
        let j: serde_json::Value =
            client.get(format!("{}/v1/jobs/{id}", server.url)).send().await.unwrap().json().await.unwrap();
        if j["status"] == "running" {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_job_running_at_kill_9_completes_after_restart() {
    let mut server = serve(None).await;
    // About a second of sieving: long enough to be killed in the middle.
    let id = running_primes_job(&server, 300_000_000).await;
    server.kill(); // SIGKILL

    let server = serve(Some(server.dir.clone())).await;
    let client = reqwest::Client::new();
    let done: serde_json::Value = loop {
        let j: serde_json::Value = client
            .get(format!("{}/v1/jobs/{id}/wait?timeout_ms=60000", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if j["status"] == "succeeded" || j["status"] == "dead" {
            break j;
        }
    };
    drop(server);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["count"], 16_252_325, "{done}");
    assert_eq!(done["attempt"], 2, "the killed attempt counts: {done}");
}

#[tokio::test]
async fn sigterm_lets_the_running_job_finish_before_exit() {
    let mut server = serve(None).await;
    let id = running_primes_job(&server, 100_000_000).await;
    server.signal("-TERM");
    let status = server.exited(Duration::from_secs(300)).await;
    assert!(status.success(), "wasmq serve exited with {status}");

    // The job finished before the process exited: its outcome is stored.
    let store = server.store().await;
    let job = store.job_get(&wasmq::domain::TenantId::default_tenant(), &id).await.unwrap();
    assert_eq!(job.status, wasmq::domain::JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.attempt, 1);
    assert!(job.result.unwrap().contains("5761455"), "pi(10^8) = 5761455");
}
