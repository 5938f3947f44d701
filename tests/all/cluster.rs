//! Several `wasmq serve` processes on one PostgreSQL database: what one node
//! commits reaches the others through the database's notices (LISTEN/NOTIFY),
//! not at their next poll or lease renewal. PostgreSQL only: under `CI=true`
//! these fail without it, elsewhere they are skipped, saying so.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{Serve, ServeProcess, postgres_database, register_over_http};

/// Whether PostgreSQL is there to test against (see the module doc).
fn postgres_here() -> bool {
    let admin = std::env::var("WASMQ_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let url = url::Url::parse(&admin).expect("WASMQ_TEST_POSTGRES is a URL");
    let addr = format!("{}:{}", url.host_str().unwrap_or("127.0.0.1"), url.port().unwrap_or(5432));
    let reachable = std::net::TcpStream::connect(addr).is_ok();
    if !reachable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL at {admin} is required under CI=true"
        );
        eprintln!("SKIPPED: no PostgreSQL at {admin} (WASMQ_TEST_POSTGRES)");
    }
    reachable
}

/// Nodes on one fresh PostgreSQL database, sharing a callback key, each
/// started with its own extra flags.
async fn nodes(roles: &[&[&str]]) -> Vec<ServeProcess> {
    let shared = Arc::new(tempfile::tempdir().unwrap());
    let url = postgres_database(shared.path());
    let key = shared.path().join("callback-key").display().to_string();
    let mut nodes = Vec::new();
    for role in roles {
        let args = ["--listen", "127.0.0.1:0", "--database", &url, "--callback-key-file", &key];
        nodes.push(Serve::as_operator().args(&args).args(role).start().await);
    }
    nodes
}

/// `n` nodes of one worker each (see `nodes`); the lease is long, so only a
/// notice can be quick.
async fn cluster(n: usize) -> Vec<ServeProcess> {
    nodes(&vec![&["--workers", "1", "--lease", "60s"][..]; n]).await
}

async fn dispatch(client: &reqwest::Client, node: &ServeProcess, payload: Value) -> String {
    let r = client.post(format!("{}/v1/jobs", node.url)).json(&json!({"alias": "bench", "payload": payload}));
    let body: Value = r.send().await.unwrap().json().await.unwrap();
    body["id"].as_str().unwrap_or_else(|| panic!("no job id in {body}")).to_string()
}

async fn job(client: &reqwest::Client, node: &ServeProcess, id: &str) -> Value {
    client.get(format!("{}/v1/jobs/{id}", node.url)).send().await.unwrap().json().await.unwrap()
}

async fn until_status(client: &reqwest::Client, node: &ServeProcess, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = job(client, node, id).await;
        if job["status"] == status {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} never became {status}: {job}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_cancel_through_one_node_stops_the_run_on_another_at_once() {
    if !postgres_here() {
        return;
    }
    let mut nodes = cluster(2).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    // Dispatched through node 0, whose idle worker takes it in its insert.
    let id = dispatch(&client, &nodes[0], json!({"sleep_ms": 120_000})).await;
    until_status(&client, &nodes[0], &id, "running").await;
    let sent = Instant::now();
    let r = client.post(format!("{}/v1/jobs/{id}/cancel", nodes[1].url)).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK, "{}", r.text().await.unwrap());
    // Without the notice node 0 would learn of it at its next lease renewal
    // (every 20 s with this lease), and its worker would stay busy until then.
    let line = nodes[0].line_with("cancelled through another node").await;
    let took = sent.elapsed();
    eprintln!("the cancel reached the running node after {took:?}: {line}");
    assert!(line.contains(&id), "{line}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Its worker is free again: the next job through node 0 runs there.
    let next = dispatch(&client, &nodes[0], json!({})).await;
    until_status(&client, &nodes[0], &next, "succeeded").await;
    assert_eq!(job(&client, &nodes[1], &id).await["status"], "cancelled");
}

#[tokio::test]
async fn a_job_another_node_cannot_take_starts_on_an_idle_node() {
    if !postgres_here() {
        return;
    }
    let nodes = cluster(2).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    // Node 0's only worker is busy for a long while.
    let long = dispatch(&client, &nodes[0], json!({"sleep_ms": 120_000})).await;
    until_status(&client, &nodes[0], &long, "running").await;
    // The next job through node 0 waits in the store, and node 1 runs it.
    let sent = Instant::now();
    let quick = dispatch(&client, &nodes[0], json!({})).await;
    let done = until_status(&client, &nodes[0], &quick, "succeeded").await;
    eprintln!("dispatched through a busy node, finished on the other after {:?}", sent.elapsed());
    assert!(done["result"]["started_unix_us"].as_u64().is_some(), "{done}");
    assert_eq!(job(&client, &nodes[0], &long).await["status"], "running", "the long job still holds node 0");
    let r = client.post(format!("{}/v1/jobs/{long}/cancel", nodes[0].url)).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn an_api_only_node_takes_dispatches_that_a_worker_node_runs() {
    if !postgres_here() {
        return;
    }
    // `--workers 4` too: the role wins over a count.
    let nodes = nodes(&[&["--no-workers", "--workers", "4"], &["--workers", "2"]]).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    let status = client.get(format!("{}/v1/status", nodes[0].url)).send().await.unwrap();
    let status: Value = status.json().await.unwrap();
    assert_eq!(status["workers"]["max"], 0, "{status}");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(dispatch(&client, &nodes[0], json!({})).await);
    }
    // Only the worker node can have run them.
    for id in &ids {
        let job = until_status(&client, &nodes[0], id, "succeeded").await;
        assert_eq!(job["attempt"], 1, "{job}");
    }
}

/// 1 API node and 2 worker nodes; 2,000 jobs; one worker SIGKILLed mid-run.
#[tokio::test]
async fn a_worker_killed_mid_run_loses_no_job_and_its_jobs_run_again_only_after_it_died() {
    if !postgres_here() {
        return;
    }
    // A short lease: the killed node's jobs are rescued within seconds.
    let mut nodes = nodes(&[
        &["--no-workers", "--lease", "2s"],
        &["--workers", "2", "--lease", "2s"],
        &["--workers", "2", "--lease", "2s"],
    ])
    .await;
    let client = reqwest::Client::new();
    let api = &nodes[0].url.clone();
    register_over_http(&client, api, "bench", "bench-job").await;
    let jobs = vec![json!({"alias": "bench", "payload": {"sleep_ms": 5}}); 1000];
    let mut batches = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = client.post(format!("{api}/v1/batches")).json(&json!({ "jobs": jobs })).send().await.unwrap();
        let created: Value = r.json().await.unwrap();
        batches.push(created["id"].as_str().unwrap().to_string());
        ids.extend(created["job_ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_string()));
    }
    assert_eq!(ids.len(), 2000);
    let succeeded = async |client: &reqwest::Client| {
        let mut n = 0;
        for b in &batches {
            let view: Value =
                client.get(format!("{api}/v1/batches/{b}")).send().await.unwrap().json().await.unwrap();
            n += view["counts"]["succeeded"].as_u64().unwrap_or(0);
        }
        n
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while succeeded(&client).await < 400 {
        assert!(Instant::now() < deadline, "the workers never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[1].kill();
    let killed_us =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    while succeeded(&client).await < 2000 {
        assert!(Instant::now() < deadline, "jobs were lost: {} of 2000 succeeded", succeeded(&client).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every job once, correct; those the killed node held ran again, and
    // only after it died (never on two nodes at once).
    let mut again = 0;
    for id in &ids {
        let job = job(&client, &nodes[0], id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let started = job["result"]["started_unix_us"].as_u64().unwrap_or_else(|| panic!("result: {job}"));
        if job["attempt"].as_u64() != Some(1) {
            again += 1;
            assert!(started > killed_us, "a rescued job ran again before its node died: {job}");
        }
    }
    eprintln!("{again} of 2000 jobs held by the killed node ran again on the other");
    assert!(again > 0, "the killed node held no job: the test proved nothing");
}
