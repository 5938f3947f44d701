//! End-to-end load harness: a real `wasmq` server (in-process, temp SQLite
//! database, the echo plugin) driven over HTTP by concurrent clients on the same
//! machine. Prints its figures; record them in docs/benchmarks.md.
//!
//! `cargo bench --bench load` (env: `LOAD_JOBS` jobs per phase, default 20000;
//! `LOAD_CLIENTS` concurrent clients, default 64; `LOAD_WORKERS` server workers,
//! default 2; `LOAD_PHASES` a comma list of `single,batch,progress,drain,latency,fair`, default all;
//! `LOAD_FLOOD` the fairness phase's flood, default 20000; `LOAD_FAIR_SAMPLES` its
//! single jobs per measurement, default 200;
//! `LOAD_KEEP_RESIDENT` overrides the pool's kept-resident bytes per slot;
//! `LOAD_PREFETCH` the jobs claimed ahead of free workers; `LOAD_WATCH=1` keeps
//! one `GET /v1/events` stream open and read on every server, what a dashboard
//! or `wasmq jobs watch` costs; `LOAD_OTLP=<url>` exports traces there, with
//! `LOAD_TRACE_RATIO` of them sampled, default 1).
//!
//! Phases:
//! 1. single dispatches: `LOAD_CLIENTS` clients POST /v1/jobs until `LOAD_JOBS`
//!    are accepted; throughput = jobs / (first dispatch -> last job completed).
//! 2. batches: the same number of jobs in batches of 1,000 (POST /v1/batches).
//!    2b. drain: the same, all due at one instant after inserting is over: the
//!    processing rate of a full queue, without inserts competing for the writer.
//!    2c. progress: batches of the no-op `bench-job`, without and then with one
//!    progress report per job: what a progress report costs a short job.
//! 3. start latency on an idle server: one job at a time, dispatch -> the job
//!    has started, p50/p99 (client-side: POST, then long-poll `wait` for the
//!    result, minus the plugin's own duration; and server-side started_at -
//!    created_at, at millisecond resolution).
//! 4. fairness: the same single-job latency for tenant `default` (p50/p95),
//!    idle and then while tenant `flood` has `LOAD_FLOOD` no-op jobs queued.

#![allow(missing_docs)]

#[allow(dead_code)]
#[path = "../../tests/all/support.rs"]
mod support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasmq::app::App;
use wasmq::config::Settings;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Server {
    url: String,
    db: String,
    client: reqwest::Client,
    shutdown: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(workers: usize) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("load.db").display());
    let mut settings = Settings::new("127.0.0.1:0".parse().unwrap(), db, env!("CARGO_BIN_EXE_wasmq").into());
    settings.engine.cache_dir = Some(dir.path().join("cache"));
    settings.queue.workers = workers;
    if let Ok(prefetch) = std::env::var("LOAD_PREFETCH") {
        settings.queue.prefetch = prefetch.parse().expect("LOAD_PREFETCH is a number");
    }
    if let Ok(keep) = std::env::var("LOAD_KEEP_RESIDENT") {
        settings.engine.pool_keep_resident = keep.parse().expect("LOAD_KEEP_RESIDENT is a byte count");
    }
    if let Ok(endpoint) = std::env::var("LOAD_OTLP") {
        settings.traces.endpoint = Some(endpoint);
        settings.traces.sample_ratio = std::env::var("LOAD_TRACE_RATIO").map_or(1.0, |r| r.parse().unwrap());
    }
    let app = App::build(settings).await.unwrap();
    let url = format!("http://{}", app.local_addr().expect("a server listens"));
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    if std::env::var_os("LOAD_WATCH").is_some() {
        // Someone watching: every event is built, rendered and sent.
        let mut events = client.get(format!("{url}/v1/events")).send().await.unwrap();
        assert_eq!(events.status(), 200);
        tokio::spawn(async move { while let Ok(Some(_)) = events.chunk().await {} });
    }
    register(&client, &url, "echo", "echo").await;
    register(&client, &url, "bench-job", "bench").await;
    let db = dir.path().join("load.db").display().to_string();
    Server { url, db, client, shutdown, handle, _dir: dir }
}

/// Uploads the plugin `plugin` (built from plugins/) and names it `alias`.
async fn register(client: &reqwest::Client, url: &str, plugin: &str, alias: &str) {
    let module = client
        .post(format!("{url}/v1/modules"))
        .header("content-type", "application/wasm")
        .body(support::plugin_bytes(plugin))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    client
        .put(format!("{url}/v1/aliases/{alias}"))
        .json(&json!({"module": module["digest"]}))
        .send()
        .await
        .unwrap();
}

impl Server {
    async fn succeeded(&self) -> u64 {
        let status: Value =
            self.client.get(format!("{}/v1/status", self.url)).send().await.unwrap().json().await.unwrap();
        status["jobs"]["succeeded"].as_u64().unwrap()
    }

    /// Waits until `n` jobs have succeeded; returns when the last one finished
    /// (its `finished_at`, read from the database, on the same clock as `since`).
    async fn until_succeeded(&self, n: u64, since: std::time::SystemTime) -> Duration {
        loop {
            if self.succeeded().await >= n {
                break;
            }
            // Counting is a scan of the jobs table: poll gently so the harness
            // does not become the load it measures; the exact end comes below.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", self.db)).await.unwrap();
        let last: i64 =
            sqlx::query_scalar("SELECT MAX(finished_at) FROM jobs").fetch_one(&pool).await.unwrap();
        pool.close().await;
        let since_ms = since.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        Duration::from_millis((last - since_ms).max(1) as u64)
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.handle.await.unwrap().unwrap();
    }
}

/// Posts `batches` batches of 1,000 echo jobs concurrently (`extra` merges
/// into every job) and returns when all were accepted.
async fn post_batches(server: &Arc<Server>, batches: usize, extra: Value) {
    let mut tasks = Vec::new();
    for b in 0..batches {
        let (server, extra) = (server.clone(), extra.clone());
        tasks.push(tokio::spawn(async move {
            let batch: Vec<Value> = (0..1000)
                .map(|i| {
                    let mut job = json!({"alias": "echo", "payload": {"b": b, "i": i}});
                    if let (Value::Object(job), Value::Object(extra)) = (&mut job, &extra) {
                        job.extend(extra.clone());
                    }
                    job
                })
                .collect();
            let resp = server
                .client
                .post(format!("{}/v1/batches", server.url))
                .json(&json!({"jobs": batch}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Dispatches `jobs` jobs in batches of 1,000 (`extra` merged into each) to a
/// fresh server and reports; returns the completed jobs per second.
async fn batch_phase(label: &str, workers: usize, jobs: usize, extra: Value) -> f64 {
    let server = Arc::new(start(workers).await);
    let batches = jobs.div_ceil(1000);
    let started = Instant::now();
    let started_wall = std::time::SystemTime::now();
    post_batches(&server, batches, extra).await;
    let accepted = started.elapsed();
    let total = batches * 1000;
    let done = server.until_succeeded(total as u64, started_wall).await;
    report(label, total, accepted, done);
    Arc::into_inner(server).expect("no other owners").stop().await;
    total as f64 / done.as_secs_f64()
}

/// One throughput line: how fast `n` jobs were accepted and completed.
fn report(label: &str, n: usize, accepted: Duration, done: Duration) {
    println!(
        "{label}: accepted {n} in {:.2} s ({:.0}/s); dispatch -> all completed {:.2} s: {:.0} jobs/s",
        accepted.as_secs_f64(),
        n as f64 / accepted.as_secs_f64(),
        done.as_secs_f64(),
        n as f64 / done.as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let jobs = env_usize("LOAD_JOBS", 20_000);
    let clients = env_usize("LOAD_CLIENTS", 64);
    let workers = env_usize("LOAD_WORKERS", 2);
    let phases =
        std::env::var("LOAD_PHASES").unwrap_or_else(|_| "single,batch,progress,drain,latency,fair".into());
    let phase = |name: &str| phases.split(',').any(|p| p.trim() == name);
    support::plugins_dir(); // build plugins before timing anything
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        println!("wasmq load harness: {jobs} jobs per phase, {clients} clients, {workers} workers, echo plugin");

        if phase("single") {
        // Phase 1: single dispatches.
        let server = Arc::new(start(workers).await);
        let sent = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let started_wall = std::time::SystemTime::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (server, sent) = (server.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                let url = format!("{}/v1/jobs", server.url);
                while sent.fetch_add(1, Ordering::Relaxed) < jobs {
                    let resp = server
                        .client
                        .post(&url)
                        .json(&json!({"alias": "echo", "payload": {"client": c, "n": 1}}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 201);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let accepted = started.elapsed();
        let done = server.until_succeeded(jobs as u64, started_wall).await;
        report("single dispatches", jobs, accepted, done);
        Arc::into_inner(server).expect("no other owners").stop().await;
        }

        if phase("batch") {
        // Phase 2: batches of 1,000.
        batch_phase("batches of 1000", workers, jobs, json!({})).await;
        }

        if phase("progress") {
        // Phase 2c: the same no-op job (bench-job) without and with one
        // progress report: what reporting progress costs a short job.
        let plain = batch_phase("bench-job {}, batches of 1000", workers, jobs,
            json!({"alias": "bench", "payload": {}})).await;
        let progress = batch_phase("bench-job {\"progress\": 1}, batches of 1000", workers, jobs,
            json!({"alias": "bench", "payload": {"progress": 1}})).await;
        println!("one progress report costs {:+.1}% per job", (plain / progress - 1.0) * 100.0);
        }

        if phase("drain") {
        // Phase 2b: the same jobs, all due at one instant a few seconds ahead, so
        // inserting is over before the first runs: the drain rate of a full queue.
        let server = Arc::new(start(workers).await);
        let batches = jobs.div_ceil(1000);
        let due = std::time::SystemTime::now() + Duration::from_secs(4);
        let run_at = humantime::format_rfc3339_millis(due).to_string();
        post_batches(&server, batches, json!({"run_at": run_at})).await;
        assert!(std::time::SystemTime::now() < due, "inserting took longer than the lead time");
        let total = batches * 1000;
        let drained = server.until_succeeded(total as u64, due).await;
        println!(
            "full queue of {total}, all due at once: drained in {:.2} s: {:.0} jobs/s",
            drained.as_secs_f64(),
            total as f64 / drained.as_secs_f64()
        );
        Arc::into_inner(server).expect("no other owners").stop().await;
        }

        if phase("latency") {
        // Phase 3: start latency on an idle server.
        let server = start(workers).await;
        let (client_side, server_side) = start_latencies(&server, 1000, None).await;
        println!(
            "idle server, one job at a time: dispatch -> result (client-side, POST + wait) p50 {:.2} ms, p99 {:.2} ms",
            ms(percentile(&client_side, 0.5)),
            ms(percentile(&client_side, 0.99))
        );
        println!(
            "idle server: created_at -> started_at (server clock, ms resolution) p50 {} ms, p99 {} ms, mean {:.2} ms",
            percentile(&server_side, 0.5).as_millis(),
            percentile(&server_side, 0.99).as_millis(),
            mean_ms(&server_side)
        );
        server.stop().await;
        }

        if phase("fair") {
        // Phase 4: fairness. Tenant `default` dispatches single jobs, one at a
        // time, first on an idle server, then while tenant `flood` has
        // `LOAD_FLOOD` no-op jobs queued (planted through the store: the
        // tenant API is not this harness's subject).
        let flood_jobs = env_usize("LOAD_FLOOD", 20_000);
        let samples = env_usize("LOAD_FAIR_SAMPLES", 200);
        let server = start(workers).await;
        let (idle_client, idle_server) = start_latencies(&server, samples, None).await;
        let store = wasmq::store::connect(&format!("sqlite://{}", server.db)).await.unwrap();
        let flood = plant_flood(&*store, flood_jobs).await;
        // Planted as delayed (the server would drain the first chunks while the
        // rest are written), then all made due at once.
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", server.db)).await.unwrap();
        sqlx::query("UPDATE jobs SET status = 'queued', run_at = ? WHERE tenant = 'flood'")
            .bind(wasmq::domain::time::now_ms())
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let during = Some((&*store, &flood));
        let (flood_client, flood_server) = start_latencies(&server, samples, during).await;
        for (label, client, server_side) in
            [("idle", &idle_client, &idle_server), ("flooded", &flood_client, &flood_server)]
        {
            println!(
                "fairness, {label}: single job dispatch -> result (client-side) p50 {:.2} ms, p95 {:.2} ms; \
                 created_at -> started_at p50 {} ms, p95 {} ms, mean {:.2} ms",
                ms(percentile(client, 0.5)),
                ms(percentile(client, 0.95)),
                percentile(server_side, 0.5).as_millis(),
                percentile(server_side, 0.95).as_millis(),
                mean_ms(server_side)
            );
        }
        println!(
            "fairness: {} flooded samples, each dispatched while the flood of {flood_jobs} still had jobs queued",
            flood_client.len()
        );
        server.stop().await;
        }
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The mean of durations read off millisecond timestamps: each timestamp is
/// truncated, but the errors average out over the samples, so the mean shows
/// what the p50 (0 or 1 ms) cannot.
fn mean_ms(samples: &[Duration]) -> f64 {
    samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len().max(1) as f64
}

/// `n` echo jobs of tenant `default`, one at a time: dispatch -> result as the
/// client sees it (POST, then long-poll `wait`), and created_at -> started_at
/// on the server's clock; both sorted. With `flood`, only while that tenant
/// still has jobs queued (checked before each dispatch).
async fn start_latencies(
    server: &Server,
    n: usize,
    flood: Option<(&dyn wasmq::store::Store, &wasmq::domain::TenantId)>,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut client_side = Vec::new();
    let mut server_side = Vec::new();
    for i in 0..n {
        if let Some((store, tenant)) = flood
            && store.status_counts(tenant).await.unwrap().by_status["queued"] == 0
        {
            break;
        }
        let t0 = Instant::now();
        let job: Value = server
            .client
            .post(format!("{}/v1/jobs", server.url))
            .json(&json!({"alias": "echo", "payload": {"i": i}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = job["id"].as_str().unwrap();
        let done: Value = server
            .client
            .get(format!("{}/v1/jobs/{id}/wait?timeout_ms=30000", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        client_side.push(t0.elapsed());
        assert_eq!(done["status"], "succeeded");
        let parse = |k: &str| humantime::parse_rfc3339(done[k].as_str().unwrap()).unwrap();
        server_side.push(parse("started_at").duration_since(parse("created_at")).unwrap_or_default());
    }
    client_side.sort();
    server_side.sort();
    (client_side, server_side)
}

/// Creates tenant `flood` with the echo module and `n` no-op jobs, due in an hour.
async fn plant_flood(store: &dyn wasmq::store::Store, n: usize) -> wasmq::domain::TenantId {
    use wasmq::domain::{Digest, PluginKind, TenantId, TenantQuotas};
    use wasmq::store::{ModulePut, TenantCreate};
    let flood = TenantId::parse("flood").unwrap();
    let quotas = TenantQuotas::default();
    store
        .tenant_create(TenantCreate { id: flood.clone(), weight: 1, quotas, callback_allow: vec![], now: 1 })
        .await
        .unwrap();
    let bytes = support::plugin_bytes("echo");
    let digest = Digest::of(&bytes);
    store
        .module_put(ModulePut { tenant: flood.clone(), digest, kind: PluginKind::Job, bytes, now: 1 })
        .await
        .unwrap();
    let now = wasmq::domain::time::now_ms();
    for chunk in 0..n.div_ceil(1000) {
        let jobs = (chunk * 1000..((chunk + 1) * 1000).min(n))
            .map(|k| {
                support::planted_job(
                    &flood,
                    "echo",
                    digest,
                    json!({"k": k}).to_string(),
                    now,
                    now + 3_600_000,
                )
            })
            .collect();
        store.job_insert(jobs, None).await.unwrap();
    }
    flood
}
