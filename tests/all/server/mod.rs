//! The job server driven over HTTP: a real server on an ephemeral port with a
//! temp database (SQLite unless `WASMQ_TEST_DATABASE_URL` says otherwise, see
//! `support::database_url`), real plugins, and a real callback receiver.

mod alias_limits;
mod api;
mod attempts;
mod batches;
mod bulk;
mod callback_secrets;
mod callbacks;
mod capabilities;
mod capabilities_jobs;
mod capabilities_leaks;
mod dashboard;
mod durability;
mod edge;
mod edge_process;
mod event_stream;
mod fairness;
mod fencing;
mod isolation;
mod metrics;
mod misc_faults;
mod nodes;
mod openapi;
mod queue;
mod quotas;
mod red_signed;
mod red_tenants;
mod review;
mod schedules;
mod signed;
pub(crate) mod sse;
mod ssrf;
mod streams;
mod tenant_callbacks;
mod tenants;
mod traces;
mod unique;
mod usage;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use wasmq::app::App;
use wasmq::config::{Secret, Settings};
use wasmq::domain::NetPolicy;

use crate::support::{artifacts_dir, callback_key_file, database_url, plugin_bytes};

/// Knobs a test may turn; everything else is the server's default.
#[derive(Clone)]
pub struct Options {
    pub workers: usize,
    pub token: Option<String>,
    /// The operator token (manages tenants).
    pub operator_token: Option<String>,
    /// Concurrency limits set through the API once the server is up (0
    /// holds a queue's jobs).
    pub queue_limits: Vec<(&'static str, usize)>,
    pub lease: Duration,
    pub retry_base: Duration,
    pub callback_retry_base: Duration,
    /// Reuse this database directory (a restart).
    pub dir: Option<Arc<tempfile::TempDir>>,
    /// Waiting jobs before 429.
    pub max_queued: u64,
    /// `--callback-allow`: the test receivers listen on 127.0.0.1.
    pub callback_allow: String,
    /// Any other setting, applied last (e.g. `|s| s.max_waits = 2`).
    pub tweak: fn(&mut Settings),
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 2,
            token: None,
            operator_token: None,
            queue_limits: Vec::new(),
            lease: Duration::from_secs(30),
            retry_base: Duration::from_millis(20),
            callback_retry_base: Duration::from_millis(20),
            dir: None,
            max_queued: 1_000_000,
            callback_allow: "127.0.0.0/8".into(),
            tweak: |_| {},
        }
    }
}

pub fn settings(opts: &Options, dir: &tempfile::TempDir) -> Settings {
    let db = database_url(dir.path());
    let mut s =
        Settings::new("127.0.0.1:0".parse().unwrap(), db.as_str(), env!("CARGO_BIN_EXE_wasmq").into());
    s.engine.cache_dir = Some(artifacts_dir());
    s.callbacks.key_file = callback_key_file(&db, dir.path());
    s.token = opts.token.clone().map(Secret::new);
    s.operator_token = opts.operator_token.clone().map(Secret::new);
    s.queue.workers = opts.workers;
    s.queue.lease = opts.lease;
    s.queue.retry_base = opts.retry_base;
    s.queue.poll_interval = Duration::from_millis(200);
    s.queue.shutdown_grace = Duration::from_secs(5);
    s.callbacks.retry_base = opts.callback_retry_base;
    s.callbacks.policy = NetPolicy::new(NetPolicy::parse_allow(&opts.callback_allow).unwrap());
    s.max_queued_jobs = opts.max_queued;
    (opts.tweak)(&mut s);
    s
}

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    /// The database it serves from.
    pub database_url: String,
    token: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(opts: Options) -> TestApp {
    spawn_app_with(opts, |_| {}).await
}

/// `spawn_app` with `tweak` applied to the settings (for knobs `Options` lacks).
pub async fn spawn_app_with(opts: Options, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = opts.dir.clone().unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
    let mut settings = settings(&opts, &dir);
    tweak(&mut settings);
    let database_url = settings.database_url.clone();
    let app = App::build(settings).await.expect("server builds");
    let url = format!("http://{}", app.local_addr().expect("a server listens"));
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    let app = TestApp {
        url,
        // Pooled connections go before the server's 10 s idle close, so a
        // request never races it (hyper::Error(IncompleteMessage)).
        client: reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(4)).build().unwrap(),
        dir,
        database_url,
        token: opts.token.clone(),
        shutdown: Some(tx),
        handle: Some(handle),
    };
    let admin = opts.operator_token.or(opts.token);
    for (queue, n) in &opts.queue_limits {
        let path = format!("/v1/queues/{queue}/limits");
        let r = app.client.put(format!("{}{path}", app.url)).json(&serde_json::json!({ "concurrency": n }));
        let r = match &admin {
            Some(t) => r.bearer_auth(t),
            None => r,
        };
        let (status, body) = app.send(r).await;
        assert_eq!(status, StatusCode::OK, "PUT {path}: {body}");
    }
    app
}

impl TestApp {
    /// A client of a `wasmq serve` process with the same calls as a spawned
    /// app's; its `stop` does nothing (the process stops with its own handle).
    pub fn of_process(server: &crate::support::ServeProcess) -> TestApp {
        TestApp {
            url: server.url.clone(),
            client: reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(4)).build().unwrap(),
            dir: server.dir.clone(),
            database_url: server.database_url.clone().unwrap_or_default(),
            token: None,
            shutdown: None,
            handle: None,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends `method path` with `token` as the bearer (and a JSON body).
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let r = self.client.request(method, format!("{}{path}", self.url)).bearer_auth(token);
        self.send(match body {
            Some(b) => r.json(b),
            None => r,
        })
        .await
    }

    pub async fn send(&self, r: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = r.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::PUT, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path)
    }

    /// Its database opened through `wasmq::store::connect`, as the server
    /// opens it: the backend-neutral way to look at (or plant) rows.
    pub async fn store(&self) -> Arc<dyn wasmq::store::Store> {
        let url = &self.database_url;
        wasmq::store::connect(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"))
    }

    /// Uploads a built plugin; returns its digest.
    pub async fn upload(&self, plugin: &str) -> String {
        let r = self
            .request(reqwest::Method::POST, "/v1/modules")
            .header("content-type", "application/wasm")
            .body(plugin_bytes(plugin));
        let (status, body) = self.send(r).await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "upload {plugin}: {status} {body}"
        );
        body["digest"].as_str().unwrap().to_string()
    }

    /// Uploads `plugin` and points alias `name` at it.
    pub async fn register(&self, name: &str, plugin: &str) -> Value {
        let digest = self.upload(plugin).await;
        let (status, body) = self.put(&format!("/v1/aliases/{name}"), &json!({ "module": digest })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Dispatches a job (`extra` merges into the request); returns the job.
    pub async fn dispatch(&self, alias: &str, payload: Value, extra: Value) -> Value {
        let mut req = json!({ "alias": alias, "payload": payload });
        if let Value::Object(extra) = extra {
            req.as_object_mut().unwrap().extend(extra);
        }
        let (status, body) = self.post("/v1/jobs", &req).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Waits (long-poll) until the job is terminal.
    pub async fn wait(&self, id: &str) -> Value {
        for _ in 0..20 {
            let (status, job) = self.get(&format!("/v1/jobs/{id}/wait?timeout_ms=30000")).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if ["succeeded", "dead", "cancelled"].contains(&job["status"].as_str().unwrap()) {
                return job;
            }
        }
        panic!("job {id} did not end");
    }

    /// Polls until the job has the status (for states that have no wait hook).
    pub async fn until_status(&self, id: &str, status: &str) -> Value {
        for _ in 0..1000 {
            let (_, job) = self.get(&format!("/v1/jobs/{id}")).await;
            if job["status"] == status {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("job {id} never became {status}");
    }

    /// Graceful shutdown; returns the database directory for a restart.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        self.dir.clone()
    }
}

/// A callback receiver: records every request and answers 500 to the first
/// `fail_first` of them.
pub struct Receiver {
    pub url: String,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<(axum::http::HeaderMap, Vec<u8>)>>,
    pub count: Arc<Mutex<usize>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let count = Arc::new(Mutex::new(0usize));
        let c = count.clone();
        let app =
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (tx, c) = (tx.clone(), c.clone());
                async move {
                    let n = {
                        let mut n = c.lock().unwrap();
                        *n += 1;
                        *n
                    };
                    let _ = tx.send((headers, body.to_vec()));
                    if n <= fail_first { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, rx: tokio::sync::Mutex::new(rx), count }
    }

    /// The next request received (headers, body).
    pub async fn next(&self) -> (axum::http::HeaderMap, Value) {
        let got = tokio::time::timeout(Duration::from_secs(30), self.rx.lock().await.recv())
            .await
            .expect("a callback arrives")
            .expect("receiver open");
        (got.0, serde_json::from_slice(&got.1).unwrap())
    }

    /// Raw next request.
    pub async fn next_raw(&self) -> (axum::http::HeaderMap, Vec<u8>) {
        tokio::time::timeout(Duration::from_secs(30), self.rx.lock().await.recv())
            .await
            .expect("a callback arrives")
            .expect("receiver open")
    }
}
