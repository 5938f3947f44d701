//! Nothing accepted is lost: across a graceful restart, and across `kill -9`.

use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Options, spawn_app};

#[tokio::test]
async fn queued_jobs_survive_a_restart() {
    // A queue with concurrency 0 holds its jobs; the restart lifts the limit.
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
    for (i, id) in ids.iter().enumerate() {
        let job = app.wait(id).await;
        assert_eq!(job["status"], "succeeded");
        assert_eq!(job["result"], json!({"i": i}));
    }
    app.stop().await;
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(db: &std::path::Path, port: u16) -> Server {
        let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-artifacts");
        let child = Command::new(env!("CARGO_BIN_EXE_wasmq"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--lease", "1s", "--workers", "2"])
            .arg("--database")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--cache-dir")
            .arg(cache)
            .env_remove("WASMQ_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Server { child, url: format!("http://127.0.0.1:{port}") }
    }

    async fn ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..500 {
            if client.get(format!("{}/healthz", self.url)).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server did not come up");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Registers `primes` on a process server, dispatches a sieve up to `limit`
/// with unlimited fuel, and returns its id once a worker is running it.
async fn running_primes_job(server: &Server, limit: u64) -> String {
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
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wasmq.db");
    let port = free_port();
    let mut server = Server::start(&db, port);
    server.ready().await;
    // About a second of sieving: long enough to be killed in the middle.
    let id = running_primes_job(&server, 300_000_000).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    let mut server = Server::start(&db, port);
    server.ready().await;
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
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["count"], 16_252_325, "{done}");
    assert_eq!(done["attempt"], 2, "the killed attempt counts: {done}");
}

#[tokio::test]
async fn sigterm_lets_the_running_job_finish_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wasmq.db");
    let port = free_port();
    let mut server = Server::start(&db, port);
    server.ready().await;
    let id = running_primes_job(&server, 100_000_000).await;
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "wasmq serve exited with {status}");

    // The job finished before the process exited: its outcome is stored.
    let store = wasmq::store::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let job = store.job_get(&wasmq::domain::TenantId::default_tenant(), &id).await.unwrap();
    assert_eq!(job.status, wasmq::domain::JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.attempt, 1);
    assert!(job.result.unwrap().contains("5761455"), "pi(10^8) = 5761455");
}
