//! `wasmq serve` as an operator starts it: where each setting comes from
//! (flag > `WASMQ_*` > `--config` file > default), refusals that name the
//! setting, and what it logs (one line per finished job by default, every
//! request with `-v`, never a query string).

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A `wasmq serve` child whose stderr is read line by line.
struct Serve {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
    url: String,
}

/// Starts `wasmq serve args` in `dir` with exactly `env` among the `WASMQ_*`
/// variables (and no `RUST_LOG`), and waits for its "listening" line.
async fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
    let mut command = command(dir, args);
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-artifacts");
    command.env("WASMQ_CACHE_DIR", cache).envs(env.iter().copied());
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = Serve { child, lines, seen: Vec::new(), url: String::new() };
    let line = server.line_with("wasmq listening on http://").await;
    server.url = line.split("listening on ").nth(1).unwrap().trim().to_string();
    server
}

impl Serve {
    /// The next stderr line containing `needle` (the server's own output, no sleep).
    async fn line_with(&mut self, needle: &str) -> String {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(Some(line)) => line,
            _ => panic!("no line with {needle:?} on stderr; saw:\n{}", self.seen.join("\n")),
        }
    }

    /// The address the server listens on.
    fn host(&self) -> &str {
        self.url.trim_start_matches("http://").rsplit_once(':').unwrap().0
    }

    async fn healthy(&self) {
        let resp = reqwest::get(format!("{}/healthz", self.url)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// Stops the server and returns the rest of what it wrote.
    async fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill().await;
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        self.seen
    }
}

/// `wasmq serve args` in `dir`, with none of the caller's `WASMQ_*` variables nor `RUST_LOG`.
fn command(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmq"));
    command.arg("serve").args(args).current_dir(dir).env_remove("RUST_LOG");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("WASMQ_")) {
        command.env_remove(name);
    }
    command
}

/// Runs `wasmq serve args` expecting it to refuse to start; returns stderr.
async fn refused(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = command(dir, args).envs(env.iter().copied()).stdin(Stdio::null()).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

#[tokio::test]
async fn each_setting_comes_from_the_flag_then_the_environment_then_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wasmq.toml");
    // Distinct loopback addresses show which layer chose `listen`.
    std::fs::write(&config, "listen = \"127.0.0.3:0\"\nworkers = 1\n").unwrap();
    let config = config.to_str().unwrap();
    let env_db = format!("sqlite://{}", dir.path().join("from-env.db").display());

    let server = serve(dir.path(), &["--config", config], &[]).await;
    assert_eq!(server.host(), "127.0.0.3", "the file beats the default");
    server.healthy().await;
    server.stop().await;

    let env = [("WASMQ_LISTEN", "127.0.0.2:0"), ("WASMQ_DATABASE_URL", env_db.as_str())];
    let server = serve(dir.path(), &["--config", config], &env).await;
    assert_eq!(server.host(), "127.0.0.2", "the environment beats the file");
    assert!(dir.path().join("from-env.db").exists(), "the database came from WASMQ_DATABASE_URL");
    server.healthy().await;
    server.stop().await;

    let server = serve(dir.path(), &["--config", config, "--listen", "127.0.0.4:0"], &env).await;
    assert_eq!(server.host(), "127.0.0.4", "the flag beats the environment");
    server.healthy().await;
    server.stop().await;

    // A bad value in the environment is refused naming it; the flag overrides it.
    let stderr = refused(dir.path(), &["--config", config], &[("WASMQ_WORKERS", "0")]).await;
    assert!(stderr.contains("workers must be at least 1"), "{stderr}");
    let env = [("WASMQ_WORKERS", "0")];
    let server =
        serve(dir.path(), &["--config", config, "--workers", "2", "--listen", "127.0.0.1:0"], &env).await;
    server.healthy().await;
    server.stop().await;
}

#[tokio::test]
async fn a_postgres_database_is_refused_naming_the_setting_not_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://wasmq:hunter2@db.internal/wasmq";
    for (args, env) in [(vec!["--database", url], vec![]), (vec![], vec![("WASMQ_DATABASE_URL", url)])] {
        let stderr = refused(dir.path(), &args, &env).await;
        assert!(stderr.contains("database") && stderr.contains("PostgreSQL backend"), "{stderr}");
        assert!(stderr.contains("not built in yet"), "{stderr}");
        assert!(!stderr.contains("hunter2") && !stderr.contains("SQLite"), "{stderr}");
    }
    // Nothing was created, and a server with a good URL still starts.
    assert!(!dir.path().join("wasmq.db").exists());
    let server = serve(dir.path(), &["--listen", "127.0.0.1:0"], &[]).await;
    server.healthy().await;
    server.stop().await;
}

#[tokio::test]
async fn the_server_logs_each_finished_job_by_default_and_each_request_with_v() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &["--listen", "127.0.0.1:0", "--workers", "1"], &[]).await;
    let client = reqwest::Client::new();
    crate::support::register_over_http(&client, &server.url, "echo", "echo").await;
    let job: Value = client
        .post(format!("{}/v1/jobs", server.url))
        .json(&json!({"alias": "echo", "payload": {"n": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap();
    let waited: Value = client
        .get(format!("{}/v1/jobs/{id}/wait?timeout_ms=60000", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(waited["status"], "succeeded", "{waited}");

    let line = server.line_with("job attempt finished").await;
    for field in [&format!("job={id}") as &str, "alias=echo", "status=succeeded", "outcome=ok", "attempt=1"] {
        assert!(line.contains(field), "{field} missing from {line:?}");
    }
    assert!(line.contains(" INFO ") && line.contains("duration_ms=") && line.contains("fuel="), "{line}");
    server.healthy().await;
    let seen = server.stop().await;
    assert!(!seen.iter().any(|l| l.contains("answered")), "requests are logged only at debug: {seen:#?}");

    // With -v every request is logged, its path without the query string.
    let mut server = serve(dir.path(), &["-v", "--listen", "127.0.0.1:0"], &[]).await;
    let resp = client
        .get(format!("{}/v1/jobs?alias=echo&callback_secret=hunter2", server.url))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let line = server.line_with("answered").await;
    assert!(line.contains("path=/v1/jobs") && line.contains(&format!("status={status}")), "{line}");
    server.healthy().await;
    let seen = server.stop().await;
    assert!(!seen.iter().any(|l| l.contains("hunter2")), "a query string reached the log: {seen:#?}");
}
