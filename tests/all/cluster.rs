//! Several `wasmq serve` processes on one PostgreSQL database: what one node
//! commits reaches the others through the database's notices (LISTEN/NOTIFY),
//! not at their next poll or lease renewal. PostgreSQL only: under `CI=true`
//! these fail without it, elsewhere they are skipped, saying so.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{
    Serve, ServeProcess, postgres_admin_url, postgres_database, register_over_http, run_wasmq,
};

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

    /// Starts a `wasmq worker` on it with these extra flags.
    async fn worker(&self, flags: &[&str]) -> ServeProcess {
        let key = self.dir.path().join("callback-key").display().to_string();
        let args = ["--database", &self.url, "--callback-key-file", &key];
        Serve::worker().args(&args).args(flags).start().await
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

/// Sends `body(round)` 50 times at once, alternating between two nodes, 5
/// rounds over: each round makes one job, created once, answered to all.
async fn race_through_two_nodes(body: impl Fn(usize) -> Value) {
    let nodes = cluster(2).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    for round in 0..5 {
        let body = body(round);
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
async fn two_nodes_racing_one_idempotency_key_make_one_job() {
    if !postgres_here() {
        return;
    }
    race_through_two_nodes(
        |round| json!({"alias": "bench", "payload": {}, "idempotency_key": format!("order-{round}")}),
    )
    .await;
}

/// Unique by alias and payload: the job stays scheduled while the others
/// arrive, so every one of them matches it.
#[tokio::test]
async fn fifty_unique_dispatches_through_two_nodes_make_one_job() {
    if !postgres_here() {
        return;
    }
    race_through_two_nodes(|round| {
        json!({"alias": "bench", "payload": {"round": round}, "delay_ms": 60_000,
               "unique": {"by": ["alias", "payload"]}})
    })
    .await;
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

async fn nodes_listed(client: &reqwest::Client, via: &ServeProcess) -> Vec<Value> {
    let r = client.get(format!("{}/v1/nodes", via.url)).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let list: Value = r.json().await.unwrap();
    assert_eq!((list["heartbeat_ms"].as_u64(), list["lost_after_ms"].as_u64()), (Some(2_000), Some(7_000)));
    list["nodes"].as_array().unwrap().clone()
}

/// Polls `GET /v1/nodes` until the node `pid` has `status`.
async fn until_node(client: &reqwest::Client, via: &ServeProcess, pid: u32, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = nodes_listed(client, via).await;
        if let Some(node) = nodes.iter().find(|n| n["pid"] == pid && n["status"] == status) {
            return node.clone();
        }
        assert!(Instant::now() < deadline, "node {pid} never {status}: {nodes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_worker_node_runs_only_its_queues_and_every_node_is_listed() {
    if !postgres_here() {
        return;
    }
    let db = Database::new();
    let api = db.node(&["--no-workers"]).await;
    let mut gpu = db.worker(&["--queues", "gpu", "--workers", "2"]).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &api.url, "bench", "bench-job").await;
    let send = |queue: &'static str| {
        let r = client.post(format!("{}/v1/jobs", api.url));
        r.json(&json!({"alias": "bench", "payload": {}, "queue": queue})).send()
    };
    let plain: Value = send("default").await.unwrap().json().await.unwrap();
    let on_gpu: Value = send("gpu").await.unwrap().json().await.unwrap();
    until_status(&client, &api, on_gpu["id"].as_str().unwrap(), "succeeded").await;
    // The worker woke for both and claimed only its own queue's job.
    let plain_id = plain["id"].as_str().unwrap();
    assert_eq!(job(&client, &api, plain_id).await["status"], "queued");

    let nodes = nodes_listed(&client, &api).await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let by_role =
        |role: &str| nodes.iter().find(|n| n["role"] == role).unwrap_or_else(|| panic!("{nodes:?}"));
    let (a, w) = (by_role("api"), by_role("worker"));
    assert_eq!((&a["status"], &a["slots"], &a["addr"]), (&json!("up"), &json!(0), &json!(api.addr())));
    assert!(a.get("queues").is_none(), "an API node lists no queues: {a}");
    assert_eq!((&w["status"], &w["slots"], &w["queues"]), (&json!("up"), &json!(2), &json!(["gpu"])));
    assert!(w.get("addr").is_none(), "a worker has no API: {w}");
    assert_eq!(w["version"], env!("CARGO_PKG_VERSION"));
    assert!(!w["host"].as_str().unwrap().is_empty() && w["id"].as_str().unwrap().starts_with("node-"));

    // A node for every queue runs the job the worker left.
    let mut all = db.node(&["--workers", "1"]).await;
    until_status(&client, &api, plain_id, "succeeded").await;

    // Killed, the worker is listed as lost once it missed three beats; a
    // node stopped cleanly is listed as stopped at once.
    let worker_pid = w["pid"].as_u64().unwrap() as u32;
    gpu.kill();
    let lost = until_node(&client, &api, worker_pid, "lost").await;
    assert!(lost["heartbeat_age_ms"].as_i64().unwrap() > 7_000, "{lost}");
    let all_pid = nodes_listed(&client, &api).await.iter().find(|n| n["role"] == "server").unwrap()["pid"]
        .as_u64()
        .unwrap() as u32;
    all.signal("-TERM");
    assert!(all.exited(Duration::from_secs(30)).await.success());
    let stopped = until_node(&client, &api, all_pid, "stopped").await;
    assert!(stopped["stopped_at"].is_string(), "{stopped}");

    // `wasmq nodes` shows the same (the default tenant's admin: no tokens here).
    let out = run_wasmq(&["nodes".into(), "--server".into(), api.url.clone()], &[], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("ID") && text.lines().count() == 4, "{text}");
    for line in [("worker", "lost"), ("server", "stopped"), ("api", "up")] {
        assert!(text.lines().any(|l| l.contains(line.0) && l.contains(line.1)), "{line:?} in\n{text}");
    }
}

#[tokio::test]
async fn a_worker_refuses_sqlite_and_the_api_only_role() {
    let sqlite = Serve::worker().args(&["--database", "sqlite://w.db"]).exit().await;
    let err = String::from_utf8_lossy(&sqlite.stderr);
    assert!(!sqlite.status.success() && err.contains("postgres://"), "{err}");
    let api =
        Serve::worker().args(&["--database", "postgres://u@127.0.0.1:1/x", "--no-workers"]).exit().await;
    let err = String::from_utf8_lossy(&api.stderr);
    assert!(!api.status.success() && err.contains("--no-workers"), "{err}");
}

#[tokio::test]
async fn a_queue_limit_holds_across_nodes() {
    if !postgres_here() {
        return;
    }
    let role: &[&str] = &["--workers", "3"];
    let nodes = nodes(&[role, role]).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    queue_call(&client, &nodes[1], "gpu/limits", Some(json!({"concurrency": 1}))).await;
    let mut gpu = Vec::new();
    let mut other = Vec::new();
    for k in 0..8 {
        let node = &nodes[k % 2];
        for (queue, ids) in [("gpu", &mut gpu), ("default", &mut other)] {
            let body = json!({"alias": "bench", "payload": {"sleep_ms": 100}, "queue": queue});
            let r = client.post(format!("{}/v1/jobs", node.url)).json(&body).send().await.unwrap();
            let made: Value = r.json().await.unwrap();
            ids.push(made["id"].as_str().unwrap().to_string());
        }
    }
    let mut runs = Vec::new();
    for id in &gpu {
        let done = until_status(&client, &nodes[0], id, "succeeded").await;
        runs.push((
            done["started_at"].as_str().unwrap().to_string(),
            done["finished_at"].as_str().unwrap().to_string(),
        ));
    }
    for id in &other {
        until_status(&client, &nodes[1], id, "succeeded").await;
    }
    // One gpu job at a time across both nodes: each starts once the one
    // before it has finished (RFC 3339 in ms, UTC: they sort as text).
    runs.sort();
    for pair in runs.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two gpu jobs ran at once: {pair:?}");
    }
}

/// `PUT` (with a body) or `POST` `/v1/queues/{path}` through `node`: the
/// queue's view.
async fn queue_call(client: &reqwest::Client, node: &ServeProcess, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}/v1/queues/{path}", node.url);
    let r = match body {
        Some(b) => client.put(url).json(&b),
        None => client.post(url),
    };
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Jobs dispatched through one node into a queue paused through the other
/// stay queued on every node; resumed through the second, they all run, and
/// the queue lists them by status meanwhile.
#[tokio::test]
async fn a_paused_queue_starts_nothing_on_any_node_until_resumed() {
    if !postgres_here() {
        return;
    }
    let role: &[&str] = &["--workers", "2"];
    let nodes = nodes(&[role, role]).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    let paused = queue_call(&client, &nodes[0], "mail/pause", None).await;
    assert_eq!(paused["paused"], true);
    let mut ids = Vec::new();
    for k in 0..6 {
        let body = json!({"alias": "bench", "payload": {}, "queue": "mail"});
        let r = client.post(format!("{}/v1/jobs", nodes[k % 2].url)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    let free = dispatch(&client, &nodes[1], json!({})).await;
    until_status(&client, &nodes[0], &free, "succeeded").await;
    // Well past a claim cycle on both nodes (a second's poll, and the wake
    // of every dispatch).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for id in &ids {
        assert_eq!(job(&client, &nodes[0], id).await["status"], "queued", "{id} started while paused");
    }
    let listed: Value =
        client.get(format!("{}/v1/queues", nodes[1].url)).send().await.unwrap().json().await.unwrap();
    let mail = listed["queues"].as_array().unwrap().iter().find(|q| q["name"] == "mail").cloned().unwrap();
    assert_eq!(
        (mail["paused"].clone(), mail["depth"]["queued"].clone()),
        (json!(true), json!(6)),
        "{listed}"
    );
    let started = Instant::now();
    queue_call(&client, &nodes[1], "mail/resume", None).await;
    for id in &ids {
        until_status(&client, &nodes[0], id, "succeeded").await;
    }
    eprintln!("6 jobs of a resumed queue done {:?} after the resume", started.elapsed());
}

/// A rate of 100 jobs/s on one queue, spent by two worker nodes from one
/// bucket: over ten seconds after the first (the bucket's first burst), the
/// starts stay within 5% of 1,000. Each job takes 20 ms and each node runs
/// 8 at once, so either node alone could start well over 100/s (a bucket per
/// node would let through twice the rate), and a node slowed by a loaded
/// machine still leaves the rate, not the workers, as the bound.
#[tokio::test]
async fn a_queue_rate_holds_across_two_nodes() {
    if !postgres_here() {
        return;
    }
    let role: &[&str] = &["--workers", "8"];
    let db = Database::new();
    let nodes = [db.node(role).await, db.node(role).await];
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    let limits = json!({"rate": {"max": 100, "per_ms": 1000}});
    let set = queue_call(&client, &nodes[0], "rated/limits", Some(limits.clone())).await;
    assert_eq!(set["limits"], limits);
    let jobs: Vec<Value> = (0..1_500)
        .map(|_| json!({"alias": "bench", "payload": {"sleep_ms": 20}, "queue": "rated"}))
        .collect();
    for chunk in jobs.chunks(500) {
        let r =
            client.post(format!("{}/v1/batches", nodes[1].url)).json(&json!({"jobs": chunk})).send().await;
        assert_eq!(r.unwrap().status(), 201);
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The nodes running its jobs, seen while they run (a finished job keeps
    // no owner).
    let mut owners = std::collections::HashSet::new();
    let starts: Vec<i64> = loop {
        let running: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT lease_owner FROM jobs WHERE queue = 'rated' AND status = 'running'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        owners.extend(running.into_iter().map(|r| r.0));
        let starts: Vec<(i64,)> =
            sqlx::query_as("SELECT started_at FROM jobs WHERE queue = 'rated' AND started_at IS NOT NULL")
                .fetch_all(&pool)
                .await
                .unwrap();
        let first = starts.iter().map(|s| s.0).min();
        let last = starts.iter().map(|s| s.0).max();
        if let (Some(first), Some(last)) = (first, last)
            && last >= first + 11_000
        {
            break starts.into_iter().map(|s| s.0).collect();
        }
        assert!(Instant::now() < deadline, "the rated queue stalled: {} started", starts.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let first = starts.iter().min().unwrap();
    let window = starts.iter().filter(|at| **at >= first + 1_000 && **at < first + 11_000).count();
    eprintln!("{window} starts in the 10 s window, by {} nodes", owners.len());
    assert!((950..=1_050).contains(&window), "{window} starts in 10 s at 100/s");
    assert_eq!(owners.len(), 2, "both nodes spent the bucket: {owners:?}");
}

#[tokio::test]
async fn a_signed_request_replayed_to_another_node_is_refused() {
    if !postgres_here() {
        return;
    }
    let secret = "0123456789abcdef0123456789abcdef-cluster";
    let db = Database::new();
    let key = db.dir.path().join("callback-key").display().to_string();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let args = ["--listen", "127.0.0.1:0", "--database", &db.url, "--callback-key-file", &key];
        nodes.push(Serve::as_operator().args(&args).env("WASMQ_SECRET", secret).start().await);
    }
    let client = reqwest::Client::new();
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let signature = wasmq::api::auth::signed::sign(secret.as_bytes(), t, "GET", "/v1/status", b"");
    let send = |node: &ServeProcess| {
        client
            .get(format!("{}/v1/status", node.url))
            .header("x-wasmq-key", "default")
            .header("x-wasmq-signature", signature.clone())
            .send()
    };
    assert_eq!(send(&nodes[0]).await.unwrap().status(), reqwest::StatusCode::OK);
    let replay = send(&nodes[1]).await.unwrap();
    assert_eq!(replay.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: Value = replay.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("already"), "{body}");
    assert_eq!(
        send(&nodes[0]).await.unwrap().status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "and on the first"
    );
}

async fn compiles_started(client: &reqwest::Client, node: &ServeProcess) -> u64 {
    let status: Value =
        client.get(format!("{}/v1/status", node.url)).send().await.unwrap().json().await.unwrap();
    status["compiler"]["started"].as_u64().unwrap_or_else(|| panic!("{status}"))
}

#[tokio::test]
async fn each_node_compiles_a_module_once_and_keeps_it_in_its_own_cache() {
    if !postgres_here() {
        return;
    }
    let db = Database::new();
    let caches: Vec<String> =
        (0..2).map(|i| db.dir.path().join(format!("cache-{i}")).display().to_string()).collect();
    let uploader = db.node(&["--workers", "1", "--cache-dir", &caches[0]]).await;
    let runner_flags = ["--workers", "2", "--cache-dir", &caches[1]];
    let mut runner = db.node(&runner_flags).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &uploader.url, "bench", "bench-job").await;
    assert_eq!(compiles_started(&client, &uploader).await, 1, "the upload compiled it");
    // Dispatched through the other node, which takes them in its inserts:
    // it compiles the module on its first job only.
    let ids: Vec<String> =
        futures_util::future::join_all((0..20).map(|_| dispatch(&client, &runner, json!({})))).await;
    for id in &ids {
        until_status(&client, &runner, id, "succeeded").await;
    }
    assert_eq!(compiles_started(&client, &runner).await, 1, "one compile for 20 jobs");
    // Restarted, it loads the artifact from its disk cache: no compile.
    runner.signal("-TERM");
    assert!(runner.exited(Duration::from_secs(30)).await.success());
    let runner = db.node(&runner_flags).await;
    let id = dispatch(&client, &runner, json!({})).await;
    until_status(&client, &runner, &id, "succeeded").await;
    assert_eq!(compiles_started(&client, &runner).await, 0, "the artifact came from its own cache");
    assert!(std::fs::read_dir(&caches[1]).unwrap().next().is_some(), "its cache holds the artifact");
}

/// A one-second schedule on 3 nodes for 30 s, one node killed (SIGKILL) and
/// started again halfway: every due time from the first to the last has
/// exactly one job (the due time is its `run_at`), none twice, none missing.
#[tokio::test]
async fn a_one_second_schedule_on_three_nodes_fires_each_due_time_once() {
    if !postgres_here() {
        return;
    }
    let db = Database::new();
    let role: &[&str] = &["--workers", "2"];
    let mut nodes = [db.node(role).await, db.node(role).await, db.node(role).await];
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    let body = json!({"alias": "bench", "payload": {}, "every_ms": 1000, "catch_up": "all"});
    let r = client.put(format!("{}/v1/schedules/tick", nodes[1].url)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    tokio::time::sleep(Duration::from_secs(15)).await;
    nodes[2].signal("-KILL");
    nodes[2].exited(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes[2] = db.node(role).await;
    tokio::time::sleep(Duration::from_secs(13)).await;
    let r = client.post(format!("{}/v1/schedules/tick/pause", nodes[0].url)).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT idempotency_key, run_at FROM jobs WHERE idempotency_key LIKE 'schedule:tick:%' ORDER BY run_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let dues: Vec<i64> = rows.iter().map(|r| r.1).collect();
    assert!(dues.len() >= 25, "30 s of a one-second schedule: {} jobs", dues.len());
    for (key, run_at) in &rows {
        assert_eq!(key, &format!("schedule:tick:{run_at}"), "the key names the due time");
    }
    assert!(
        dues.windows(2).all(|w| w[1] - w[0] == 1000),
        "one job per due time, none twice or missing: {dues:?}"
    );
}

/// An alias limited to 2 running at once, its 40 jobs dispatched to 2 nodes
/// with 4 workers each, both claiming: never more than 2 run anywhere
/// (sampled from the database), and all finish. (Which node runs them is
/// the claims' race: the node that frees a slot claims again at once.)
#[tokio::test]
async fn an_alias_limit_holds_across_two_nodes() {
    if !postgres_here() {
        return;
    }
    let db = Database::new();
    let role: &[&str] = &["--workers", "4"];
    let nodes = [db.node(role).await, db.node(role).await];
    let client = reqwest::Client::new();
    register_over_http(&client, &nodes[0].url, "bench", "bench-job").await;
    let r = client
        .put(format!("{}/v1/aliases/bench/limits", nodes[0].url))
        .json(&json!({"concurrency": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let jobs: Vec<Value> = (0..40).map(|_| json!({"alias": "bench", "payload": {"sleep_ms": 30}})).collect();
    for (i, chunk) in jobs.chunks(20).enumerate() {
        let url = format!("{}/v1/batches", nodes[i % 2].url);
        let r = client.post(url).json(&json!({"jobs": chunk})).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut most, mut owners) = (0, std::collections::HashSet::new());
    loop {
        let running: Vec<(String,)> = sqlx::query_as("SELECT lease_owner FROM jobs WHERE status = 'running'")
            .fetch_all(&pool)
            .await
            .unwrap();
        most = most.max(running.len());
        owners.extend(running.into_iter().map(|r| r.0));
        let (done,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if done == 40 {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of 40 done");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!((1..=2).contains(&most), "at most 2 running anywhere, saw {most}");
}

/// Events of `stream` until one satisfies `done` (which it returns), within a minute.
async fn event_where(
    stream: &mut crate::server::sse::Events,
    done: impl Fn(&crate::server::sse::Frame) -> bool,
) -> crate::server::sse::Frame {
    loop {
        let frame = stream.frame().await.expect("the stream stays open");
        if done(&frame) {
            return frame;
        }
    }
}

#[tokio::test]
async fn an_api_nodes_event_stream_shows_the_jobs_its_workers_run_and_the_nodes_coming_and_going() {
    if !postgres_here() {
        return;
    }
    let db = Database::new();
    let api = db.node(&["--no-workers"]).await;
    let client = reqwest::Client::new();
    register_over_http(&client, &api.url, "bench", "bench-job").await;
    let mut events = crate::server::sse::Events::request(client.get(format!("{}/v1/events", api.url))).await;
    let mut worker = db.worker(&["--workers", "2"]).await;
    let joined = event_where(&mut events, |f| f.event == "node.joined" && f.data["role"] == "worker").await;
    let worker_id = joined.data["node"].as_str().unwrap().to_string();
    let started = event_where(&mut events, |f| f.event == "worker.started").await;
    assert_eq!(
        (started.data["node"].as_str(), &started.data["slots"]),
        (Some(worker_id.as_str()), &json!(2))
    );
    // Jobs dispatched through the API node run on the worker: their starts
    // and ends reach this stream through the relay.
    for _ in 0..5 {
        let id = dispatch(&client, &api, json!({})).await;
        let start =
            event_where(&mut events, |f| f.event == "job.started" && f.data["job"] == id.as_str()).await;
        assert_eq!(start.data["node"], worker_id.as_str(), "{}", start.data);
        let ends = ["job.succeeded", "job.dead", "job.cancelled"];
        let end =
            event_where(&mut events, |f| f.data["job"] == id.as_str() && ends.contains(&f.event.as_str()))
                .await;
        assert_eq!(end.event, "job.succeeded", "{}", end.data);
    }
    // A worker stopping cleanly, and one killed.
    worker.signal("-TERM");
    worker.exited(Duration::from_secs(30)).await;
    let stopped = event_where(&mut events, |f| f.event == "worker.stopped").await;
    assert_eq!(stopped.data["node"], worker_id.as_str());
    let mut doomed = db.worker(&["--workers", "1"]).await;
    let joined = event_where(&mut events, |f| f.event == "node.joined" && f.data["role"] == "worker").await;
    doomed.kill();
    let lost = event_where(&mut events, |f| f.event == "node.lost").await;
    assert_eq!(lost.data["node"], joined.data["node"], "{}", lost.data);
}
