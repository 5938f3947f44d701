//! Shared helpers: the plugin build, engines, common assertions, the test
//! database, and [`Serve`], the one way to start a `wasmq serve` process.

// By path: `benches/engine.rs` includes this file by its path too.
#[path = "support/serve.rs"]
mod serve;

#[allow(unused_imports)] // by the engine bench, which starts no server
pub use serve::{Serve, ServeProcess};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use wasmq::domain::{Limits, Outcome, RunError};
use wasmq::sandbox::{Engine, EngineSettings, Plugin, RunContext};

/// Builds every plugin once per test run and returns the output directory.
pub fn plugins_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
        let output = Command::new("bash")
            .arg(root.join("scripts/build-plugins.sh"))
            .env("WASMQ_PLUGINS_DIR", target.join("wasm-plugins"))
            .output()
            .expect("run scripts/build-plugins.sh");
        assert!(
            output.status.success(),
            "building the plugins failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        PathBuf::from(stdout.lines().last().expect("build script prints its output dir").trim())
    })
}

/// The path of a built plugin, e.g. `plugin_path("echo")`.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = plugins_dir().join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The bytes of a built plugin.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    std::fs::read(plugin_path(name)).unwrap()
}

/// An engine with default settings: in-process compilation, no disk cache.
pub fn engine() -> Engine {
    Engine::new(EngineSettings::default()).expect("engine")
}

/// Loads a built plugin into `engine`.
pub async fn load(engine: &Engine, name: &str) -> Plugin {
    engine.load(plugin_bytes(name)).await.unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// Runs with default context.
pub async fn run(engine: &Engine, plugin: &Plugin, payload: &str, limits: &Limits) -> Outcome {
    engine.run(plugin, payload, limits, RunContext::default()).await
}

/// The result as a JSON value, or a panic with the error.
pub fn ok_json(outcome: &Outcome) -> serde_json::Value {
    match outcome.as_result() {
        Ok(raw) => serde_json::from_str(raw.get()).unwrap(),
        Err(e) => panic!("expected success, got {e:?} (stderr: {})", outcome.stderr.text),
    }
}

/// The error, or a panic with the result.
pub fn err(outcome: &Outcome) -> &RunError {
    match outcome.as_result() {
        Ok(raw) => panic!("expected an error, got {}", raw.get()),
        Err(e) => e,
    }
}

/// Resident set size of this process, in bytes (Linux).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Runs the built `wasmq` binary as a shell user would: `args`, extra `env`,
/// `stdin` piped in (closed when `None`), every ambient `WASMQ_*` variable
/// cleared (a token, operator token or signing key of the shell running the
/// tests must not change what a test sees) except those the test passes in
/// `env`. Blocking.
pub fn run_wasmq(args: &[String], env: &[(String, String)], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmq"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("WASMQ_")) {
        command.env_remove(name);
    }
    let mut child = command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Uploads the plugin `plugin` to the server at `url` (no token) and names it
/// `alias`: the first step of every test that drives a `wasmq serve` process.
pub async fn register_over_http(client: &reqwest::Client, url: &str, alias: &str, plugin: &str) {
    let upload = client
        .post(format!("{url}/v1/modules"))
        .header("content-type", "application/wasm")
        .body(plugin_bytes(plugin))
        .send()
        .await
        .expect("upload sent");
    assert!(upload.status().is_success(), "upload of {plugin}: {}", upload.status());
    let module: serde_json::Value = upload.json().await.expect("upload answer is JSON");
    let alias_body = serde_json::json!({"module": module["digest"]});
    let put =
        client.put(format!("{url}/v1/aliases/{alias}")).json(&alias_body).send().await.expect("alias sent");
    assert!(put.status().is_success(), "alias {alias}: {}", put.status());
}

/// The database of a test server whose files live in `dir`: with
/// `WASMQ_TEST_BACKEND=postgres`, a PostgreSQL database of its own (see
/// [`postgres_database`]); else `WASMQ_TEST_DATABASE_URL` when set (a `{dir}`
/// in it becomes `dir`, so each test gets its own database), else the SQLite
/// file `wasmq.db` in `dir`.
pub fn database_url(dir: &Path) -> String {
    if std::env::var("WASMQ_TEST_BACKEND").is_ok_and(|b| b == "postgres") {
        return postgres_database(dir);
    }
    let dir = dir.display().to_string();
    match std::env::var("WASMQ_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url.replace("{dir}", &dir),
        _ => format!("sqlite://{dir}/wasmq.db"),
    }
}

/// The maintenance URL of the test PostgreSQL server (`WASMQ_TEST_POSTGRES`).
pub fn postgres_admin_url() -> String {
    std::env::var("WASMQ_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The PostgreSQL database of the test whose files live in `dir`: created on
/// first use through the maintenance URL (`WASMQ_TEST_POSTGRES`, default
/// `postgres://postgres@127.0.0.1:5432/postgres`) and named in `dir`, so a
/// server restarted in `dir` finds the same one. The databases are dropped by
/// a later run (a test's end has no hook that outlives a panic): each name
/// carries its creation time, and the first database a run makes drops those
/// older than an hour.
pub fn postgres_database(dir: &Path) -> String {
    let named = dir.join(".test-database-url");
    if let Ok(url) = std::fs::read_to_string(&named) {
        return url;
    }
    let admin = postgres_admin_url();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let name = format!("wasmq_s_{now}_{:08x}", fastrand::u32(..));
    static SWEPT: OnceLock<()> = OnceLock::new();
    let sweep = SWEPT.set(()).is_ok();
    let (admin_url, db) = (admin.clone(), name.clone());
    // A thread with a runtime of its own: callers may be inside a runtime.
    std::thread::spawn(move || {
        use sqlx::Connection;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("WASMQ_TEST_BACKEND=postgres, but PostgreSQL at {admin_url} cannot be reached: {e}")
            });
            if sweep {
                let stale: Vec<(String,)> =
                    sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'wasmq\\_s\\_%'")
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                for (old,) in stale {
                    let made = old.split('_').nth(2).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
                    if made + 3600 < now {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    }
                }
            }
            sqlx::query(&format!("CREATE DATABASE {db}")).execute(&mut conn).await.unwrap();
        })
    })
    .join()
    .expect("creating the test database");
    let mut url = url::Url::parse(&admin).expect("WASMQ_TEST_POSTGRES is a URL");
    url.set_path(&name);
    let url = String::from(url);
    std::fs::write(&named, &url).unwrap();
    url
}

/// The file a SQLite database URL names (`None` for another backend, or an
/// in-memory database). The few checks that reach into the database file
/// itself (its bytes, its removal) only make sense there: they run under the
/// default and are skipped, saying so, under another backend.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
}

/// The callback key file a test server on `url` is given, if any: none for
/// SQLite, whose server keeps the key beside the database file (what the
/// tests check), else `callback-key` in `dir`, so that the key, like the
/// rows it seals, survives a restart.
pub fn callback_key_file(url: &str, dir: &Path) -> Option<PathBuf> {
    sqlite_file(url).is_none().then(|| dir.join("callback-key"))
}

/// Compiled artifacts, shared by every test server (and kept between runs).
pub fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-artifacts")
}

/// A job as a dispatch would hand it to the store: `tenant`'s, of `alias` and
/// `module`, default queue, priority 0, one attempt, created at `now`, queued
/// if due by then, else scheduled. For tests and the load bench that plant
/// work through the store where the API is not their subject.
pub fn planted_job(
    tenant: &wasmq::domain::TenantId,
    alias: &str,
    module: wasmq::domain::Digest,
    payload: String,
    now: i64,
    run_at: i64,
) -> wasmq::store::NewJob {
    use wasmq::domain::{AliasName, JobStatus, QueueName};
    wasmq::store::NewJob {
        id: uuid::Uuid::now_v7().to_string(),
        tenant: tenant.clone(),
        alias: AliasName::parse(alias).unwrap(),
        module,
        status: if run_at <= now { JobStatus::Queued } else { JobStatus::Scheduled },
        priority: 0,
        queue: QueueName::default_queue(),
        context: None,
        payload,
        max_attempts: 1,
        limits: Limits::default(),
        run_at,
        created_at: now,
        idempotency_key: None,
        idempotency_fingerprint: None,
        batch_id: None,
        callback: None,
        unique: None,
        lease: None,
        trace: None,
    }
}
