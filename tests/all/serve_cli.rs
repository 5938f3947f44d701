//! `wasmq serve` as an operator starts it: where each setting comes from
//! (flag > `WASMQ_*` > `--config` file > default), refusals that name the
//! setting, and what it logs (one line per finished job by default, every
//! request with `-v`, never a query string).

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

use crate::support::{Serve, ServeProcess};

/// `wasmq serve args` in `dir` as an operator starts it, with exactly `env`
/// among the `WASMQ_*` variables (and no `RUST_LOG`).
fn operator(dir: &Arc<tempfile::TempDir>, args: &[&str], env: &[(&str, &str)]) -> Serve {
    env.iter().fold(Serve::as_operator().dir(dir.clone()).args(args), |serve, (k, v)| serve.env(k, v))
}

/// Starts it (see `operator`) and waits for its "listening" line.
async fn serve(dir: &Arc<tempfile::TempDir>, args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
    operator(dir, args, env).start().await
}

/// Runs it (see `operator`) expecting it to refuse to start; returns stderr.
async fn refused(dir: &Arc<tempfile::TempDir>, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = operator(dir, args, env).exit().await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

/// Dispatches `{"n": 1}` to `echo` on `server`; the job's id.
async fn dispatch_echo(client: &reqwest::Client, server: &ServeProcess) -> String {
    let r =
        client.post(format!("{}/v1/jobs", server.url)).json(&json!({"alias": "echo", "payload": {"n": 1}}));
    let job: Value = r.send().await.unwrap().json().await.unwrap();
    job["id"].as_str().unwrap().to_string()
}

async fn healthy(server: &ServeProcess) {
    let resp = reqwest::get(format!("{}/healthz", server.url)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_setting_comes_from_the_flag_then_the_environment_then_the_file() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = dir.path().join("wasmq.toml");
    // Distinct loopback addresses show which layer chose `listen`.
    std::fs::write(&config, "listen = \"127.0.0.3:0\"\nworkers = 1\n").unwrap();
    let config = config.to_str().unwrap();
    let env_db = format!("sqlite://{}", dir.path().join("from-env.db").display());

    let server = serve(&dir, &["--config", config], &[]).await;
    assert_eq!(server.host(), "127.0.0.3", "the file beats the default");
    healthy(&server).await;
    server.stop().await;

    let env = [("WASMQ_LISTEN", "127.0.0.2:0"), ("WASMQ_DATABASE_URL", env_db.as_str())];
    let server = serve(&dir, &["--config", config], &env).await;
    assert_eq!(server.host(), "127.0.0.2", "the environment beats the file");
    assert!(dir.path().join("from-env.db").exists(), "the database came from WASMQ_DATABASE_URL");
    healthy(&server).await;
    server.stop().await;

    let server = serve(&dir, &["--config", config, "--listen", "127.0.0.4:0"], &env).await;
    assert_eq!(server.host(), "127.0.0.4", "the flag beats the environment");
    healthy(&server).await;
    server.stop().await;

    // A bad value in the environment is refused naming it; the flag overrides it.
    let stderr = refused(&dir, &["--config", config], &[("WASMQ_WORKERS", "0")]).await;
    assert!(stderr.contains("workers must be between 1 and 4096"), "{stderr}");
    let env = [("WASMQ_WORKERS", "0")];
    let server = serve(&dir, &["--config", config, "--workers", "2", "--listen", "127.0.0.1:0"], &env).await;
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_postgres_database_fails_the_start_naming_it_but_not_its_password() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("callback-key");
    let key = key.to_str().unwrap();
    // Nothing listens on port 1.
    let url = "postgres://wasmq:hunter2@127.0.0.1:1/wasmq";
    for (args, env) in [
        (vec!["--database", url, "--callback-key-file", key], vec![]),
        (vec!["--callback-key-file", key], vec![("WASMQ_DATABASE_URL", url)]),
    ] {
        let out = operator(&dir, &args, &env).exit().await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("opening database postgres://wasmq:***@127.0.0.1:1/wasmq"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    // Without a callback key file a PostgreSQL database is refused before it
    // is opened: each node would seal callback secrets with a key of its own.
    let out = operator(&dir, &["--database", url], &[]).exit().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("needs --callback-key-file"), "{stderr}");
    // Nothing was created, and a server with a good URL still starts.
    assert!(!dir.path().join("wasmq.db").exists());
    let server = serve(&dir, &["--listen", "127.0.0.1:0"], &[]).await;
    healthy(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn the_server_logs_each_finished_job_by_default_and_each_request_with_v() {
    let mut server = Serve::new().args(&["--workers", "1"]).start().await;
    let client = reqwest::Client::new();
    crate::support::register_over_http(&client, &server.url, "echo", "echo").await;
    let id = &dispatch_echo(&client, &server).await;
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
    healthy(&server).await;
    let seen = server.stop().await;
    assert!(!seen.iter().any(|l| l.contains("answered")), "requests are logged only at debug: {seen:#?}");

    // With -v every request is logged, its path without the query string.
    let mut server = Serve::new().args(&["-v"]).start().await;
    let resp = client
        .get(format!("{}/v1/jobs?alias=echo&callback_secret=hunter2", server.url))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    // (Start-up's own `/healthz` probe is logged before it.)
    let line = server.line_with("path=/v1/jobs").await;
    assert!(line.contains("answered") && line.contains(&format!("status={status}")), "{line}");
    healthy(&server).await;
    let seen = server.stop().await;
    assert!(!seen.iter().any(|l| l.contains("hunter2")), "a query string reached the log: {seen:#?}");
}

#[tokio::test]
async fn a_server_that_keeps_finished_jobs_forever_is_ready() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = serve(&dir, &["--listen", "127.0.0.1:0", "--retention", "forever"], &[]).await;
    let ready = reqwest::get(format!("{}/readyz", server.url)).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "{}", ready.text().await.unwrap());
    server.stop().await;
}

/// `--log-format json`: every stderr line the server logs is one JSON
/// object, and a finished job's line names its id, alias and status.
#[tokio::test]
async fn json_logs_are_one_object_per_line_naming_the_job() {
    let mut server = Serve::new().args(&["--workers", "1", "--log-format", "json"]).start().await;
    let client = reqwest::Client::new();
    crate::support::register_over_http(&client, &server.url, "echo", "echo").await;
    let id = &dispatch_echo(&client, &server).await;
    let line = server.line_with("job attempt finished").await;
    let parsed: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(
        (parsed["job"].as_str(), parsed["alias"].as_str()),
        (Some(id.as_str()), Some("echo")),
        "{parsed}"
    );
    assert_eq!((parsed["level"].as_str(), parsed["status"].as_str()), (Some("INFO"), Some("succeeded")));
    let seen = server.stop().await;
    for line in seen.iter().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let logged: Vec<&String> = seen.iter().filter(|l| l.contains("\"level\"")).collect();
    assert!(logged.len() >= 2, "{seen:#?}");
    assert!(
        seen.iter().all(|l| l.starts_with('{') || l.starts_with("wasmq listening on")),
        "every log line is JSON: {seen:#?}"
    );
}

/// Shell completions for bash, zsh and fish, and the manual page, come from
/// the same definitions as `--help`: every subcommand is in them.
#[test]
fn completions_and_the_manual_page_know_every_command() {
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = crate::support::run_wasmq(&args, &[], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let commands =
        ["serve", "worker", "dispatch", "jobs", "schedule", "apply", "queue", "completions", "man"];
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for command in commands {
            assert!(script.contains(command), "{shell} completion lacks {command}");
        }
    }
    assert!(run(&["completions", "bash"]).contains("complete -F _wasmq"));
    let man = run(&["man"]);
    assert!(man.starts_with(".ie") && man.contains(".TH wasmq 1"), "{}", &man[..200]);
    for command in commands {
        assert!(man.contains(&format!("wasmq\\-{command}")) || man.contains(command), "man lacks {command}");
    }
    let bad = crate::support::run_wasmq(&["completions".into(), "powershell".into()], &[], None);
    assert_eq!(bad.status.code(), Some(2));
}
