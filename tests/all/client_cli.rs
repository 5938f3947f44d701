//! The client commands (`push`, `alias`, `modules`, `dispatch`, `jobs`, `batch`,
//! `status`; the operator's `tenant` and `token` in `tenants`, `key` and signed
//! requests in `keys`) driven as a user would from a shell, against a real
//! server on an ephemeral port; `live` runs them on a pseudo-terminal and
//! watches their output as it comes.

mod apply;
mod capabilities;
mod errors;
mod inspect;
mod keys;
mod live;
mod outbound;
mod tenants;

use serde_json::Value;
use std::process::Output;

use crate::server::{Options, TestApp, spawn_app};
use crate::support::{plugin_path, run_wasmq};

/// Runs `wasmq <args>` against `url` (off the async threads: the server runs on them).
async fn wasmq_with(url: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut vars = vec![("WASMQ_URL".to_string(), url.to_string())];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || run_wasmq(&args, &vars, stdin.as_deref())).await.unwrap()
}

async fn wasmq(app: &TestApp, args: &[&str]) -> Output {
    wasmq_with(&app.url, args, &[], None).await
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit 0 and returns stdout.
fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stdout: {}\nstderr: {}", stdout(o), stderr(o));
    stdout(o)
}

/// Asserts exit 0 and parses stdout as JSON.
fn ok_json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// The job id of a `job <id>` line (the first line `dispatch --wait` prints on stderr).
fn job_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let id = first.strip_prefix("job ").unwrap_or_else(|| panic!("no `job <id>` first line in {text:?}"));
    assert_eq!(id.len(), 36, "a UUID: {first}");
    id.to_string()
}

/// The value of a `key: value` line.
fn field(text: &str, key: &str) -> String {
    let prefix = format!("{key}:");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {key} in {text}"));
    line[prefix.len()..].trim().to_string()
}

/// The cells of the table row whose first cell is `first`.
fn row(text: &str, first: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in\n{text}"))
}

fn plugin(name: &str) -> String {
    plugin_path(name).to_string_lossy().into_owned()
}

/// Pushes a plugin with `--alias`; returns its digest.
async fn push(app: &TestApp, name: &str, alias: &str) -> String {
    let out = ok(&wasmq(app, &["push", &plugin(name), "--alias", alias]).await);
    assert!(field(&out, "alias").starts_with(&format!("{alias} (version ")), "{out}");
    field(&out, "digest")
}

#[tokio::test]
async fn push_alias_list_show_and_rollback() {
    let app = spawn_app(Options::default()).await;
    let out = ok(&wasmq(&app, &["push", &plugin("echo"), "--alias", "greet"]).await);
    let echo = field(&out, "digest");
    assert!(echo.starts_with("blake3:") && echo.len() == 71, "{out}");
    assert_eq!(field(&out, "kind"), "job");
    assert!(field(&out, "size").ends_with(" KiB)"), "{out}");
    assert_eq!(field(&out, "status"), "new (201 Created)");
    assert_eq!(field(&out, "alias"), "greet (version 1)");

    let again = ok(&wasmq(&app, &["push", &plugin("echo")]).await);
    assert_eq!(field(&again, "digest"), echo);
    assert_eq!(field(&again, "status"), "already known (200 OK)");

    let v = ok_json(&wasmq(&app, &["push", &plugin("primes"), "--alias", "greet", "--json"]).await);
    let primes = v["module"]["digest"].as_str().unwrap().to_string();
    assert_eq!((v["created"].as_bool(), v["alias"]["version"].as_i64()), (Some(true), Some(2)));
    push(&app, "primes", "primes").await;

    let list = ok(&wasmq(&app, &["alias", "list"]).await);
    assert!(list.starts_with("NAME"), "{list}");
    assert_eq!(row(&list, "greet")[1..3], ["2".to_string(), primes[..19].to_string()]);
    assert_eq!(row(&list, "primes")[1], "1");

    let show = ok(&wasmq(&app, &["alias", "show", "greet"]).await);
    assert_eq!((field(&show, "version"), field(&show, "module")), ("2".into(), primes.clone()));
    assert_eq!(row(&show, "2")[1], primes);
    assert_eq!(row(&show, "1")[1], echo);
    // History comes in pages: the cursor under a full page leads to the older versions.
    let first = ok(&wasmq(&app, &["alias", "show", "greet", "--limit", "1"]).await);
    assert_eq!(row(&first, "2")[1], primes);
    assert!(first.trim_end().ends_with("more: --cursor 2"), "{first}");
    let older = ok(&wasmq(&app, &["alias", "show", "greet", "--limit", "1", "--cursor", "2"]).await);
    assert_eq!(row(&older, "1")[1], echo);
    assert!(!older.contains("more:"), "{older}");

    let rolled = ok(&wasmq(&app, &["alias", "rollback", "greet"]).await);
    assert_eq!((field(&rolled, "version"), field(&rolled, "module")), ("3".into(), echo.clone()));
    // The alias runs echo again.
    assert_eq!(ok(&wasmq(&app, &["dispatch", "greet", r#"{"x":1}"#, "--wait"]).await), "{\"x\":1}\n");

    let set =
        ok(&wasmq(&app, &["alias", "set", "greet", &primes, "--fuel", "5000000", "--queue", "slow"]).await);
    assert_eq!(field(&set, "settings"), "fuel=5000000 queue=slow");
    let list = ok_json(&wasmq(&app, &["alias", "list", "--json"]).await);
    let greet = list.as_array().unwrap().iter().find(|a| a["name"] == "greet").unwrap();
    assert_eq!((greet["version"].as_i64(), greet["fuel"].as_u64()), (Some(4), Some(5_000_000)));

    // Limits in units, as `wasmq run` takes them; the module by a short digest.
    let short = &echo["blake3:".len().."blake3:".len() + 8];
    let set =
        ok(&wasmq(&app, &["alias", "set", "greet", short, "--timeout", "1m 30s", "--memory", "64MiB"]).await);
    assert_eq!(
        (field(&set, "module"), field(&set, "settings")),
        (echo.clone(), "timeout=90s memory=64MiB".into())
    );
    for (flag, value, error) in [
        ("--timeout", "5000", "add a unit, e.g. 5000s or 5000ms"),
        ("--memory", "1000KiB", "must be a whole number of MiB"),
    ] {
        let out = wasmq(&app, &["alias", "set", "greet", &echo, flag, value]).await;
        assert_eq!(out.status.code(), Some(2), "a usage error: {}", stderr(&out));
        assert!(stderr(&out).contains(error), "{}", stderr(&out));
    }
    let out = wasmq(&app, &["alias", "set", "greet", "blake3:0123"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("too short: give at least 8 hex characters"), "{}", stderr(&out));
    assert_eq!(field(&ok(&wasmq(&app, &["alias", "show", "greet"]).await), "version"), "5");
}

#[tokio::test]
async fn dispatch_wait_prints_the_result_on_stdout() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    push(&app, "primes", "primes").await;
    let out = wasmq(&app, &["dispatch", "echo", r#"{"hello":"world"}"#, "--wait"]).await;
    assert_eq!(ok(&out), "{\"hello\":\"world\"}\n");
    // The id first, so an interrupted wait leaves something to act on; no
    // progress bar when stderr is not a terminal.
    let id = job_line(&stderr(&out));
    assert_eq!(stderr(&out), format!("job {id}\n"));
    let job = ok_json(&wasmq(&app, &["jobs", "show", &id, "--json"]).await);
    assert_eq!(job["payload"]["hello"], "world");

    let out =
        wasmq_with(&app.url, &["dispatch", "primes", "-", "--wait"], &[], Some(r#"{"limit": 1000}"#)).await;
    assert_eq!(ok(&out), "{\"limit\":1000,\"count\":168,\"largest\":997}\n");

    let job = ok_json(&wasmq(&app, &["dispatch", "primes", r#"{"limit": 100}"#, "--wait", "--json"]).await);
    assert_eq!((job["status"].as_str(), job["result"]["count"].as_u64()), (Some("succeeded"), Some(25)));
    assert_eq!(job["progress"]["percent"], 100);
}

#[tokio::test]
async fn dispatch_then_jobs_wait_list_and_show() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    let out = ok(&wasmq(&app, &["dispatch", "echo", r#"{"n":7}"#, "--context", "ctx-7"]).await);
    let id = field(&out, "id");
    assert!(["queued", "running", "succeeded"].contains(&field(&out, "status").as_str()), "{out}");

    assert_eq!(ok(&wasmq(&app, &["jobs", "wait", &id]).await), "{\"n\":7}\n");

    let page = ok_json(&wasmq(&app, &["jobs", "list", "--json", "--context", "ctx-7"]).await);
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{page}");
    assert_eq!((jobs[0]["id"].as_str(), jobs[0]["status"].as_str()), (Some(id.as_str()), Some("succeeded")));

    let table = ok(&wasmq(&app, &["jobs", "list", "--alias", "echo", "--status", "succeeded"]).await);
    assert_eq!(row(&table, &id)[1..4], ["succeeded", "echo", "default"]);

    let show = ok(&wasmq(&app, &["jobs", "show", &id]).await);
    assert_eq!((field(&show, "status"), field(&show, "result")), ("succeeded".into(), r#"{"n":7}"#.into()));
    assert_eq!(field(&show, "context"), "ctx-7");
}

#[tokio::test]
async fn a_delayed_job_can_be_cancelled_and_retried() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    let out = ok(&wasmq(&app, &["dispatch", "echo", r#"{"later":true}"#, "--delay", "1m"]).await);
    assert_eq!(field(&out, "status"), "scheduled");
    let id = field(&out, "id");

    let cancelled = ok(&wasmq(&app, &["jobs", "cancel", &id]).await);
    assert_eq!((field(&cancelled, "id"), field(&cancelled, "status")), (id.clone(), "cancelled".into()));
    let waited = wasmq(&app, &["jobs", "wait", &id]).await;
    assert_eq!(waited.status.code(), Some(3), "{}", stderr(&waited));
    assert!(stderr(&waited).starts_with("error (cancelled): "), "{}", stderr(&waited));
    assert_eq!(stdout(&waited), "");

    let out = ok(&wasmq(&app, &["dispatch", "echo", "{}", "--delay", "1h"]).await);
    let later = field(&out, "id");
    let waited = wasmq(&app, &["jobs", "wait", &later, "--timeout", "200ms"]).await;
    assert_eq!(waited.status.code(), Some(1));
    assert_eq!(stderr(&waited), format!("error: job {later} is still scheduled after 200ms\n"));

    let retried = ok(&wasmq(&app, &["jobs", "retry", &id]).await);
    assert_eq!(field(&retried, "status"), "queued");
    assert_eq!(ok(&wasmq(&app, &["jobs", "wait", &id]).await), "{\"later\":true}\n");
}

#[tokio::test]
async fn a_batch_from_a_jsonl_file() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jobs.jsonl");
    let lines: Vec<String> =
        (0..5).map(|i| format!(r#"{{"alias":"echo","payload":{{"i":{i}}},"context":"b"}}"#)).collect();
    std::fs::write(&file, format!("{}\n\n{}\n", lines[..2].join("\n"), lines[2..].join("\n"))).unwrap();
    let file = file.to_str().unwrap();

    let human = ok(&wasmq(&app, &["batch", file]).await);
    assert_eq!(field(&human, "total"), "5");
    assert!(!field(&human, "id").is_empty());
    let batch = ok_json(&wasmq(&app, &["batch", file, "--json"]).await);
    let ids = batch["job_ids"].as_array().unwrap();
    assert_eq!((batch["total"].as_u64(), ids.len()), (Some(5), 5));
    for (i, id) in ids.iter().enumerate() {
        let out = wasmq(&app, &["jobs", "wait", id.as_str().unwrap()]).await;
        assert_eq!(ok(&out), format!("{{\"i\":{i}}}\n"));
    }

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{}\n{{\"alias\":\"echo\",\"payload\":\n", lines[0])).unwrap();
    let out = wasmq(&app, &["batch", bad.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2: not valid JSON"), "{}", stderr(&out));

    std::fs::write(&bad, format!("{}\n\n{{\"alias\":\"nope\",\"payload\":{{}}}}\n", lines[0])).unwrap();
    let out = wasmq(&app, &["batch", bad.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("jobs[1]: alias nope not found") && err.contains("line 3)"), "{err}");
    assert!(err.starts_with("error (404 not_found): jobs[1]: alias nope not found"), "{err}");
    let page = ok_json(&wasmq(&app, &["jobs", "list", "--json", "--context", "b"]).await);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 10, "rejected batches add no jobs");
}

#[tokio::test]
async fn status_prints_counts_per_status_and_queue() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;
    for n in 0..2 {
        ok(&wasmq(&app, &["dispatch", "echo", &format!("{{\"n\":{n}}}"), "--wait"]).await);
    }
    ok(&wasmq(&app, &["dispatch", "echo", "{}", "--queue", "later", "--delay", "60s"]).await);

    let out = ok(&wasmq(&app, &["status"]).await);
    assert!(field(&out, "workers").starts_with("2 max, "), "{out}");
    assert_eq!(row(&out, "succeeded"), ["succeeded", "2"]);
    assert_eq!(row(&out, "scheduled"), ["scheduled", "1"]);
    assert_eq!(row(&out, "total"), ["total", "3"]);
    let header = row(&out, "QUEUE");
    assert_eq!(header[1..3], ["QUEUED", "SCHEDULED"]);
    assert_eq!(row(&out, "later")[1..3], ["0", "1"]);
    assert_eq!(row(&out, "default")[4], "2", "succeeded in default");

    let v = ok_json(&wasmq(&app, &["status", "--json"]).await);
    assert_eq!((v["jobs"]["succeeded"].as_u64(), v["workers"]["max"].as_u64()), (Some(2), Some(2)));
}

#[tokio::test]
async fn a_dead_job_exits_3_with_its_error() {
    let app = spawn_app(Options::default()).await;
    push(&app, "fail", "fail").await;
    let out =
        wasmq(&app, &["dispatch", "fail", r#"{"mode":"error"}"#, "--max-attempts", "1", "--wait"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let id = job_line(&stderr(&out));
    assert_eq!(stderr(&out), format!("job {id}\nerror (plugin_error): failed on purpose\n"));
    assert_eq!(stdout(&out), "");

    let page = ok_json(&wasmq(&app, &["jobs", "list", "--json", "--status", "dead"]).await);
    assert_eq!(page["jobs"][0]["id"].as_str(), Some(id.as_str()));
    let out = wasmq(&app, &["jobs", "wait", &id]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("failed on purpose"), "{}", stderr(&out));
}

/// `jobs retry|delete` with a filter, `batch delete`, and the `queue`
/// commands, as a user types them.
#[tokio::test]
async fn bulk_job_commands_and_queue_controls() {
    let app = spawn_app(Options::default()).await;
    push(&app, "fail", "fail").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let out =
            wasmq(&app, &["dispatch", "fail", r#"{"mode":"error"}"#, "--max-attempts", "1", "--wait"]).await;
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        ids.push(job_line(&stderr(&out)));
    }
    let out = wasmq(&app, &["jobs", "retry"]).await;
    assert!(!out.status.success(), "an id or a filter is required: {}", stdout(&out));
    let out = wasmq(&app, &["jobs", "retry", &ids[0], "--status", "dead"]).await;
    assert!(!out.status.success(), "an id and a filter at once: {}", stdout(&out));
    let out = wasmq(&app, &["jobs", "delete", "--all"]).await;
    assert_eq!(ok(&out), "delete jobs: 3\n", "dead jobs are ended: all three go");
    for _ in 0..2 {
        let out =
            wasmq(&app, &["dispatch", "fail", r#"{"mode":"error"}"#, "--max-attempts", "1", "--wait"]).await;
        assert_eq!(out.status.code(), Some(3));
    }
    assert_eq!(
        ok(&wasmq(&app, &["jobs", "retry", "--status", "dead", "--alias", "fail"]).await),
        "retry jobs: 2\n"
    );
    let v = ok_json(
        &wasmq(&app, &["jobs", "cancel", "--status", "queued", "--status", "failed", "--json"]).await,
    );
    assert_eq!(v["action"], "cancel");

    let paused = ok(&wasmq(&app, &["queue", "pause", "mail"]).await);
    assert_eq!((field(&paused, "queue"), field(&paused, "paused")), ("mail".into(), "true".into()));
    let limited = ok(&wasmq(&app, &["queue", "limit", "mail", "--concurrency", "2", "--rate", "10/s"]).await);
    assert_eq!(field(&limited, "limits"), "concurrency 2, rate 10/1s (burst 1)");
    let list = ok(&wasmq(&app, &["queue", "list"]).await);
    assert_eq!(row(&list, "mail")[1], "yes", "{list}");
    let out = wasmq(&app, &["queue", "limit", "mail", "--rate", "10"]).await;
    assert!(!out.status.success() && stderr(&out).contains("MAX/WINDOW"), "{}", stderr(&out));
    let resumed = ok(&wasmq(&app, &["queue", "resume", "mail"]).await);
    assert_eq!(field(&resumed, "paused"), "false");
    let cleared = ok(&wasmq(&app, &["queue", "limit", "mail"]).await);
    assert_eq!(field(&cleared, "limits"), "none");

    let batch = ok(&wasmq_with(
        &app.url,
        &["batch", "-"],
        &[],
        Some("{\"alias\":\"fail\",\"payload\":{\"mode\":\"ok\"}}\n"),
    )
    .await);
    let batch_id = field(&batch, "id");
    for _ in 0..100 {
        let out = wasmq(&app, &["batch", "delete", &batch_id]).await;
        if out.status.success() {
            assert_eq!(stdout(&out), format!("deleted batch {batch_id} with 1 jobs\n"));
            return;
        }
        // Its job has not ended yet.
        assert!(stderr(&out).contains("not ended"), "{}", stderr(&out));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the batch's job never ended");
}

#[tokio::test]
async fn an_invalid_payload_is_refused_locally() {
    let app = spawn_app(Options::default()).await;
    // No alias exists: a server-side check would answer "alias echo not found".
    let out = wasmq(&app, &["dispatch", "echo", "{not json"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: the payload is not valid JSON: key must be a string"),
        "{}",
        stderr(&out)
    );
    let out = wasmq_with(&app.url, &["dispatch", "echo", "-", "--wait"], &[], Some("nope")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("the payload read from stdin is not valid JSON"), "{}", stderr(&out));
    let page = ok_json(&wasmq(&app, &["jobs", "list", "--json"]).await);
    assert_eq!(page["jobs"], Value::Array(vec![]));
}

#[tokio::test]
async fn api_and_connection_errors_exit_1_with_the_reason() {
    let app = spawn_app(Options::default()).await;
    let out = wasmq(&app, &["alias", "show", "missing"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error (404 not_found): alias missing not found\n");
    let out = wasmq(&app, &["jobs", "cancel", "no-such-job"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error (404 not_found): job no-such-job not found\n");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    let out = wasmq_with(&url, &["status"], &[], None).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with(&format!("error: cannot connect to the wasmq server at {url}: ")), "{err}");
    assert!(err.contains("--server or WASMQ_URL"), "names where the URL is set: {err}");
    // The same through the flag, for a command that waits.
    let out = wasmq_with(&app.url, &["jobs", "wait", "some-id", "--server", &url], &[], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("at {url}: ")), "{}", stderr(&out));
    // The server itself answers as before.
    assert!(field(&ok(&wasmq(&app, &["status"]).await), "workers").starts_with("2 max"));
}

#[tokio::test]
async fn a_token_protected_server() {
    let token = "s3cret-t0ken";
    let app = spawn_app(Options { token: Some(token.into()), ..Options::default() }).await;
    let out = wasmq(&app, &["status"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error (401 unauthorized): missing or invalid bearer token\n"), "{err}");
    assert!(err.contains("WASMQ_TOKEN"), "{err}");

    let out = wasmq_with(&app.url, &["status"], &[("WASMQ_TOKEN", token)], None).await;
    assert!(field(&ok(&out), "workers").starts_with("2 max"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let out = ok(&wasmq(
        &app,
        &["push", &plugin("echo"), "--alias", "echo", "--token-file", file.to_str().unwrap()],
    )
    .await);
    assert_eq!(field(&out, "alias"), "echo (version 1)");

    std::fs::write(&file, "wrong").unwrap();
    let out = wasmq(&app, &["alias", "list", "--token-file", file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error (401 unauthorized): "), "{}", stderr(&out));
}
