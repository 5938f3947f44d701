//! Several `wasmq serve` processes on one PostgreSQL database: what one node
//! commits reaches the others through the database's notices (LISTEN/NOTIFY),
//! not at their next poll or lease renewal. PostgreSQL only: under `CI=true`
//! these fail without it, elsewhere they are skipped, saying so.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{Serve, ServeProcess, postgres_admin_url, postgres_database, register_over_http};

/// Whether PostgreSQL is there to test against (see the module doc).
fn postgres_here() -> bool {
    let admin = postgres_admin_url();
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
    let db = Database::new();
    let mut nodes = Vec::new();
    for role in roles {
        nodes.push(db.node(role).await);
    }
    nodes
}

/// One fresh PostgreSQL database and the callback key its nodes share.
struct Database {
    dir: Arc<tempfile::TempDir>,
    url: String,
}

impl Database {
    fn new() -> Database {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let url = postgres_database(dir.path());
        Database { dir, url }
    }

    /// Starts a node on it with `role`'s extra flags.
    async fn node(&self, role: &[&str]) -> ServeProcess {
        let key = self.dir.path().join("callback-key").display().to_string();
        let args = ["--listen", "127.0.0.1:0", "--database", &self.url, "--callback-key-file", &key];
        Serve::as_operator().args(&args).args(role).start().await
    }
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

#[tokio::test]
async fn two_nodes_racing_one_idempotency_key_make_one_job() {
    if !postgres_here() {
        return;
    }
    let nodes = cluster(2).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    for round in 0..5 {
        let body = json!({"alias": "bench", "payload": {}, "idempotency_key": format!("order-{round}")});
        let sends = (0..50).map(|i| {
            let url = format!("{}/v1/jobs", nodes[i % 2].url);
            client.post(url).json(&body).send()
        });
        let mut created = 0;
        let mut ids = std::collections::HashSet::new();
        for r in futures_util::future::join_all(sends).await {
            let r = r.unwrap();
            match r.status().as_u16() {
                201 => created += 1,
                200 => {}
                other => panic!("answered {other}: {}", r.text().await.unwrap()),
            }
            ids.insert(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
        }
        assert_eq!((created, ids.len()), (1, 1), "round {round}: one job, created once");
    }
}

#[tokio::test]
async fn a_rolling_restart_of_every_node_with_work_in_flight_loses_no_job() {
    if !postgres_here() {
        return;
    }
    let db = Database::new();
    let role: &[&str] = &["--workers", "2", "--lease", "2s"];
    let mut nodes = [db.node(role).await, db.node(role).await];
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    let jobs = vec![json!({"alias": "bench", "payload": {"sleep_ms": 10}}); 600];
    let r = client.post(format!("{}/v1/batches", nodes[0].url)).json(&json!({ "jobs": jobs })).send().await;
    let created: Value = r.unwrap().json().await.unwrap();
    let batch = created["id"].as_str().unwrap().to_string();
    // Each node in turn stops gracefully (SIGTERM) with jobs in flight and
    // comes back, while the other keeps working.
    for i in 0..2 {
        let other = nodes[1 - i].url.clone();
        nodes[i].signal("-TERM");
        let status = nodes[i].exited(Duration::from_secs(30)).await;
        assert!(status.success(), "node {i} stopped with {status}");
        let view: Value =
            client.get(format!("{other}/v1/batches/{batch}")).send().await.unwrap().json().await.unwrap();
        assert!(view["done"] == false, "the restart came too late to test anything: {view}");
        nodes[i] = db.node(role).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let view = loop {
        let view: Value = client
            .get(format!("{}/v1/batches/{batch}", nodes[0].url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if view["done"] == true {
            break view;
        }
        assert!(Instant::now() < deadline, "jobs were lost: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(view["counts"]["succeeded"], 600, "{view}");
}
