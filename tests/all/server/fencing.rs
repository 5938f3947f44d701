//! A job's outcome is written once, by the run that holds its claim. A real
//! `wasmq serve` process with `--lease 2s` is paused (`SIGSTOP`) longer than
//! its lease while it runs a job, then resumed: the paused run lost its claim,
//! so it is stopped and its outcome never lands; the job runs again under a new
//! claim (or ends `dead` on its last attempt), and stays cancellable.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::support::{Serve, ServeProcess};

/// Longer than the 2 s lease, with a margin over the heartbeat period.
const PAUSE: Duration = Duration::from_millis(4_500);
/// Deadline for transitions the test waits on (generous: a loaded machine).
const DEADLINE: Duration = Duration::from_secs(180);

struct Server {
    process: ServeProcess,
    url: String,
    client: reqwest::Client,
}

impl Server {
    async fn start() -> Server {
        let serve = Serve::new().args(&["--lease", "2s", "--workers", "2"]).env("RUST_LOG", "wasmq=info");
        let process = serve.start().await;
        Server { url: process.url.clone(), process, client: reqwest::Client::new() }
    }

    fn log(&self) -> String {
        self.process.stderr()
    }

    /// Stops the whole process (every thread: workers, heartbeat, rescuer)
    /// for longer than its lease, then lets it continue.
    async fn pause(&self) {
        self.process.signal("-STOP");
        tokio::time::sleep(PAUSE).await;
        self.process.signal("-CONT");
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = r.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.get(format!("{}{path}", self.url))).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.client.post(format!("{}{path}", self.url)).json(body)).await
    }

    /// Uploads `primes` and names it.
    async fn register_primes(&self) {
        let upload = self
            .client
            .post(format!("{}/v1/modules", self.url))
            .header("content-type", "application/wasm")
            .body(crate::support::plugin_bytes("primes"));
        let (status, module) = self.send(upload).await;
        assert!(status.is_success(), "{status} {module}");
        let alias = self
            .client
            .put(format!("{}/v1/aliases/primes", self.url))
            .json(&json!({"module": module["digest"]}));
        let (status, body) = self.send(alias).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Dispatches a sieve up to `limit` with unlimited fuel; returns its id.
    async fn dispatch_primes(&self, limit: u64, max_attempts: u32) -> String {
        let request = json!({"alias": "primes", "payload": {"limit": limit}, "max_attempts": max_attempts,
            "fuel": 10_000_000_000_000u64, "timeout_ms": 120_000});
        let (status, job) = self.post("/v1/jobs", &request).await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        job["id"].as_str().unwrap().to_string()
    }

    /// Waits (long-poll) until the job ends.
    async fn wait(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while tokio::time::Instant::now() < deadline {
            let (status, job) = self.get(&format!("/v1/jobs/{id}/wait?timeout_ms=10000")).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if ["succeeded", "dead", "cancelled"].contains(&job["status"].as_str().unwrap()) {
                return job;
            }
        }
        panic!("job {id} did not end; server log:\n{}", self.log());
    }

    /// Polls until no sandbox runs on the node (a stopped run has no hook).
    async fn until_idle(&self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while tokio::time::Instant::now() < deadline {
            let (_, status) = self.get("/v1/status").await;
            if status["workers"]["busy"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("a run never stopped; server log:\n{}", self.log());
    }

    /// Other clients are served normally: a fresh job runs to its result.
    async fn still_serves(&self) {
        let id = self.dispatch_primes(1000, 1).await;
        let job = self.wait(&id).await;
        assert_eq!(
            (job["status"].as_str(), job["result"]["count"].as_u64()),
            (Some("succeeded"), Some(168)),
            "{job}"
        );
        let (status, _) = self.get("/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// The job's server-sent events (`status`, `progress`, `end`), as they come.
struct Events {
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    seen: Vec<(String, Value)>,
}

impl Events {
    async fn open(server: &Server, id: &str) -> Events {
        let mut resp = server.client.get(format!("{}/v1/jobs/{id}/events", server.url)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let field = |name: &str| {
                        block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string())
                    };
                    if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                        let _ = tx.send((event, serde_json::from_str(&data).unwrap()));
                    }
                }
            }
        });
        Events { rx, seen: Vec::new() }
    }

    /// Waits for the `status` event saying attempt `attempt` is running.
    async fn until_running(&mut self, attempt: u64, server: &Server) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let next = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let Ok(Some((event, data))) = next else {
                panic!("attempt {attempt} never ran; events {:?}; server log:\n{}", self.seen, server.log());
            };
            let found = event == "status" && data["status"] == "running" && data["attempt"] == attempt;
            self.seen.push((event, data));
            if found {
                return;
            }
        }
    }

    /// Every event until the stream ends.
    async fn rest(mut self) -> Vec<(String, Value)> {
        while let Ok(Some(event)) = tokio::time::timeout(DEADLINE, self.rx.recv()).await {
            self.seen.push(event);
        }
        self.seen
    }
}

/// The attempts the events show starting, and the `end` events.
fn starts_and_ends(events: &[(String, Value)]) -> (Vec<u64>, Vec<Value>) {
    let starts = events
        .iter()
        .filter(|(e, d)| e == "status" && d["status"] == "running")
        .map(|(_, d)| d["attempt"].as_u64().unwrap())
        .collect();
    let ends = events.iter().filter(|(e, _)| e == "end").map(|(_, d)| d.clone()).collect();
    (starts, ends)
}

/// The `status` events of started attempts, in order, as `(attempt, status)`:
/// each attempt must show `running` once, then once how it ended (`queued`
/// again when its lease lapsed, or the job's final status).
fn attempts(events: &[(String, Value)]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|(e, d)| e == "status" && d["attempt"].as_u64() > Some(0))
        .map(|(_, d)| (d["attempt"].as_u64().unwrap(), d["status"].as_str().unwrap().to_string()))
        .collect()
}

/// `attempts` as they must read: each attempt starts, then ends as `ends` says.
fn start_then_end(ends: &[&str]) -> Vec<(u64, String)> {
    let mut expected = Vec::new();
    for (attempt, end) in (1..).zip(ends) {
        expected.push((attempt, "running".to_string()));
        expected.push((attempt, end.to_string()));
    }
    expected
}

#[tokio::test]
async fn a_run_paused_past_its_lease_on_the_last_attempt_ends_dead_with_the_reason() {
    let server = Server::start().await;
    server.register_primes().await;
    // Minutes of sieving: it only ends by losing its lease.
    let id = server.dispatch_primes(100_000_000_000, 1).await;
    let mut events = Events::open(&server, &id).await;
    events.until_running(1, &server).await;
    server.pause().await;

    let job = server.wait(&id).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["attempt"], 1, "never claimed beyond max_attempts: {job}");
    let reason = "the worker running attempt 1 of 1 stopped renewing its lease";
    assert_eq!(job["error"], json!({"kind": "lease_expired", "message": reason}), "not `cancelled`: {job}");
    assert!(job["finished_at"].is_string(), "{job}");
    let events = events.rest().await;
    assert_eq!(attempts(&events), start_then_end(&["dead"]), "{events:?}");
    let (starts, ends) = starts_and_ends(&events);
    assert_eq!(starts, [1], "one start");
    assert_eq!(ends.len(), 1, "one end");
    assert_eq!(ends[0]["status"], "dead");
    // The stale run's sandbox was stopped, and its `cancelled` did not land.
    server.until_idle().await;
    assert_eq!(server.wait(&id).await["error"]["kind"], "lease_expired");
    server.still_serves().await;
}

#[tokio::test]
async fn after_repeated_pauses_only_the_run_holding_the_claim_writes_the_outcome() {
    let server = Server::start().await;
    server.register_primes().await;
    // Seconds of sieving per attempt; the first two are paused as they run.
    let id = server.dispatch_primes(1_000_000_000, 3).await;
    let mut events = Events::open(&server, &id).await;
    for attempt in 1..=2 {
        events.until_running(attempt, &server).await;
        server.pause().await;
    }
    events.until_running(3, &server).await;

    let job = server.wait(&id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempt"], 3, "{job}");
    assert_eq!(
        job["result"],
        json!({"limit": 1_000_000_000u64, "count": 50_847_534, "largest": 999_999_937})
    );
    assert!(job["error"].is_null(), "{job}");
    let events = events.rest().await;
    // Attempts 1 and 2 lost their leases and were requeued; the watcher sees
    // each end although the next claim followed at once.
    assert_eq!(attempts(&events), start_then_end(&["queued", "queued", "succeeded"]), "{events:?}");
    let (starts, ends) = starts_and_ends(&events);
    assert_eq!(starts, [1, 2, 3], "one start per attempt");
    assert_eq!(ends.len(), 1, "one end");
    assert_eq!((ends[0]["status"].as_str(), ends[0]["attempt"].as_u64()), (Some("succeeded"), Some(3)));
    // Nothing from the paused runs lands later either.
    server.until_idle().await;
    assert_eq!(server.wait(&id).await, job);
    server.still_serves().await;
}

#[tokio::test]
async fn a_job_claimed_again_after_pauses_can_still_be_cancelled() {
    let server = Server::start().await;
    server.register_primes().await;
    let id = server.dispatch_primes(100_000_000_000, 5).await;
    let mut events = Events::open(&server, &id).await;
    for attempt in 1..=2 {
        events.until_running(attempt, &server).await;
        server.pause().await;
    }
    events.until_running(3, &server).await;

    let (status, body) = server.post(&format!("/v1/jobs/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = server.wait(&id).await;
    assert_eq!((job["status"].as_str(), job["attempt"].as_u64()), (Some("cancelled"), Some(3)), "{job}");
    // The run of attempt 3 stopped: no sandbox keeps running uncancellable.
    server.until_idle().await;
    let events = events.rest().await;
    assert_eq!(attempts(&events), start_then_end(&["queued", "queued", "cancelled"]), "{events:?}");
    let (starts, ends) = starts_and_ends(&events);
    assert_eq!(starts, [1, 2, 3], "one start per attempt");
    assert_eq!(ends.len(), 1, "one end");
    server.still_serves().await;
}
